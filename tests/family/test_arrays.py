"""Arrays of other libraries as inputs to the members (family/_arrays.py): the same kind back, on the same device,
with NumPy's values; Dask lazily, block by block; a TypeError that says what to use where a round trip would not do.

The expected values are the NumPy results for the same data (themselves checked against mpmath elsewhere): what is
tested here is the conversion, the dtype, the device and the laziness.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading

import numpy as np
import pytest

import relulab as rl

CASES = [("relu", {}), ("relu", {"max_value": 1.0, "threshold": 0.25}), ("gelu", {}), ("squareplus", {"b": 1.0}),
         ("sparse_plus", {}), ("leaky_relu", {"negative_slope": 0.2}), ("softplus", {"beta": 2.0})]
X = np.array([-3.0, -1.0, -0.25, 0.0, 0.25, 0.5, 2.0, 7.0])


def test_import_relulab_imports_no_other_array_library():
    code = ("import sys, relulab; relulab.relu([1.0]); "
            "print(sorted(m for m in ('torch', 'jax', 'dask', 'cupy', 'array_api_compat', 'array_api_strict') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- the array API standard: array-api-strict stands in for any library that implements it ------------------------
@pytest.mark.parametrize(("name", "params"), CASES, ids=[f"{n}{p or ''}" for n, p in CASES])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_array_api_arrays_come_back_as_their_own_kind_with_numpy_values(name, params, dtype):
    xps = pytest.importorskip("array_api_strict")
    x = xps.asarray(X, dtype=getattr(xps, dtype))
    member = rl.get(name)
    for fn, want in ((member, member(X.astype(dtype), **params)), (member.grad, member.grad(X.astype(dtype), **params))):
        got = fn(x, **params)
        assert type(got) is type(x) and got.dtype == x.dtype and got.device == x.device
        np.testing.assert_array_equal(np.from_dlpack(got), want)


def test_array_api_integers_scalars_and_at_zero():
    xps = pytest.importorskip("array_api_strict")
    ints = xps.asarray([-2, 0, 3], dtype=xps.int32)
    got = rl.relu(ints)
    assert got.dtype == xps.int32 and np.from_dlpack(got).tolist() == [0, 0, 3]  # integer-exact: stays integer
    slope = rl.relu.grad(ints, at_zero=1.0)
    assert slope.dtype == xps.float64 and np.from_dlpack(slope).tolist() == [0.0, 1.0, 1.0]
    zero_d = rl.elu(xps.asarray(-1.0, dtype=xps.float64))
    assert type(zero_d) is type(ints) and zero_d.shape == () and float(zero_d) == float(rl.elu(-1.0))
    with pytest.raises(TypeError, match=r"^relu: out= takes a NumPy array"):
        rl.relu(xps.asarray([1.0]), out=np.empty(1))
    with pytest.raises(ValueError, match=r"^relu: max_value must be None or >= threshold"):
        rl.relu(xps.asarray([1.0]), max_value=1.0, threshold=2.0)


class _OnAccelerator:
    """An array-API array that says it lives on a GPU (no GPU library is needed to test the refusal)."""

    device = "cuda:0"
    shape = (2,)
    dtype = np.float32

    def __array_namespace__(self, api_version=None):
        return np


def test_accelerator_arrays_are_refused_with_what_to_use_instead():
    pytest.importorskip("array_api_compat")
    with pytest.raises(TypeError, match=r"^gelu: x is an array on cuda:0; .*relulab\.nn\.functional\.gelu on a torch "
                                        r"tensor on the device \(torch\.from_dlpack\(x\)"):
        rl.gelu(_OnAccelerator())
    # CuPy (GPU-only) is recognised by its module name without importing it
    cupy_like = type("ndarray", (), {"__module__": "cupy._core.core"})()
    with pytest.raises(TypeError, match=r"^relu: x is a CuPy array; .*cupy\.asnumpy\(x\)"):
        rl.relu.grad(cupy_like)


def test_cupy_on_a_gpu():
    pytest.importorskip("cupy", reason="CuPy needs a CUDA GPU; none on this machine (the refusal is tested above)")


# -- JAX: in a child process. JAX starts threads and warns at every later os.fork(), which the fork-based tests of
# this suite (family/test_fast.py, the lab's Ray and process pools) would then turn into errors. ---------------------
_JAX_CHECKS = """
import numpy as np, jax, jax.numpy as jnp, relulab as rl
X = np.array(%r)
CASES = %r
x = jnp.asarray(X, dtype=jnp.float32)
for name, params in CASES:
    member = rl.get(name)
    for fn in (member, member.grad):
        got = fn(x, **params)
        assert isinstance(got, jax.Array) and got.dtype == jnp.float32 and got.devices() == x.devices(), name
        np.testing.assert_array_equal(np.asarray(got), fn(X.astype(np.float32), **params))
