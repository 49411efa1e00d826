"""The one input boundary (family/_input.py) and the parameter ranges, pinned for the findings of issue 10.

References are direct float64 formulas in the test (math module), never the code under test.
"""

import math
import warnings

import numpy as np
import pytest

import relulab as rl

MEMBERS = [n for n in rl.names() if not rl.get(n).takes_weight]


def _matrix(rows):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # np.matrix itself warns on creation
        return np.matrix(rows)


def test_np_matrix_is_computed_elementwise_as_a_plain_array():
    # Was: gelu(np.matrix) used the matrix product inside the kernel and returned wrong numbers.
    x = _matrix([[1.0, 2.0], [-3.0, 4.0]])
    got = rl.gelu(x)
    assert type(got) is np.ndarray and got.shape == (2, 2)
    want = [[v * 0.5 * math.erfc(-v / math.sqrt(2)) for v in row] for row in [[1.0, 2.0], [-3.0, 4.0]]]
    np.testing.assert_allclose(got, want, rtol=1e-14)
    grads = rl.silu.grad(x)
    s = lambda v: 1 / (1 + math.exp(-v))
    np.testing.assert_allclose(grads, [[s(v) * (1 + v * (1 - s(v))) for v in row] for row in [[1, 2], [-3, 4]]],
                               rtol=1e-14)


@pytest.mark.parametrize("name", MEMBERS)
def test_every_member_takes_np_matrix_like_its_plain_array(name):
    data = [[0.5, -1.5], [2.5, -0.25]]
    member = rl.get(name)
    np.testing.assert_array_equal(member(_matrix(data)), member(np.array(data)))
    np.testing.assert_array_equal(member.grad(_matrix(data)), member.grad(np.array(data)))


def test_out_may_be_a_matrix_and_is_returned():
    out = _matrix([[0.0, 0.0]])
    result = rl.mish(np.array([[1.0, -2.0]]), out=out)
    assert result is out
    t = lambda v: v * math.tanh(math.log1p(math.exp(v)))
    np.testing.assert_allclose(np.asarray(out), [[t(1.0), t(-2.0)]], rtol=1e-14)


@pytest.mark.parametrize("name", MEMBERS)
def test_masked_arrays_are_refused_naming_x(name):
    # Was: some members dropped the mask, others kept it.
    x = np.ma.masked_array([1.0, -2.0], mask=[False, True])
    member = rl.get(name)
    with pytest.raises(TypeError, match=r"^x is a numpy\.ma\.MaskedArray; .*x\.filled\(value\)"):
        member(x)
    with pytest.raises(TypeError, match=r"^x is a numpy\.ma\.MaskedArray"):
        member.grad(x)
    with pytest.raises(TypeError, match=r"^out is a numpy\.ma\.MaskedArray"):
        member(np.array([1.0, -2.0]), out=np.ma.masked_array([0.0, 0.0]))


def test_torch_tensors_are_refused_with_a_pointer_to_relulab_nn():
    torch = pytest.importorskip("torch")
    for tensor in (torch.tensor([1.0, -1.0]), torch.tensor([1.0], requires_grad=True)):
        with pytest.raises(TypeError, match=r"^x is a torch\.Tensor; .*relulab\.nn\.functional"):
            rl.relu(tensor)
        with pytest.raises(TypeError, match=r"^x is a torch\.Tensor"):
            rl.gelu.grad(tensor)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize(("name", "params", "reference"), [
    ("celu", {"alpha": 1e39}, lambda v: v if v > 0 else 1e39 * math.expm1(v / 1e39)),
    ("elu", {"alpha": 1e39}, lambda v: v if v > 0 else 1e39 * math.expm1(v)),
    ("leaky_relu", {"negative_slope": 1e39}, lambda v: v if v > 0 else 1e39 * v),
    ("leaky_relu", {"negative_slope": 1e-46}, lambda v: v if v > 0 else 1e-46 * v),
    ("softplus", {"beta": 1e39}, lambda v: max(v, 0.0) + math.log1p(math.exp(-abs(1e39 * v))) / 1e39),
    ("softplus", {"beta": 1e-50, "threshold": math.inf}, lambda v: math.log(2) * 1e50 + v / 2),
])
def test_parameters_beyond_float32_give_the_rounded_float64_value(name, params, reference, dtype):
    # Was: NaN with RuntimeWarnings (the parameter rounded to inf or 0 in float32, then 0 * inf).
    xs = np.array([-3.0, -1.0, -1e-30, -0.0, 0.0, 1e-30, 0.5, 2.0], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = rl.get(name)(xs, **params)
    assert got.dtype == dtype
    with np.errstate(over="ignore"):
        want = np.array([reference(float(v)) for v in xs], dtype=np.float64).astype(dtype)
    np.testing.assert_array_equal(got, want)


def test_softplus_of_huge_x_does_not_overflow_through_beta_x():
    # Was inf: beta * x overflowed before the division by beta.
    assert rl.softplus(1e308, beta=2, threshold=math.inf) == 1e308
    assert rl.softplus(-1e308, beta=2, threshold=math.inf) == 0.0
    assert rl.softplus.grad(1e308, beta=2, threshold=math.inf) == 1.0


def test_softplus_threshold_takes_any_real_number_as_torch():
    x = np.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    got = rl.softplus(x, beta=2.0, threshold=-100.0)
    np.testing.assert_array_equal(got, x)  # 2x > -100 everywhere: the linear branch, as torch's kernel
    got = rl.softplus(x, beta=2.0, threshold=-2.0)
    want = [v if 2 * v > -2 else math.log1p(math.exp(2 * v)) / 2 for v in x]
    np.testing.assert_allclose(got, want, rtol=1e-15)
    with pytest.raises(ValueError, match=r"^softplus: threshold must be a real number in \[-inf, inf\]; got nan"):
        rl.softplus(x, threshold=math.nan)


@pytest.mark.parametrize("call", [
    lambda: rl.relu.grad([0.0], at_zero=10**400),
    lambda: rl.prelu([1.0], 10**400),
    lambda: rl.prelu([1.0, 2.0], [1, 10**400], channel_axis=0),
    lambda: rl.celu([1.0], alpha=10**5000),
])
def test_huge_python_ints_give_a_value_error_naming_the_argument(call):
    with pytest.raises(ValueError, match=r"^(relu: at_zero|prelu: weight|celu: alpha)"):
        call()


def test_integer_overflow_of_leaky_relu_is_a_value_error_too():
    with pytest.raises(ValueError, match=r"^leaky_relu: negative_slope=4 times the input"):
        rl.leaky_relu(np.array([-2**62]), negative_slope=4)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_celu_of_tiny_x_with_a_large_alpha_is_x(dtype):
    # Found by the fuzz harness: x / alpha below the smallest normal kept only a subnormal's bits, 2e-5 off in
    # float32 (x = -4.4895e-29, alpha = 1.8e12). f = x (1 + x / (2 alpha) + ...) rounds to x there.
    tiny = float(np.finfo(dtype).tiny)
    alpha = 1.789579034625e12 if dtype != np.float16 else 1e4
    x = np.array([-4.4895e-29 if dtype == np.float32 else -alpha * tiny / 3, -alpha * tiny / 1e3, -0.0], dtype)
    got = rl.celu(x, alpha=alpha)
    np.testing.assert_array_equal(got, x)
    assert np.signbit(got[-1])
