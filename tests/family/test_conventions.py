"""The conventions in the README (section "Conventions"), each pinned by a test named after it.

The expected numbers come from the mathematics (limits, exact kink values), from float64 arithmetic done here,
or from PyTorch; never from relulab itself.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import relulab as rl

FLOATS = (np.float16, np.float32, np.float64)
INF, NAN = math.inf, math.nan
SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_LAMBDA_ALPHA = 1.75809934084737685994  # lambda * alpha to 21 digits
RRELU_MEAN = (1 / 8 + 1 / 3) / 2  # 11/48
PRELU_WEIGHT = 0.25
SOFTPLUS_AT_THRESHOLD = 20.0 + math.log1p(math.exp(-20.0))  # f(20) = log(1 + e^20): 20 is not > threshold
SIGMOID_20 = 1.0 / (1.0 + math.exp(-20.0))

# Zeros whose sign is part of the convention; a plain 0.0 in the table accepts either sign.
PLUS_ZERO, MINUS_ZERO = "+0.0", "-0.0"

# The edge table: member, x, f(x), f'(x) at the default parameters (prelu: one slope, 0.25). Kinks: relu6 at 6,
# hardswish at -3 and 3, softplus's switch to x at beta x > threshold = 20.
EDGE_TABLE = [
    ("relu", -INF, PLUS_ZERO, 0.0), ("relu", -0.0, PLUS_ZERO, 0.0), ("relu", 0.0, PLUS_ZERO, 0.0),
    ("relu", INF, INF, 1.0), ("relu", NAN, NAN, NAN),
    ("leaky_relu", -INF, -INF, 0.01), ("leaky_relu", -0.0, MINUS_ZERO, 0.01), ("leaky_relu", 0.0, PLUS_ZERO, 0.01),
    ("leaky_relu", INF, INF, 1.0), ("leaky_relu", NAN, NAN, NAN),
    ("prelu", -INF, -INF, PRELU_WEIGHT), ("prelu", -0.0, 0.0, PRELU_WEIGHT), ("prelu", 0.0, 0.0, PRELU_WEIGHT),
    ("prelu", INF, INF, 1.0), ("prelu", NAN, NAN, NAN),
    ("rrelu", -INF, -INF, RRELU_MEAN), ("rrelu", -0.0, 0.0, RRELU_MEAN), ("rrelu", 0.0, 0.0, RRELU_MEAN),
    ("rrelu", INF, INF, 1.0), ("rrelu", NAN, NAN, NAN),
    ("elu", -INF, -1.0, 0.0), ("elu", -0.0, 0.0, 1.0), ("elu", 0.0, 0.0, 1.0), ("elu", INF, INF, 1.0),
    ("elu", NAN, NAN, NAN),
    ("selu", -INF, -SELU_LAMBDA_ALPHA, 0.0), ("selu", -0.0, 0.0, SELU_LAMBDA_ALPHA),
    ("selu", 0.0, 0.0, SELU_LAMBDA_ALPHA), ("selu", INF, INF, SELU_LAMBDA), ("selu", NAN, NAN, NAN),
    ("celu", -INF, -1.0, 0.0), ("celu", -0.0, 0.0, 1.0), ("celu", 0.0, 0.0, 1.0), ("celu", INF, INF, 1.0),
    ("celu", NAN, NAN, NAN),
    ("relu6", -INF, PLUS_ZERO, 0.0), ("relu6", -0.0, PLUS_ZERO, 0.0), ("relu6", 0.0, PLUS_ZERO, 0.0),
    ("relu6", 6.0, 6.0, 0.0), ("relu6", INF, 6.0, 0.0), ("relu6", NAN, NAN, NAN),
    ("hardswish", -INF, 0.0, 0.0), ("hardswish", -3.0, 0.0, 0.0), ("hardswish", -0.0, 0.0, 0.5),
    ("hardswish", 0.0, 0.0, 0.5), ("hardswish", 3.0, 3.0, 1.0), ("hardswish", INF, INF, 1.0),
    ("hardswish", NAN, NAN, NAN),
    ("hard_sigmoid", -INF, 0.0, 0.0), ("hard_sigmoid", -3.0, 0.0, 0.0), ("hard_sigmoid", -0.0, 0.5, 1 / 6),
    ("hard_sigmoid", 0.0, 0.5, 1 / 6), ("hard_sigmoid", 3.0, 1.0, 0.0), ("hard_sigmoid", INF, 1.0, 0.0),
    ("hard_sigmoid", NAN, NAN, NAN),
    ("hard_tanh", -INF, -1.0, 0.0), ("hard_tanh", -1.0, -1.0, 0.0), ("hard_tanh", -0.0, MINUS_ZERO, 1.0),
    ("hard_tanh", 0.0, PLUS_ZERO, 1.0), ("hard_tanh", 1.0, 1.0, 0.0), ("hard_tanh", INF, 1.0, 0.0),
    ("hard_tanh", NAN, NAN, NAN),
    ("quick_gelu", -INF, 0.0, 0.0), ("quick_gelu", -0.0, 0.0, 0.5), ("quick_gelu", 0.0, 0.0, 0.5),
    ("quick_gelu", INF, INF, 1.0), ("quick_gelu", NAN, NAN, NAN),
    ("squared_relu", -INF, 0.0, 0.0), ("squared_relu", -0.0, 0.0, 0.0), ("squared_relu", 0.0, 0.0, 0.0),
    ("squared_relu", INF, INF, INF), ("squared_relu", NAN, NAN, NAN),
    ("gelu", -INF, 0.0, 0.0), ("gelu", -0.0, 0.0, 0.5), ("gelu", 0.0, 0.0, 0.5), ("gelu", INF, INF, 1.0),
    ("gelu", NAN, NAN, NAN),
    ("silu", -INF, 0.0, 0.0), ("silu", -0.0, 0.0, 0.5), ("silu", 0.0, 0.0, 0.5), ("silu", INF, INF, 1.0),
    ("silu", NAN, NAN, NAN),
    ("mish", -INF, 0.0, 0.0), ("mish", -0.0, 0.0, 0.6), ("mish", 0.0, 0.0, 0.6),  # f'(0) = tanh(log 2) = 3/5
    ("mish", INF, INF, 1.0), ("mish", NAN, NAN, NAN),
    ("softplus", -INF, 0.0, 0.0), ("softplus", -0.0, math.log(2.0), 0.5), ("softplus", 0.0, math.log(2.0), 0.5),
    ("softplus", 20.0, SOFTPLUS_AT_THRESHOLD, SIGMOID_20), ("softplus", INF, INF, 1.0),
    ("softplus", NAN, NAN, NAN),
    ("sigmoid", -INF, 0.0, 0.0), ("sigmoid", -0.0, 0.5, 0.25), ("sigmoid", 0.0, 0.5, 0.25), ("sigmoid", INF, 1.0, 0.0),
    ("sigmoid", NAN, NAN, NAN),
    ("tanh", -INF, -1.0, 0.0), ("tanh", -0.0, 0.0, 1.0), ("tanh", 0.0, 0.0, 1.0), ("tanh", INF, 1.0, 0.0),
    ("tanh", NAN, NAN, NAN),
    ("identity", -INF, -INF, 1.0), ("identity", -0.0, MINUS_ZERO, 1.0), ("identity", 0.0, PLUS_ZERO, 1.0),
    ("identity", INF, INF, 1.0), ("identity", NAN, NAN, NAN),
    ("squareplus", -INF, 0.0, 0.0), ("squareplus", -0.0, 1.0, 0.5), ("squareplus", 0.0, 1.0, 0.5),
    ("squareplus", INF, INF, 1.0), ("squareplus", NAN, NAN, NAN),
    ("sparse_plus", -INF, 0.0, 0.0), ("sparse_plus", -1.0, 0.0, 0.0), ("sparse_plus", -0.0, 0.25, 0.5),
    ("sparse_plus", 0.0, 0.25, 0.5), ("sparse_plus", 1.0, 1.0, 1.0), ("sparse_plus", INF, INF, 1.0),
    ("sparse_plus", NAN, NAN, NAN),
]


def extra_args(name: str) -> tuple:
    return (PRELU_WEIGHT,) if name == "prelu" else ()


def value(name, x, **kw):
    return rl.get(name)(x, *extra_args(name), **kw)


def grad(name, x, **kw):
    return rl.get(name).grad(x, *extra_args(name), **kw)


def assert_edge(got, expected, dtype, what):
    got = np.asarray(got)
    assert got.dtype == dtype, what
    got = float(got)
    if isinstance(expected, str):
        sign = 1.0 if expected == PLUS_ZERO else -1.0
        assert got == 0.0 and math.copysign(1.0, got) == sign, f"{what}: {got!r}, want {expected}"
    elif math.isnan(expected):
        assert math.isnan(got), f"{what}: {got!r}, want nan"
    elif math.isinf(expected) or expected == 0.0:
        assert got == expected, f"{what}: {got!r}, want {expected!r}"
    else:
        want = float(np.asarray(expected, dtype))  # the expected value rounded to the dtype
        assert got == pytest.approx(want, rel=4 * float(np.finfo(dtype).eps), abs=0), f"{what}: {got!r} != {want!r}"


def edge_rows(predicate):
    rows = [row for row in EDGE_TABLE if predicate(row[1])]
    return pytest.mark.parametrize(("name", "x", "want_value", "want_grad"), rows,
                                   ids=[f"{r[0]}({r[1]!r})" for r in rows])


def test_edge_table_covers_every_member():
    assert {row[0] for row in EDGE_TABLE} == set(rl.names())
    for name in rl.names():
        covered = {repr(row[1]) for row in EDGE_TABLE if row[0] == name}
        assert {"-inf", "-0.0", "0.0", "inf", "nan"} <= covered, name
        for kink in rl.get(name).properties.kinks:
            assert repr(kink) in covered, (name, kink)


@pytest.mark.parametrize("dtype", FLOATS)
@edge_rows(lambda x: math.isinf(x))
def test_infinity_limits(name, x, want_value, want_grad, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_edge(value(name, np.array([x], dtype))[0], want_value, dtype, f"{name}({x})")
        assert_edge(grad(name, np.array([x], dtype))[0], want_grad, dtype, f"{name}'({x})")


@pytest.mark.parametrize("dtype", FLOATS)
@edge_rows(lambda x: x == 0.0)
def test_values_and_derivatives_at_signed_zeros(name, x, want_value, want_grad, dtype):
    assert_edge(value(name, np.array([x], dtype))[0], want_value, dtype, f"{name}({x!r})")
    assert_edge(grad(name, np.array([x], dtype))[0], want_grad, dtype, f"{name}'({x!r})")


@pytest.mark.parametrize("dtype", FLOATS)
@edge_rows(lambda x: x not in (0.0,) and math.isfinite(x))
def test_values_and_derivatives_at_kinks(name, x, want_value, want_grad, dtype):
    assert_edge(value(name, np.array([x], dtype))[0], want_value, dtype, f"{name}({x!r})")
    assert_edge(grad(name, np.array([x], dtype))[0], want_grad, dtype, f"{name}'({x!r})")


# -- NaN -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", rl.names())
def test_nan_in_nan_out(name, dtype):
    x = np.array([NAN, -1.0, 0.0, 1.0, NAN, 7.0], dtype)
    is_nan = np.isnan(x)
    for result in (value(name, x), grad(name, x)):
        assert result.dtype == dtype
        np.testing.assert_array_equal(np.isnan(result), is_nan)  # NaN exactly where x is NaN, never 0
    assert np.isnan(value(name, dtype(NAN))) and np.isnan(grad(name, dtype(NAN)))


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "prelu", "rrelu", "elu", "selu", "relu6"])
def test_nan_in_nan_out_with_any_at_zero(name):
    at_zero = SELU_LAMBDA if name == "selu" else 1.0  # the upper end of each subdifferential at 0
    np.testing.assert_array_equal(grad(name, np.array([NAN, 0.0]), at_zero=at_zero), [NAN, at_zero])


def test_nan_in_nan_out_for_rrelu_training_and_per_channel_prelu():
    x = np.array([[NAN, -1.0], [2.0, NAN]])
    assert np.isnan(rl.rrelu(x, training=True, seed=0)[[0, 1], [0, 1]]).all()
    assert np.isnan(rl.rrelu.grad(x, training=True, seed=0)[[0, 1], [0, 1]]).all()
    assert np.isnan(rl.prelu(x, [0.1, 0.2])[[0, 1], [0, 1]]).all()
    assert np.isnan(rl.prelu.grad(x, [0.1, 0.2])[[0, 1], [0, 1]]).all()
    assert np.isnan(rl.prelu.grad_weight(x, [0.1, 0.2])[[0, 1], [0, 1]]).all()
    assert not np.isnan(rl.prelu(x, [0.1, 0.2])[[0, 1], [1, 0]]).any()


# -- kinks -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
def test_relu_grad_at_zero_is_zero(dtype):
    np.testing.assert_array_equal(rl.relu.grad(np.array([-0.0, 0.0], dtype)), [0.0, 0.0])
    assert rl.relu.grad(0) == 0.0 and rl.relu.grad(0.0) == 0.0


def test_at_zero_picks_any_subgradient():
    x = np.array([-2.0, -0.0, 0.0, 2.0])
    for at_zero in (0.0, 0.25, 0.5, 1.0):
        np.testing.assert_array_equal(rl.relu.grad(x, at_zero=at_zero), [0.0, at_zero, at_zero, 1.0])
        np.testing.assert_array_equal(rl.relu6.grad(np.append(x, 6.0), at_zero=at_zero),
                                      [0.0, at_zero, at_zero, 1.0, 0.0])
    np.testing.assert_array_equal(rl.leaky_relu.grad(x, negative_slope=0.1, at_zero=0.5), [0.1, 0.5, 0.5, 1.0])
    np.testing.assert_array_equal(rl.elu.grad(x, alpha=2.0, at_zero=1.5)[1:3], [1.5, 1.5])
    np.testing.assert_array_equal(rl.selu.grad(x, at_zero=SELU_LAMBDA * 1.5)[1:3], [SELU_LAMBDA * 1.5] * 2)
    np.testing.assert_array_equal(rl.prelu.grad(x, 0.2, at_zero=0.6), [0.2, 0.6, 0.6, 1.0])
    np.testing.assert_array_equal(rl.rrelu.grad(x, at_zero=0.5), [RRELU_MEAN, 0.5, 0.5, 1.0])


def test_leaky_relu_grad_at_zero_is_slope():
    np.testing.assert_array_equal(rl.leaky_relu.grad([-0.0, 0.0]), [0.01, 0.01])  # PyTorch, not JAX's 1
    np.testing.assert_array_equal(rl.leaky_relu.grad([0.0], negative_slope=0.3), [0.3])
    assert rl.leaky_relu.grad(0.0, at_zero=1.0) == 1.0  # JAX's choice is still available


def test_relu6_grad_at_six_is_zero():
    np.testing.assert_array_equal(rl.relu6.grad([np.nextafter(6.0, 0.0), 6.0, np.nextafter(6.0, 7.0)]), [1, 0, 0])
    assert rl.relu6.grad(6.0, at_zero=1.0) == 0.0  # at_zero is about x = 0 only
    assert rl.relu6.grad(np.float16(6.0)) == 0.0 and rl.relu6.grad(6) == 0.0


def test_elu_grad_at_zero_is_alpha():
    for alpha in (0.5, 1.0, 2.0):
        assert rl.elu.grad(0.0, alpha=alpha) == alpha


def test_hardswish_grad_at_kinks_takes_the_outer_branch():
    np.testing.assert_array_equal(rl.hardswish.grad([-3.0, 3.0]), [0.0, 1.0])


def test_hard_sigmoid_and_hard_tanh_grad_at_kinks_are_zero_like_torch():
    np.testing.assert_array_equal(rl.hard_sigmoid.grad([-3.0, np.nextafter(-3.0, 0.0), 3.0]), [0.0, 1 / 6, 0.0])
    np.testing.assert_array_equal(rl.hard_tanh.grad([-1.0, np.nextafter(1.0, 0.0), 1.0]), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(rl.hard_tanh.grad([0.0, 6.0, 3.0], min_val=0.0, max_val=6.0), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(rl.hard_tanh([-7.0, 3.0, 9.0], min_val=0.0, max_val=6.0), rl.relu6([-7.0, 3.0, 9.0]))


def test_members_without_a_kink_have_continuous_derivatives_at_zero():
    # celu for every alpha, squared_relu: f'(0-) = f'(0+), and the derivative at 0 is that value.
    tiny = 1e-12
    for alpha in (0.3, 1.0, 2.0):
        left, at, right = rl.celu.grad([-tiny, 0.0, tiny], alpha=alpha)
        assert left == pytest.approx(1.0, abs=1e-11) and at == 1.0 and right == 1.0
    np.testing.assert_array_equal(rl.squared_relu.grad([-tiny, 0.0, tiny]), [0.0, 0.0, 2 * tiny])


def test_at_zero_outside_the_subdifferential_raises():
    cases = [
        (rl.relu, {}, 1.5, r"\[0, 1\]"), (rl.relu, {}, -0.1, r"\[0, 1\]"),
        (rl.leaky_relu, {}, 0.005, r"\[0.01, 1\]"), (rl.leaky_relu, {"negative_slope": 0.2}, 1.01, r"\[0.2, 1\]"),
        (rl.elu, {"alpha": 2.0}, 0.5, r"\[1, 2\]"), (rl.relu6, {}, 2.0, r"\[0, 1\]"),
        (rl.selu, {}, 1.0, r"\[1.0507, 1.7581\]"), (rl.rrelu, {}, 0.1, r"\[0.229167, 1\]"),
    ]
    for member, params, at_zero, interval in cases:
        message = rf"^{member.name}: at_zero must lie in the subdifferential at 0, {interval}; got {at_zero!r}"
        with pytest.raises(ValueError, match=message):
            member.grad(0.0, at_zero=at_zero, **params)
    with pytest.raises(ValueError, match=r"at_zero must lie in the subdifferential at 0, \[0.5, 1\]; got 0.3"):
        rl.prelu.grad([[0.0, 0.0]], [0.1, 0.5], at_zero=0.3)  # every channel's interval must contain it
    with pytest.raises(ValueError, match="got nan"):
        rl.relu.grad(0.0, at_zero=NAN)


SMOOTH_AT_ZERO = ["celu", "hardswish", "hard_sigmoid", "hard_tanh", "squared_relu", "gelu", "silu", "quick_gelu",
                  "mish", "softplus", "sigmoid", "tanh", "identity", "squareplus", "sparse_plus"]


@pytest.mark.parametrize("name", SMOOTH_AT_ZERO)
def test_at_zero_on_a_member_smooth_at_zero_raises(name):
    message = rf"^{name}: at_zero=0.5 does not apply, {name} is differentiable at 0; at_zero applies to .*relu"
    with pytest.raises(ValueError, match=message):
        grad(name, 0.0, at_zero=0.5)


def test_members_with_a_kink_at_zero_are_exactly_the_others():
    assert {n for n in rl.names() if rl.get(n).has_kink_at_zero} == set(rl.names()) - set(SMOOTH_AT_ZERO)


# -- signed zeros ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
def test_relu_of_negative_zero_is_positive_zero(dtype):
    for result in (rl.relu(dtype(-0.0)), rl.relu(np.array([-0.0], dtype))[0], rl.relu6(np.array([-0.0], dtype))[0]):
        assert result == 0 and not np.signbit(result)
    out = np.full(3, -1.0, dtype)
    rl.relu(np.array([-0.0, -5.0, -np.inf], dtype), out=out)
    assert not np.signbit(out).any() and (out == 0).all()


def test_leaky_relu_of_negative_zero_is_negative_zero():
    assert np.signbit(rl.leaky_relu(-0.0)) and not np.signbit(rl.leaky_relu(0.0))


# -- dtypes ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", rl.names())
def test_float_dtypes_are_kept(name, dtype):
    x = np.linspace(-8, 8, 33).astype(dtype)
    assert value(name, x).dtype == dtype and grad(name, x).dtype == dtype
    assert type(value(name, dtype(1.5))) is dtype and type(grad(name, dtype(1.5))) is dtype


def test_float32_keeps_float32():
    x = np.array([-2.0, 0.5, 3.0], np.float32)
    for name in rl.names():
        assert value(name, x).dtype == np.float32 and grad(name, x).dtype == np.float32, name


# Inputs near and at float16's limits and the true results, which must come back correctly rounded to float16
# (inf where the true value is beyond 65520, the overflow threshold): e.g. selu(65504) = 1.0507 * 65504 = 68825.
FLOAT16_CASES = [
    ("relu", [65504.0, -65504.0], [65504.0, 0.0]),
    ("leaky_relu", [65504.0, -65504.0], [65504.0, -655.04]),
    ("elu", [65504.0, -65504.0], [65504.0, -1.0]),
    ("selu", [65504.0, 60000.0, -65504.0], [INF, SELU_LAMBDA * 60000.0, -SELU_LAMBDA_ALPHA]),
    ("relu6", [65504.0, -65504.0], [6.0, 0.0]),
    ("squared_relu", [255.0, 256.0, 300.0, 65504.0], [65025.0, INF, INF, INF]),  # 256^2 > 65520 rounds to inf
    ("hardswish", [65504.0, -65504.0], [65504.0, 0.0]),
    ("gelu", [65504.0, -65504.0], [65504.0, 0.0]),
    ("silu", [65504.0, -65504.0], [65504.0, 0.0]),
    ("mish", [65504.0, -65504.0], [65504.0, 0.0]),
    ("softplus", [65504.0, -65504.0], [65504.0, 0.0]),
    ("sigmoid", [65504.0, -65504.0], [1.0, 0.0]),
    ("tanh", [65504.0, -65504.0], [1.0, -1.0]),
    ("identity", [65504.0, -65504.0], [65504.0, -65504.0]),
]


@pytest.mark.parametrize(("name", "x", "want"), FLOAT16_CASES, ids=[c[0] for c in FLOAT16_CASES])
def test_float16_no_overflow_warnings(name, x, want):
    x16 = np.array(x, np.float16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = value(name, x16)
        derivative = grad(name, x16)
    assert got.dtype == np.float16 and derivative.dtype == np.float16
    want16 = np.array([np.float16(w) if math.isfinite(w) else w for w in want], np.float16)  # correctly rounded
    np.testing.assert_array_equal(got, want16)
    assert not np.isnan(derivative).any()


def test_float16_large_inputs_all_members_no_warnings():
    x = np.array([-65504, -60000, -1e4, -300, -11, 11, 300, 1e4, 60000, 65504], np.float16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in rl.names():
            for result in (value(name, x), grad(name, x)):
                assert result.dtype == np.float16 and not np.isnan(result).any(), name


# -- subnormals -------------------------------------------------------------------------------------------------
SMALLEST = 5e-324  # the smallest positive float64 (a subnormal)
SUB = 2.0**-1060  # a subnormal that halves and quarters exactly


def test_subnormals_pass_through_relu_exactly():
    assert rl.relu(SMALLEST) == SMALLEST and rl.relu(-SMALLEST) == 0.0
    assert rl.relu6(SMALLEST) == SMALLEST and rl.identity(-SMALLEST) == -SMALLEST
    assert rl.relu(np.float32(1e-45)) == np.float32(1e-45)
    assert rl.relu(np.float16(6e-8)) == np.float16(6e-8)


def test_subnormals_are_not_zero_for_the_derivative():
    # No flush-to-zero: a subnormal is on its side of the kink, so at_zero does not apply to it.
    np.testing.assert_array_equal(rl.relu.grad([-SMALLEST, SMALLEST], at_zero=0.5), [0.0, 1.0])
    np.testing.assert_array_equal(rl.leaky_relu.grad([-SMALLEST, SMALLEST], at_zero=0.5), [0.01, 1.0])
    np.testing.assert_array_equal(rl.relu.grad(np.array([-1e-45, 1e-45], np.float32), at_zero=0.5), [0, 1])


def test_subnormals_leaky_relu_of_a_negative_subnormal():
    assert rl.leaky_relu(-SUB, negative_slope=0.25) == -(2.0**-1062)  # exact
    assert rl.leaky_relu(-1e-310) == -1e-310 * 0.01  # the correctly rounded float64 product
    assert rl.prelu(-SUB, 0.5) == -(2.0**-1061)


@pytest.mark.parametrize("name", ["gelu", "silu"])
def test_subnormals_gelu_and_silu_near_zero_are_half_x(name):
    # f(x) = x/2 + O(x^2) and f'(0) = 1/2: for subnormal x, x/2 exactly.
    np.testing.assert_array_equal(value(name, np.array([SUB, -SUB])), [SUB / 2, -SUB / 2])
    np.testing.assert_array_equal(grad(name, np.array([SUB, -SUB])), [0.5, 0.5])
    sub32 = np.float32(2.0**-147)  # a float32 subnormal that halves exactly
    half32 = np.array([2.0**-148, -(2.0**-148)], np.float32)
    np.testing.assert_array_equal(value(name, np.array([sub32, -sub32])), half32)


def test_subnormals_other_smooth_members_are_linear_near_zero():
    assert abs(rl.mish(SUB) - 0.6 * SUB) <= SMALLEST  # mish'(0) = 3/5
    assert rl.elu(-SMALLEST) == -SMALLEST and rl.celu(-SUB, alpha=2.0) == -SUB
    assert rl.tanh(SUB) == SUB and rl.hardswish(SUB) == SUB / 2
    assert rl.selu(SUB) == SELU_LAMBDA * SUB
    assert rl.softplus(SMALLEST) == math.log(2.0) and rl.sigmoid(SMALLEST) == 0.5


# -- integers ---------------------------------------------------------------------------------------------------
def test_relu_of_integers_is_integer():
    result = rl.relu([-2, -1, 0, 1, 2])
    assert result.dtype.kind == "i"
    np.testing.assert_array_equal(result, [0, 0, 0, 1, 2])


INTEGER_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


@pytest.mark.parametrize("dtype", INTEGER_DTYPES)
def test_relu_relu6_and_identity_keep_integer_dtypes(dtype):
    unsigned = np.issubdtype(dtype, np.unsignedinteger)
    x = np.array([0, 1, 5, 6, 100] if unsigned else [-100, -1, 0, 1, 5, 6, 100], dtype)
    as_float = x.astype(np.float64)
    for name, expect in [("relu", np.maximum(as_float, 0)), ("relu6", np.clip(as_float, 0, 6)),
                         ("identity", as_float)]:
        result = value(name, x)
        assert result.dtype == dtype, name
        np.testing.assert_array_equal(result, expect)


def test_leaky_relu_keeps_integers_only_for_a_whole_slope():
    x = np.array([-3, -1, 0, 2], np.int32)
    for slope in (0, 1, 2, -1, 3.0):
        result = rl.leaky_relu(x, negative_slope=slope)
        assert result.dtype == np.int32, slope
        np.testing.assert_array_equal(result, np.where(x > 0, x, x * int(slope)))
    result = rl.leaky_relu(x, negative_slope=0.5)
    assert result.dtype == np.float64
    np.testing.assert_array_equal(result, [-1.5, -0.5, 0.0, 2.0])
    assert rl.leaky_relu(x).dtype == np.float64  # the default slope, 0.01


def test_leaky_relu_integer_overflow_raises_instead_of_wrapping():
    with pytest.raises(OverflowError, match=r"negative_slope=2 times the input -100 is -200, outside the range of "
                                            r"int8 \[-128, 127\]; pass a float array"):
        rl.leaky_relu(np.array([-100, 5], np.int8), negative_slope=2)
    with pytest.raises(OverflowError, match="outside the range of int8"):
        rl.leaky_relu(np.array([-128], np.int8), negative_slope=-1)
    np.testing.assert_array_equal(rl.leaky_relu(np.array([-64, 5], np.int8), negative_slope=2), [-128, 5])
    np.testing.assert_array_equal(rl.leaky_relu([1, 2], negative_slope=1e20), [1, 2])  # no negatives: nothing to scale


@pytest.mark.parametrize("name", [n for n in rl.names() if n not in ("relu", "relu6", "identity", "leaky_relu")])
def test_other_members_promote_integers_to_float64(name):
    x = np.array([-2, 0, 3], np.int16)
    result = value(name, x)
    assert result.dtype == np.float64
    np.testing.assert_array_equal(result, value(name, x.astype(np.float64)))


@pytest.mark.parametrize("name", rl.names())
def test_grad_of_integers_is_float64(name):
    x = np.array([-2, 0, 3], np.int8)
    result = grad(name, x)
    assert result.dtype == np.float64
    np.testing.assert_array_equal(result, grad(name, x.astype(np.float64)))


# -- shapes, scalars, views, out= -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", rl.names())
def test_scalars_in_numpy_scalar_out(name):
    # Like a ufunc: a Python or NumPy scalar gives a NumPy scalar of the result dtype.
    cases = [(1.5, np.float64), (-2, np.int64 if name in ("relu", "relu6", "identity") else np.float64),
             (np.float32(-1.5), np.float32), (np.float16(0.5), np.float16)]
    for x, want_type in cases:
        assert type(value(name, x)) is want_type, (name, x)
        assert type(grad(name, x)) is (want_type if want_type is not np.int64 else np.float64), (name, x)
    assert value(name, 1.5) == value(name, np.array([1.5]))[0]


@pytest.mark.parametrize("name", rl.names())
def test_zero_d_arrays_give_numpy_scalars_like_ufuncs(name):
    x = np.array(-1.25)
    assert type(value(name, x)) is type(np.maximum(x, 0.0))  # NumPy's own rule for 0-d inputs
    assert value(name, x) == value(name, np.array([-1.25]))[0]
    out = np.empty(())
    assert value(name, x, out=out) is out and out[()] == value(name, -1.25)
    assert grad(name, x, out=np.empty(())) == grad(name, -1.25)


@pytest.mark.parametrize("name", rl.names())
def test_empty_arrays(name):
    for shape in [(0,), (3, 0), (0, 2, 4)]:
        x = np.empty(shape, np.float32)
        assert value(name, x).shape == shape and value(name, x).dtype == np.float32
        assert grad(name, x).shape == shape
    assert value(name, []).shape == (0,)


@pytest.mark.parametrize("name", rl.names())
def test_non_contiguous_views(name):
    base = np.linspace(-7, 7, 60).reshape(6, 10)
    for view in (base[:, ::2], base.T, base[::-2, 1::3]):
        assert not view.flags.c_contiguous
        np.testing.assert_array_equal(value(name, view), value(name, np.ascontiguousarray(view)))
        np.testing.assert_array_equal(grad(name, view), grad(name, np.ascontiguousarray(view)))
    before = base.copy()
    value(name, base.T)
    np.testing.assert_array_equal(base, before)  # the input is never written


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", rl.names())
def test_out_returns_the_same_buffer(name, dtype):
    x = np.array([-7, -3, -1, -0.0, 0, 0.5, 3, 6, 25, np.nan, np.inf, -np.inf], dtype)
    for fn in (value, grad):
        expected = fn(name, x)
        out = np.full_like(x, 123)
        assert fn(name, x, out=out) is out
        np.testing.assert_array_equal(out, expected)
        strided = np.full(2 * x.size, 123, dtype)[::2]  # a non-contiguous out
        assert fn(name, x, out=strided) is strided
        np.testing.assert_array_equal(strided, expected)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", rl.names())
def test_out_works_in_place(name, dtype):
    x = np.array([-7, -3, -1, -0.0, 0, 0.5, 3, 6, 7, 25, np.nan, np.inf, -np.inf], dtype)
    for fn in (value, grad):
        expected = fn(name, x)
        y = x.copy()
        assert fn(name, y, out=y) is y
        np.testing.assert_array_equal(y, expected)
        y = np.zeros(2 * x.size, dtype)[::2]  # in place on a non-contiguous view
        y[...] = x
        assert fn(name, y, out=y) is y
        np.testing.assert_array_equal(y, expected)


def test_out_with_integers():
    x = np.array([-2, 3, 9], np.int32)
    out = np.empty(3, np.int32)
    assert rl.relu6(x, out=out) is out
    np.testing.assert_array_equal(out, [0, 3, 6])
    out = np.empty(3)
    assert rl.relu.grad(x, out=out) is out
    np.testing.assert_array_equal(out, [0.0, 1.0, 1.0])


def test_identity_returns_a_copy():
    x = np.array([1.0, 2.0])
    assert rl.identity(x) is not x and not np.shares_memory(rl.identity(x), x)


# -- prelu --------------------------------------------------------------------------------------------------------
def _prelu_expected(x, weight, axis):
    expected = np.array(x, dtype=np.float64, copy=True)
    moved = np.moveaxis(expected, axis, 0)  # a view: writes go to expected
    for c, w in enumerate(weight):
        moved[c] = np.where(moved[c] > 0, moved[c], w * moved[c])
    return expected


@pytest.mark.parametrize("axis", [1, 0, 2, -1, -3])
def test_prelu_per_channel_weight(axis):
    x = np.random.default_rng(1).normal(size=(3, 3, 3)) * 3
    weight = np.array([0.1, -0.5, 2.0])
    np.testing.assert_array_equal(rl.prelu(x, weight, channel_axis=axis), _prelu_expected(x, weight, axis))
    expected_grad = np.moveaxis(np.where(np.moveaxis(x, axis, 0) > 0, 1.0,
                                         weight.reshape(3, 1, 1) * np.ones_like(x)), 0, axis)
    np.testing.assert_array_equal(rl.prelu.grad(x, weight, channel_axis=axis), expected_grad)


def test_prelu_defaults_to_channel_axis_1():
    x = np.array([[[-1.0, 2.0], [-1.0, 2.0]]])  # shape (1, 2, 2): two channels on axis 1
    np.testing.assert_array_equal(rl.prelu(x, [0.1, 0.3]), [[[-0.1, 2.0], [-0.3, 2.0]]])


def test_prelu_single_weight_applies_everywhere():
    x = np.array([[-4.0, 1.0], [-2.0, 0.0]])
    for weight in (0.25, [0.25], np.array([0.25])):
        np.testing.assert_array_equal(rl.prelu(x, weight), [[-1.0, 1.0], [-0.5, 0.0]])


def test_prelu_grad_at_zero_is_the_channel_weight():
    x = np.zeros((2, 3))
    np.testing.assert_array_equal(rl.prelu.grad(x, [0.1, 0.2, 0.3]), [[0.1, 0.2, 0.3]] * 2)


def test_prelu_grad_weight_is_min_x_zero():
    x = np.array([[-2.0, 0.0, 3.0], [-0.5, -1.0, 4.0]])
    weight = [0.1, 0.2, 0.3]
    np.testing.assert_array_equal(rl.prelu.grad_weight(x, weight), np.minimum(x, 0.0))
    assert rl.prelu.grad_weight(-2.0, 0.25) == -2.0 and type(rl.prelu.grad_weight(-2.0, 0.25)) is np.float64


@pytest.mark.parametrize("dtype", [*FLOATS, np.int32])
def test_prelu_grad_weight_keeps_float_dtypes_and_promotes_integers(dtype):
    x = np.array([[-2, 0, 3]], dtype)
    result = rl.prelu.grad_weight(x, [0.1, 0.2, 0.3])
    assert result.dtype == (np.float64 if dtype is np.int32 else dtype)
    np.testing.assert_array_equal(result, [[-2.0, 0.0, 0.0]])
    assert type(rl.prelu.grad_weight(dtype(-1), 0.5)) is (np.float64 if dtype is np.int32 else dtype)


def test_prelu_grad_weight_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).normal(size=(4, 3, 5))
    weight = np.array([0.1, 0.2, 0.3])
    upstream = np.random.default_rng(3).normal(size=x.shape)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(weight, requires_grad=True)
    torch.nn.functional.prelu(tx, tw).backward(torch.tensor(upstream))
    ours_weight = (upstream * rl.prelu.grad_weight(x, weight)).sum(axis=(0, 2))
    np.testing.assert_allclose(ours_weight, tw.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(upstream * rl.prelu.grad(x, weight), tx.grad.numpy(), rtol=1e-15)


# -- rrelu --------------------------------------------------------------------------------------------------------
def test_rrelu_training_same_seed_same_slopes():
    x = -np.linspace(0.5, 3.0, 200)
    first = rl.rrelu(x, training=True, seed=7)
    np.testing.assert_array_equal(first, rl.rrelu(x, training=True, seed=7))
    slopes = first / x
    np.testing.assert_allclose(rl.rrelu.grad(x, training=True, seed=7), slopes, rtol=1e-15)
    assert not np.array_equal(first, rl.rrelu(x, training=True, seed=8))
    assert np.unique(slopes).size > 150  # one slope per element


def test_rrelu_training_slopes_lie_in_lower_upper():
    x = -np.ones(5000)
    for lower, upper in [(1 / 8, 1 / 3), (0.0, 0.05), (0.4, 0.4)]:
        slopes = rl.rrelu.grad(x, lower=lower, upper=upper, training=True, seed=0)
        assert slopes.min() >= lower and slopes.max() <= upper
        if upper > lower:
            assert slopes.max() - slopes.min() > 0.9 * (upper - lower)  # they fill the interval


def test_rrelu_training_with_a_generator():
    x = -np.ones(10)
    a = rl.rrelu(x, training=True, rng=np.random.default_rng(3))
    b = rl.rrelu.grad(x, training=True, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(-a, b)


def test_rrelu_training_keeps_positive_inputs():
    x = np.array([0.5, 2.0, 1e300, np.inf])
    np.testing.assert_array_equal(rl.rrelu(x, training=True, seed=1), x)
    np.testing.assert_array_equal(rl.rrelu.grad(x, training=True, seed=1), [1.0] * 4)


def test_rrelu_eval_is_the_mean_slope():
    x = np.array([-48.0, -1.0, 2.0])
    np.testing.assert_array_equal(rl.rrelu(x), [-11.0, -RRELU_MEAN, 2.0])
    np.testing.assert_array_equal(rl.rrelu(x, lower=0.1, upper=0.3), [-48.0 * 0.2, -0.2, 2.0])
    np.testing.assert_array_equal(rl.rrelu(x, training=False, seed=5), rl.rrelu(x))


# -- PyTorch agreement --------------------------------------------------------------------------------------------
def _torch_members(torch):
    F = torch.nn.functional
    return {
        "relu": ({}, F.relu), "leaky_relu": ({}, lambda t: F.leaky_relu(t, 0.01)),
        "leaky_relu-0.2": ({"negative_slope": 0.2}, lambda t: F.leaky_relu(t, 0.2)),
        "relu6": ({}, F.relu6), "elu": ({}, F.elu),
        "elu-0.5": ({"alpha": 0.5}, lambda t: F.elu(t, 0.5)), "elu-2": ({"alpha": 2.0}, lambda t: F.elu(t, 2.0)),
        "selu": ({}, F.selu), "celu-2": ({"alpha": 2.0}, lambda t: F.celu(t, 2.0)), "hardswish": ({}, F.hardswish),
        "rrelu": ({}, lambda t: F.rrelu(t, training=False)),
        "prelu": ({}, lambda t: F.prelu(t, torch.tensor([PRELU_WEIGHT], dtype=t.dtype))),
        "gelu": ({}, F.gelu), "gelu-tanh": ({"approximate": "tanh"}, lambda t: F.gelu(t, approximate="tanh")),
        "silu": ({}, F.silu), "mish": ({}, F.mish), "softplus": ({}, F.softplus),
        "softplus-beta2-t10": ({"beta": 2.0, "threshold": 10.0}, lambda t: F.softplus(t, beta=2.0, threshold=10.0)),
        "sigmoid": ({}, torch.sigmoid), "tanh": ({}, torch.tanh),
        "hard_sigmoid": ({}, F.hardsigmoid), "hard_tanh": ({}, F.hardtanh),
        "hard_tanh-0-6": ({"min_val": 0.0, "max_val": 6.0}, lambda t: F.hardtanh(t, 0.0, 6.0)),
        "hard_tanh-neg2.5-0.5": ({"min_val": -2.5, "max_val": 0.5}, lambda t: F.hardtanh(t, -2.5, 0.5)),
        # transformers' QuickGELUActivation and timm's quick_gelu, written out
        "quick_gelu": ({}, lambda t: t * torch.sigmoid(1.702 * t)),
        # Keras's relu(x, max_value=m, threshold=t) in torch's own ops: Hardtanh(0, m) after Threshold(t, 0)
        "relu-max6": ({"max_value": 6.0}, lambda t: F.hardtanh(t, 0.0, 6.0)),
        "relu-t1": ({"threshold": 1.0}, lambda t: F.threshold(t, 1.0, 0.0)),
        "relu-max2.5-t0.5": ({"max_value": 2.5, "threshold": 0.5},
                             lambda t: F.hardtanh(F.threshold(t, 0.5, 0.0), 0.0, 2.5)),
        # jax.nn.squareplus and jax.nn.sparse_plus, written out as JAX writes them
        "squareplus": ({}, lambda t: 0.5 * (t + torch.sqrt(t * t + 4.0))),
        "squareplus-b1": ({"b": 1.0}, lambda t: 0.5 * (t + torch.sqrt(t * t + 1.0))),
        "sparse_plus": ({}, lambda t: torch.where(t <= -1.0, 0.0, torch.where(t >= 1.0, t, (t + 1.0) ** 2 / 4))),
    }


def _torch_value_and_grad(torch, fn, x):
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = fn(t)
    y.sum().backward()
    return y.detach().numpy(), t.grad.numpy()


def _ours(key, x, params):
    name = key.split("-")[0]
    if name == "hard_sigmoid":
        # torch's float64 hardsigmoid_backward multiplies by float32's 1/6 (0.16666667163...); the family gives
        # 1/6. The comparison is against torch's value with that constant put back to 1/6.
        # The same region (1/6 strictly inside (-3, 3), 0 elsewhere) is what is compared exactly.
        derivative = grad(name, x, **params)
        np.testing.assert_array_equal(derivative[derivative != 0], 1 / 6)
        return value(name, x, **params), np.where(derivative != 0, float(np.float32(1 / 6)), derivative)
    return value(name, x, **params), grad(name, x, **params)


KINKED_FOR_TORCH = ["relu", "leaky_relu", "leaky_relu-0.2", "relu6", "elu", "elu-0.5", "elu-2", "selu", "celu-2",
                    "hardswish", "rrelu", "prelu", "hard_sigmoid", "hard_tanh", "hard_tanh-0-6", "hard_tanh-neg2.5-0.5",
                    "relu-max6", "relu-t1", "relu-max2.5-t0.5", "sparse_plus"]


@pytest.mark.parametrize("key", KINKED_FOR_TORCH)
def test_derivatives_at_kinks_match_torch_autograd(key):
    torch = pytest.importorskip("torch")
    params, fn = _torch_members(torch)[key]
    own = rl.get(key.split("-")[0]).properties_for(**params).kinks  # hard_tanh's depend on its parameters
    kinks = np.array([-3.0, -0.0, 0.0, 3.0, 6.0] + [k for k in own if k not in (-3.0, 0.0, 3.0, 6.0)])
    near = np.array([np.nextafter(0.0, 1.0), -np.nextafter(0.0, 1.0), np.nextafter(6.0, 0.0),
                     np.nextafter(-3.0, 0.0), np.nextafter(3.0, 0.0), -1.5, 1.0, 7.0])
    ours_value, ours_grad = _ours(key, kinks, params)
    torch_value, torch_grad = _torch_value_and_grad(torch, fn, kinks)
    np.testing.assert_array_equal(ours_grad, torch_grad)  # the same choice of (sub)gradient at every kink
    np.testing.assert_allclose(ours_value, torch_value, rtol=1e-15, atol=0)
    ours_value, ours_grad = _ours(key, near, params)
    torch_value, torch_grad = _torch_value_and_grad(torch, fn, near)
    # Off the kinks the two may round differently (hardswish: (2x + 3)/6 here, x/3 + 1/2 in PyTorch).
    np.testing.assert_allclose(ours_grad, torch_grad, rtol=1e-15, atol=0)
    # celu(-5e-324, alpha=2): PyTorch's x / alpha underflows to 0 and gives -0.0; the true value rounds to x itself
    # (-5e-324), which the family returns: one subnormal step apart.
    np.testing.assert_allclose(ours_value, torch_value, rtol=1e-15, atol=5e-324 if key == "celu-2" else 0)


@pytest.mark.parametrize("key", ["gelu", "gelu-tanh", "silu", "quick_gelu", "mish", "softplus", "softplus-beta2-t10",
                                 "sigmoid", "tanh", "squareplus", "squareplus-b1", "sparse_plus"])
def test_smooth_members_match_torch_on_finite_inputs(key):
    torch = pytest.importorskip("torch")
    params, fn = _torch_members(torch)[key]
    x = np.concatenate([np.linspace(-12, 12, 481), [-0.0, 0.0, 5.0, 20.0, np.nextafter(20.0, 21.0)]])
    ours_value, ours_grad = _ours(key, x, params)
    torch_value, torch_grad = _torch_value_and_grad(torch, fn, x)
    # PyTorch writes gelu as 0.5 x (1 + erf or tanh), which cancels for x << 0: its error there is ~eps |x|
    # absolute (ours is relative, see test_reference.py), so the comparison allows that much.
    slack = 4 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(x))
    np.testing.assert_array_less(np.abs(ours_value - torch_value), 1e-12 * np.abs(torch_value) + slack)
    np.testing.assert_array_less(np.abs(ours_grad - torch_grad), 1e-12 * np.abs(torch_grad) + slack)


# -- warnings -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", rl.names())
def test_no_warnings_on_valid_input(name, dtype):
    info = np.finfo(dtype)
    x = np.array([-np.inf, -info.max, -1e4, -745.5, -40, -1, -info.smallest_subnormal, -0.0, 0.0,
                  info.smallest_subnormal, info.tiny, 1, 40, 745.5, 1e4, info.max, np.inf, np.nan]).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value(name, x)
        grad(name, x)
        value(name, x.astype(np.float64)[:, None] * np.ones((1, 3)))


# -- relu's max_value and threshold (Keras's relu) ----------------------------------------------------------------
def test_relu_with_max_value_6_is_relu6_and_the_threshold_is_a_jump_to_zero():
    x = np.array([-np.inf, -1.0, -0.0, 0.0, 0.5, 6.0, np.nextafter(6.0, 0.0), 7.0, np.inf, np.nan])
    np.testing.assert_array_equal(rl.relu(x, max_value=6.0), rl.relu6(x))
    np.testing.assert_array_equal(rl.relu.grad(x, max_value=6.0), rl.relu6.grad(x))
    np.testing.assert_array_equal(rl.relu.grad(x, max_value=6.0, at_zero=1.0), rl.relu6.grad(x, at_zero=1.0))
    # Keras's own example: relu([-10, -5, 0, 5, 10], threshold=5) is [0, 0, 0, 0, 10]: f(t) = 0, and f'(t) = 0.
    np.testing.assert_array_equal(rl.relu([-10.0, -5.0, 0.0, 5.0, 10.0], threshold=5.0), [0.0, 0.0, 0.0, 0.0, 10.0])
    np.testing.assert_array_equal(rl.relu.grad([5.0, np.nextafter(5.0, 6.0)], threshold=5.0), [0.0, 1.0])
    # 0 is no kink once the threshold is above it: only f'(0) = 0 is allowed there.
    assert rl.relu.grad(0.0, threshold=1.0, at_zero=0.0) == 0.0
    with pytest.raises(ValueError, match=r"at_zero must lie in the subdifferential at 0, \[0, 0\]"):
        rl.relu.grad(0.0, threshold=1.0, at_zero=1.0)
    # integers stay integers with whole parameters, become float64 otherwise
    assert rl.relu(np.arange(-2, 9), max_value=6, threshold=2).tolist() == [0, 0, 0, 0, 0, 3, 4, 5, 6, 6, 6]
    assert rl.relu(np.arange(3), max_value=1.5).dtype == np.float64


def test_relu_threshold_is_compared_exactly_in_float32():
    # 0.1 is not a float32: float32(0.1) lies above the real 0.1, so f keeps it; its lower neighbour is below.
    x = np.array([np.float32(0.1), np.nextafter(np.float32(0.1), np.float32(0))], dtype=np.float32)
    np.testing.assert_array_equal(rl.relu(x, threshold=0.1), [x[0], 0.0])
    np.testing.assert_array_equal(rl.relu.grad(x, threshold=0.1), [1.0, 0.0])
    # float32(0.7) lies below the real 0.7 (still inside the linear piece); its upper neighbour is above it.
    y = np.array([np.float32(0.7), np.nextafter(np.float32(0.7), np.float32(1))], dtype=np.float32)
    np.testing.assert_array_equal(rl.relu.grad(y, max_value=0.7), [1.0, 0.0])
