"""An independent reference for every member of the family, written from the mathematics in mpmath.

Nothing here imports relulab: each member's value and derivative are written out again from their textbook
formulas and evaluated with 50 significant digits, so a float64 result can be judged to far below its own
rounding error. The derivatives are the analytic ones (checked against ``mpmath.diff`` of the values in
``test_reference.py``).

A :class:`Case` is one member at one setting of its parameters. Adding a member to the family means adding its
formula here and at least one case to :data:`CASES` (``test_every_member_has_a_reference_case`` insists).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import mpmath

# A private context: the precision is ours alone and never leaks into other tests that use mpmath.
ctx = mpmath.MPContext()
ctx.dps = 50

ZERO = ctx.mpf(0)
ONE = ctx.mpf(1)
HALF = ctx.mpf(1) / 2

# Klambauer et al. (2017), eq. 14, to 32 digits.
SELU_LAMBDA = ctx.mpf("1.0507009873554804934193349852946")
SELU_ALPHA = ctx.mpf("1.6732632423543772848170429916717")
GELU_CUBIC = ctx.mpf("0.044715")

Scalar = Callable[[Any], Any]


def mpf(value: float) -> Any:
    """A float64 as an mpf, exactly (every double is a dyadic rational)."""
    return ctx.mpf(value)


def sigmoid_mp(x):
    return ONE / (ONE + ctx.exp(-x))


def sigmoid_slope_mp(x):
    """sigma(x) (1 - sigma(x)), with 1 - sigma(x) written as sigma(-x): no cancellation for x >> 0."""
    return sigmoid_mp(x) * sigmoid_mp(-x)


def softplus_mp(x):
    return ctx.log1p(ctx.exp(x))


def sech2_mp(x):
    return ONE / ctx.cosh(x) ** 2


# -- piecewise-linear members -------------------------------------------------------------------------------
def relu(x):
    return x if x > 0 else ZERO


def relu_grad(x):
    return ONE if x > 0 else ZERO


def leaky(slope: float) -> tuple[Scalar, Scalar]:
    s = mpf(slope)
    return (lambda x: x if x > 0 else s * x), (lambda x: ONE if x > 0 else s)


def relu6(x):
    return min(max(ZERO, x), ctx.mpf(6))


def relu6_grad(x):
    return ONE if 0 < x < 6 else ZERO


def relu_clipped(max_value: float | None, threshold: float) -> tuple[Scalar, Scalar]:
    """Keras's relu(x, max_value=m, threshold=t): x on (t, m), 0 up to t (f(t) = 0), m from m on."""
    t = mpf(threshold)
    m = ctx.inf if max_value is None else mpf(max_value)
    return (lambda x: ZERO if x <= t else min(x, m)), (lambda x: ONE if t < x < m else ZERO)


# -- exponential members ------------------------------------------------------------------------------------
def elu(alpha: float, scale=ONE) -> tuple[Scalar, Scalar]:
    a = mpf(alpha) if not isinstance(alpha, ctx.mpf) else alpha
    return (
        lambda x: scale * (x if x > 0 else a * ctx.expm1(x)),
        lambda x: scale * (ONE if x > 0 else a * ctx.exp(x)),
    )


def celu(alpha: float) -> tuple[Scalar, Scalar]:
    a = mpf(alpha)
    return (lambda x: x if x > 0 else a * ctx.expm1(x / a)), (lambda x: ONE if x > 0 else ctx.exp(x / a))


# -- hardswish, squared relu ---------------------------------------------------------------------------------
def hardswish(x):
    return x * min(max(x + 3, ZERO), ctx.mpf(6)) / 6


def hardswish_grad(x):
    if x < -3:
        return ZERO
    if x > 3:
        return ONE
    return (2 * x + 3) / 6


def hardswish_terms(x):
    return abs(2 * x) / 6 + HALF if -3 < x < 3 else ONE


def hard_sigmoid(x):
    return min(max(x + 3, ZERO), ctx.mpf(6)) / 6


