"""The lab on a Ray cluster: two real nodes on this machine (one CPU each), the same numbers as the local pool,
nothing lost when a node dies, an interrupted driver resumes."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from relulab.cli import main
from relulab.lab import BackendError, Sweep, Task, compare, validate_compare
from relulab.lab import sweep as sweep_module

from . import sweep_tasks
from .helpers import relulab
from .test_resume import _alive

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

# Small and quiet: this machine is shared (2 cores); no dashboard, 100 MB object stores, one CPU per node.
NODE = {"num_cpus": 1, "object_store_memory": 100 * 2 ** 20}
GRID = dict(data="moons", model="mlp", activations="relu,tanh", seeds=2, epochs=2, lr=0.05, width=8)


@pytest.fixture(scope="module")
def cluster():
    """A head node and a worker node; workers import relulab and the test tasks through PYTHONPATH."""
    before = set(_descendants(os.getpid()))
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(Path(sweep_module.__file__).parents[2]), sweep_tasks.importable_from()] + ([previous] if previous else []))
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    try:
        cluster.add_node(**NODE)
        cluster.wait_for_nodes()
        # One connection for the tests in this process: sweeps use it as it is (and Ray's workers stay warm).
        ray.init(address=cluster.address, logging_level="warning", log_to_driver=False)
        yield cluster
    finally:
        # GCS, raylets, agents, workers: what the cluster started (not what other tests left, e.g. a resource tracker)
        started = [pid for pid in _descendants(os.getpid()) if pid not in before and b"ray" in _cmdline(pid)]
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
        if previous is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = previous
        deadline = time.monotonic() + 30
        while (left := [pid for pid in started if _alive(pid)]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert started or not Path("/proc").exists()  # the check sees the cluster's processes
        assert not left, f"Ray processes left running after the tests: {left}"


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _descendants(root: int) -> list[int]:
    """Every process below ``root`` (Linux /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _two_nodes(cluster) -> None:
    """Bring the cluster back to two nodes after a test killed one (the node-killing test runs last for speed)."""
    if len(cluster.worker_nodes) < 1:
        cluster.add_node(**NODE)
        cluster.wait_for_nodes()


def _numbers(run: dict) -> dict:
    """What a run measured (its timing left out)."""
    return {key: run[key] for key in ("config", "status", "epochs", "final")}


def test_a_compare_on_two_ray_nodes_gives_the_local_numbers(cluster, tmp_path):
    _two_nodes(cluster)
    local = compare(validate_compare(**GRID, jobs=1, out=tmp_path / "local"), progress=False)
    on_ray = compare(validate_compare(**GRID, out=tmp_path / "ray"), progress=False, backend="ray",
                     address=cluster.address)
    assert ray.is_initialized()  # the sweep used this process's connection and left it open
    assert on_ray.results["table"] == local.results["table"]
    assert [_numbers(r) for r in on_ray.results["runs"]] == [_numbers(r) for r in local.results["runs"]]
    execution = on_ray.results["execution"]
    assert (execution["backend"], execution["nodes"], execution["cpus"], execution["lost"]) == ("ray", 2, 2, 0)
    assert local.results["execution"]["backend"] == "local"
    stored = json.loads((tmp_path / "ray" / "results.json").read_text())
    assert stored["execution"] == execution and stored["table"] == local.results["table"]
    assert "2 nodes, 2 CPUs" in (tmp_path / "ray" / "index.html").read_text()
    assert len(list((tmp_path / "ray" / "runs").glob("*.json"))) == 4


def test_a_run_that_fails_on_ray_is_recorded_and_the_grid_goes_on(cluster, tmp_path):
    tasks = [Task(sweep_tasks.path("square"), {"x": 6}, label="six"),
             Task(sweep_tasks.path("fail"), {"x": 7}, label="seven")]
    with Sweep(tmp_path, progress=False, backend="ray", address=cluster.address) as sweep:
        results = sweep.run(tasks, keep_failed=True)
    assert results[0]["square"] == 36
    assert results[1]["status"] == "failed" and results[1]["error"] == "ValueError: this run fails by design (x=7)"
    with pytest.raises(BackendError, match="each run needs 2 GPUs but the Ray cluster has 0"):
        Sweep(tmp_path, backend="ray", address=cluster.address, gpus_per_run=2).executor()


def test_a_named_experiment_on_ray_gives_the_local_numbers(cluster, tmp_path, capsys):
    _two_nodes(cluster)
    outputs = {}
    for backend in ("local", "ray"):
        extra = ["--backend", "ray", "--address", cluster.address] if backend == "ray" else ["--jobs", "1"]
        assert main(["run", "born-dead", "--quick", "--quiet", "--json", "--out", str(tmp_path / backend), *extra]) == 0
        outputs[backend] = json.loads(capsys.readouterr().out)
    assert outputs["ray"]["tables"] == outputs["local"]["tables"]
    assert outputs["ray"]["measured"] == outputs["local"]["measured"]
    assert outputs["ray"]["execution"]["backend"] == "ray" and outputs["ray"]["execution"]["nodes"] == 2


def test_an_interrupted_ray_compare_resumes(cluster, tmp_path, monkeypatch, capsys):
    _two_nodes(cluster)
    argv = ["compare", "--data", "moons", "--model", "mlp", "--activations", "relu,tanh", "--seeds", "2", "--epochs",
            "2", "--lr", "0.05", "--width", "8", "--backend", "ray", "--address", cluster.address, "--out",
            str(tmp_path)]
    monkeypatch.setenv(sweep_module.INTERRUPT_ENV, "1")  # Ctrl-C right after the first result is written
    assert main(argv + ["--quiet"]) == 130
    assert "interrupted" in capsys.readouterr().err
    finished = {p.name: p.read_bytes() for p in (tmp_path / "runs").glob("*.json")}
    assert len(finished) == 1 and not list(tmp_path.rglob("*.tmp"))
    assert not (tmp_path / "results.json").exists()
    monkeypatch.delenv(sweep_module.INTERRUPT_ENV)
    # a fresh driver (its own connection to the cluster, closed at its end) picks up where this one stopped
    second = relulab(*argv, "--json", "--quiet")
    assert second.returncode == 0, second.stderr
    results = json.loads(second.stdout)
    assert results["counts"] == {"computed": 3, "skipped": 1}
    assert {name: (tmp_path / "runs" / name).read_bytes() for name in finished} == finished
    assert results["execution"]["backend"] == "ray" and results["execution"]["nodes"] == 2


def test_a_node_killed_mid_sweep_loses_nothing(cluster, tmp_path):
    _two_nodes(cluster)
    started = tmp_path / "started"
    started.mkdir()
    tasks = [Task(sweep_tasks.path("square"), {"x": x, "sleep": 2, "started": str(started)}, label=f"sq{x}")
             for x in range(4)]
    worker = next(node for node in cluster.worker_nodes)
    notes = io.StringIO()
    outcome: dict = {}

    def sweep_in_background():
        with Sweep(tmp_path / "out", progress=False, stream=notes, backend="ray", address=cluster.address) as sweep:
            outcome["results"] = sweep.run(tasks)
            outcome["execution"] = sweep.describe()

    thread = threading.Thread(target=sweep_in_background)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(list(started.iterdir())) < 2:  # one run on each node
            assert thread.is_alive() and time.monotonic() < deadline, notes.getvalue()
            time.sleep(0.1)
        cluster.remove_node(worker, allow_graceful=False)
        thread.join(timeout=120)
    finally:
        if thread.is_alive():
            thread.join(timeout=120)
    assert [r["square"] for r in outcome["results"]] == [0, 1, 4, 9]
    assert outcome["execution"]["lost"] >= 1 and "was lost" in notes.getvalue()
    assert "retrying it (attempt 2 of 3)" in notes.getvalue()
    assert sorted(json.loads(p.read_text())["result"]["square"] for p in (tmp_path / "out" / "runs").iterdir()) == [
        0, 1, 4, 9]


def test_an_unreachable_cluster_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(["compare", "--backend", "ray", "--address", "127.0.0.1:1", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "cannot reach a Ray cluster at 127.0.0.1:1" in err
    assert not (tmp_path / "r").exists()


def test_without_ray_the_error_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    code = main(["run", "born-dead", "--quick", "--backend", "ray", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "pip install 'relulab[ray]'" in err


@pytest.mark.parametrize("argv, message", [
    (["--backend", "spark"], "--backend must be one of local, ray; got 'spark'"),
    (["--address", "10.0.0.1:6379"], "--address needs --backend ray; got --backend local"),
    (["--gpus-per-run", "1"], "--gpus-per-run needs --backend ray"),
    (["--backend", "ray", "--gpus-per-run", "-1"], "--gpus-per-run must be a finite number >= 0; got -1.0"),
    (["--backend", "ray", "--gpus-per-run", "many"], "--gpus-per-run must be a number >= 0; got 'many'"),
    (["--backend", "ray", "--address", "nowhere"], "--address must be HOST:PORT"),
])
def test_bad_backend_options_are_one_line_and_exit_2(tmp_path, capsys, argv, message):
    for command in (["compare"], ["run", "born-dead", "--quick"]):
        code = main([*command, *argv, "--out", str(tmp_path / "r")])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "r").exists()


def test_doctor_on_ray_gives_the_local_findings_and_remedies(cluster, tmp_path, capsys):
    import numpy as np

    from .test_doctor import MODEL_FILE

    _two_nodes(cluster)
    (tmp_path / "mymodel.py").write_text(MODEL_FILE)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(160, 4))
    label = (x[:, 0] - x[:, 2] > 0).astype(int)
    rows = "".join(f"{a:.4f},{b:.4f},{c:.4f},{d:.4f},{l}\n" for (a, b, c, d), l in zip(x, label))
    (tmp_path / "train.csv").write_text("a,b,c,d,label\n" + rows)
    common = ["doctor", "--model", f"{tmp_path / 'mymodel.py'}:build", "--data", str(tmp_path / "train.csv"),
              "--target", "label", "--epochs", "2", "--seeds", "2", "--lr", "3", "--quiet"]
    results = {}
    for backend in ("local", "ray"):
        extra = ["--backend", "ray", "--address", cluster.address] if backend == "ray" else ["--jobs", "1"]
        code = main([*common, *extra, "--out", str(tmp_path / backend)])
        assert code == 0
        # read the file: Ray's own log lines about earlier tests' nodes may reach stdout
        results[backend] = json.loads((tmp_path / backend / "results.json").read_text())
    assert results["ray"]["execution"]["backend"] == "ray" and results["local"]["execution"]["backend"] == "local"
    assert results["ray"]["findings"] == results["local"]["findings"]
    assert results["ray"]["table"] == results["local"]["table"]
