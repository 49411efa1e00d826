"""The thread pool of family/_parallel.py and its compiled gangs (family/_stream.py) give the same bits as one thread.

The references: the same call on one thread and with the fast path off (the member's NumPy kernel), bit for bit,
and for relu and leaky_relu NumPy's own expressions written out here (what the compiled kernels reproduce).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import relulab as rl
from relulab.family import _compiled, _parallel

from .test_fast import assert_exact, edge_input, reference

pytestmark = pytest.mark.skipif(_parallel.stream_kernels() is None, reason="needs numba (the compiled kernels)")


@pytest.fixture
def threads():
    """Restore the thread count after a test that changes it."""
    previous = _parallel.get_num_threads()
    yield
    _parallel.set_num_threads(previous)


@pytest.fixture
def gang_sizes(monkeypatch):
    """Gangs from 1024 elements on (light kernels from 4096), chunks of 4 KiB: a few thousand elements take them."""
    monkeypatch.setattr(_parallel, "MIN_ELEMENTS", 1024)
    monkeypatch.setattr(_compiled, "_quick", {})  # (the short way keeps each kernel's threshold)
    monkeypatch.setattr(_parallel, "LIGHT_CHUNK_BYTES", 4096)


def numpy_reference(name: str, x: np.ndarray, grad: bool) -> np.ndarray:
    """What the compiled relu and leaky_relu kernels reproduce, written directly with NumPy."""
    if name == "relu":
        return np.heaviside(x, x.dtype.type(0)) if grad else np.maximum(x, x.dtype.type(0))
    slope = x.dtype.type(0.01)
    if grad:  # at 0 the slope, as torch's leaky_relu_backward (x > 0 ? 1 : slope); NaN stays NaN
        return np.where(np.isnan(x), x, np.where(x > 0, x.dtype.type(1), slope)).astype(x.dtype)
    return np.where(x > 0, x, x * slope)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["relu", "leaky_relu", "silu", "sigmoid"])
@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_any_thread_count_gives_the_same_bits(gang_sizes, threads, name, dtype, count):
    act = rl.get(name)
    x = edge_input(20_011, dtype, seed=count)  # odd length: unaligned tail; 20 000 elements: many chunks
    _parallel.set_num_threads(1)
    one = act(x), act.grad(x)
    _parallel.set_num_threads(count)
    many = act(x), act.grad(x)
    assert_exact(many[0], one[0])
    assert_exact(many[1], one[1])
    assert_exact(many[0], reference(act, x))
    assert_exact(many[1], reference(act.grad, x))
    if name in ("relu", "leaky_relu"):  # the same bits as NumPy's own expressions
        assert_exact(many[0], numpy_reference(name, x, False))
        assert_exact(many[1], numpy_reference(name, x, True))


@pytest.mark.parametrize("name", ["relu", "silu"])
def test_views_out_and_in_place_through_the_gang(gang_sizes, threads, name):
    _parallel.set_num_threads(3)
    act = rl.get(name)
    x = edge_input(9001, np.float32, seed=7)
    want = reference(act, x)
    shifted = x[5:]  # neither input nor output on a cache-line boundary
    assert_exact(act(shifted), reference(act, shifted))
    y = np.full_like(x, 3)
    assert act(x, out=y) is y
    assert_exact(y, want)
    in_place = x.copy()
    assert act(in_place, out=in_place) is in_place
    assert_exact(in_place, want)
    matrix = x[:9000].reshape(90, 100)
    assert_exact(act(matrix), want[:9000].reshape(90, 100))
    read_only = x.copy()
    read_only.flags.writeable = False  # another array type for numba: its own compiled runner
    assert_exact(act(read_only), want)


def test_heavy_kernels_take_the_gang_from_min_elements_and_light_ones_from_twice_that(monkeypatch, threads):
    _parallel.set_num_threads(2)
    monkeypatch.setattr(_parallel, "MIN_ELEMENTS", 4096)
    monkeypatch.setattr(_compiled, "_quick", {})  # (the short way keeps each kernel's threshold)
    assert _parallel.twin_threshold(rl.silu.forward_kernel) == 4096
    assert _parallel.twin_threshold(rl.relu.forward_kernel) == 2 * 4096
    gangs = []
    real = _parallel._run_twin
    monkeypatch.setattr(_parallel, "_run_twin", lambda f, s, t, threaded: gangs.append(threaded) or real(f, s, t, threaded))
    x = edge_input(6000, np.float32)
    assert_exact(rl.silu(x), reference(rl.silu, x))
    assert_exact(rl.relu(x), reference(rl.relu, x))  # below the light threshold: on the calling thread
    assert gangs == [True]
    assert_exact(rl.relu(np.tile(x, 2)), reference(rl.relu, np.tile(x, 2)))
    assert gangs == [True, True]


def test_callers_in_several_threads_at_once(gang_sizes, threads):
    _parallel.set_num_threads(2)
    inputs = [edge_input(6000 + 97 * k, np.float32, seed=k) for k in range(4)]
    wants = [(reference(rl.silu, x), reference(rl.relu.grad, x)) for x in inputs]
    failures = []

    def work(k):
        for _ in range(30):
            got = rl.silu(inputs[k]), rl.relu.grad(inputs[k])
            for fast, want in zip(got, wants[k]):
                if not (np.array_equal(fast, want, equal_nan=True)):
                    failures.append(k)

    callers = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert failures == []


def test_a_worker_that_fell_asleep_is_woken(gang_sizes, threads, monkeypatch):
    _parallel.set_num_threads(2)
    x = edge_input(10_000, np.float32)
    want = reference(rl.silu, x)
    assert_exact(rl.silu(x), want)  # the pool is running
    pool = _parallel._pool
    deadline = 200
    while not all(pool.sleeping) and deadline:  # its spin (SPIN_S) is over: it sleeps on its queue
        threading.Event().wait(0.005)
        deadline -= 1
    assert all(pool.sleeping)
    for _ in range(20):
        assert_exact(rl.silu(x), want)
        assert_exact(rl.gelu(x), reference(rl.gelu, x))  # a NumPy job (gelu's erf) through the same workers


def test_the_pool_without_numba_waits_on_queues(threads, monkeypatch):
    monkeypatch.setattr(_parallel, "stream_kernels", lambda: None)
    monkeypatch.setattr(_parallel, "_pool", None)
    _parallel.set_num_threads(3)
    try:
        counts = np.zeros(10_000, np.int64)
        _parallel.parallel_for(lambda a, b: np.add.at(counts, np.arange(a, b), 1), counts.size, 64)
        assert np.all(counts == 1)
        assert _parallel._pool.stream is None
        def task(start, stop):
            if start == 640:
                raise ZeroDivisionError("chunk 640")

        with pytest.raises(ZeroDivisionError, match="chunk 640"):
            _parallel.parallel_for(task, 10_000, 64)
    finally:
        if _parallel._pool is not None:
            _parallel._pool.close()


def test_the_short_way_remembers_kernels_per_dtype_and_parameters():
    _compiled._quick.clear()
    x = edge_input(4096, np.float32)
    rl.leaky_relu(x, negative_slope=0.2)
    rl.leaky_relu(x.astype(np.float64), negative_slope=0.2)
    with pytest.raises(TypeError, match=">f4"):  # byte-swapped: no compiled kernel; the full path refuses it
        rl.leaky_relu(x.astype(">f4"))
    # (name, type, value, and the sign of a zero value, else False: -0.0 and 0.0 are distinct keys)
    keys = [(key[1], key[2] if len(key) > 2 else ()) for key in _compiled._quick]
    assert (np.dtype(np.float32), (("negative_slope", float, 0.2, False),)) in keys
    assert (np.dtype(np.float64), (("negative_slope", float, 0.2, False),)) in keys
    assert _compiled._quick[next(k for k in _compiled._quick if k[1] == np.dtype(">f4"))] is None


def _workers_alive() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("relulab-worker-") and t.is_alive()]


def test_a_pool_closed_while_a_caller_still_holds_it_stops_its_workers(threads):
    # set_num_threads in one thread closes the pool that a call in another thread has just picked: that call's job
    # overwrites the None that close() left in the workers' slots; the workers must stop all the same.
    before = set(_workers_alive())
    pool = _parallel._Pool(2)
    mine = [t for t in _workers_alive() if t not in before]
    assert len(mine) == 2
    pool.close()
    counts = np.zeros(10_000, np.int64)
    job = _parallel._Job(lambda a, b: np.add.at(counts, np.arange(a, b), 1), counts.size, 64, _parallel.errstate())
    job.run(pool, pool.post(job, 2))
    assert np.all(counts == 1)
    for worker in mine:
        worker.join(10)
    assert [t.name for t in mine if t.is_alive()] == []


def test_changing_the_thread_count_while_other_threads_call_leaves_one_pool(gang_sizes, threads):
    _parallel.set_num_threads(2)
    x = edge_input(20_000, np.float32)
    want = reference(rl.relu, x)
    before = set(_workers_alive())  # (other tests' pools: this one's workers are the new ones)
    stop = threading.Event()
    failures = []

    def call():
        while not stop.is_set():
            if not np.array_equal(rl.relu(x), want, equal_nan=True):
                failures.append(1)

    callers = [threading.Thread(target=call) for _ in range(4)]
    for caller in callers:
        caller.start()
    for k in range(300):
        _parallel.set_num_threads(2 + k % 3)
        threading.Event().wait(0.0005)
    stop.set()
    for caller in callers:
        caller.join()
    _parallel.set_num_threads(2)
    rl.relu(x)  # the last pool: one worker
    deadline = 200
    while len(set(_workers_alive()) - before) > 1 and deadline:
        threading.Event().wait(0.01)
        deadline -= 1
    assert failures == []
    assert len(set(_workers_alive()) - before) <= 1


_MISALIGNED = """
import numpy as np
import relulab as rl
from relulab.family import fused

