"""The grid executor: run many independent tasks, keep every finished one, resume on rerun.

A task is a function given by its import path (``"relulab.lab.train:run"``) and a JSON config. Each finished
task is written at once to ``DIR/runs/<key>.json`` by the driver (the process that called :meth:`Sweep.run`),
atomically, so a file there is always complete. Rerunning the same grid with the same ``DIR`` loads those files
instead of recomputing them; a file there that is not a valid result of its task (corrupt JSON, the wrong shape,
another task's config, numbers the task's ``check_result`` rejects) is named in a note and recomputed.

Where tasks run is the backend, behind one small interface (:class:`Executor`):

- ``local`` (:class:`LocalExecutor`, the default): worker processes on this machine, started with the ``spawn``
  method, each limited to one thread (small models train fastest that way, and results do not depend on how many
  workers run). Workers ignore SIGINT (Ctrl-C is the driver's to handle) and die with the driver, even when it is
  killed with SIGKILL. A worker that dies (the out-of-memory killer) loses only its run: the pool is restarted and
  that run retried, at most ``MAX_ATTEMPTS`` times in all.
- ``ray`` (:class:`RayExecutor`): a Ray task per run on a Ray cluster (``address``) or on a Ray instance started
  here, with one CPU per run (and ``gpus_per_run`` GPUs); results come back to the driver, which writes them as
  above. A run whose worker or node dies is retried the same way.

Either way a task that raises is recorded as failed, with its error, and the other runs go on; failed runs are not
written, so a rerun tries them again. Ctrl-C (or SIGTERM through the CLI) cancels what has not finished, stops the
workers and re-raises KeyboardInterrupt; only complete files are left behind. The same grid gives the same
results on both backends (tasks are deterministic for their config, each on one thread).

For tests, ``RELULAB_INTERRUPT_AFTER=N`` makes the driver raise KeyboardInterrupt right after it has written the
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
import socket
import sys
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, TextIO

from .._io import json_safe, write_atomic

__all__ = ["Task", "Sweep", "Backend", "BackendError", "SweepError", "validate_backend", "Executor",
           "LocalExecutor", "RayExecutor", "write_atomic", "to_json", "default_jobs", "Progress", "BACKENDS",
           "MAX_ATTEMPTS", "RAY_EXTRA"]

INTERRUPT_ENV = "RELULAB_INTERRUPT_AFTER"
BACKENDS = ("local", "ray")
MAX_ATTEMPTS = 3  # a run whose worker (or node) dies is tried this often in all before it is recorded as failed
RAY_EXTRA = "pip install 'relulab[ray]'"


def default_jobs() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)




def to_json(value: Any, *, indent: int | None = 1) -> str:
    """Strict JSON text of ``value`` (non-finite floats as null)."""
    return json.dumps(json_safe(value), indent=indent, allow_nan=False)


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


def _attempt(fn: str, config: Mapping[str, Any]) -> tuple[bool, Any]:
    """``(True, result)``, or ``(False, error)`` when the task raised: its own failure, recorded, not retried."""
    try:
        return True, json_safe(_resolve(fn)(config))
    except Exception as error:  # noqa: BLE001  (any error of the task is its result; the grid goes on)
        return False, {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}


def _one_thread() -> None:
    """Limit this worker process to one thread, whether or not the task has imported torch yet.

    Importing torch in every worker up front would cost a second or more per worker start (and per restart after
    a worker died); the environment variables reach a torch imported later by the task itself.
    """
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _attempt_single_threaded(fn: str, config: Mapping[str, Any]) -> tuple[bool, Any]:
    """Run a task in this process with one thread, as a worker does (so the numbers are a worker's)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _attempt(fn, config)
    finally:
        torch.set_num_threads(threads)


# -- backends ------------------------------------------------------------------------------------------------------
class BackendError(ValueError):
    """The backend cannot be used as asked (bad option, Ray missing, cluster unreachable): one line, nothing run."""


class SweepError(RuntimeError):
    """Some runs of a grid failed (each for its own reason); every other run finished and was kept."""


@dataclass(frozen=True)
class Backend:
    """Where a sweep's tasks run: ``name`` is ``"local"`` or ``"ray"``; ``address`` an existing Ray cluster
    (``None``: a Ray instance started on this machine); each Ray task reserves ``cpus_per_run`` CPUs and
    ``gpus_per_run`` GPUs."""

    name: str = "local"
    address: str | None = None
    gpus_per_run: float = 0.0
    cpus_per_run: float = 1.0


def _import_ray():
    try:
        import ray
    except ImportError:
        raise BackendError(f"--backend ray needs Ray, which is not installed: {RAY_EXTRA}") from None
    return ray


def validate_backend(backend: str | Backend = "local", address: str | None = None,
                     gpus_per_run: float | None = None) -> Backend:
    """Check the backend options; return a :class:`Backend` or raise :class:`BackendError` naming the option.

    >>> validate_backend("local")
    Backend(name='local', address=None, gpus_per_run=0.0, cpus_per_run=1.0)
    """
    if isinstance(backend, Backend):
        return backend
    if backend not in BACKENDS:
        raise BackendError(f"--backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if address is not None:
        _host_port(address)
    if address is not None and backend != "ray":
        raise BackendError(f"--address needs --backend ray; got --backend {backend}")
    gpus = 0.0 if gpus_per_run is None else gpus_per_run
    if isinstance(gpus, bool) or not isinstance(gpus, (int, float)) or not math.isfinite(gpus) or gpus < 0:
        raise BackendError(f"--gpus-per-run must be a finite number >= 0; got {gpus_per_run!r}")
    if gpus and backend != "ray":
        raise BackendError(f"--gpus-per-run needs --backend ray (local workers share this machine's devices); "
                           f"got --backend {backend}")
    if backend == "ray":
        _import_ray()
    return Backend(backend, address.strip() if address else None, float(gpus))


def _label(task: Task) -> str:
    return task.label or task.key


def _death(exitcode: int | None) -> str:
    """Plain words for how a worker process ended."""
    if exitcode is None:
        return "it stopped answering"
    if exitcode == -signal.SIGKILL:
        return "killed by SIGKILL, e.g. by the out-of-memory killer"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


class Executor:
    """What a :class:`Sweep` needs from a backend: run tasks, yield each as it finishes, retry lost ones.

    :meth:`results` yields ``(task, ok, value)`` in the order runs finish: ``value`` is the result when ``ok``,
    otherwise ``{"error": ..., "traceback": ...}``. A run whose worker or node dies is retried up to
    :data:`MAX_ATTEMPTS` attempts in all (each loss announced through ``notify``) and then yielded as failed.
    :meth:`close` with ``abort=True`` cancels whatever has not finished.
    """

    backend = "?"

    def __init__(self, notify: Callable[[str], None] | None = None) -> None:
        self.notify = notify or (lambda message: None)
        self.lost = 0  # attempts lost to a dead worker or node (each retried or, at the end, failed)

    def results(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, bool, Any]]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Which backend ran the tasks, on how many nodes and CPUs (for the report)."""
        raise NotImplementedError

    def close(self, *, abort: bool = False) -> None:
        pass

    def _lost(self, task: Task, attempt: int, why: str) -> bool:
        """Announce a lost attempt; True when the run gets another one."""
        self.lost += 1
        again = attempt < MAX_ATTEMPTS
        then = (f"retrying it (attempt {attempt + 1} of {MAX_ATTEMPTS})" if again else
                f"giving up on it after {MAX_ATTEMPTS} attempts; the other runs go on")
        self.notify(f"run {_label(task)} was lost: {why}; {then}")
        return again


# -- local: a process pool ----------------------------------------------------------------------------------------
_worker_slot: tuple[Any, int] | None = None  # in a worker: (the pool's shared slots, this worker's index)


def _die_with_parent(parent: int) -> None:
    """End this worker when the driver ends, however it ends (SIGKILL included).

    On Linux the kernel sends SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG); a thread polling the parent id
    covers other systems and the moment before prctl took effect. (The kernel watches the parent *thread* that
    started the worker: the pool is started and closed by the thread that runs the sweep, which outlives it.)
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before prctl: nobody would ever collect this worker's result
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="relulab-parent-watchdog", daemon=True).start()