def hard_sigmoid_grad(x):
    return ONE / 6 if -3 < x < 3 else ZERO


def hard_tanh(low: float, high: float) -> tuple[Scalar, Scalar]:
    a, b = mpf(low), mpf(high)
    return (lambda x: min(max(x, a), b)), (lambda x: ONE if a < x < b else ZERO)


def squared_relu(x):
    return max(x, ZERO) ** 2


def squared_relu_grad(x):
    return 2 * max(x, ZERO)


# -- x * A(x) members: f' = A + x A'. Near a root of f' the two terms cancel, so the test's tolerance there is a
# few ulps of |A| + |x A'| (the ``terms`` functions), the size of the rounding in any float64 evaluation.
def ncdf(x):
    """Phi(x), the standard normal CDF."""
    if x < -1e20:
        # mpmath's erfc fails below about -1e154 (an internal float conversion). Here the Mills-ratio expansion
        # Phi(x) = phi(x) / |x| * (1 - 1/x^2 + 3/x^4 - ...) is exact to 80 digits after two terms.
        return ctx.npdf(x) / -x * (1 - 1 / x**2)
    return ctx.ncdf(x)


def gelu(x):
    return x * ncdf(x)


def gelu_grad(x):
    return ncdf(x) + x * ctx.npdf(x)


def gelu_terms(x):
    return ncdf(x) + abs(x) * ctx.npdf(x)


def _gelu_tanh_u(x):
    return ctx.sqrt(2 / ctx.pi) * (x + GELU_CUBIC * x**3)


def _gelu_tanh_du(x):
    return ctx.sqrt(2 / ctx.pi) * (1 + 3 * GELU_CUBIC * x**2)


def _one_plus_tanh(u):
    # 1 + tanh(u) = 2 / (1 + exp(-2u)). Written as the sum it would cancel to 0 even at 50 digits once u < -58,
    # and the tail of the tanh form reaches u = -1e900 here.
    return 2 / (1 + ctx.exp(-2 * u))


def gelu_tanh(x):
    # Hendrycks & Gimpel's approximation: 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3).
    return HALF * x * _one_plus_tanh(_gelu_tanh_u(x))


def gelu_tanh_grad(x):
    u = _gelu_tanh_u(x)
    return HALF * _one_plus_tanh(u) + HALF * x * sech2_mp(u) * _gelu_tanh_du(x)


def gelu_tanh_terms(x):
    u = _gelu_tanh_u(x)
    return HALF * _one_plus_tanh(u) + abs(HALF * x * sech2_mp(u) * _gelu_tanh_du(x))


def silu(x):
    return x * sigmoid_mp(x)


def silu_grad(x):
    return sigmoid_mp(x) + x * sigmoid_slope_mp(x)


def silu_terms(x):
    return sigmoid_mp(x) + abs(x) * sigmoid_slope_mp(x)


QUICK_GELU_SCALE = ctx.mpf("1.702")


def quick_gelu(x):
    return x * sigmoid_mp(QUICK_GELU_SCALE * x)


def quick_gelu_grad(x):
    u = QUICK_GELU_SCALE * x
    return sigmoid_mp(u) + u * sigmoid_slope_mp(u)


def quick_gelu_terms(x):
    u = QUICK_GELU_SCALE * x
    return sigmoid_mp(u) + abs(u) * sigmoid_slope_mp(u)


def mish(x):
    return x * ctx.tanh(softplus_mp(x))


def mish_grad(x):
    sp = softplus_mp(x)
    return ctx.tanh(sp) + x * sech2_mp(sp) * sigmoid_mp(x)


def mish_terms(x):
    sp = softplus_mp(x)
    return ctx.tanh(sp) + abs(x) * sech2_mp(sp) * sigmoid_mp(x)


def softplus(beta: float, threshold: float) -> tuple[Scalar, Scalar]:
    """PyTorch's rule: x where beta * x > threshold, else log(1 + exp(beta x)) / beta."""
    b, t = mpf(beta), mpf(threshold)

    def value(x):
        return x if b * x > t else softplus_mp(b * x) / b

    def derivative(x):
        return ONE if b * x > t else sigmoid_mp(b * x)

    return value, derivative