assert rl.relu(jnp.asarray([-1, 2])).dtype == jnp.int32  # integer-exact members keep the integer dtype
try:
    jax.jit(rl.relu)(jnp.ones(3))
except TypeError as error:
    assert str(error).startswith("relu: x is a JAX tracer") and "jax.nn" in str(error), error
else:
    raise AssertionError("a tracer was accepted")
print("ok")
"""


def test_jax_arrays_come_back_as_jax_arrays_on_their_device_and_tracers_are_refused():
    if importlib.util.find_spec("jax") is None:  # found, not imported (see above)
        pytest.skip("jax is a test extra (pip install 'jax[cpu]'); not installed")
    code = _JAX_CHECKS % (X.tolist(), CASES)
    result = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


# -- Dask: blockwise and lazy ------------------------------------------------------------------------------------------
def _counted_blocks(da, blocks: int, size: int, seed: int = 0):
    """A Dask array of ``blocks`` random blocks generated on demand, and the list that records each generation."""
    calls: list[int] = []
    lock = threading.Lock()

    def make(block_id=None):
        with lock:
            calls.append(block_id[0])
        return np.random.default_rng(seed + block_id[0]).standard_normal(size)

    x = da.map_blocks(make, chunks=((size,) * blocks,), dtype=np.float64, meta=np.empty(0))
    return x, calls


def test_dask_is_computed_lazily_block_by_block():
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    x, calls = _counted_blocks(da, blocks=64, size=4096)
    y = rl.relu(x, max_value=1.5)
    g = rl.squareplus.grad(x)
    assert calls == []  # nothing generated, nothing computed: both are graphs
    assert isinstance(y, da.Array) and y.chunks == x.chunks and y.dtype == np.float64
    assert type(y._meta) is np.ndarray and y._meta.dtype == np.float64
    # A reduction streams through the blocks; the answer is the sum of the member over each block.
    with dask.config.set(scheduler="threads", num_workers=2):
        total = float(y.sum().compute())
    assert sorted(calls) == list(range(64))
    want = sum(float(rl.relu(np.random.default_rng(b).standard_normal(4096), max_value=1.5).sum()) for b in range(64))
    assert total == pytest.approx(want, rel=1e-12)
    first = np.random.default_rng(0).standard_normal(4096)
    np.testing.assert_array_equal(g.blocks[0].compute(), rl.squareplus.grad(first))


def test_dask_dtypes_integers_and_parameter_errors_at_graph_time():
    da = pytest.importorskip("dask.array")
    ints = da.arange(-5, 5, chunks=3)
    assert rl.relu(ints).dtype == ints.dtype and rl.relu(ints).compute().tolist() == [0] * 6 + [1, 2, 3, 4]
    assert rl.relu.grad(ints).dtype == np.float64 and rl.gelu(ints.astype(np.float32)).dtype == np.float32
    with pytest.raises(ValueError, match=r"^squareplus: b must be"):
        rl.squareplus(ints, b=-1.0)  # raised while building the graph, not inside compute()
    with pytest.raises(ValueError, match=r"^rrelu: training=True draws one slope per element"):
        rl.rrelu(ints.astype(np.float64), training=True, seed=0)
    np.testing.assert_array_equal(rl.rrelu(ints.astype(np.float64)).compute(), rl.rrelu(np.arange(-5.0, 5.0)))


def test_dask_prelu_with_one_slope_per_channel_spanning_chunks():
    da = pytest.importorskip("dask.array")
    values = np.random.default_rng(3).standard_normal((6, 4, 5))
    x = da.from_array(values, chunks=(2, 1, 2))  # the channel axis (1) split into 4 chunks
    weight = np.array([0.1, 0.2, 0.3, 0.4])
    got = rl.prelu(x, weight)
    np.testing.assert_array_equal(got.compute(), rl.prelu(values, weight))
    np.testing.assert_array_equal(rl.prelu(x, weight, channel_axis=1).compute(), rl.prelu(values, weight))

