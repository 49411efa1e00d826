"""The fast path: elementwise kernels on every core, in cache-sized chunks, with streaming stores where they pay.

Calling a member on a large contiguous array takes this path (``Activation._run`` decides, :func:`eligible`):

* **Chunks.** The flat array is cut into chunks that whichever thread is free takes next (the caller works too, so
  a worker that the OS schedules late costs nothing). NumPy's ufuncs release the GIL, so the threads run the
  member's own kernel from ``members.py`` on their chunks in parallel. The result is the reference kernel's,
  element for element, by construction: every kernel is elementwise, and chunking only changes which elements
  are computed together. A chunk is small enough (:data:`CHUNK_BYTES`) that a multi-pass kernel such as gelu
  (an erf from a dozen ufunc passes) keeps its temporaries in the core's L2 cache instead of streaming each one
  through memory, which is worth as much as the second core for large arrays.
* **float16 and integer inputs** are converted chunk by chunk (float16 computes in float32, integers promote to
  float64 where the member says so), so the conversion is not a separate pass either.
* **Compiled twins.** relu and leaky_relu and their derivatives are one comparison per element: memory-bound,
  and NumPy's versions are not (np.maximum's NaN-aware loop, np.heaviside's and np.where's per-element branches).
  With numba installed (``pip install 'relulab[fast]'``) they run the kernels of ``_stream.py`` instead: whole
  cache lines at a time, and past :func:`streaming_threshold_bytes` with non-temporal stores, at copy speed.
  The smooth and clipped members have compiled twins too (``_vector.py``, named in their specs through
  ``_compiled.vector``). Without numba, the NumPy kernel in chunks.
* **Gangs.** A compiled twin runs on several threads without the GIL (``_stream.gang``): the caller offers the
  call to the workers by putting the address of its descriptor (the arrays' addresses, the chunking, the kernel's
  C entry, ``_stream.entry``) in their slots, takes chunks from the front of the array while they take them from
  the back (so each core keeps its part of an array that fits the caches from one call to the next), takes back
  the offers no worker claimed and waits for those that did, all in compiled code. A worker watches its slot for
  :data:`SPIN_S` after its last job and runs every call put there without coming back to Python, so it never
  waits for the GIL between back-to-back calls (a Python thread woken by the OS, or handed the GIL by it, takes
  longer than a whole call on a cache-sized array); then it sleeps on its queue. Threads from
  :func:`twin_threshold` elements: ``MIN_ELEMENTS`` for kernels of many operations per element, twice that for
  single-pass ones.

Threads: :func:`set_num_threads` or the environment variable ``RELULAB_NUM_THREADS``; the default is the number
of cores this process may run on. ``RELULAB_NUMBA=0`` keeps numba out even when installed. Small arrays, views
that are not C-contiguous, partially overlapping ``out`` buffers and non-elementwise calls (prelu with one slope
per channel, rrelu in training) take the plain single-threaded path.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from queue import SimpleQueue
from typing import Any, Callable, Mapping

import numpy as np

__all__ = ["set_num_threads", "get_num_threads", "fast_path", "eligible", "run", "parallel_for", "single_pass",
           "streamable", "stream_function", "stream_kernels", "stream_status", "streaming_threshold_bytes"]

ENV_THREADS = "RELULAB_NUM_THREADS"
ENV_NUMBA = "RELULAB_NUMBA"

#: Per-array bytes of one chunk of a multi-pass NumPy kernel: small enough that its temporaries stay in the caches
#: (L2, or L3 close by) instead of memory, large enough that each ufunc call runs long (~100 us) against the cost
#: of passing the GIL between the threads around it (at 128 KiB two threads ran slower than one here).
CHUNK_BYTES = 256 * 1024
#: Per-array bytes of one chunk of a single-pass kernel (NumPy's np.maximum or a streaming kernel).
LIGHT_CHUNK_BYTES = 1024 * 1024
#: Below this many elements a call takes the plain path: chunking and handing work to another thread cost ~10-50 us
#: (far more on a loaded machine), more than a multi-pass kernel on 2^16 elements gains.
MIN_ELEMENTS = 1 << 16
#: The same for single-pass NumPy kernels without a compiled twin (tanh, relu6, identity), which NumPy runs near
#: memory speed on one core for arrays that fit the caches.
MIN_ELEMENTS_LIGHT = 1 << 20
#: How many chunks per thread a compiled kernel's work is cut into (see :func:`compiled_chunk`).
PIECES = 2
#: Chunk boundaries fall on multiples of this many elements: whole cache lines, whole bytes of a packed mask.
ALIGN_ELEMENTS = 64


# -- threads -------------------------------------------------------------------------------------------------------
def cores() -> int:
    """The CPU cores this process may run on (its affinity mask), at least 1."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _threads_from_env() -> int | None:
    text = os.environ.get(ENV_THREADS, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{ENV_THREADS} must be a whole number >= 1; got {text!r}")
    return value


_num_threads: int | None = None


def get_num_threads() -> int:
    """How many threads relulab's fast path uses: set_num_threads(), else RELULAB_NUM_THREADS, else the cores."""
    global _num_threads
    if _num_threads is None:
        _num_threads = _threads_from_env() or cores()
    return _num_threads


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (>= 1) for large arrays; 1 keeps every call on the calling thread.

    >>> import relulab as rl
    >>> previous = rl.get_num_threads()
    >>> rl.set_num_threads(1); rl.get_num_threads()
    1
    >>> rl.set_num_threads(previous)
    """
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"set_num_threads: n must be an integer >= 1; got {n!r}")
    _num_threads = int(n)


try:  # NumPy >= 2: the error state is a context variable, read and set in ~0.1 us (np.errstate: ~1 us)
    from numpy._core.umath import _extobj_contextvar as _errstate_var
except ImportError:  # pragma: no cover  (other NumPy versions)
    _errstate_var = None


def errstate() -> Any:
    """The calling thread's floating-point error state, for :func:`_adopted_errstate` in another thread."""
    return _errstate_var.get() if _errstate_var is not None else np.geterr()


@contextlib.contextmanager
def _adopted_errstate(state: Any):
    """Run the block under ``state`` (from :func:`errstate`, in another thread)."""
    if _errstate_var is None:  # pragma: no cover
        with np.errstate(**state):
            yield
        return
    token = _errstate_var.set(state)
    try:
        yield
    finally:
        _errstate_var.reset(token)


class _Job:
    """One parallel call: the chunks of [0, n), the caller taking them from the front, the helpers from the back.

    Whoever is free takes the next chunk, so a helper that the OS starts late costs nothing: the caller takes its
    chunks. When every thread is on time, the caller works through the first part of the array and the helpers
    through the last on every call, so each core finds its part in its own cache from the call before.
    """

    __slots__ = ("task", "n", "chunk", "front", "back", "joined", "error", "lock", "left", "done", "state")

    def __init__(self, task: Callable[[int, int], None], n: int, chunk: int, state: Any):
        self.task, self.n, self.chunk, self.state = task, n, chunk, state
        self.front, self.back = 0, -(-n // chunk)  # the chunks not yet taken: [front, back)
        self.joined = 0  # helpers that took a chunk
        self.error: BaseException | None = None
        self.lock = threading.Lock()
        self.left = np.zeros(1, np.int64)  # helpers that are done with this job (counted without the GIL, _Pool)
        self.done: threading.Lock | None = None  # without numba: held while the caller waits for the helpers

    def _chunks(self, helper: bool) -> bool:
        """Run chunks until none is left (or a task failed); whether this thread took any."""
        task, n, chunk, lock = self.task, self.n, self.chunk, self.lock
        took = False
        while True:
            with lock:
                if self.error is not None or self.front >= self.back:
                    return took
                if helper:
                    self.back -= 1
                    index = self.back
                    self.joined += not took
                else:
                    index = self.front
                    self.front += 1
            took = True
            start = index * chunk
            try:
                task(start, min(n, start + chunk))
            except BaseException as error:  # noqa: BLE001  (re-raised in the calling thread)
                with lock:
                    self.error = self.error or error

    def help(self) -> bool:
        """A helper's share, under the caller's floating-point error state; whether it took any chunk."""
        outer = getattr(_local, "inside", False)
        _local.inside = True  # a kernel that calls a member from here stays on this thread (no nested jobs)
        try:
            with _adopted_errstate(self.state):
                return self._chunks(True)
        finally:
            _local.inside = outer

    def serve(self, pool: "_Pool") -> np.ndarray:
        """A worker's part: help, and say which cell its next wait counts into (this job's when it took chunks)."""
        if not self.help():
            return pool.spare
        if pool.stream is not None:
            return self.left  # counted by the worker's next wait, once this thread holds no GIL
        self.leave()
        return pool.spare

    def leave(self) -> None:
        """A helper that took chunks is done (the pool without numba; with it, ``left`` is counted in compiled
        code, after the helper has let go of the GIL)."""
        with self.lock:
            self.left[0] += 1
            if self.done is not None and self.left[0] >= self.joined:
                self.done.release()

    def run(self, pool: "_Pool", offered: list[int]) -> None:
        """The caller's share, then the wait for the helpers that took chunks (``offered``: the workers
        :meth:`_Pool.post` offered the job to; the offers not yet taken are taken back)."""
        _local.inside = True
        try:
            self._chunks(False)
        finally:
            _local.inside = False
        stream = pool.stream
        if stream is not None:
            pool.withdraw(offered)
            joined = self.joined  # final: no chunk is left to take
            while not stream.wait_for_count(self.left, 0, joined, pool.spins):
                time.sleep(SLEEP_S)  # a helper the OS has stopped mid-chunk
        else:
            with self.lock:
                waiting = self.left[0] < self.joined
                if waiting:
                    self.done = threading.Lock()
                    self.done.acquire()
            if waiting:
                self.done.acquire()
        if self.error is not None:
            raise self.error


#: How long a worker keeps watching for its next job after finishing one, and a caller for its helpers, before
#: they sleep: longer than the gap between back-to-back calls, short enough not to hold a core that others need.
SPIN_S = 100e-6
#: How long a caller sleeps between checks once its spin is over (a helper the OS stopped mid-chunk).
SLEEP_S = 20e-6
_spin_rounds: list[int] = []


def _spins(module: Any) -> int:
    """Rounds of a compiled spin-wait (``module.wait_for_count``) that take about SPIN_S (measured once)."""
    if not _spin_rounds:
        cells, rounds = np.zeros(1, np.int64), 20000
        module.wait_for_count(cells, 0, 1, 1)  # compile or load first
        began = time.perf_counter()
        module.wait_for_count(cells, 0, 1, rounds)  # cells[0] stays 0: all the rounds
        elapsed = time.perf_counter() - began
        _spin_rounds.append(max(100, int(rounds * SPIN_S / max(elapsed, 1e-9))))
    return _spin_rounds[0]


class _Pool:
    """Daemon worker threads. With numba each watches its cell of ``slots`` in compiled code that holds no GIL
    (``_stream.work``), for :data:`SPIN_S` after its last job, and runs the gang calls put there without coming
    back to Python; then it sleeps on its queue until a caller wakes it (:meth:`wake`, :meth:`post`). Without
    numba the workers wait on their queues for Python jobs only."""

    def __init__(self, workers: int):
        self.stream = stream_kernels()
        self.spins = _spins(self.stream) if self.stream is not None else 0
        self.slots = np.zeros(workers + 1, np.int64)  # one per worker (0: nothing offered); the last: closed
        self.slots_at = self.slots.ctypes.data
        self.sleeping = [False] * workers
        self.jobs: list[_Job | None] = [None] * workers  # the Python job offered to each worker
        self.spare = np.zeros(1, np.int64)  # counts a worker's waits that follow no Python job of its own
        self.closed = False  # set by close(): a caller still holding this pool may offer it a job after that
        self.queues: list[SimpleQueue] = []
        for k in range(workers):
            q: SimpleQueue = SimpleQueue()
            self.queues.append(q)
            threading.Thread(target=self._loop, args=(k,), name=f"relulab-worker-{k}", daemon=True).start()

    def post(self, job: _Job, helpers: int) -> list[int]:
        """Offer the Python ``job`` to the first ``helpers`` workers that have no other offer; those workers."""
        stream, offered = self.stream, []
        for k in range(helpers):
            self.jobs[k] = job  # (a worker may serve a later job than the one it claimed: a _Job counts its helpers)
            if stream is None or stream.publish(self.slots, k, 0, stream.PYTHON_JOB):
                offered.append(k)
                if stream is None or self.sleeping[k]:
                    self.queues[k].put(True)
        return offered

    def withdraw(self, offered: list[int]) -> None:
        """Take back the Python job's offers that no worker has claimed yet."""
        for k in offered:
            self.stream.publish(self.slots, k, self.stream.PYTHON_JOB, 0)

    def wake(self, helpers: int) -> None:
        """Wake the first ``helpers`` workers that sleep (a gang call is about to be offered to them; one that
        falls asleep just then misses it, and its caller does the work)."""
        for k in range(helpers):
            if self.sleeping[k]:
                self.queues[k].put(True)

    def _loop(self, k: int) -> None:
        stream, q, left = self.stream, self.queues[k], self.spare
        while True:
            if stream is not None:
                code = stream.work(self.slots, k, self.spins, left, 0)
                left = self.spare
                if code == stream.IDLE:  # no job for a while: sleep until a caller wakes this worker
                    self.sleeping[k] = True
                    if self.slots[k] == 0 and not self.closed:  # (a caller reads sleeping before its offer)
                        q.get()
                    self.sleeping[k] = False
                    continue
                if code != stream.PYTHON:  # the pool is closed
                    return
            else:
                q.get()
            job = self.jobs[k]
            if job is None or self.closed:
                return
            left = job.serve(self)  # (a _Job keeps its tasks' errors for its caller)

    def close(self) -> None:
        self.closed = True
        self.slots[-1] = 1
        for k, q in enumerate(self.queues):
            self.jobs[k] = None
            q.put(True)


_local = threading.local()
_pool: _Pool | None = None
_pool_lock = threading.Lock()


def _get_pool(workers: int) -> _Pool:
    global _pool
    with _pool_lock:
        if _pool is None or len(_pool.queues) != workers:
            if _pool is not None:
                _pool.close()
            _pool = _Pool(workers)
        return _pool


def _pool_for(workers: int) -> _Pool:
    """The pool of ``workers`` workers, the current one when it has that many (read once: another thread's
    set_num_threads may replace it meanwhile with a pool of another size)."""
    pool = _pool
    return pool if pool is not None and len(pool.queues) == workers else _get_pool(workers)


def _forget_pool_after_fork() -> None:
    # The worker threads do not exist in a forked child (the lab's worker processes): start new ones on demand.
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def parallel_for(task: Callable[[int, int], None], n: int, chunk: int, *, threads: int | None = None) -> None:
    """Run ``task(start, stop)`` over [0, n) in chunks of ``chunk`` on up to ``threads`` threads.

    The calling thread takes chunks too. The calling thread's ``np.errstate`` applies in every thread; the first
    exception raised by a task is raised here after every running task has finished.
    """
    threads = (_num_threads or get_num_threads()) if threads is None else threads
    helpers = min(threads, -(-n // chunk)) - 1
    if helpers <= 0 or getattr(_local, "inside", False):  # one thread: no job to share, no one to wait for
        for start in range(0, n, chunk):
            task(start, min(n, start + chunk))
        return
    job = _Job(task, n, chunk, errstate())
    pool = _pool_for(threads - 1)
    job.run(pool, pool.post(job, helpers))


# -- streaming kernels (numba, optional) ----------------------------------------------------------------------------
_STREAMABLE: dict[Callable[..., Any], Callable[[Mapping[str, Any], np.dtype], tuple[str, tuple] | None]] = {}
_SINGLE_PASS: set[Callable[..., Any]] = set()


def is_light(kernel: Callable[..., Any]) -> bool:
    """Whether ``kernel`` was declared single-pass (one or two cheap NumPy passes, memory-bound)."""
    return kernel in _SINGLE_PASS


def single_pass(kernel: Callable[..., Any]) -> Callable[..., Any]:
    """Declare ``kernel`` one or two cheap passes: it is chunked coarsely, and threaded only for larger arrays."""
    _SINGLE_PASS.add(kernel)
    return kernel


def streamable(kernel: Callable[..., Any], choose: Callable[[Mapping[str, Any], np.dtype], tuple[str, tuple] | None]):
    """Give ``kernel`` a compiled twin: ``choose(params, dtype) -> (name, scalars)`` names a function of
    ``_stream.py`` and the extra scalar arguments it takes after ``streaming`` (None: no twin for these params)."""
    _STREAMABLE[kernel] = choose
    return kernel


def has_twin(kernel: Callable[..., Any]) -> bool:
    """Whether ``kernel`` was given a compiled twin (:func:`streamable`), for some parameters at least."""
    return kernel in _STREAMABLE


@dataclass
class _StreamState:
    module: Any = None
    tried: bool = False
    reason: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


_stream = _StreamState()


def stream_kernels():
    """The ``_stream`` module (numba-compiled streaming kernels), or None when numba is unavailable or disabled."""
    if not _stream.tried:
        with _stream.lock:
            if not _stream.tried:
                if os.environ.get(ENV_NUMBA, "").strip() == "0":
                    _stream.reason = f"disabled by {ENV_NUMBA}=0"
                else:
                    try:
                        from . import _stream as module
                    except Exception as error:  # numba missing, or one that does not support this NumPy
                        _stream.reason = f"numba unavailable ({type(error).__name__}: {error})"
                    else:
                        _stream.module = module
                        _stream.reason = "numba streaming kernels"
                _stream.tried = True
    return _stream.module


def stream_status() -> str:
    """One line saying whether the streaming kernels are in use, and if not, why (loads numba to find out)."""
    stream_kernels()
    return _stream.reason


def _cache_bytes() -> int:
    """The last-level cache's size in bytes (32 MiB where the system does not say), as the system reports it."""
    for name in ("SC_LEVEL3_CACHE_SIZE", "SC_LEVEL2_CACHE_SIZE"):
        try:
            size = os.sysconf(name)
        except (ValueError, OSError, AttributeError):
            continue
        if size and size > 0:
            return int(size)
    return 32 * 1024 * 1024


# Half the last-level cache, within [8, 64] MiB: a virtual machine shares its host's cache with its neighbours.
_STREAM_MIN_BYTES = min(64 << 20, max(8 << 20, _cache_bytes() // 2))


def streaming_threshold_bytes() -> int:
    """Input + output bytes from which non-temporal stores are used (half the last-level cache). Below it the
    output may still be in cache for whatever reads it next, which streaming stores would throw away."""
    return _STREAM_MIN_BYTES


# -- the fast path ---------------------------------------------------------------------------------------------------
_enabled = True


@contextlib.contextmanager
def fast_path(enabled: bool):
    """Turn the fast path off (or on) inside a ``with`` block, for every thread: the tests and the benchmark
    compare it with the plain single-threaded path this way."""
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    try:
        yield
    finally:
        _enabled = previous


def twin_threshold(kernel: Callable[..., Any]) -> int:
    """The size from which the compiled twin of ``kernel`` runs on several threads: :data:`MIN_ELEMENTS` for a
    kernel of many operations per element (exp, erf, tanh: compute-bound), twice that for a single-pass one
    (memory-bound: below that its arrays fit a core's L2 cache, and a second core gains less than handing it work
    costs; relu into a buffer, one thread / two, float32: 2^16 elements 5.4 / 5.6 us, 2^17 13.2 / 7.7 us)."""
    return _threaded_from(kernel in _SINGLE_PASS)


def _threaded_from(single_pass: bool) -> int:
    return MIN_ELEMENTS << 1 if single_pass else MIN_ELEMENTS


def fast_path_enabled() -> bool:
    """Whether the fast path is on (see :func:`fast_path`)."""
    return _enabled


def eligible(array: np.ndarray, out: np.ndarray | None, compute: np.dtype, kernel: Callable[..., Any]) -> bool:
    """Whether a validated call may take the fast path (the caller has checked the member is elementwise)."""
    size = array.size
    light = kernel in _SINGLE_PASS and kernel not in _STREAMABLE  # NumPy already does these well up to L3 sizes
    if not _enabled or size < (MIN_ELEMENTS_LIGHT if light else MIN_ELEMENTS) or compute.kind != "f":
        return False
    if not (array.flags.c_contiguous and array.flags.aligned) or getattr(_local, "inside", False):
        return False
    if out is not None:
        if not (out.flags.c_contiguous and out.flags.aligned):
            return False
        # In place (out is x) is fine chunk by chunk; a partial overlap is left to the plain path.
        if np.may_share_memory(array, out) and array.ctypes.data != out.ctypes.data:
            return False
    return True


def run(kernel: Callable[..., Any], array: np.ndarray, bound: Mapping[str, Any], out: np.ndarray | None,
        dtype: np.dtype, compute: np.dtype, function: Callable[..., None] | None = None) -> np.ndarray:
    """The kernel's result on ``array`` (C-contiguous, size >= 1), computed in chunks on every core.

    ``function``: the kernel's compiled twin for these parameters (:func:`stream_function`), when the caller has
    it already (family/_compiled.py's short way; array and out then have the compute dtype)."""
    result = np.empty(array.shape, dtype) if out is None else out
    source, target = (array, result) if array.ndim == 1 else (array.reshape(-1), result.reshape(-1))
    n = source.size
    if function is None and source.dtype == compute and target.dtype == compute:
        function = stream_function(kernel, bound, compute)
    if function is not None:
        _run_twin(function, source, target, n >= (function.threshold or twin_threshold(kernel)))
        return result
    direct = target.dtype == compute
    step = chunk_elements(LIGHT_CHUNK_BYTES if kernel in _SINGLE_PASS else CHUNK_BYTES, max(target.itemsize, 4))

    def task(start: int, stop: int) -> None:
        work = source[start:stop]
        if work.dtype != compute:
            work = work.astype(compute)
        part = target[start:stop]
        value = kernel(work, part if direct else None, **bound)
        if value is not part:
            np.copyto(part, value, casting="unsafe")  # float32 -> float16 rounding, as the plain path does

    # As the plain path: an overflow only rounds a true value beyond the dtype's range to inf (the right answer).
    with np.errstate(over="ignore"):
        parallel_for(task, n, step)
    return result


def compiled_chunk(n: int, itemsize: int) -> int:
    """The chunk of a compiled kernel on ``n`` elements: :data:`PIECES` per thread, at most LIGHT_CHUNK_BYTES.

    A compiled kernel holds no GIL and keeps no temporaries, so its chunks are cut for the threads, not the cache:
    a few per thread, so that a helper which starts late leaves its share to the others."""
    threads = _num_threads or get_num_threads()
    piece = -(-n // (threads * PIECES)) if threads > 1 else n
    return min(chunk_elements(LIGHT_CHUNK_BYTES, itemsize), -(-piece // ALIGN_ELEMENTS) * ALIGN_ELEMENTS)


def chunk_elements(nbytes: int, itemsize: int) -> int:
    """How many elements of ``itemsize`` bytes make a chunk of about ``nbytes``, a multiple of ALIGN_ELEMENTS."""
    return max(ALIGN_ELEMENTS, nbytes // itemsize // ALIGN_ELEMENTS * ALIGN_ELEMENTS)


def stream_function(kernel, bound: Mapping[str, Any], dtype: np.dtype):
    """``f(source, target, start, stop, streaming)``, the compiled twin of ``kernel`` with these parameters for 1-D
    arrays of ``dtype``, or None (no twin, not float32/float64, numba unavailable)."""
    choose = _STREAMABLE.get(kernel)
    if choose is None or dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        return None
    chosen = choose(bound, dtype)
    module = stream_kernels() if chosen is not None else None
    if module is None:
        return None
    name, scalars = chosen
    function = getattr(module, name, None)
    if function is None:  # a smooth member's kernel (family/_vector.py, named through _compiled.vector)
        from . import _vector

        function = getattr(_vector, name)
    return _Twin(function, scalars)


class _Twin:
    """``f(source, target, start, stop, streaming)``: the compiled ``kernel`` with ``scalars`` after those.

    ``direct``: the same kernel's compiled specialisation for these argument types, which skips numba's typing,
    and ``threshold``: :func:`twin_threshold` of the member's kernel (both set by ``_compiled._choose`` for the
    short way; else the kernel and 0). For a gang call (:func:`_run_twin`), :meth:`entry` gives the kernel's C
    entry (``_stream.entry``) and ``cells``/``cells_at``, the scalars as that entry reads them: made on the first
    gang call, since most twins (a small array's, the long way's made per call) never take part in one."""

    __slots__ = ("kernel", "scalars", "direct", "threshold", "cells", "cells_at", "entry_at")

    def __init__(self, kernel, scalars: tuple):
        self.kernel, self.scalars, self.direct, self.threshold = kernel, scalars, kernel, 0
        self.cells, self.cells_at, self.entry_at = None, 0, 0

    def __call__(self, source, target, start, stop, streaming):
        return self.kernel(source, target, start, stop, streaming, *self.scalars)

    def entry(self, dtype: np.dtype, module: Any) -> int:
        """The address of the kernel's C entry for arrays of ``dtype`` (compiled once per process); sets
        ``entry_at`` and the scalar cells (a twin serves one dtype: family/_compiled.py's cache has one per dtype)."""
        scalars = self.scalars
        arrays = bool(scalars) and all(isinstance(s, np.ndarray) for s in scalars)
        kinds = "a" * len(scalars) if arrays else "f" * len(scalars)  # (_stream.entry says which it takes)
        if arrays:  # each array's address and size; the arrays live as long as this twin
            self.cells = np.array([v for s in scalars for v in (s.ctypes.data, s.size)], np.int64)
        else:  # the kernel's scalars, of its arrays' dtype
            self.cells = np.array(scalars if scalars else [0.0], dtype)
        self.cells_at = self.cells.ctypes.data
        key = (self.kernel, dtype, kinds)
        made = _entries.get(key)
        if made is None:
            with _entries_lock:
                made = _entries.get(key)
                if made is None:
                    made = _entries[key] = module.entry(self.kernel, dtype, kinds)
        self.entry_at = made.address
        return self.entry_at


_entries: dict[Any, Any] = {}  # (kernel, dtype, kinds) -> its C entry (a numba cfunc: it owns the code)
_entries_lock = threading.Lock()


def run_compiled(name: str, scalars: tuple, source: np.ndarray, target: np.ndarray) -> bool:
    """``function(source, target, start, stop, streaming, *scalars)`` for the compiled function ``name`` of
    ``_stream.py`` over 1-D ``source`` and ``target`` (C-contiguous, aligned, of one float dtype), on every core from
    the single-pass threshold on; False (nothing done) where numba is unavailable."""
    module = stream_kernels()
    if module is None:
        return False
    _run_twin(_Twin(getattr(module, name), scalars), source, target, source.size >= _threaded_from(True))
    return True


def _run_twin(function: _Twin, source: np.ndarray, target: np.ndarray, threaded: bool) -> None:
    """``target = f(source)`` by the compiled twin ``function`` (:func:`stream_function`), on every core if
    ``threaded``. It streams its stores past the cache when the arrays are larger than
    :func:`streaming_threshold_bytes`."""
    n = source.size
    # In place, each line is in cache when it is written (the kernel just read it): plain stores then cost nothing
    # extra, while a streaming store would first have to evict the line. (Callers exclude partial overlaps.)
    streaming = source.nbytes + target.nbytes >= _STREAM_MIN_BYTES and not np.may_share_memory(source, target)
    threads = _num_threads or get_num_threads()
    chunk = compiled_chunk(n, target.itemsize)
    helpers = min(threads, -(-n // chunk)) - 1
    if helpers <= 0 or not threaded or getattr(_local, "inside", False):
        function.direct(source, target, 0, n, streaming, *function.scalars)
        return
    pool = _pool_for(threads - 1)
    stream = pool.stream
    if stream is None:  # pragma: no cover  (a pool started while numba was unavailable: no gangs)
        parallel_for(lambda start, stop: function(source, target, start, stop, streaming), n, chunk)
        return
    address = function.entry_at or function.entry(source.dtype, stream)
    # One descriptor per calling thread, reused once its call is over; taken while in use, so that a call made
    # meanwhile (from a signal handler, during the wait below) gets its own.
    held = getattr(_local, "descriptor", None)
    if held is None:
        held = (np.zeros(stream.DESCRIPTOR, np.int64),)
        held += (held[0].ctypes.data,)
    descriptor = held[0]
    _local.descriptor = None
    gang = _gangs.get(source.dtype) or _gang_for(stream, source.dtype)
    pool.wake(helpers)
    done = False
    try:
        done = gang(source, target, n, chunk, streaming, address, function.cells_at, pool.slots_at, helpers,
                    pool.spins, held[1])
    finally:
        # Until every helper that claimed the call is done, it works on this frame's arrays and descriptor: so a
        # KeyboardInterrupt raised just before or after gang() returned, or during this wait, waits too (a few
        # chunks at most; nothing is called before the try, where Python could raise it). The fields say who is
        # done.
        interrupted: BaseException | None = None
        while not done:
            try:
                done = stream.wait_for_count(descriptor, stream.DONE, descriptor[stream.JOINED], pool.spins)
                if not done:
                    time.sleep(SLEEP_S)  # a helper the OS has stopped mid-chunk
            except KeyboardInterrupt as error:
                interrupted = error
        if interrupted is not None:
            raise interrupted
    _local.descriptor = held


_gangs: dict[np.dtype, Any] = {}  # dtype -> stream.gang's compiled specialisation for its arrays


def _gang_for(stream: Any, dtype: np.dtype) -> Callable[..., bool]:
    """``stream.gang``'s compiled specialisation for 1-D C-contiguous arrays of ``dtype`` (:func:`specialisation`;
    the dispatcher would type all eleven arguments on every call: 1-2 us; the int64 arrays it works with are passed
    by address, as ints, which it unboxes faster still). It only reads ``source``, so read-only arrays take it too;
    it checks nothing, and :func:`_run_twin` passes exactly these types."""
    from numba.core import types

    found = _gangs[dtype] = specialisation(stream.gang, dtype, (types.int64,) * 6)
    return found


def specialisation(kernel: Any, dtype: np.dtype, rest: tuple) -> Callable[..., Any]:
    """The compiled specialisation of the numba dispatcher ``kernel`` for ``(x, y, start, stop, streaming, *rest)``
    (x and y 1-D C-contiguous arrays of ``dtype``, ``rest`` numba types), compiled or loaded from numba's cache
    now, as a plain callable that skips the dispatcher's typing of every argument on every call; the dispatcher
    itself where that cannot be had. The callable checks nothing: its callers pass exactly these types."""
    import numba
    from numba.core import types

    array = types.Array(numba.from_dtype(dtype), 1, "C")
    signature = (array, array, types.int64, types.int64, types.boolean) + tuple(rest)
    try:
        kernel.compile(signature)
        return kernel.overloads[signature].entry_point
    except Exception:  # pragma: no cover - not a numba dispatcher, or a numba without these attributes
        return kernel
