"""Nothing lost, nothing silently wrong: bad run files, failing runs, killed workers, a killed driver."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from relulab.lab import train
from relulab.lab.sweep import MAX_ATTEMPTS, Sweep, SweepError, Task

from . import sweep_tasks
from .test_resume import _alive, _cell

TRAIN = "relulab.lab.train:run"


def _tiny_run(**overrides) -> Task:
    settings = dict(data="moons", model="mlp", activation="relu", epochs=2, lr=0.05, width=8, batch_size=64)
    config = train.RunConfig(**(settings | overrides))
    return Task(TRAIN, config.to_dict(), label="tiny")


# -- run files in DIR/runs -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("content", ["[]", "3", '"text"', '{"fn": "relulab.lab.experiments:born_dead_cell"}',
                                     '{"fn": "x", "config": {}, "result"'])
def test_a_run_file_of_the_wrong_shape_is_named_and_recomputed(tmp_path, content):
    tasks = [_cell(2), _cell(3)]
    with Sweep(tmp_path, jobs=1, progress=False) as sweep:
        first = sweep.run(tasks)
    path = sweep.path(tasks[1])
    path.write_text(content)
    notes = io.StringIO()
    with Sweep(tmp_path, jobs=1, progress=False, stream=notes) as again:
        second = again.run(tasks)  # raised AttributeError ('list' object has no attribute 'get') for "[]"
    assert second == first
    assert again.computed == 1 and again.skipped == 1
    assert str(path) in notes.getvalue() and "recomputing" in notes.getvalue()
    assert json.loads(path.read_text())["result"] == first[1]


def _edit(result: dict, where: str, value) -> None:
    """Set ``result[...]`` at a dotted path such as ``final.test_accuracy`` or ``epochs.0.train_loss``."""
    *parents, last = where.split(".")
    for key in parents:
        result = result[int(key)] if key.isdigit() else result[key]
    if last.isdigit():
        result[int(last)] = value
    else:
        result[last] = value


@pytest.mark.parametrize("where, value", [
    ("final.test_accuracy", 1.2),              # 120 %: the lab stores fractions
    ("final.val_accuracy", -0.1),
    ("final.dead_fraction", 2.0),
    ("final.train_loss", -1.0),
    ("final.grad_ratio", float("inf")),       # json.loads reads Infinity; the lab never writes it
    ("epochs.0.train_loss", float("nan")),
    ("epochs.1.test_accuracy", 100.0),
    ("epochs.0.weight_grad.0", -3.0),
    ("final.epochs_to_target", 7),             # more epochs than the run had
    ("status", "great"),
    ("config.seed", 5),                        # another run's result under this run's config
])
def test_a_run_file_with_impossible_numbers_is_named_and_recomputed(tmp_path, where, value):
    task = _tiny_run()
    with Sweep(tmp_path, jobs=1, progress=False) as sweep:
        [first] = sweep.run([task])
    path = sweep.path(task)
    stored = json.loads(path.read_text())
    _edit(stored["result"], where, value)
    path.write_text(json.dumps(stored))  # allow_nan: Python's json writes (and reads) NaN and Infinity
    notes = io.StringIO()
    with Sweep(tmp_path, jobs=1, progress=False, stream=notes) as again:
        [second] = again.run([task])  # was accepted as it stood
    assert again.computed == 1
    message = notes.getvalue()
    assert str(path) in message and "impossible" in message and where.split(".")[-1].split(".")[0] in message
    for key in ("final", "epochs", "status"):
        assert second[key] == first[key]
    assert json.loads(path.read_text())["result"]["final"] == first["final"]


def test_every_kind_of_real_run_passes_the_check():
    for task in (_tiny_run(probe=True, revive_after=1, evals_per_epoch=3), _tiny_run(lr=1e30, epochs=3)):
        result = train.run(task.config)
        stored = json.loads(json.dumps(result))
        assert train.check_result(task.config, stored) is None, result["status"]
    assert result["status"] == "diverged" and result["diverged_at"] == 1


# -- runs that fail, workers that die -------------------------------------------------------------------------------
def test_a_run_that_fails_is_recorded_and_the_grid_goes_on(tmp_path):
    tasks = [Task(sweep_tasks.path("square"), {"x": 3}, label="three"),
             Task(sweep_tasks.path("fail"), {"x": 4}, label="four"),
             Task(sweep_tasks.path("square"), {"x": 5}, label="five")]
    with Sweep(tmp_path, jobs=1, progress=False) as sweep:
        results = sweep.run(tasks, keep_failed=True)
    assert [r.get("square") for r in results] == [9, None, 25]
    assert results[1]["status"] == "failed" and results[1]["label"] == "four"
    assert results[1]["error"] == "ValueError: this run fails by design (x=4)"
    assert "Traceback" in results[1]["traceback"]
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "runs").glob("*.json")) == ["five", "three"]
    with Sweep(tmp_path, jobs=1, progress=False) as again, pytest.raises(SweepError, match=r"1 of 3 runs failed.*"
                                                                                         r"four: ValueError"):
        again.run(tasks)
    assert again.skipped == 2 and again.computed == 0  # the failed run was tried again, the others reused


def test_a_killed_worker_loses_only_its_run(tmp_path):
    squares = [Task(sweep_tasks.path("square"), {"x": x, "sleep": 0.3}, label=f"sq{x}") for x in range(4)]
    once = Task(sweep_tasks.path("die_once"), {"x": 7, "marker": str(tmp_path / "died")}, label="dies-once")
    always = Task(sweep_tasks.path("die_always"), {"x": 8}, label="dies-always")
    notes = io.StringIO()
    with Sweep(tmp_path / "out", jobs=2, progress=False, stream=notes) as sweep:
        # was: BrokenProcessPool, and every run after the death lost
        results = sweep.run(squares[:2] + [once, always] + squares[2:], keep_failed=True)
    assert [r["square"] for r in results[:3] + results[4:]] == [0, 1, 49, 4, 9]
    assert results[3]["status"] == "failed" and "worker process died" in results[3]["error"]
    assert "SIGKILL" in results[3]["error"]
    text = notes.getvalue()
    assert "run dies-once was lost: its worker process died (killed by SIGKILL" in text
    assert f"run dies-always was lost" in text and f"giving up on it after {MAX_ATTEMPTS} attempts" in text
    assert text.count("run dies-always was lost") == MAX_ATTEMPTS
    assert not any(f"run sq{x} was lost" in text for x in range(4))  # runs beside a dying one are not blamed
    assert len(list((tmp_path / "out" / "runs").glob("*.json"))) == 5  # every run but the failed one
    assert sweep.describe()["lost"] == MAX_ATTEMPTS + 1 and sweep.describe()["failed"] == 1


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to find the worker processes")
def test_workers_exit_when_the_driver_is_killed(tmp_path):
    started = tmp_path / "started"
    started.mkdir()
    script = ("import sys\nfrom relulab.lab.sweep import Sweep, Task\n"
              f"tasks = [Task({sweep_tasks.path('square')!r}, {{'x': x, 'sleep': 300, 'started': {str(started)!r}}})"
              " for x in range(2)]\n"
              "if __name__ == '__main__':\n"
              "    with Sweep(sys.argv[1], jobs=2, progress=False) as sweep:\n        sweep.run(tasks)\n")
    (tmp_path / "driver.py").write_text(script)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([sweep_tasks.importable_from(), *sys.path[1:]]))
    driver = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "out")], env=env)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while len(list(started.iterdir())) < 2:  # both workers are on their (300 s) runs
            assert driver.poll() is None and time.monotonic() < deadline, "the runs did not start"
            time.sleep(0.1)
        workers = [int(p.name.split("-")[1]) for p in started.iterdir()]
        assert all(_alive(pid) for pid in workers)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
        deadline = time.monotonic() + 30  # before: alive (with their memory) until their runs ended
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers)
    finally:
        if driver.poll() is None:
            driver.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