def squareplus(b: float) -> tuple[Scalar, Scalar]:
    """(x + sqrt(x^2 + b)) / 2 and its derivative, written as they stand. For x << 0 both cancel, so each is
    evaluated with enough extra bits for the cancellation (about 2 log2|x|) on top of the 50 digits."""
    bb = mpf(b)

    def bits(x):
        magnitude = int(ctx.mag(x)) if x else 0  # mag(0) is -inf
        return ctx.prec + 2 * max(0, magnitude) + 2 * max(0, -int(ctx.mag(bb)) if bb else 0) + 20

    def value(x):
        with ctx.workprec(bits(x)):
            return (x + ctx.sqrt(x * x + bb)) / 2

    def derivative(x):
        with ctx.workprec(bits(x)):
            return (1 + x / ctx.sqrt(x * x + bb)) / 2

    return value, derivative


def sparse_plus(x):
    if x <= -1:
        return ZERO
    if x >= 1:
        return x
    return (x + 1) ** 2 / 4


def sparse_plus_grad(x):
    if x <= -1:
        return ZERO
    if x >= 1:
        return ONE
    return (x + 1) / 2


# -- baselines ----------------------------------------------------------------------------------------------
def sigmoid_grad(x):
    return sigmoid_slope_mp(x)


def tanh(x):
    return ctx.tanh(x)


def tanh_grad(x):
    return sech2_mp(x)


def identity(x):
    return x


def identity_grad(x):
    return ONE


# -- the cases ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One member at one parameter setting: how to call it and its reference value and derivative."""

    id: str
    member: str
    value: Scalar
    derivative: Scalar
    params: dict[str, Any] = field(default_factory=dict)
    args: tuple[Any, ...] = ()  # positional arguments after x (prelu's weight)
    kinks: tuple[float, ...] = ()  # where the derivative jumps: excluded from the derivative comparison
    terms: Scalar | None = None  # |A| + |x A'| for f = x A(x); None where f' has no cancellation
    # Parameters near the ends of float64's range (softplus's beta = 1e+-300): checked in float64 only, since in
    # float32 such a parameter itself rounds to 0 or inf.
    float64_only: bool = False

    def __str__(self) -> str:
        return self.id


def _case(id, member, pair, *, params=None, args=(), kinks=(), terms=None, float64_only=False) -> Case:
    return Case(id, member, pair[0], pair[1], params or {}, args, kinks, terms, float64_only)


RRELU_MEAN_SLOPE = (1 / 8 + 1 / 3) / 2

