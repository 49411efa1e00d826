"""The grid executor: run many independent tasks in worker processes, keep every finished one, resume on rerun.

A task is a function given by its import path (``"relulab.lab.train:run"``) and a JSON config. Each finished
task is written at once to ``DIR/runs/<key>.json`` (write to a temporary file, then ``os.replace``), so a file
there is always complete. Rerunning the same grid with the same ``DIR`` loads those files instead of recomputing.

Workers are separate processes started with the ``spawn`` method, each limited to one thread (small models
train fastest that way, and results do not depend on how many workers run). Workers ignore SIGINT: Ctrl-C
reaches the parent, which cancels what has not started, stops the workers and re-raises KeyboardInterrupt;
only complete files are left behind.

For tests, ``RELULAB_INTERRUPT_AFTER=N`` makes the parent raise KeyboardInterrupt right after it has written the
N-th result in this process, as if Ctrl-C had been pressed then.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TextIO

from .._io import write_atomic

__all__ = ["Task", "Sweep", "write_atomic", "to_json", "default_jobs", "Progress"]

INTERRUPT_ENV = "RELULAB_INTERRUPT_AFTER"


def default_jobs() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities become None (strict JSON has neither), tuples become lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # NumPy scalars
        return _clean(value.item())
    return value


def to_json(value: Any, *, indent: int | None = 1) -> str:
    """Strict JSON text of ``value`` (non-finite floats as null)."""
    return json.dumps(_clean(value), indent=indent, allow_nan=False)


@dataclass(frozen=True)
class Task:
    """One unit of work: ``fn`` (``"package.module:function"``) called with ``config``; ``label`` for people."""

    fn: str
    config: Mapping[str, Any]
    label: str = ""

    @property
    def key(self) -> str:
        """The file name stem: a readable label and a hash of the function and the whole config."""
        digest = hashlib.sha1(to_json({"fn": self.fn, "config": self.config}, indent=None).encode()).hexdigest()
        stem = "".join(c if c.isalnum() or c in "-_." else "-" for c in self.label)[:60]
        return f"{stem}-{digest[:12]}" if stem else digest[:12]


def _resolve(fn: str) -> Callable[[Mapping[str, Any]], Any]:
    module, _, name = fn.partition(":")
    return getattr(importlib.import_module(module), name)


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    import torch

    torch.set_num_threads(1)


def _execute(fn: str, config: Mapping[str, Any]) -> Any:
    return _clean(_resolve(fn)(config))


def _execute_here(fn: str, config: Mapping[str, Any]) -> Any:
    """Run a task in this process with one thread, as a worker would (same numbers as a worker)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _execute(fn, config)
    finally:
        torch.set_num_threads(threads)


