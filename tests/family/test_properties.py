"""Property tests (hypothesis): what each member's ``.properties`` claims holds for every input drawn.

The claims themselves are first pinned against the mathematics (``test_*_claims_*``), so a wrong claim fails
there and a wrong kernel fails the property test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

import relulab as rl

ANY_FLOAT = st.floats(allow_nan=False, allow_infinity=True, width=64)
FINITE = st.floats(allow_nan=False, allow_infinity=False, width=64)
MODERATE = st.floats(min_value=-30.0, max_value=30.0, allow_nan=False)
SLOPE = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)

# Parameters that make a member the mathematical function its properties describe: softplus without PyTorch's
# switch to x (which drops f by 2e-9 at the threshold, pinned by its own test below), prelu with one slope.
CALL_ARGS = {"prelu": (0.25,)}
CALL_PARAMS = {"softplus": {"threshold": math.inf}}


def f(name, x):
    return rl.get(name)(x, *CALL_ARGS.get(name, ()), **CALL_PARAMS.get(name, {}))


def df(name, x):
    return rl.get(name).grad(x, *CALL_ARGS.get(name, ()), **CALL_PARAMS.get(name, {}))


# -- the claims, against the mathematics --------------------------------------------------------------------------
MONOTONIC = {"relu", "leaky_relu", "rrelu", "elu", "selu", "celu", "relu6", "squared_relu", "softplus", "sigmoid",
             "tanh", "identity", "hard_sigmoid", "hard_tanh", "squareplus", "sparse_plus"}
# A decreasing pair (a < b, f(a) > f(b)) for each member that is not monotonic (prelu: its slope may be negative).
NOT_MONOTONIC_WITNESS = {"gelu": (-3.0, -1.0), "silu": (-4.0, -1.5), "mish": (-4.0, -1.5), "quick_gelu": (-3.0, -1.0),
                         "hardswish": (-3.0, -1.5), "prelu": (-2.0, -1.0, -0.5)}


def test_monotonic_claims_match_the_mathematics():
    assert {n for n in rl.names() if rl.get(n).properties.monotonic} == MONOTONIC
    for name, (a, b, *weight) in NOT_MONOTONIC_WITNESS.items():
        member = rl.get(name)
        args = tuple(weight)
        assert a < b and member(a, *args) > member(b, *args), name


# (infimum, supremum) of each member's range at the default parameters; None where unbounded.
BOUNDS = {
    "relu": (0.0, None), "leaky_relu": (None, None), "prelu": (None, None), "rrelu": (None, None),
    "elu": (-1.0, None), "selu": (-1.0507009873554804934193349852946 * 1.6732632423543772848170429916717, None),
    "celu": (-1.0, None), "relu6": (0.0, 6.0), "hardswish": (-0.375, None), "squared_relu": (0.0, None),
    "gelu": (-0.16997120747990, None), "silu": (-0.27846454276107, None), "mish": (-0.30884341301725, None),
    "softplus": (0.0, None), "sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "identity": (None, None),
    "hard_sigmoid": (0.0, 1.0), "hard_tanh": (-1.0, 1.0),
    "quick_gelu": (-0.27846454276107 / 1.702, None),  # silu's minimum, scaled: x s(a x) = silu(a x) / a
    "squareplus": (0.0, None), "sparse_plus": (0.0, None),
}
# The minima of gelu, silu and mish are checked to full precision with mpmath in test_reference.py.


@pytest.mark.parametrize("name", rl.names())
def test_bound_claims_match_the_mathematics(name):
    properties = rl.get(name).properties
    lower, upper = BOUNDS[name]
    for claimed, expected in ((properties.lower_bound, lower), (properties.upper_bound, upper)):
        if expected is None:
            assert claimed is None
        else:
            assert claimed == pytest.approx(expected, rel=1e-12, abs=0)
    assert properties.bounded_below == (lower is not None) and properties.bounded_above == (upper is not None)


def test_parameter_dependent_properties():
    assert rl.elu.properties_for(alpha=2.5).lower_bound == -2.5
    assert rl.celu.properties_for(alpha=0.5).lower_bound == -0.5
    assert rl.leaky_relu.properties_for(negative_slope=0.0).lower_bound == 0.0
    assert rl.leaky_relu.properties_for(negative_slope=0.0).zero_for_negative
    assert not rl.leaky_relu.properties_for(negative_slope=-0.5).monotonic
    assert rl.gelu.properties_for(approximate="tanh").lower_bound == pytest.approx(-0.170040750571254, rel=1e-12)
    # squareplus with b = 0 is relu; relu's max_value and threshold move its bounds and kinks.
    relu_like = rl.squareplus.properties_for(b=0.0)
    assert relu_like.zero_for_negative and relu_like.piecewise_linear and relu_like.kinks == (0.0,)
    assert not relu_like.smooth and rl.squareplus.properties.smooth
    capped = rl.relu.properties_for(max_value=6.0)
    assert capped.upper_bound == 6.0 and capped.kinks == (0.0, 6.0) and capped == rl.relu6.properties
    thresholded = rl.relu.properties_for(max_value=2.5, threshold=0.5)
    assert thresholded.kinks == (0.5, 2.5) and thresholded.lower_bound == 0.0 and thresholded.upper_bound == 2.5
    assert thresholded.zero_for_negative and thresholded.monotonic and thresholded.piecewise_linear
    assert rl.relu.properties_for(max_value=0.0).kinks == ()  # the zero function


SMOOTH = {"gelu", "silu", "quick_gelu", "mish", "softplus", "sigmoid", "tanh", "identity", "squareplus"}
ZERO_FOR_NEGATIVE = {"relu", "relu6", "squared_relu"}
PIECEWISE_LINEAR = {"relu", "leaky_relu", "prelu", "rrelu", "relu6", "identity", "hard_sigmoid", "hard_tanh"}


def test_smoothness_and_shape_claims_match_the_mathematics():
    members = {n: rl.get(n).properties for n in rl.names()}
    assert {n for n, p in members.items() if p.smooth} == SMOOTH
    assert {n for n, p in members.items() if p.zero_for_negative} == ZERO_FOR_NEGATIVE
    assert {n for n, p in members.items() if p.piecewise_linear} == PIECEWISE_LINEAR
    assert members["relu6"].kinks == (0.0, 6.0) and members["hardswish"].kinks == (-3.0, 3.0)
    assert members["elu"].kinks == () and rl.elu.properties_for(alpha=2.0).kinks == (0.0,)
    assert members["hard_sigmoid"].kinks == (-3.0, 3.0) and members["hard_tanh"].kinks == (-1.0, 1.0)
    relu6_like = rl.hard_tanh.properties_for(min_val=0.0, max_val=6.0)
    assert relu6_like.kinks == (0.0, 6.0) and relu6_like.zero_for_negative and relu6_like.upper_bound == 6.0


# -- relu ----------------------------------------------------------------------------------------------------------
@given(ANY_FLOAT)
def test_relu_is_nonnegative(x):
    result = rl.relu(x)
    assert result >= 0 and not np.signbit(result)


@given(st.floats(min_value=0.0, exclude_min=True, allow_nan=False))
def test_relu_is_identity_for_positive_x(x):
    assert rl.relu(x) == x and rl.relu.grad(x) == 1.0


@given(st.floats(max_value=0.0, exclude_max=True, allow_nan=False))
def test_relu_is_zero_for_negative_x(x):
    assert rl.relu(x) == 0.0 and rl.relu.grad(x) == 0.0


@given(st.lists(st.integers(-(2**62), 2**62), max_size=20))
def test_relu_of_integers_is_exact(values):
    result = rl.relu(np.array(values, dtype=np.int64))
    assert result.dtype == np.int64
    assert result.tolist() == [max(v, 0) for v in values]


# -- leaky ---------------------------------------------------------------------------------------------------------
@given(st.floats(max_value=0.0, exclude_max=True, allow_nan=False, allow_infinity=False), SLOPE)
def test_leaky_relu_is_slope_times_x_for_negative_x(x, slope):
    assert rl.leaky_relu(x, negative_slope=slope) == slope * x  # the correctly rounded float64 product
    assert rl.leaky_relu.grad(x, negative_slope=slope) == slope


@given(st.floats(min_value=0.0, exclude_min=True, allow_nan=False), SLOPE)
def test_leaky_relu_is_identity_for_positive_x(x, slope):
    assert rl.leaky_relu(x, negative_slope=slope) == x


# -- monotonicity and bounds -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(MONOTONIC))
@given(a=ANY_FLOAT, b=ANY_FLOAT)
def test_monotonic_members_are_nondecreasing(name, a, b):
    low, high = min(a, b), max(a, b)
    assert f(name, low) <= f(name, high)
    assert df(name, low) >= 0 and df(name, high) >= 0


@pytest.mark.parametrize("name", sorted(MONOTONIC))
@given(x=FINITE)
def test_monotonic_members_do_not_decrease_over_one_ulp(name, x):
    # Adjacent floats are where rounding would show a decrease, if the kernels had one. The C library's tanh (and
    # so NumPy's) is faithfully, not correctly, rounded: at x = -8 it drops by one ulp to the next float. A drop of
    # at most one ulp of the value is that rounding; anything larger would be a kernel's fault.
    value, next_value = f(name, x), f(name, math.nextafter(x, math.inf))
    assert value <= next_value or value - next_value <= np.spacing(abs(next_value))


@pytest.mark.parametrize("name", [n for n in rl.names() if BOUNDS[n] != (None, None)])
@given(x=ANY_FLOAT)
def test_values_lie_within_the_claimed_bounds(name, x):
    properties = rl.get(name).properties
    result = f(name, x)
    if properties.lower_bound is not None:
        # The bound is the infimum; a rounded result may sit an ulp or two below it.
        assert result >= properties.lower_bound - 4 * np.spacing(abs(properties.lower_bound))
    if properties.upper_bound is not None:
        assert result <= properties.upper_bound


@pytest.mark.parametrize("name", sorted(ZERO_FOR_NEGATIVE))
@given(x=st.floats(max_value=0.0, exclude_max=True, allow_nan=False))
def test_zero_for_negative_members_are_exactly_zero_with_zero_gradient(name, x):
    assert f(name, x) == 0.0 and df(name, x) == 0.0


# -- celu ----------------------------------------------------------------------------------------------------------
@given(alpha=st.floats(min_value=5e-324, max_value=1e300, allow_nan=False))
@example(alpha=49.0)  # alpha * (1 / alpha) = 1 - 2^-53 for 49: f'(0) must still be exactly 1
@example(alpha=1e-310)  # 1 / alpha overflows
def test_celu_derivative_at_zero_is_one_for_every_alpha(alpha):
    np.testing.assert_array_equal(rl.celu.grad([-0.0, 0.0], alpha=alpha), [1.0, 1.0])
    np.testing.assert_array_equal(rl.celu([-0.0, 0.0], alpha=alpha), [0.0, 0.0])


@given(alpha=st.floats(min_value=5e-324, max_value=1e-46), dtype=st.sampled_from([np.float16, np.float32]))
def test_celu_with_an_alpha_below_the_dtype_range_rounds_to_zero(alpha, dtype):
    # alpha is below the smallest float32 subnormal (1.4e-45): |celu(x)| <= alpha rounds to 0; no NaN, no warning.
    x = np.array([-1.0, -0.0, 0.0, 2.0], dtype)
    np.testing.assert_array_equal(rl.celu(x, alpha=alpha), [0.0, 0.0, 0.0, 2.0])
    np.testing.assert_array_equal(rl.celu.grad(x, alpha=alpha), [0.0, 1.0, 1.0, 1.0])


# -- softplus's threshold --------------------------------------------------------------------------------------------
def test_softplus_drops_at_the_threshold_like_torch():
    # At beta x = threshold the result switches from log1p(exp(beta x)) / beta to x: a drop of
    # log1p(exp(-threshold)) / beta, 2.06e-9 at the defaults, exactly as in PyTorch.
    at, above = 20.0, np.nextafter(20.0, math.inf)
    drop = rl.softplus(at) - rl.softplus(above)
    assert drop == pytest.approx(math.log1p(math.exp(-20.0)) - (above - at), rel=1e-6)
    assert rl.softplus(above) == above and rl.softplus.grad(above) == 1.0
    beta, threshold = 2.0, 10.0
    at = threshold / beta
    drop = rl.softplus(at, beta=beta, threshold=threshold) - rl.softplus(np.nextafter(at, 6.0), beta=beta,
                                                                          threshold=threshold)
    assert drop == pytest.approx(math.log1p(math.exp(-threshold)) / beta, rel=1e-6)
    torch = pytest.importorskip("torch")
    x = torch.tensor([20.0, float(np.nextafter(20.0, math.inf))], dtype=torch.float64)
    np.testing.assert_array_equal(rl.softplus(x.numpy()), torch.nn.functional.softplus(x).numpy())


@given(st.floats(min_value=0.05, max_value=10.0), st.floats(min_value=1.0, max_value=40.0))
def test_softplus_is_x_above_the_threshold(beta, threshold):
    x = np.nextafter(threshold / beta, math.inf) * (1 + 1e-12)
    assume(beta * x > threshold)
    assert rl.softplus(x, beta=beta, threshold=threshold) == x


# -- derivatives against finite differences --------------------------------------------------------------------------
SMOOTH_PARAMS = [("gelu", {}), ("gelu", {"approximate": "tanh"}), ("silu", {}), ("quick_gelu", {}), ("mish", {}),
                 ("squareplus", {}), ("squareplus", {"b": 0.25}),
                 ("softplus", {"threshold": math.inf}), ("softplus", {"beta": 3.0, "threshold": math.inf}),
                 ("sigmoid", {}), ("tanh", {}), ("identity", {}), ("celu", {"alpha": 0.7}), ("elu", {}),
                 ("squared_relu", {}), ("sparse_plus", {})]  # the last four are C1 (continuously differentiable)


@pytest.mark.parametrize(("name", "params"), SMOOTH_PARAMS, ids=[f"{n}{p or ''}" for n, p in SMOOTH_PARAMS])
@given(x=MODERATE)
def test_grad_matches_finite_differences(name, params, x):
    member = rl.get(name)
    h = 1e-5 * max(1.0, abs(x))
    numeric = (member(x + h, **params) - member(x - h, **params)) / (2 * h)
    # The error of the central difference: h^2 |f'''| / 6 (f''' is O(1) here) plus eps |f| / h.
    tolerance = 1e-8 * max(1.0, abs(x)) ** 2 + 1e-10 * (1 + abs(member(x, **params))) / h
    assert abs(member.grad(x, **params) - numeric) <= tolerance
