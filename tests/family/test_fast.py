"""The fast path (family/_parallel.py, family/_stream.py) computes exactly what the plain path computes.

The reference is the same call with the fast path switched off (``fast_path(False)``: the member's NumPy kernel on
the whole array, on one thread) and, for the compiled kernels, NumPy's own functions. "Exactly" means the same
dtype and shape, the same bits for every number (signed zeros included) and NaN at the same places; the payload
bits of a NaN are not compared (NumPy itself does not keep them stable: its temporary elision can swap the operands
of an addition, and with them which NaN survives).

Most tests shrink the thresholds (``small_thresholds``) so that arrays of a few thousand elements go through every
route -- many chunks, several threads, the streaming stores, unaligned heads and tails -- and the suite stays
cheap; one test runs the real thresholds on arrays larger than the cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import relulab as rl
from relulab.family import _compiled, _parallel

LISTED = ("relu", "leaky_relu", "elu", "gelu", "silu", "sigmoid", "tanh")  # the members the speed issue names
FLOATS = (np.float16, np.float32, np.float64)
# Every elementwise call a member offers: (name, parameters).
CALLS = [
    ("relu", {}), ("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.2}),
    ("leaky_relu", {"negative_slope": -0.5}), ("leaky_relu", {"negative_slope": 3.0}),
    ("leaky_relu", {"negative_slope": 0.0}), ("elu", {}), ("elu", {"alpha": 0.5}), ("selu", {}),
    ("celu", {"alpha": 2.0}), ("relu6", {}), ("hardswish", {}), ("squared_relu", {}), ("gelu", {}),
    ("gelu", {"approximate": "tanh"}), ("silu", {}), ("quick_gelu", {}), ("mish", {}), ("softplus", {}),
    ("hard_sigmoid", {}), ("hard_tanh", {}), ("hard_tanh", {"min_val": 0.0, "max_val": 6.0}),
    ("softplus", {"beta": 2.0, "threshold": 5.0}), ("sigmoid", {}), ("tanh", {}), ("identity", {}), ("rrelu", {}),
]
CALL_IDS = [name + "".join(f"-{k}={v}" for k, v in params.items()) for name, params in CALLS]


def assert_exact(fast: np.ndarray, reference: np.ndarray) -> None:
    """Same dtype, shape, bits (NaN payloads aside)."""
    assert fast.dtype == reference.dtype and fast.shape == reference.shape
    fast_nan, reference_nan = np.isnan(fast), np.isnan(reference)
    np.testing.assert_array_equal(fast_nan, reference_nan)
    same = fast[~fast_nan].tobytes() == reference[~reference_nan].tobytes()
    if not same:
        mismatch = np.flatnonzero(fast[~fast_nan].view(np.uint8) != reference[~reference_nan].view(np.uint8))
        pytest.fail(f"fast path differs from the reference at byte {mismatch[:5]}")


def edge_input(n: int, dtype, seed: int = 0) -> np.ndarray:
    """Random values over many scales with every edge case sprinkled in: NaN, +-inf, +-0.0, the kinks, subnormals,
    values where exp overflows float32 and float16."""
    rng = np.random.default_rng(seed)
    scale = rng.choice([1e-3, 1.0, 4.0, 40.0, 1e4], size=n)
    x = rng.standard_normal(n) * scale
    specials = [np.nan, np.inf, -np.inf, 0.0, -0.0, 6.0, -3.0, 3.0, 20.0, 1e-310, -1e-310, 1e-42, -1e-42, 100.0,
                -100.0, 70000.0, -70000.0]
    picks = rng.random(n) < 0.15
    x[picks] = rng.choice(specials, size=int(picks.sum()))
    with np.errstate(over="ignore"):
        return x.astype(dtype)


@pytest.fixture
def small_thresholds(monkeypatch):
    """Every route on small arrays: 512-element thresholds, 4 KiB chunks, streaming stores from 8 KiB, 3 threads."""
    monkeypatch.setattr(_parallel, "MIN_ELEMENTS", 512)
    monkeypatch.setattr(_compiled, "_quick", {})  # (the short way keeps each kernel's threshold)
    monkeypatch.setattr(_parallel, "MIN_ELEMENTS_LIGHT", 512)
    monkeypatch.setattr(_parallel, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(_parallel, "LIGHT_CHUNK_BYTES", 4096)
    monkeypatch.setattr(_parallel, "_STREAM_MIN_BYTES", 8192)
    previous = _parallel.get_num_threads()
    _parallel.set_num_threads(3)
    yield
    _parallel.set_num_threads(previous)


@pytest.fixture(params=["compiled", "numpy"])
def kernels(request, monkeypatch):
    """Run a test with the numba kernels (where numba is installed) and with NumPy chunks only."""
    if request.param == "compiled":
        if _parallel.stream_kernels() is None:
            pytest.skip(f"no compiled kernels: {_parallel.stream_status()}")
    else:  # as without numba: no compiled kernels, none remembered by the short way either
        monkeypatch.setattr(_parallel, "stream_kernels", lambda: None)
        monkeypatch.setattr(_compiled, "_quick", {})
    return request.param


def reference(call, *args, **kwargs):
    with _parallel.fast_path(False):
        return call(*args, **kwargs)


def test_small_thresholds_really_take_the_fast_path(small_thresholds, monkeypatch):
    calls = []
    real_run = _parallel.run
    monkeypatch.setattr(_parallel, "run", lambda *a, **k: calls.append(a[0]) or real_run(*a, **k))
    x = edge_input(3000, np.float32)
    rl.gelu(x)
    rl.relu.grad(x)
    with _parallel.fast_path(False):
        rl.gelu(x)
    assert len(calls) == 2


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(("name", "params"), CALLS, ids=CALL_IDS)
def test_values_and_derivatives_equal_the_reference(small_thresholds, kernels, name, params, dtype):
    act = rl.get(name)
    x = edge_input(5003, dtype)  # odd length: unaligned tails
    for view in (x, x[3:]):  # x[3:]: neither input nor output on a cache-line boundary
        assert_exact(act(view, **params), reference(act, view, **params))
        assert_exact(act.grad(view, **params), reference(act.grad, view, **params))
    if act.has_kink_at_zero:
        kink = act.kink(**params)
        at_zero = 0.5 * (float(np.max(kink.low)) + float(np.min(kink.high)))
        assert_exact(act.grad(x, at_zero=at_zero, **params), reference(act.grad, x, at_zero=at_zero, **params))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", LISTED)
def test_out_and_in_place_equal_the_reference(small_thresholds, kernels, name, dtype):
    act = rl.get(name)
    x = edge_input(4099, dtype, seed=1)
    want, want_grad = reference(act, x), reference(act.grad, x)
    y = np.full_like(x, 7)
    assert act(x, out=y) is y
    assert_exact(y, want)
    assert act.grad(x, out=y) is y
    assert_exact(y, want_grad)
    in_place = x.copy()
    assert act(in_place, out=in_place) is in_place
    assert_exact(in_place, want)
    in_place = x.copy()
    act.grad(in_place, out=in_place)
    assert_exact(in_place, want_grad)
    shaped = x[:4096].reshape(16, 256)  # any C-contiguous shape is one flat run of elements
    assert_exact(act(shaped), reference(act, shaped))


@pytest.mark.parametrize("name", LISTED)
def test_integers_promote_chunk_by_chunk(small_thresholds, kernels, name):
    act = rl.get(name)
    x = np.random.default_rng(2).integers(-50, 50, size=3001).astype(np.int32)
    assert_exact(act(x), reference(act, x))
    assert_exact(act.grad(x), reference(act.grad, x))
    y = np.empty(3001, np.float64 if act(x[:1]).dtype == np.float64 else np.int32)
    assert_exact(act(x, out=y), reference(act, x))


def test_prelu_and_rrelu_take_the_fast_path_only_when_elementwise(small_thresholds, monkeypatch):
    calls = []
    real_run = _parallel.run
    monkeypatch.setattr(_parallel, "run", lambda *a, **k: calls.append(1) or real_run(*a, **k))
    x = edge_input(4000, np.float32).reshape(4, 1000)
    assert_exact(rl.prelu(x, 0.25), reference(rl.prelu, x, 0.25))
    assert len(calls) == 1  # one slope for all: elementwise
    weights = np.array([0.1, 0.2, 0.3, 0.4])
    assert_exact(rl.prelu(x, weights, channel_axis=0), reference(rl.prelu, x, weights, channel_axis=0))
    assert_exact(rl.rrelu(x, training=True, seed=3), reference(rl.rrelu, x, training=True, seed=3))
    assert len(calls) == 1  # per-channel slopes and random slopes run whole


def test_views_that_are_not_contiguous_and_overlapping_out_take_the_plain_path(small_thresholds, monkeypatch):
    calls = []
    real_run = _parallel.run
    monkeypatch.setattr(_parallel, "run", lambda *a, **k: calls.append(1) or real_run(*a, **k))
    x = edge_input(8000, np.float32)
    assert_exact(rl.gelu(x[::2]), reference(rl.gelu, x[::2]))
    matrix = x.reshape(80, 100)
    assert_exact(rl.silu(matrix.T), reference(rl.silu, matrix.T))
    overlapping = x.copy()
    want = reference(rl.relu, overlapping[:-8])
    rl.relu(overlapping[:-8], out=overlapping[8:])  # out is x shifted by 8 elements
    assert_exact(overlapping[8:], want)
    assert calls == []


@pytest.mark.parametrize("name", LISTED)
def test_scalars_zero_d_and_empty_inputs_are_unchanged(small_thresholds, name):
    act = rl.get(name)
    for x in (np.float32(-1.5), np.array(2.0), np.zeros((0, 3), np.float32), [0.5, -0.5]):
        fast, want = act(x), reference(act, x)
        assert type(fast) is type(want)
        assert_exact(np.asarray(fast), np.asarray(want))


def test_float16_computes_in_float32_without_warnings(small_thresholds):
    x = edge_input(6001, np.float16, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow or invalid-value warning from any thread fails the test
        for name in LISTED:
            act = rl.get(name)
            assert_exact(act(x), reference(act, x))
            assert_exact(act.grad(x), reference(act.grad, x))


def test_the_callers_errstate_applies_in_every_thread(small_thresholds):
    x = np.full(5000, -200.0, np.float32)  # exp(-200) underflows float32
    with np.errstate(under="raise"):
        with pytest.raises(FloatingPointError):
            rl.sigmoid(x)
        with pytest.raises(FloatingPointError):
            reference(rl.sigmoid, x)


def test_an_error_in_a_worker_is_raised_in_the_caller():
    seen = []

    def task(start, stop):
        seen.append(start)
        if start == 128:
            raise ZeroDivisionError("chunk 128")

    with pytest.raises(ZeroDivisionError, match="chunk 128"):
        _parallel.parallel_for(task, 1024, 64, threads=3)
    assert 128 in seen


def test_parallel_for_covers_every_element_once():
    counts = np.zeros(10_000, np.int64)
    _parallel.parallel_for(lambda a, b: np.add.at(counts, np.arange(a, b), 1), counts.size, 64, threads=4)
    assert np.all(counts == 1)


def test_real_thresholds_on_arrays_larger_than_the_cache(kernels):
    # The default configuration: compiled kernels with streaming stores (past the threshold) on every core.
    n = _parallel.streaming_threshold_bytes() // 8 + 4099  # in + out just past the streaming threshold
    x = edge_input(n, np.float32, seed=5)
    y = np.empty_like(x)
    for act in (rl.relu, rl.leaky_relu):
        assert_exact(act(x, out=y), reference(act, x))
        assert_exact(act.grad(x, out=y), reference(act.grad, x))
    in_place = x.copy()
    assert_exact(rl.relu(in_place, out=in_place), reference(rl.relu, x))
    assert_exact(rl.sigmoid(x[: 1 << 17]), reference(rl.sigmoid, x[: 1 << 17]))


def test_compiled_kernels_match_numpys_functions_directly():
    stream = _parallel.stream_kernels()
    if stream is None:
        pytest.skip(_parallel.stream_status())
    for dtype in (np.float32, np.float64):
        x = edge_input(1000, dtype, seed=6)
        y = np.empty_like(x)
        for streaming in (False, True):
            for start, stop in ((0, 1000), (3, 997), (17, 18), (5, 5)):
                expected = np.maximum(x[start:stop], 0)
                stream.relu_forward(x, y, start, stop, streaming)
                assert_exact(y[start:stop], expected)
                stream.relu_derivative(x, y, start, stop, streaming, dtype(0.25))
                assert_exact(y[start:stop], np.heaviside(x[start:stop], dtype(0.25)))


def test_set_num_threads_and_its_checks():
    previous = rl.get_num_threads()
    try:
        rl.set_num_threads(1)
        assert rl.get_num_threads() == 1
        x = edge_input(1 << 17, np.float32)
        assert_exact(rl.gelu(x), reference(rl.gelu, x))
    finally:
        rl.set_num_threads(previous)
    for bad in (0, -2, 1.5, True, "2"):
        with pytest.raises(ValueError, match="n must be an integer >= 1"):
            rl.set_num_threads(bad)


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=environment)


def test_environment_variable_sets_the_threads_and_is_checked():
    done = run_python("import relulab as rl; print(rl.get_num_threads())", RELULAB_NUM_THREADS="3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3"
    bad = run_python("import relulab as rl; rl.get_num_threads()", RELULAB_NUM_THREADS="many")
    assert bad.returncode != 0 and "RELULAB_NUM_THREADS must be a whole number >= 1; got 'many'" in bad.stderr


def test_import_relulab_loads_neither_torch_nor_numba_and_large_calls_load_numba_only_when_needed():
    code = ("import sys, numpy as np, relulab as rl\n"
            "rl.relu(np.ones(1000, np.float32)); rl.identity(np.ones(1 << 17, np.float32))\n"
            "print('numba' in sys.modules, 'torch' in sys.modules)\n"
            "rl.relu(np.ones(1 << 17, np.float32))\n"
            "print(rl.family._parallel.stream_kernels() is not None, 'numba' in sys.modules)\n")
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.split("\n")[:2]
    assert first == "False False"
    assert second in ("True True", "False False")  # numba installed or not: loaded exactly when used
    disabled = run_python(code, RELULAB_NUMBA="0")
    assert disabled.stdout.split("\n")[1] == "False False"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_its_own_threads():
    x = edge_input(1 << 17, np.float32)
    want = rl.gelu(x)  # the parent's pool is running now
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python >= 3.12 warns about fork with threads
        pid = os.fork()
    if pid == 0:  # pragma: no cover  (the child)
        ok = np.array_equal(rl.gelu(x), want, equal_nan=True)
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.waitpid(pid, 0)
    assert answer == b"1"