def _worker_init(slots: Any, parent: int) -> None:
    global _worker_slot
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    _die_with_parent(parent)
    with slots.get_lock():
        index = next(i for i in range(0, len(slots), 2) if slots[i] == 0)
        slots[index] = os.getpid()
    _worker_slot = (slots, index)
    _one_thread()


def _attempt_in_worker(fn: str, config: Mapping[str, Any], tag: int) -> tuple[bool, Any]:
    # The slot says which run this process is on, so that when it dies the driver knows which run was lost.
    slots, index = _worker_slot
    slots[index + 1] = tag
    _one_thread()  # again: the parent's main module, re-imported here by spawn, may have imported torch
    try:
        return _attempt(fn, config)
    finally:
        slots[index + 1] = 0


class LocalExecutor(Executor):
    """Tasks in ``jobs`` worker processes on this machine (in this process when ``jobs == 1``)."""

    backend = "local"

    def __init__(self, jobs: int | None = None, notify: Callable[[str], None] | None = None) -> None:
        super().__init__(notify)
        self.jobs = default_jobs() if jobs is None else jobs
        self._pool: ProcessPoolExecutor | None = None
        self._slots: Any = None
        self._processes: dict[int, Any] = {}  # pid -> Process of the current pool, kept to read exit codes

    def describe(self) -> dict[str, Any]:
        return {"backend": "local", "nodes": 1, "cpus": self.jobs, "workers": self.jobs}

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._slots = context.Array("q", 2 * self.jobs)
            self._processes = {}
            self._pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=context, initializer=_worker_init,
                                             initargs=(self._slots, os.getpid()))
        return self._pool

    def results(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, bool, Any]]:
        if self.jobs == 1 or len(tasks) <= 1 and self._pool is None:
            for task in tasks:
                yield (task, *_attempt_single_threaded(task.fn, task.config))
            return
        attempts = {task.key: 1 for task in tasks}
        todo = list(tasks)
        while todo:
            pool = self._executor()
            unfinished = dict(enumerate(todo, start=1))  # tag -> task; a worker's slot holds the tag it is on
            pending = {pool.submit(_attempt_in_worker, task.fn, task.config, tag): tag
                       for tag, task in unfinished.items()}
            broken = False
            while pending and not broken:
                self._processes.update(getattr(pool, "_processes", None) or {})
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    tag = pending.pop(future)
                    try:
                        ok, value = future.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    yield unfinished.pop(tag), ok, value
            if not broken:
                return
            for future, tag in pending.items():  # finished before the pool broke: keep those results
                if future.done() and not future.cancelled() and future.exception() is None:
                    yield (unfinished.pop(tag), *future.result())
            for task, ok, value in self._recover(unfinished, attempts):
                yield task, ok, value
            todo = [task for task in unfinished.values() if attempts[task.key] <= MAX_ATTEMPTS]

    def _recover(self, unfinished: Mapping[int, Task],
                 attempts: dict[str, int]) -> Iterator[tuple[Task, bool, Any]]:
        """After a worker died: find the run it was on (the lost one), shut the broken pool down, retry or fail."""
        pool, self._pool = self._pool, None
        self._processes.update(getattr(pool, "_processes", None) or {})
        pool.shutdown(wait=True, cancel_futures=True)  # the pool stops the surviving workers with SIGTERM
        on = {self._slots[i]: self._slots[i + 1] for i in range(0, len(self._slots), 2) if self._slots[i + 1]}
        exitcodes = {pid: process.exitcode for pid, process in self._processes.items()}
        culprits = {tag: exitcodes[pid] for pid, tag in on.items() if tag in unfinished
                    and exitcodes.get(pid) not in (None, 0, -signal.SIGTERM)}
        if not culprits:  # not attributable (the worker was stopped with SIGTERM): every run in flight is suspect
            culprits = {tag: exitcodes.get(pid) for pid, tag in on.items() if tag in unfinished}
        if not culprits:  # no run had started (a worker failed to start): count it against every run, so it ends
            culprits = {tag: next(iter(exitcodes.values()), None) for tag in unfinished}
        for tag, exitcode in culprits.items():
            task = unfinished[tag]
            if self._lost(task, attempts[task.key], f"its worker process died ({_death(exitcode)})"):
                attempts[task.key] += 1
            else:
                attempts[task.key] = MAX_ATTEMPTS + 1
                yield task, False, {"error": f"its worker process died in each of {MAX_ATTEMPTS} attempts "
                                             f"(last: {_death(exitcode)})", "traceback": None}

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