class Progress:
    """A one-line progress bar on stderr (a line per tenth of the work when stderr is not a terminal)."""

    def __init__(self, total: int, *, done: int = 0, label: str = "runs", stream: TextIO | None = None,
                 enabled: bool = True) -> None:
        self.total, self.done, self.label = total, done, label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and total > 0
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.perf_counter()
        self.initial = done
        self._last_line = -1
        if self.enabled:
            skipped = f", {done} already finished (skipped)" if done else ""
            if not self.tty or done:
                print(f"{label}: {total} in all{skipped}", file=self.stream, flush=True)
            self._draw()

    def advance(self, step: int = 1) -> None:
        self.done += step
        self._draw()

    def _draw(self) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.started
        computed = self.done - self.initial
        remaining = self.total - self.done
        eta = f", ~{_clock(elapsed / computed * remaining)} left" if computed and remaining else ""
        if self.tty:
            width = 28
            filled = int(width * self.done / self.total)
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total} {_clock(elapsed)}{eta}   ")
            if self.done >= self.total:
                self.stream.write("\n")
            self.stream.flush()
        else:
            tenth = 10 * self.done // self.total
            if computed and (tenth != self._last_line or self.done >= self.total):
                self._last_line = tenth
                print(f"{self.label}: {self.done}/{self.total} done, {_clock(elapsed)}{eta}", file=self.stream,
                      flush=True)

    def close(self) -> None:
        if self.enabled and self.tty and self.done < self.total:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class Sweep:
    """Run tasks with ``jobs`` worker processes, writing each result under ``out/runs`` as it finishes.

    Use as a context manager; :meth:`run` may be called several times (e.g. a tuning phase, then the grid that
    depends on it) and reuses the same workers.
    """

    def __init__(self, out: str | os.PathLike, *, jobs: int | None = None, progress: bool = True,
                 stream: TextIO | None = None) -> None:
        self.runs_dir = Path(out) / "runs"
        self.jobs = default_jobs() if jobs is None else jobs
        self.progress = progress
        self.stream = stream
        self.computed = 0  # tasks computed (not loaded) by this sweep
        self._mine: set[str] = set()  # keys this sweep computed (reused by a later phase, not "skipped")
        self._found: set[str] = set()  # keys found finished on disk, from an earlier sweep
        self._pool: ProcessPoolExecutor | None = None
        limit = os.environ.get(INTERRUPT_ENV)
        self._interrupt_after = int(limit) if limit else None

    @property
    def skipped(self) -> int:
        """Distinct tasks that were finished on disk before this sweep started (loaded, not recomputed)."""
        return len(self._found)

    def __enter__(self) -> Sweep:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(abort=exc_type is not None)

    def close(self, *, abort: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if not abort:
            pool.shutdown(wait=True)
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        # Stop runs in progress now rather than waiting for them; their results were never written.
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)

    # -- files ---------------------------------------------------------------------------------------------------
    def path(self, task: Task) -> Path:
        return self.runs_dir / f"{task.key}.json"

    def load(self, task: Task) -> Any | None:
        """The stored result of ``task``, or None when it has not finished (or the file is not this task's)."""
        try:
            stored = json.loads(self.path(task).read_text())
        except (OSError, ValueError):
            return None
        if stored.get("fn") != task.fn or stored.get("config") != json.loads(to_json(task.config, indent=None)):
            return None
        return stored.get("result")

    def _store(self, task: Task, result: Any) -> None:
        write_atomic(self.path(task), to_json({"fn": task.fn, "config": task.config, "label": task.label,
                                               "result": result}))
        self.computed += 1
        self._mine.add(task.key)
        if self._interrupt_after is not None and self.computed >= self._interrupt_after:
            raise KeyboardInterrupt(f"{INTERRUPT_ENV}={self._interrupt_after}")

    # -- running -------------------------------------------------------------------------------------------------
    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_worker_init)
        return self._pool

    def run(self, tasks: Sequence[Task], *, label: str = "runs") -> list[Any]:
        """Results of ``tasks`` in order: loaded when finished before, computed (and stored) otherwise."""
        results: dict[str, Any] = {}
        todo: list[Task] = []
        for task in tasks:
            if task.key in results:
                continue
            stored = self.load(task)
            if stored is None:
                if all(t.key != task.key for t in todo):
                    todo.append(task)
            else:
                results[task.key] = stored
                if task.key not in self._mine:
                    self._found.add(task.key)
        bar = Progress(len({t.key for t in tasks}), done=len(results), label=label, stream=self.stream,
                       enabled=self.progress)
        try:
            if self.jobs == 1 or len(todo) <= 1 and self._pool is None:
                for task in todo:
                    result = _execute_here(task.fn, task.config)
                    results[task.key] = result
                    bar.advance()
                    self._store(task, result)
            else:
                pool = self._executor()
                pending: dict[Future, Task] = {pool.submit(_execute, t.fn, t.config): t for t in todo}
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        task = pending.pop(future)
                        results[task.key] = future.result()
                        bar.advance()
                        self._store(task, results[task.key])
        except BaseException:
            bar.close()
            self.close(abort=True)
            raise
        bar.close()
        return [results[t.key] for t in tasks]
