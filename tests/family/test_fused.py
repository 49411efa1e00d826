"""The fused operations (family/fused.py) equal their unfused compositions exactly, on every route."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import relulab as rl
from relulab.family import _parallel, fused
from relulab.family.fused import bias_activation, pack_mask, relu_backward_mask, relu_mask, unpack_mask

from .test_fast import assert_exact, edge_input, kernels, small_thresholds  # noqa: F401  (fixtures)

FLOATS = (np.float16, np.float32, np.float64)
SIZES = (0, 1, 7, 8, 9, 63, 64, 65, 1000, 5003)


def unfused_mask(x):
    return pack_mask(np.logical_not(np.asarray(x) <= 0))


def test_mask_layout_matches_relulab_nn():
    # Element i in bit i % 8 of byte i // 8: what relulab.nn's pack_mask writes for the lean backward.
    mask = pack_mask([True, False, False, False, False, False, False, False, False, True])
    np.testing.assert_array_equal(mask, np.array([1, 2], np.uint8))
    np.testing.assert_array_equal(unpack_mask(mask, (2, 5)), [[1, 0, 0, 0, 0], [0, 0, 0, 0, 1]])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("n", SIZES)
def test_relu_mask_equals_relu_and_packed_comparison(small_thresholds, kernels, n, dtype):
    x = edge_input(n, dtype)
    y, mask = relu_mask(x)
    assert_exact(y, rl.relu(x))
    np.testing.assert_array_equal(mask, unfused_mask(x))
    assert mask.dtype == np.uint8 and mask.shape == ((n + 7) // 8,)
    # NaN inputs: bit set, as torch's threshold_backward lets their gradient through.
    if n:
        assert np.all(unpack_mask(mask, x.shape)[np.isnan(x)])


@pytest.mark.parametrize("dtype", FLOATS)
def test_relu_mask_out_in_place_and_shapes(small_thresholds, kernels, dtype):
    x = edge_input(4099, dtype, seed=1)
    out = np.empty_like(x)
    y, mask = relu_mask(x, out=out)
    assert y is out
    assert_exact(out, rl.relu(x))
    in_place = x.copy()
    y, mask_in_place = relu_mask(in_place, out=in_place)
    assert y is in_place
    assert_exact(in_place, rl.relu(x))
    np.testing.assert_array_equal(mask_in_place, unfused_mask(x))
    matrix = x[:4096].reshape(64, 64)
    for view in (matrix, matrix.T, matrix[:, ::3]):  # C order of the view, whatever its strides
        y, mask = relu_mask(view)
        assert_exact(y, rl.relu(view))
        np.testing.assert_array_equal(mask, unfused_mask(view))


def test_relu_mask_integers_and_scalars():
    x = np.arange(-20, 21, dtype=np.int16)
    y, mask = relu_mask(x)
    assert_exact(y, rl.relu(x))
    np.testing.assert_array_equal(mask, unfused_mask(x))
    y, mask = relu_mask(np.float64(-0.0))
    assert y.shape == () and str(y) == "0.0" and mask.tolist() == [0]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("n", SIZES)
def test_backward_from_mask_equals_where(small_thresholds, kernels, n, dtype):
    x = edge_input(n, dtype, seed=2)
    g = edge_input(n, dtype, seed=3)
    _, mask = relu_mask(x)
    want = np.where(unpack_mask(mask, g.shape), g, 0)
    assert_exact(relu_backward_mask(g, mask), want)
    out = np.empty_like(g)
    assert relu_backward_mask(g, mask, out=out) is out
    assert_exact(out, want)
    in_place = g.copy()
    assert_exact(relu_backward_mask(in_place, mask, out=in_place), want)
    if n:  # cleared bits give +0.0 whatever g holds (inf, NaN)
        cleared = ~unpack_mask(mask, g.shape)
        assert np.all(np.signbit(relu_backward_mask(g, mask)[cleared]) == 0)


def test_backward_from_mask_is_the_lean_relu_gradient():
    # From relu_mask's mask: g * relu'(x) with relu'(0) = 0, and g itself where x is NaN (torch's convention).
    x = np.array([-2.0, -0.0, 0.0, 1e-300, 3.0, np.nan, np.inf, -np.inf])
    g = np.arange(1.0, 9.0)
    _, mask = relu_mask(x)
    np.testing.assert_array_equal(relu_backward_mask(g, mask), [0, 0, 0, 4, 5, 6, 7, 0])


def test_backward_from_mask_checks_its_arguments():
    g = np.ones(20)
    _, mask = relu_mask(np.ones(20))
    with pytest.raises(ValueError, match="mask must be the 1-D uint8 array of 3 bytes"):
        relu_backward_mask(g, mask[:2])
    with pytest.raises(ValueError, match="mask must be"):
        relu_backward_mask(g, mask.astype(np.int8))
    with pytest.raises(TypeError, match="grad_output must be a float16, float32 or float64 array"):
        relu_backward_mask(np.ones(20, np.int32), mask)
    with pytest.raises(ValueError, match="out has shape"):
        relu_backward_mask(g, mask, out=np.empty(19))


BIAS_CALLS = [("relu", {}), ("leaky_relu", {"negative_slope": 0.2}), ("elu", {}), ("gelu", {}),
              ("gelu", {"approximate": "tanh"}), ("silu", {}), ("sigmoid", {}), ("tanh", {}), ("relu6", {})]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(("name", "params"), BIAS_CALLS, ids=[n + str(len(p)) for n, p in BIAS_CALLS])
def test_bias_activation_equals_activation_of_the_sum(small_thresholds, kernels, name, params, dtype):
    x = edge_input(60 * 77, dtype, seed=4)
    act = rl.get(name)
    dense, dense_bias = x.reshape(60, 77), edge_input(77, dtype, seed=5)
    conv, conv_bias = x.reshape(6, 7, 10, 11), edge_input(7, dtype, seed=6).reshape(7, 1, 1)
    with np.errstate(invalid="ignore", over="ignore"):  # inf + -inf and float16 sums warn, fused or not
        for value, bias in ((dense, dense_bias), (conv, conv_bias), (dense, dtype(0.5)), (dense, dense_bias[None])):
            assert_exact(bias_activation(value, bias, name, **params), act(value + bias, **params))
        out = np.empty_like(dense)
        assert bias_activation(dense, dense_bias, name, out=out, **params) is out
        assert_exact(out, act(dense + dense_bias, **params))


def test_bias_activation_warns_as_the_sum_does(small_thresholds):
    x = np.full((100, 50), np.inf)
    with pytest.warns(RuntimeWarning, match="invalid value encountered in add"):
        bias_activation(x, np.full(50, -np.inf), "relu")


def test_bias_activation_promotes_as_numpy_does():
    x = np.random.default_rng(0).standard_normal((40, 100)).astype(np.float32)
    bias = np.random.default_rng(1).standard_normal(100)
    assert_exact(bias_activation(x, bias, "relu"), rl.relu(x + bias))
    integers = np.arange(-60, 60, dtype=np.int32).reshape(12, 10)
    assert_exact(bias_activation(integers, np.arange(10, dtype=np.int32), "relu"),
                 rl.relu(integers + np.arange(10, dtype=np.int32)))
    assert_exact(bias_activation(integers, 1, "gelu"), rl.gelu(integers + 1))


def test_bias_activation_on_large_arrays_with_the_real_thresholds(kernels):
    rows = _parallel.streaming_threshold_bytes() // (8 * 1024) + 3  # in + out past the streaming threshold
    x = edge_input(rows * 1024, np.float32, seed=7).reshape(rows, 1024)
    bias = edge_input(1024, np.float32, seed=8)
    with np.errstate(invalid="ignore"):
        assert_exact(bias_activation(x, bias, "relu"), rl.relu(x + bias))
        assert_exact(bias_activation(x[:64], bias, "silu"), rl.silu(x[:64] + bias))


def test_bias_activation_checks_its_arguments():
    x = np.ones((4, 5))
    with pytest.raises(ValueError, match=r"bias of shape \(4,\) must broadcast onto x of shape \(4, 5\)"):
        bias_activation(x, np.ones(4), "relu")
    with pytest.raises(ValueError, match="must broadcast onto x"):
        bias_activation(x, np.ones((2, 4, 5)), "relu")
    with pytest.raises(TypeError, match="prelu takes a weight array"):
        bias_activation(x, np.ones(5), "prelu")
    with pytest.raises(ValueError, match="negative_slope must be"):
        bias_activation(x, np.ones(5), "leaky_relu", negative_slope=float("nan"))
    with pytest.raises(rl.UnknownActivationError):
        bias_activation(x, np.ones(5), "relux")
    with pytest.raises(TypeError, match="bias must be"):
        bias_activation(x, "1", "relu")


def test_docstring_examples_run():
    assert doctest.testmod(fused).failed == 0
    assert doctest.testmod(_parallel).failed == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, bias_shape", [((1100, 257), (257,)), ((8, 3, 31, 29), (3, 1, 1)),
                                               ((2100,), ()), ((5000, 16), (1, 16))])
def test_bias_relu_takes_one_compiled_pass_equal_to_the_sum(kernels, monkeypatch, small_thresholds, dtype, shape,
                                                            bias_shape):
    # finite inputs, so the compiled pass (not its NumPy redo for NaN/inf sums) gives the result; rows of odd
    # lengths, so chunks (4 KiB here, on 3 threads) start and end inside rows
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(dtype)
    bias = rng.standard_normal(bias_shape).astype(dtype)
    x.reshape(-1)[:3] = [0.0, -0.0, 1e-30]
    passes = []
    real = _parallel.run_compiled
    monkeypatch.setattr(_parallel, "run_compiled", lambda *a: passes.append(real(*a)) or passes[-1])
    summed = (x.astype(np.float64) + bias.astype(np.float64)).astype(dtype)  # double rounding is exact for a sum
    want = np.where(summed > 0, summed, dtype(0))  # relu: +0.0 for x <= 0
    out = np.full(shape, np.nan, dtype)
    assert bias_activation(x, bias, "relu", out=out) is out
    assert_exact(out, want)
    assert not np.signbit(out).any()
    assert passes == [kernels == "compiled"]  # one compiled pass (or, without numba, none: NumPy's two passes)


def test_bias_relu_warns_about_an_overflowing_sum_as_numpy_does(kernels):
    x = np.full((64, 64), 3e38, np.float32)
    with pytest.warns(RuntimeWarning, match="overflow encountered in add"):
        y = bias_activation(x, np.full(64, 3e38, np.float32), "relu")
    assert np.isposinf(y).all()
    x[5, 7] = np.nan
    with np.errstate(over="ignore"):
        y = bias_activation(x, np.full(64, -3e38, np.float32), "relu")
    assert np.isnan(y[5, 7]) and (np.delete(y.reshape(-1), 5 * 64 + 7) == 0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_activation_with_a_bias_inside_out(kernels, dtype):
    # out's first row is the bias: rows written first must not be read as the bias of the rows after them
    for shape in ((32, 64), (4096, 64)):
        out = np.zeros(shape, dtype)
        bias = out[0]
        bias[:] = -1.0
        x = np.ones(shape, dtype)
        want = np.maximum(x.astype(np.float64) - 1.0, 0).astype(dtype)  # relu(x + b) with b = -1 everywhere
        assert bias_activation(x, bias, "relu", out=out) is out
        assert_exact(out, want)
        out[0] = -1.0
        bias_activation(x, out[0], "silu", out=out)
        assert_exact(out, rl.silu(np.zeros(shape, dtype)))


def test_bias_activation_with_a_python_number_keeps_x_dtype_as_the_sum_does():
    x = np.linspace(-2, 2, 4096, dtype=np.float32).reshape(64, 64)
    for bias in (0.5, -1, 3):
        y = bias_activation(x, bias, "relu")
        assert y.dtype == (x + bias).dtype == np.float32
        assert_exact(y, np.maximum(x.astype(np.float64) + bias, 0).astype(np.float32))
        assert bias_activation(x, bias, "gelu").dtype == np.float32
    assert bias_activation(x, np.float64(0.5), "relu").dtype == np.float64  # a NumPy scalar promotes, as in x + b


def test_bias_activation_that_raises_leaves_out_untouched(kernels):
    x = np.full((64, 64), 3e38, np.float32)
    out = np.full((64, 64), 7.0, np.float32)
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        bias_activation(x, np.full(64, 3e38, np.float32), "relu", out=out)
    assert (out == 7.0).all()