CASES: tuple[Case, ...] = (
    _case("relu", "relu", (relu, relu_grad), kinks=(0.0,)),
    _case("relu-max6", "relu", relu_clipped(6.0, 0.0), params={"max_value": 6.0}, kinks=(0.0, 6.0)),
    _case("relu-max2.5-t0.5", "relu", relu_clipped(2.5, 0.5), params={"max_value": 2.5, "threshold": 0.5},
          kinks=(0.5, 2.5)),
    _case("relu-t1", "relu", relu_clipped(None, 1.0), params={"threshold": 1.0}, kinks=(1.0,)),
    _case("leaky_relu", "leaky_relu", leaky(0.01), kinks=(0.0,)),
    _case("leaky_relu-0.2", "leaky_relu", leaky(0.2), params={"negative_slope": 0.2}, kinks=(0.0,)),
    _case("leaky_relu-1.5", "leaky_relu", leaky(1.5), params={"negative_slope": 1.5}, kinks=(0.0,)),
    _case("prelu-0.25", "prelu", leaky(0.25), args=(0.25,), kinks=(0.0,)),
    _case("rrelu-eval", "rrelu", leaky(RRELU_MEAN_SLOPE), kinks=(0.0,)),
    _case("rrelu-eval-0.1-0.3", "rrelu", leaky((0.1 + 0.3) / 2), params={"lower": 0.1, "upper": 0.3},
          kinks=(0.0,)),
    _case("elu", "elu", elu(1.0)),
    _case("elu-0.5", "elu", elu(0.5), params={"alpha": 0.5}, kinks=(0.0,)),
    _case("elu-2", "elu", elu(2.0), params={"alpha": 2.0}, kinks=(0.0,)),
    _case("selu", "selu", elu(SELU_ALPHA, scale=SELU_LAMBDA), kinks=(0.0,)),
    _case("celu", "celu", celu(1.0)),
    _case("celu-2", "celu", celu(2.0), params={"alpha": 2.0}),
    _case("celu-0.3", "celu", celu(0.3), params={"alpha": 0.3}),
    _case("celu-49", "celu", celu(49.0), params={"alpha": 49.0}),
    _case("celu-subnormal-alpha", "celu", celu(1e-310), params={"alpha": 1e-310}),
    _case("relu6", "relu6", (relu6, relu6_grad), kinks=(0.0, 6.0)),
    _case("hardswish", "hardswish", (hardswish, hardswish_grad), kinks=(-3.0, 3.0), terms=hardswish_terms),
    _case("hard_sigmoid", "hard_sigmoid", (hard_sigmoid, hard_sigmoid_grad), kinks=(-3.0, 3.0)),
    _case("hard_tanh", "hard_tanh", hard_tanh(-1.0, 1.0), kinks=(-1.0, 1.0)),
    _case("hard_tanh-0-6", "hard_tanh", hard_tanh(0.0, 6.0), params={"min_val": 0.0, "max_val": 6.0},
          kinks=(0.0, 6.0)),
    _case("hard_tanh-neg2.5-0.5", "hard_tanh", hard_tanh(-2.5, 0.5), params={"min_val": -2.5, "max_val": 0.5},
          kinks=(-2.5, 0.5)),
    _case("squared_relu", "squared_relu", (squared_relu, squared_relu_grad)),
    _case("gelu", "gelu", (gelu, gelu_grad), terms=gelu_terms),
    _case("gelu-tanh", "gelu", (gelu_tanh, gelu_tanh_grad), params={"approximate": "tanh"}, terms=gelu_tanh_terms),
    _case("silu", "silu", (silu, silu_grad), terms=silu_terms),
    _case("quick_gelu", "quick_gelu", (quick_gelu, quick_gelu_grad), terms=quick_gelu_terms),
    _case("mish", "mish", (mish, mish_grad), terms=mish_terms),
    _case("softplus", "softplus", softplus(1.0, 20.0), kinks=(20.0,)),
    _case("softplus-beta2-t10", "softplus", softplus(2.0, 10.0), params={"beta": 2.0, "threshold": 10.0},
          kinks=(5.0,)),
    _case("softplus-no-threshold", "softplus", softplus(1.0, float("inf")), params={"threshold": float("inf")}),
    _case("softplus-beta0.5-no-threshold", "softplus", softplus(0.5, float("inf")),
          params={"beta": 0.5, "threshold": float("inf")}),
    _case("softplus-beta1e-300", "softplus", softplus(1e-300, 20.0), params={"beta": 1e-300}, kinks=(2e301,),
          float64_only=True),
    _case("softplus-beta1e300", "softplus", softplus(1e300, 20.0), params={"beta": 1e300}, kinks=(2e-299,),
          float64_only=True),
    _case("squareplus", "squareplus", squareplus(4.0)),
    _case("squareplus-b1", "squareplus", squareplus(1.0), params={"b": 1.0}),
    _case("squareplus-b1e-6", "squareplus", squareplus(1e-6), params={"b": 1e-6}),
    _case("squareplus-b0", "squareplus", (relu, relu_grad), params={"b": 0.0}, kinks=(0.0,)),
    _case("sparse_plus", "sparse_plus", (sparse_plus, sparse_plus_grad)),
    _case("sigmoid", "sigmoid", (sigmoid_mp, sigmoid_grad)),
    _case("tanh", "tanh", (tanh, tanh_grad)),
    _case("identity", "identity", (identity, identity_grad)),
)