# -- ray: a task per run on a cluster ------------------------------------------------------------------------------
def _ray_attempt(fn: str, config: Mapping[str, Any]) -> tuple[bool, Any]:
    _one_thread()
    return _attempt(fn, config)


def _count(value: float) -> int | float:
    """Ray counts resources in floats; whole numbers read better as ints in the report."""
    return int(value) if float(value).is_integer() else float(value)


def _host_port(address: Any) -> tuple[str, int] | None:
    """``(host, port)`` of a Ray address (HOST:PORT or ray://HOST:PORT); None for ``auto`` (Ray finds it)."""
    if address == "auto":
        return None
    host, _, port = (address.strip().split("://", 1)[-1] if isinstance(address, str) else "").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BackendError(f"--address must be HOST:PORT (e.g. 10.0.0.1:6379), ray://HOST:PORT or auto; "
                           f"got {address!r}")
    return host.strip("[]"), int(port)


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast (Ray itself may wait a minute) when nothing listens at ``address``."""
    target = _host_port(address)
    if target is None:
        return
    host, port = target
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise BackendError(f"cannot reach a Ray cluster at {address}: {reason}") from None


class RayExecutor(Executor):
    """A Ray task per run, on the cluster at ``address`` (or a Ray instance started here with ``jobs`` CPUs).

    Ray's own retries are off (``max_retries=0``): a run whose worker or node dies comes back as a Ray system
    error and is resubmitted here, so the loss is announced and bounded the same way as on the local backend.
    If this process is already connected to Ray (``ray.init`` was called), that connection is used as it is.
    """

    backend = "ray"

    def __init__(self, backend: Backend, *, jobs: int | None = None,
                 notify: Callable[[str], None] | None = None) -> None:
        super().__init__(notify)
        self.spec = backend
        self.ray = ray = _import_ray()
        self._owned = False
        self._pending: dict[Any, tuple[Task, int]] = {}
        if backend.address is not None:
            _check_reachable(backend.address)
        if ray.is_initialized():
            connected = ray.get_runtime_context().gcs_address
            if backend.address not in (None, "auto", connected) and "://" not in backend.address:
                raise BackendError(f"this process is already connected to the Ray cluster at {connected}, not "
                                   f"{backend.address}: call ray.shutdown() first, or leave the address out")
        else:
            # Ray's own log lines (startup, token setup) would drown the progress bar; its errors still show.
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "error"}
            if backend.address is None and jobs is not None:
                options["num_cpus"] = jobs
            try:
                ray.init(address=backend.address, **options)
            except Exception as error:  # noqa: BLE001  (Ray raises many kinds; the user needs one line)
                first = (str(error).strip().splitlines() or [type(error).__name__])[0]
                where = f"the Ray cluster at {backend.address}" if backend.address else "a local Ray instance"
                raise BackendError(f"cannot connect to {where}: {first}") from None
            self._owned = True
        try:
            resources = ray.cluster_resources()
            self.nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        except Exception:
            self.close()
            raise
        self.cpus, self.gpus = (_count(resources.get(name, 0)) for name in ("CPU", "GPU"))
        for what, need, have in (("CPU", backend.cpus_per_run, self.cpus), ("GPU", backend.gpus_per_run, self.gpus)):
            if need > have:
                self.close()
                raise BackendError(f"each run needs {need:g} {what}{'s' if need != 1 else ''} but the Ray cluster "
                                   f"has {have:g}" + (" (lower --gpus-per-run)" if what == "GPU" else ""))
        self._remote = ray.remote(_ray_attempt).options(num_cpus=backend.cpus_per_run,
                                                        num_gpus=backend.gpus_per_run, max_retries=0)

    def describe(self) -> dict[str, Any]:
        return {"backend": "ray", "address": self.spec.address or "a Ray instance started on this machine",
                "nodes": self.nodes, "cpus": self.cpus, "gpus": self.gpus,
                "cpus_per_run": self.spec.cpus_per_run, "gpus_per_run": self.spec.gpus_per_run}

    def results(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, bool, Any]]:
        ray = self.ray
        for task in tasks:
            self._submit(task, 1)
        while self._pending:
            ready, _ = ray.wait(list(self._pending), num_returns=1)
            for ref in ready:
                task, attempt = self._pending.pop(ref)
                try:
                    ok, value = ray.get(ref)
                except ray.exceptions.RayError as error:  # the worker, its node or Ray failed, not the task
                    why = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                    if self._lost(task, attempt, f"{type(error).__name__}: {why}"):
                        self._submit(task, attempt + 1)
                    else:
                        yield task, False, {"error": f"lost in each of {MAX_ATTEMPTS} attempts (last: "
                                                     f"{type(error).__name__}: {why})", "traceback": None}
                    continue
                yield task, ok, value

    def _submit(self, task: Task, attempt: int) -> None:
        self._pending[self._remote.remote(task.fn, dict(task.config))] = (task, attempt)

    def close(self, *, abort: bool = False) -> None:
        pending, self._pending = self._pending, {}
        if abort:
            for ref in pending:
                try:
                    self.ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001  (already finished or its node is gone: nothing to stop)
                    pass
        if self._owned:
            self._owned = False
            self.ray.shutdown()


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
    """Run tasks on a backend, writing each result under ``out/runs`` as it finishes.

    ``backend`` is ``"local"`` (``jobs`` worker processes, one per core by default) or ``"ray"`` (``address``: an
    existing cluster; without it a Ray instance started here with ``jobs`` CPUs), or a :class:`Backend`. Use as a
    context manager; :meth:`run` may be called several times (e.g. a tuning phase, then the grid that depends on
    it) and reuses the same workers or connection. Notes (a lost run, a rejected file in ``runs``) go to
    ``stream`` (stderr by default) and to :attr:`notes`.
    """

    def __init__(self, out: str | os.PathLike, *, jobs: int | None = None, progress: bool = True,
                 stream: TextIO | None = None, backend: str | Backend = "local", address: str | None = None,
                 gpus_per_run: float | None = None) -> None:
        self.runs_dir = Path(out) / "runs"
        self.jobs = default_jobs() if jobs is None else jobs
        self.backend = validate_backend(backend, address, gpus_per_run)
        self.progress = progress
        self.stream = stream
        self.computed = 0  # tasks computed (not loaded) by this sweep
        self.failed: list[dict[str, Any]] = []  # runs that failed for their own reason (or were lost too often)
        self.notes: list[str] = []
        self._mine: set[str] = set()  # keys this sweep computed (reused by a later phase, not "skipped")
        self._found: set[str] = set()  # keys found finished on disk, from an earlier sweep
        self._executor: Executor | None = None
        self._lost = 0  # attempts lost to dead workers by executors already closed
        self._ran_on: dict[str, Any] | None = None
        limit = os.environ.get(INTERRUPT_ENV)
        self._interrupt_after = int(limit) if limit else None

    @property
    def skipped(self) -> int:
        """Distinct tasks that were finished on disk before this sweep started (loaded, not recomputed)."""
        return len(self._found)

    def describe(self) -> dict[str, Any]:
        """Where this sweep's runs were computed: backend, nodes, CPUs (None when it computed nothing), losses."""
        if self._ran_on is not None:
            info = dict(self._ran_on)
        else:
            info = {"backend": self.backend.name, "address": self.backend.address, "nodes": None, "cpus": None}
        info["lost"] = self._executor.lost if self._executor is not None else self._lost
        info["failed"] = len(self.failed)
        info["notes"] = list(self.notes)  # lost runs, rejected run files: what stderr said during the sweep
        return info

    def __enter__(self) -> Sweep:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(abort=exc_type is not None)

    def close(self, *, abort: bool = False) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            self._lost = executor.lost
            executor.close(abort=abort)

    def _note(self, message: str) -> None:
        self.notes.append(message)
        print(f"relulab: {message}", file=self.stream if self.stream is not None else sys.stderr, flush=True)

    # -- files ---------------------------------------------------------------------------------------------------
    def path(self, task: Task) -> Path:
        return self.runs_dir / f"{task.key}.json"

    def load(self, task: Task) -> Any | None:
        """The stored result of ``task``, or None when it has not finished or its file is not a valid result.

        A file that exists but is not this task's valid result is named in a note (and recomputed by :meth:`run`).
        """
        path = self.path(task)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError as error:
            return self._reject(path, f"cannot be read ({error.strerror or error})")
        try:
            stored = json.loads(text)
        except ValueError:
            return self._reject(path, "is not valid JSON (a partial or damaged file)")
        if not isinstance(stored, dict) or not {"fn", "config", "result"} <= stored.keys():
            return self._reject(path, "is valid JSON but not a run file (no fn, config and result)")
        if stored["fn"] != task.fn or stored["config"] != json.loads(to_json(task.config, indent=None)):
            return self._reject(path, "holds another task's run")
        problem = _check_result(task.fn, stored["config"], stored["result"])
        if problem:
            return self._reject(path, f"holds impossible numbers ({problem})")
        return stored["result"]

    def _reject(self, path: Path, why: str) -> None:
        self._note(f"{path} {why}; recomputing it")
        return None

    def _store(self, task: Task, result: Any) -> None:
        write_atomic(self.path(task), to_json({"fn": task.fn, "config": task.config, "label": task.label,
                                               "result": result}))
        self.computed += 1
        self._mine.add(task.key)
        if self._interrupt_after is not None and self.computed >= self._interrupt_after:
            raise KeyboardInterrupt(f"{INTERRUPT_ENV}={self._interrupt_after}")

    # -- running -------------------------------------------------------------------------------------------------
    def executor(self) -> Executor:
        """The backend's executor, started on first use (a pool, or a connection to Ray)."""
        if self._executor is None:
            if self.backend.name == "ray":
                self._executor = RayExecutor(self.backend, jobs=self.jobs, notify=self._note)
            else:
                self._executor = LocalExecutor(self.jobs, notify=self._note)
            self._executor.lost = self._lost
            self._ran_on = self._executor.describe()
        return self._executor

    def run(self, tasks: Sequence[Task], *, label: str = "runs", keep_failed: bool = False) -> list[Any]:
        """Results of ``tasks`` in order: loaded when finished before, computed (and stored) otherwise.

        A task that fails (it raised, or its worker died ``MAX_ATTEMPTS`` times) does not stop the others. With
        ``keep_failed`` its place in the list holds ``{"status": "failed", "error": ..., "traceback": ...,
        "fn": ..., "config": ..., "label": ...}``; otherwise :class:`SweepError` is raised once every other task has
        finished (and been stored).
        """
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
        failed: list[dict[str, Any]] = []
        executor = self.executor() if todo else None  # connect (or fail to) before the progress bar shows
        bar = Progress(len({t.key for t in tasks}), done=len(results), label=label, stream=self.stream,
                       enabled=self.progress)
        try:
            if executor is not None:
                for task, ok, value in executor.results(todo):
                    bar.advance()
                    if ok:
                        results[task.key] = value
                        self._store(task, value)
                    else:
                        record = {"status": "failed", **value, "fn": task.fn,
                                  "config": json.loads(to_json(task.config, indent=None)), "label": task.label}
                        results[task.key] = record
                        failed.append(record)
        except BaseException:
            bar.close()
            self.close(abort=True)
            raise
        bar.close()
        self.failed += failed
        if failed and not keep_failed:
            first = failed[0]
            raise SweepError(f"{len(failed)} of {len(results)} {label} failed (the others are kept under "
                             f"{self.runs_dir}): {first['label'] or first['fn']}: {first['error']}"
                             + (f"; and {len(failed) - 1} more" if len(failed) > 1 else ""))
        return [results[t.key] for t in tasks]


def _check_result(fn: str, config: Any, result: Any) -> str | None:
    """What is impossible about a stored result, per its task function's ``check_result`` (None: nothing)."""
    try:
        check = getattr(_resolve(fn), "check_result", None)
    except (ImportError, AttributeError, ValueError):
        return None  # the task cannot even be loaded here; running it will say why
    return check(config, result) if check is not None else None