def misaligned(n):  # float32 elements one byte off their natural alignment
    return np.ndarray((n,), np.float32, np.zeros(4 * n + 1, np.uint8), 1)

for n in (5000, 70_000, 300_000):
    x = np.linspace(-3, 3, n, dtype=np.float32)
    odd = misaligned(n)
    odd[:] = x
    checks = {
        "relu(odd)": (rl.relu(odd), np.maximum(x, 0)),
        "leaky_relu(odd)": (rl.leaky_relu(odd, negative_slope=0.25), np.where(x > 0, x, x * np.float32(0.25))),
    }
    x64 = x.astype(np.float64)
    assert np.allclose(rl.silu(odd), x64 / (1 + np.exp(-x64)), rtol=1e-6, atol=1e-30), n
    for name, call, want in (("relu", lambda o: rl.relu(x, out=o), np.maximum(x, 0)),
                             ("relu.grad", lambda o: rl.relu.grad(x, out=o), np.heaviside(x, 0).astype(np.float32)),
                             ("leaky_relu", lambda o: rl.leaky_relu(x, negative_slope=0.25, out=o),
                              np.where(x > 0, x, x * np.float32(0.25))),
                             ("relu_mask", lambda o: fused.relu_mask(x, out=o)[0], np.maximum(x, 0))):
        out = misaligned(n)
        call(out)
        checks[name + "(out=odd)"] = (out, want)
    out = misaligned(n)
    fused.relu_backward_mask(odd, fused.relu_mask(x)[1], out=out)
    checks["relu_backward_mask(out=odd)"] = (out, np.where(x > 0, x, 0))
    bad = [name for name, (got, want) in checks.items() if not np.array_equal(got, want)]
    assert not bad, (n, bad)
