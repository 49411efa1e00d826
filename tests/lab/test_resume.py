"""Nothing lost: finished runs are written at once and atomically, an interrupted sweep resumes where it stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from relulab.lab import sweep as sweep_module
from relulab.lab.sweep import Sweep, Task, write_atomic

from .helpers import relulab

GRID = ["compare", "--activations", "relu,tanh", "--seeds", "3", "--epochs", "1", "--lr", "0.05", "--jobs", "2"]


def _snapshot(runs: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in runs.glob("*.json")}


def _assert_no_partial_files(out: Path) -> None:
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    for path in (out / "runs").glob("*.json"):
        stored = json.loads(path.read_text())  # every file there is complete JSON
        assert stored["fn"] == "relulab.lab.train:run" and stored["result"]["status"] in ("ok", "diverged")


def test_an_interrupted_sweep_keeps_finished_runs_and_resumes(tmp_path):
    out = tmp_path / "report"
    env = dict(os.environ, **{sweep_module.INTERRUPT_ENV: "2"})  # Ctrl-C right after the 2nd result is written
    first = relulab(*GRID, "--out", str(out), env=env)
    assert first.returncode == 130
    assert "interrupted" in first.stderr and "run the same command again" in first.stderr
    assert "Traceback" not in first.stderr
    finished = _snapshot(out / "runs")
    assert len(finished) == 2
    _assert_no_partial_files(out)
    assert not (out / "results.json").exists() and not (out / "index.html").exists()

    second = relulab(*GRID, "--out", str(out), "--json")
    assert second.returncode == 0, second.stderr
    results = json.loads(second.stdout)
    assert results["counts"] == {"computed": 4, "skipped": 2}  # the two finished runs were not recomputed
    after = _snapshot(out / "runs")
    assert len(after) == 6
    assert {name: after[name] for name in finished} == finished  # same files, untouched
    assert [(r["config"]["activation"], r["config"]["seed"]) for r in results["runs"]] == [
        ("relu", 0), ("relu", 1), ("relu", 2), ("tanh", 0), ("tanh", 1), ("tanh", 2)]
    assert all(row["runs"] == 3 for row in results["table"])
    assert json.loads((out / "results.json").read_text())["table"] == results["table"]


def _children(pid: int) -> list[int]:
    """Worker processes of ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to find the worker processes")
def test_ctrl_c_stops_the_workers_and_leaves_only_whole_files(tmp_path):
    out = tmp_path / "report"
    argv = [sys.executable, "-m", "relulab.cli", "compare", "--activations", "relu,tanh", "--seeds", "3",
            "--epochs", "3", "--lr", "0.05", "--jobs", "2", "--out", str(out)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not list((out / "runs").glob("*.json")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no run finished in time"
            time.sleep(0.1)
        workers = _children(process.pid)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert workers and not any(_alive(pid) for pid in workers)  # the workers were stopped, not left running
    _assert_no_partial_files(out)
    finished = _snapshot(out / "runs")
    assert 1 <= len(finished) < 6

    again = subprocess.run(argv + ["--json", "--quiet"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    results = json.loads(again.stdout)
    assert results["counts"] == {"computed": 6 - len(finished), "skipped": len(finished)}
    assert {name: value for name, value in _snapshot(out / "runs").items() if name in finished} == finished


CELL = "relulab.lab.experiments:born_dead_cell"


def _cell(width: int) -> Task:
    return Task(CELL, {"width": width, "depth": 2, "draws": 3, "seed": 0}, label=f"cell-w{width}")


def test_sweep_recomputes_a_file_that_is_not_this_tasks(tmp_path):
    with Sweep(tmp_path, jobs=1, progress=False) as sweep:
        first = sweep.run([_cell(2), _cell(3)])
    assert sweep.computed == 2 and sweep.skipped == 0
    path = Sweep(tmp_path).path(_cell(3))
    path.write_text('{"fn": "something else", "config": {}, "result": 1}')
    with Sweep(tmp_path, jobs=1, progress=False) as again:
        second = again.run([_cell(2), _cell(3)])
    assert again.computed == 1 and again.skipped == 1
    assert second == first
    assert json.loads(path.read_text())["fn"] == CELL


def test_sweep_results_do_not_depend_on_the_number_of_workers(tmp_path):
    tasks = [_cell(2), _cell(4), _cell(8)]
    with Sweep(tmp_path / "one", jobs=1, progress=False) as sweep:
        serial = sweep.run(tasks)
    with Sweep(tmp_path / "two", jobs=2, progress=False) as sweep:
        parallel = sweep.run(tasks)
    assert serial == parallel


def test_write_atomic_never_leaves_a_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "result.json"
    write_atomic(target, "old")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "new " * 1000)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