print("ok")
"""


def test_misaligned_arrays_and_out_buffers_are_computed_not_crashed_on():
    # The compiled kernels store whole aligned vectors: a buffer one byte off (np.ndarray over a byte buffer at an
    # odd offset) crashed the process (SIGSEGV) when it came in as out= or to the fused kernels.
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    done = subprocess.run([sys.executable, "-c", _MISALIGNED], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", (done.returncode, done.stderr[-2000:])


def test_a_gang_call_offers_work_only_to_free_workers_and_takes_back_unclaimed_offers():
    # The protocol of family/_stream.py's gang(), driven by hand: no worker thread watches these slots.
    from relulab.family import _stream

    x = edge_input(10_000, np.float32, seed=3)
    y = np.full_like(x, 7)
    entry = _parallel._Twin(_stream.relu_forward, ()).entry(x.dtype, _stream)
    cells = np.zeros(1, np.int64)
    slots = np.array([5, 0, 0, 0], np.int64)  # worker 0 holds another call's offer; 1 and 2 are free; [-1]: open
    d = np.zeros(_stream.DESCRIPTOR, np.int64)
    assert _stream.gang(x, y, x.size, 1024, False, entry, cells.ctypes.data, slots.ctypes.data, 3, 100,
                        d.ctypes.data)
    assert_exact(y, numpy_reference("relu", x, False))
    assert slots.tolist() == [5, 0, 0, 0]  # the busy slot untouched, the two offers taken back
    assert d[_stream.JOINED] == 0 and d[_stream.DONE] == 0
    chunks = -(-x.size // 1024)
    assert d[_stream.TAKEN] == chunks | chunks << 32  # the caller took every chunk from the front


def test_a_worker_loop_says_why_it_came_back_to_python():
    from relulab.family import _stream

    done = np.zeros(2, np.int64)
    slots = np.zeros(3, np.int64)
    assert _stream.work(slots, 1, 50, done, 1) == _stream.IDLE  # nothing offered within its spins
    slots[1] = _stream.PYTHON_JOB
    assert _stream.work(slots, 1, 50, done, 1) == _stream.PYTHON
    assert slots[1] == 0  # claimed
    slots[-1] = 1
    assert _stream.work(slots, 0, 50, done, 0) == _stream.STOP
    assert done.tolist() == [1, 2]  # each call first counts the wait it follows


def test_a_worker_runs_the_calls_offered_to_it():
    # A worker thread on its own slots: the caller offers every call; whichever chunks the worker claimed, the
    # result is relu's, and the worker is done with each call when gang() or the wait after it returns.
    from relulab.family import _stream

    slots = np.zeros(2, np.int64)
    done = np.zeros(1, np.int64)
    codes = []
    worker = threading.Thread(target=lambda: codes.append(_stream.work(slots, 0, 1 << 22, done, 0)), daemon=True)
    worker.start()
    x = edge_input(50_000, np.float32, seed=4)
    entry = _parallel._Twin(_stream.relu_forward, ()).entry(x.dtype, _stream)
    d = np.zeros(_stream.DESCRIPTOR, np.int64)
    cells = np.zeros(1, np.int64)
    joined = 0
    try:
        for k in range(200):
            y = np.full_like(x, np.nan)
            if not _stream.gang(x, y, x.size, 2048, False, entry, cells.ctypes.data, slots.ctypes.data, 1, 1000,
                                d.ctypes.data):
                while not _stream.wait_for_count(d, _stream.DONE, d[_stream.JOINED], 1000):
                    pass
            assert d[_stream.DONE] == d[_stream.JOINED]
            joined += d[_stream.JOINED]
            assert_exact(y, numpy_reference("relu", x, False))
    finally:
        slots[-1] = 1  # the stop cell: the worker returns STOP at its next look
    worker.join(10)
    assert codes == [_stream.STOP]
    assert joined > 0  # the worker claimed some of the calls (it watches its slot for about a second)


def _clamp_reference(name: str, x: np.ndarray, grad: bool) -> np.ndarray:
    """relu6, hard_tanh and hard_sigmoid written directly with NumPy: min(max(x + offset, low), high) / divisor, the
    offset added only where it is not 0 (-0.0 inside the range stays -0.0); the derivative 1 / divisor strictly
    inside the kinks (0 and 6, -1 and 1, -3 and 3), 0 elsewhere (relu6's at_zero is 0); NaN in, NaN out."""
    t = x.dtype.type
    offset, divisor, low, high = {"relu6": (0, 1, 0, 6), "hard_tanh": (0, 1, -1, 1), "hard_sigmoid": (3, 6, 0, 6)}[name]
    if grad:
        inside = (x > t(low - offset)) & (x < t(high - offset))
        value = np.where(inside, t(1) / t(divisor), t(0)).astype(x.dtype)
    else:
        u = x + t(offset) if offset else x
        value = np.where(u <= t(low), t(low), np.where(u >= t(high), t(high), u)).astype(x.dtype)
        if divisor != 1:
            value = value / t(divisor)
    return np.where(np.isnan(x), x, value)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["relu6", "hard_tanh", "hard_sigmoid"])
def test_the_clamps_whole_line_kernels_give_numpys_bits_on_every_thread_count(gang_sizes, threads, monkeypatch, name,
                                                                                 dtype):
    act = rl.get(name)
    kinks = np.array([-6, -3, -1, 0, 1, 3, 6], dtype)
    beside = np.concatenate([np.nextafter(kinks, dtype(-np.inf)), kinks, np.nextafter(kinks, dtype(np.inf))])
    x = np.concatenate([edge_input(20_011, dtype, seed=11), np.tile(beside, 64)])  # the neighbours of every kink
    for count in (1, 3):
        _parallel.set_num_threads(count)
        for streaming_from in (_parallel._STREAM_MIN_BYTES, 8192):  # 8 KiB: the non-temporal stores
            monkeypatch.setattr(_parallel, "_STREAM_MIN_BYTES", streaming_from)
            assert_exact(act(x), _clamp_reference(name, x, False))
            assert_exact(act.grad(x), _clamp_reference(name, x, True))
            in_place = x.copy()
            assert_exact(act(in_place, out=in_place), _clamp_reference(name, x, False))
