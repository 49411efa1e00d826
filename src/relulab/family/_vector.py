"""Compiled kernels for the smooth members, by numba (the optional ``relulab[fast]`` extra): one pass per element.

NumPy evaluates sigmoid, silu, gelu, tanh, elu, softplus and squareplus as chains of ufuncs (an exp, an add, a
division, selects), each a pass over memory, and its exp, expm1 and log1p are scalar loops. Here each member is
one loop that LLVM vectorises (8 float32 or 4 float64 lanes with AVX2): the exponential and the logarithm are
computed in the loop from the polynomials below, so nothing calls out of it. Every kernel has the signature of
those in ``_stream.py``, ``kernel(x, y, start, stop, streaming, *scalars)`` on flat C-contiguous arrays of one
dtype (``streaming`` is accepted and ignored: these kernels are bound by arithmetic, not memory), and is compiled
with ``nogil`` so the thread pool of ``_parallel.py`` runs it on every core. ``y`` may be ``x`` (in place).

**The exponential.** For z <= 0 (every member here needs exp or expm1 of a non-positive argument only),
z = n ln2 + r with n = round(z / ln2) and |r| <= ln2 / 2 by Cody and Waite's two-constant reduction (ln 2 split so
that n * ln2_hi is exact), expm1(r) by its Taylor polynomial (degree 7 in float32, 13 in float64: truncation error
below 2e-8 and 5e-18 relative to r, under a quarter of an ulp), and 2^n built from its bits. 2^n is applied as two
factors 2^(n+k) 2^-k (k = 32 in float32, 64 in float64: the first is normal for every n, the second a constant),
so the scaling is exact for normal results and rounds subnormal ones (within an ulp, as measured), and z below the
underflow point (-104 in float32, -746 in float64, and -inf) gives exactly 0. Then exp(z) = 2^n (1 + p) and
expm1(z) = (2^n - 1) + 2^n p (2^n - 1 is exact for the n where it matters, and for n = 0 the result is p itself:
accurate near 0); expm1 clamps z at -40 (-18 in float32), below which it rounds to -1, so its 2^n is always normal
and one factor. Measured against mpmath (tests/family/test_vector.py): within 1 ulp for exp, 2 ulps for expm1, in
both dtypes, over the whole range.

**The logarithm.** softplus needs log1p(t) for t = exp(-|beta x|) in [0, 1] only. For t >= 1/2,
1 + t = 2 (1 + u) with u = (t - 1) / 2 in [-1/4, 0] (t - 1 is exact there, by Sterbenz's lemma) and ln 2 added
back in two parts; below, u = t. Then log1p(u) = 2 atanh(s), s = u / (2 + u), |s| <= 1/5, evaluated as
u - (u^2/2 - s (u^2/2 + R)) (u exact, the correction smaller than u^2/2; fdlibm's arrangement) with
R(z) = sum_k 2 z^k / (2k + 1), z = s^2 <= 1/25, its Taylor series to z^10 in float64 and z^4 in float32: truncation
error below z^(K+1) / ((2K + 3) (1 - z)) relative, 1.9e-17 and 9.7e-9, under a quarter of an ulp. Measured against
mpmath (tests/family/test_vector.py): within 1 ulp on [0, 1] in both dtypes, subnormals included; -0.0 gives -0.0.

**Conventions.** The same as the NumPy kernels (members.py's docstring): NaN in gives NaN out (the input NaN is
passed through), the limits at +-inf, signed zeros; fastmath is limited to ``contract`` (fused multiply-adds), so
NaN and inf are never assumed away. The results agree with the NumPy kernels to a few ulps, not bit for bit; every
call computes the same elements the same way whatever the chunking (elementwise, no reductions).

Importing this module imports numba; ``_compiled.py`` and ``_parallel.py`` import it on first need only.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from ._special import _ERF_T, _ERF_U, _ERFC_P, _ERFC_Q, _ERFC_R, _ERFC_S, INV_SQRT_2PI

__all__ = ["sigmoid_forward", "sigmoid_derivative", "silu_forward", "silu_derivative", "gelu_tanh_forward",
           "gelu_tanh_derivative", "gelu_forward", "gelu_derivative", "tanh_forward", "tanh_derivative",
           "elu_forward", "elu_derivative", "mish_forward", "mish_derivative", "hardswish_forward",
           "hardswish_derivative", "squared_relu_forward",
           "squared_relu_derivative", "softplus_forward", "softplus_derivative", "celu_forward", "celu_derivative",
           "squareplus_forward", "squareplus_derivative", "sparse_plus_forward", "sparse_plus_derivative",
           "exp_and_expm1", "log1p_unit"]

_OPTIONS = dict(nogil=True, cache=True, fastmath={"contract"}, error_model="numpy")
_INLINE = dict(inline="always", fastmath={"contract"}, error_model="numpy")

SQRT_2_OVER_PI = 0.7978845608028654
GELU_CUBIC = 0.044715


@intrinsic
def _pow2(typingctx, n):
    """2^n for a float n holding a whole number in the normal exponent range, built from its bits."""
    if n == types.float32:
        int_type, float_type, bias, shift = ir.IntType(32), ir.FloatType(), 127, 23
    elif n == types.float64:
        int_type, float_type, bias, shift = ir.IntType(64), ir.DoubleType(), 1023, 52
    else:
        return None

    def codegen(context, builder, signature, args):
        k = builder.fptosi(args[0], int_type)
        k = builder.shl(builder.add(k, ir.Constant(int_type, bias)), ir.Constant(int_type, shift))
        return builder.bitcast(k, float_type)

    return n(n), codegen


@intrinsic
def _as(typingctx, like, value):
    """``value`` (a float64 constant) in the floating-point type of ``like``: folded to a constant of that type, so
    float32 kernels compute in float32 throughout (numba types a Python float literal as float64)."""
    if not isinstance(like, types.Float):
        return None

    def codegen(context, builder, signature, args):
        return context.cast(builder, args[1], signature.args[1], signature.args[0])

    return like(like, value), codegen


@intrinsic
def _double(typingctx, like):
    """True (a constant: the branch it guards is folded away) when ``like`` is a float64."""
    flag = like == types.float64

    def codegen(context, builder, signature, args):
        return ir.Constant(ir.IntType(1), int(flag))

    return types.boolean(like), codegen


# Constants (float64; _as rounds them to the kernel's dtype once, at compile time).
_LOG2E = 1.4426950408889634
_LN2_HI_64, _LN2_LO_64 = 6.93147180369123816490e-01, 1.90821492927058770002e-10  # fdlibm's split of ln 2
_LN2_HI_32, _LN2_LO_32 = 0.693145751953125, 1.428606765330187045e-06  # 16 bits (n * hi exact), the rest
_SHIFT_64, _SHIFT_32 = 6755399441055744.0, 12582912.0  # 1.5 * 2^52, 1.5 * 2^23: adding one rounds to a whole number
_LOWEST_64, _LOWEST_32 = -746.0, -104.0  # exp below these rounds to 0
_EXPM1_LOWEST_64, _EXPM1_LOWEST_32 = -40.0, -18.0  # expm1 below these rounds to -1
_UNSCALE_64, _UNSCALE_32 = 2.0 ** -64, 2.0 ** -32  # 2^n = 2^(n + k) 2^-k: the first factor normal for every n
_C3, _C4, _C5, _C6, _C7, _C8, _C9, _C10, _C11, _C12, _C13 = (1.0 / math.factorial(k) for k in range(3, 14))
_MAX_64, _MAX_32 = float(np.finfo(np.float64).max), float(np.finfo(np.float32).max)
_CLIP = 1e5  # beyond |x| = 1e5 every sigmoid here has saturated (its slope is 0): clipping keeps x^3 and a x finite
_K2 = 2.0 * SQRT_2_OVER_PI
_CUBIC3 = 3.0 * GELU_CUBIC
_INF = math.inf
# log1p: 2 atanh(s) = 2s + s R(s^2), R(z) = sum_k 2 z^k / (2k + 1), its Taylor series (see _log1p_unit).
_ATANH = tuple(2.0 / (2 * k + 1) for k in range(1, 12))
_LN2 = 0.6931471805599453
# squareplus: sqrt(x^2 + b) is computed as sqrt((sx)^2 + s^2 b) / s with s a power of two chosen per element so that
# neither the square overflows nor a small one underflows (hypot's job, without its division).
# Above big, x and sqrt(b) scaled down; below small, up (far enough that the smallest subnormal's square is normal).
_SQ_BIG_64, _SQ_SMALL_64, _SQ_DOWN_64, _SQ_UP_64 = 2.0 ** 500, 2.0 ** -500, 2.0 ** -600, 2.0 ** 600
_SQ_BIG_32, _SQ_SMALL_32, _SQ_DOWN_32, _SQ_UP_32 = 2.0 ** 60, 2.0 ** -60, 2.0 ** -80, 2.0 ** 100


@njit(**_INLINE)
def _in_place(xs, ys):
    """Whether ys is xs's memory. LLVM vectorises a loop reading xs and writing ys only after a run-time check that
    the two do not overlap; in place they do (harmlessly: element i is read before it is written), and the loop
    would run one element at a time. So each kernel has a second loop for that case, over ys alone, which LLVM
    vectorises without a check."""
    return xs.ctypes.data == ys.ctypes.data


@njit(**_INLINE)
def _parts(z):
    """(s1, s2, p) with exp(z) = s1 s2 (1 + p), 2^n = s1 s2, p = expm1(r), for z <= 0 (NaN gives exp 0)."""
    n, p = _reduced(z)
    if _double(z):
        return _pow2(n + _as(n, 64.0)), _as(n, _UNSCALE_64), p
    return _pow2(n + _as(n, 32.0)), _as(n, _UNSCALE_32), p


@njit(**_INLINE)
def _reduced(z):
    """(n, p) with exp(z) = 2^n (1 + p), p = expm1(r), for z <= 0 (n down to the underflow point: 2^n may be
    subnormal, see _parts)."""
    if _double(z):
        lowest, shift, hi, lo = _as(z, _LOWEST_64), _as(z, _SHIFT_64), _as(z, _LN2_HI_64), _as(z, _LN2_LO_64)
    else:
        lowest, shift, hi, lo = _as(z, _LOWEST_32), _as(z, _SHIFT_32), _as(z, _LN2_HI_32), _as(z, _LN2_LO_32)
    z = z if z > lowest else lowest
    n = (z * _as(z, _LOG2E) + shift) - shift
    r = (z - n * hi) - n * lo
    if _double(z):  # degree 13
        q = _as(r, _C9) + r * (_as(r, _C10) + r * (_as(r, _C11) + r * (_as(r, _C12) + r * _as(r, _C13))))
        q = _as(r, _C5) + r * (_as(r, _C6) + r * (_as(r, _C7) + r * (_as(r, _C8) + r * q)))
    else:  # degree 7
        q = _as(r, _C5) + r * (_as(r, _C6) + r * _as(r, _C7))
    p = r + r * r * (_as(r, 0.5) + r * (_as(r, _C3) + r * (_as(r, _C4) + r * q)))
    return n, p


@njit(**_INLINE)
def _exp_neg(z):
    s1, s2, p = _parts(z)
    return (s1 + s1 * p) * s2


@njit(**_INLINE)
def _expm1_neg(z):
    # Below -40 (-18 in float32) expm1 rounds to -1: z clamped there keeps 2^n normal, one factor.
    floor = _as(z, _EXPM1_LOWEST_64) if _double(z) else _as(z, _EXPM1_LOWEST_32)
    n, p = _reduced(z if z > floor else floor)
    s = _pow2(n)
    return (s - _as(s, 1.0)) + s * p


@njit(**_INLINE)
def _sigmoid_parts(v):
    """(sigmoid(v), e, q) with e = exp(-|v|), q = 1 / (1 + e): sigmoid is q for v > 0, e q otherwise."""
    e = _exp_neg(-abs(v))
    q = _as(v, 1.0) / (_as(v, 1.0) + e)
    return (q if v > _as(v, 0.0) else e * q), e, q


@njit(**_INLINE)
def _finite(v):
    """v with +-inf (and NaN) replaced by +-max: products with a factor that is 0 there stay 0."""
    big = _as(v, _MAX_64) if _double(v) else _as(v, _MAX_32)
    return v if abs(v) <= big else math.copysign(big, v)


@njit(**_INLINE)
def _clip(v):
    c = v if v < _as(v, _CLIP) else _as(v, _CLIP)
    return c if c > _as(v, -_CLIP) else _as(v, -_CLIP)


# -- the members, one element at a time (NaN in: the input NaN out) -------------------------------------------------
@njit(**_INLINE)
def _sigmoid(v, scalars):
    s, e, q = _sigmoid_parts(v)
    return s if v == v else v


@njit(**_INLINE)
def _sigmoid_slope(v, scalars):
    s, e, q = _sigmoid_parts(v)
    return e * q * q if v == v else v  # e / (1 + e)^2: no cancellation in either tail


@njit(**_INLINE)
def _silu(v, scalars):
    # x sigmoid(a x) (a = 1: silu; 1.702: quick_gelu); 0 at -inf, where the product would be -inf * 0.
    (scale,) = scalars
    s, e, q = _sigmoid_parts(scale * v)
    r = v * s if v > _as(v, -_INF) else _as(v, 0.0)
    return r if v == v else v


@njit(**_INLINE)
def _silu_slope(v, scalars):
    # sigma(u) + u sigma'(u), u = a x; sigma'(u) = e q^2 is 0 beyond |x| = 1e5, where clipping keeps u * 0 at 0.
    (scale,) = scalars
    u = scale * _clip(v)
    s, e, q = _sigmoid_parts(u)
    r = s + u * (e * q * q)
    return r if v == v else v


@njit(**_INLINE)
def _gelu_tanh(v, scalars):
    # 0.5 x (1 + tanh(u)) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3): no cancellation for x << 0.
    c = _clip(v)
    s, e, q = _sigmoid_parts(_as(v, _K2) * (c + _as(v, GELU_CUBIC) * (c * c * c)))
    r = _finite(v) * s
    r = v if v == _as(v, _INF) else (_as(v, 0.0) if v == _as(v, -_INF) else r)
    return r if v == v else v


@njit(**_INLINE)
def _gelu_tanh_slope(v, scalars):
    c = _clip(v)
    s, e, q = _sigmoid_parts(_as(v, _K2) * (c + _as(v, GELU_CUBIC) * (c * c * c)))
    du2 = _as(v, _K2) * (_as(v, 1.0) + _as(v, _CUBIC3) * (c * c))
    r = s + c * du2 * (e * q * q)
    return r if v == v else v


@njit(**_INLINE)
def _tanh(v, scalars):
    # tanh|x| = -m / (2 + m), m = expm1(-2|x|): accurate at 0 (m is then -2|x| to an ulp); the sign from x.
    two = _as(v, 2.0)
    m = _expm1_neg(-two * abs(v))
    r = math.copysign(-m / (two + m), v)
    return r if v == v else v


@njit(**_INLINE)
def _tanh_slope(v, scalars):
    # sech^2 x = 4 e / (2 + m)^2, e = exp(-2|x|) = 1 + m: no cancellation in the tails. For |x| < 1/2, where
    # 1 - tanh^2 does not cancel either, that (one rounding, a fused multiply-add): fewer roundings near 0.
    one, two = _as(v, 1.0), _as(v, 2.0)
    s1, s2, p = _parts(-two * abs(v))
    s = s1 * s2
    m = (s - one) + s * p
    e = (s1 + s1 * p) * s2
    q = one / (two + m)  # one division for both forms
    t = -m * q
    r = one - t * t if abs(v) < _as(v, 0.5) else _as(v, 4.0) * e * (q * q)
    return r if v == v else v


@njit(**_INLINE)
def _elu(v, scalars):
    # scale * (x for x >= 0, both zeros keeping their sign; alpha expm1(x) below): elu, selu.
    alpha, scale = scalars
    zero = _as(v, 0.0)
    negative = alpha * _expm1_neg(v if v < zero else zero)
    r = scale * (v if v >= zero else negative)
    return r if v == v else v


@njit(**_INLINE)
def _elu_slope(v, scalars):
    # scale for x > 0, coefficient exp(x) for x < 0, at_zero at 0.
    coefficient, scale, at_zero = scalars
    zero = _as(v, 0.0)
    negative = coefficient * _exp_neg(v if v < zero else zero)
    r = scale if v > zero else (at_zero if v == zero else negative)
    return r if v == v else v


@njit(**_INLINE)
def _poly(z, coefficients):
    """Horner's rule, highest coefficient first (the order of _special.py's tables)."""
    r = _as(z, 0.0)
    for c in coefficients:
        r = r * z + _as(z, c)
    return r


@njit(**_INLINE)
def _ndtr_and_gauss(v):
    """(Phi(x), exp(-x^2 / 2)): _special.ndtr's rational approximations (Cody; Cephes' coefficients), every branch
    evaluated and the right one selected, as there."""
    z = v * _as(v, 0.7071067811865476)
    a = min(abs(z), _as(v, 40.0))
    w = min(abs(v), _as(v, 60.0))
    gauss = _exp_neg(_as(v, -0.5) * (w * w))
    tail = _poly(a, _ERFC_P) / _poly(a, _ERFC_Q) if a < _as(v, 8.0) else _poly(a, _ERFC_R) / _poly(a, _ERFC_S)
    small = min(a, _as(v, 1.0))
    a2 = small * small
    erf_small = small * _poly(a2, _ERF_T) / _poly(a2, _ERF_U)
    erfc_abs = _as(v, 1.0) - erf_small if a < _as(v, 1.0) else gauss * tail
    half = _as(v, 0.5) * erfc_abs
    central = _as(v, 0.5) + _as(v, 0.5) * math.copysign(erf_small, z)
    phi = central if a < _as(v, 0.7071067811865476) else (_as(v, 1.0) - half if z > _as(v, 0.0) else half)
    return phi, gauss


@njit(**_INLINE)
def _gelu(v, scalars):
    phi, gauss = _ndtr_and_gauss(v)
    r = _finite(v) * phi
    r = v if v == _as(v, _INF) else (_as(v, 0.0) if v == _as(v, -_INF) else r)
    return r if v == v else v


@njit(**_INLINE)
def _gelu_slope(v, scalars):
    phi, gauss = _ndtr_and_gauss(v)
    r = phi + _clip(v) * (_as(v, INV_SQRT_2PI) * gauss)
    return r if v == v else v


@njit(**_INLINE)
def _mish_parts(v):
    """(tanh(softplus(x)), 1 - that, sigmoid(x)) from one exponential e = exp(-|x|), without cancellation:
    x <= 0: n = e (e + 2), t = n / (n + 2), 1 - t = 2 / (n + 2); x > 0: t = (1 + 2e) / d, 1 - t = 2 e^2 / d,
    d = 1 + 2e + 2e^2 (members.py's _mish_tanh_softplus, with the exponential shared)."""
    one, two = _as(v, 1.0), _as(v, 2.0)
    e = _exp_neg(-abs(v))
    n = e * (e + two)
    d = one + two * e + two * e * e
    negative = v <= _as(v, 0.0)
    t = n / (n + two) if negative else (one + two * e) / d
    one_minus_t = two / (n + two) if negative else two * e * e / d
    sigmoid = e / (one + e) if negative else one / (one + e)
    return t, one_minus_t, sigmoid


@njit(**_INLINE)
def _mish(v, scalars):
    t, one_minus_t, sigmoid = _mish_parts(v)
    r = _finite(v) * t
    r = v if v == _as(v, _INF) else (_as(v, 0.0) if v == _as(v, -_INF) else r)
    return r if v == v else v


@njit(**_INLINE)
def _mish_slope(v, scalars):
    t, one_minus_t, sigmoid = _mish_parts(v)
    r = t + _finite(v) * (one_minus_t * (_as(v, 1.0) + t)) * sigmoid
    r = _as(v, 1.0) if v == _as(v, _INF) else (_as(v, 0.0) if v == _as(v, -_INF) else r)
    return r if v == v else v


@njit(**_INLINE)
def _hardswish(v, scalars):
    # 0 for x <= -3, x for x >= 3, x (x + 3) / 6 between (PyTorch's branches; NaN stays NaN through the last).
    c = min(max(v, _as(v, -3.0)), _as(v, 3.0))
    r = _as(v, 0.0) if v <= _as(v, -3.0) else (v if v >= _as(v, 3.0) else c * (c + _as(v, 3.0)) / _as(v, 6.0))
    return r if v == v else v


@njit(**_INLINE)
def _hardswish_slope(v, scalars):
    c = min(max(v, _as(v, -3.0)), _as(v, 3.0))
    r = _as(v, 0.0) if v <= _as(v, -3.0) else ((_as(v, 2.0) * c + _as(v, 3.0)) / _as(v, 6.0) if v < _as(v, 3.0)
                                                else _as(v, 1.0))
    return r if v == v else v


@njit(**_INLINE)
def _squared_relu(v, scalars):
    p = v if v > _as(v, 0.0) else _as(v, 0.0)
    return p * p if v == v else v


@njit(**_INLINE)
def _squared_relu_slope(v, scalars):
    p = v if v > _as(v, 0.0) else _as(v, 0.0)
    return _as(v, 2.0) * p if v == v else v


@njit(**_INLINE)
def _log1p_unit(t):
    """log1p(t) for 0 <= t <= 1 (softplus's log1p(exp(-|x|)); -0.0 gives -0.0). See the module docstring."""
    one, two, half = _as(t, 1.0), _as(t, 2.0), _as(t, 0.5)
    upper = t >= half
    # 1 + t = 2 (1 + u), u = (t - 1) / 2 in [-1/4, 0] for t >= 1/2 (t - 1 exact there: Sterbenz), else u = t.
    u = (t - one) * half if upper else t
    s = u / (two + u)  # |s| <= 1/5
    z = s * s
    if _double(t):  # R(z) to z^10
        q = _as(z, _ATANH[5]) + z * (_as(z, _ATANH[6]) + z * (_as(z, _ATANH[7]) + z * (
            _as(z, _ATANH[8]) + z * _as(z, _ATANH[9]))))
        q = _as(z, _ATANH[0]) + z * (_as(z, _ATANH[1]) + z * (_as(z, _ATANH[2]) + z * (
            _as(z, _ATANH[3]) + z * (_as(z, _ATANH[4]) + z * q))))
        hi, lo = _as(t, _LN2_HI_64), _as(t, _LN2_LO_64)
    else:  # R(z) to z^4
        q = _as(z, _ATANH[0]) + z * (_as(z, _ATANH[1]) + z * (_as(z, _ATANH[2]) + z * _as(z, _ATANH[3])))
        hi, lo = _as(t, _LN2_HI_32), _as(t, _LN2_LO_32)
    r = z * q
    # 2s + s R = u - (u^2/2 - s (u^2/2 + R)): u exact, the correction below u^2/2 (fdlibm's arrangement).
    hfsq = half * u * u
    v = u - (hfsq - s * (hfsq + r))
    return (v + lo) + hi if upper else v


@njit(**_INLINE)
def _softplus(v, scalars):
    # max(x, 0) + log1p(exp(-|bx|)) / b, and x itself where bx > threshold (PyTorch's switch).
    beta, threshold = scalars
    bx = beta * v
    smooth = (v if v > _as(v, 0.0) else _as(v, 0.0)) + _log1p_unit(_exp_neg(-abs(bx))) / beta
    r = v if bx > threshold else smooth
    return r if v == v else v


@njit(**_INLINE)
def _softplus_slope(v, scalars):
    beta, threshold = scalars
    bx = beta * v
    s, e, q = _sigmoid_parts(bx)
    r = _as(v, 1.0) if bx > threshold else s
    return r if v == v else v


@njit(**_INLINE)
def _celu(v, scalars):
    # alpha expm1(x / divisor) for x < 0 (divisor: alpha, at least the smallest subnormal), x itself from -0.0 on.
    # Where x / divisor is below the smallest normal, f = x (1 + x / 2 alpha) rounds to x: x itself, not the few
    # bits a subnormal quotient keeps.
    alpha, divisor = scalars
    zero = _as(v, 0.0)
    z = (v if v < zero else zero) / divisor
    tiny = _as(v, 2.2250738585072014e-308) if _double(v) else _as(v, 1.1754943508222875e-38)
    negative = v if abs(z) < tiny else alpha * _expm1_neg(z)
    r = v if v >= zero else negative
    return r if v == v else v


@njit(**_INLINE)
def _celu_slope(v, scalars):
    # exp(x / divisor) for x <= 0 (1 at 0: alpha / alpha is exactly 1), 1 above.
    (divisor,) = scalars
    zero = _as(v, 0.0)
    r = _as(v, 1.0) if v > zero else _exp_neg((v if v < zero else zero) / divisor)
    return r if v == v else v


@njit(**_INLINE)
def _squareplus_parts(v, scalars):
    """(h, d): h = sqrt(x^2 + b), d = h/2 + |x|/2, with x and b scaled by a power of two where x^2 would overflow
    or lose bits below the normals (so h is within an ulp, as hypot)."""
    b, quarter_b, root_b, b_down, b_up = scalars
    if _double(v):
        big, small, down, up = _as(v, _SQ_BIG_64), _as(v, _SQ_SMALL_64), _as(v, _SQ_DOWN_64), _as(v, _SQ_UP_64)
    else:
        big, small, down, up = _as(v, _SQ_BIG_32), _as(v, _SQ_SMALL_32), _as(v, _SQ_DOWN_32), _as(v, _SQ_UP_32)
    one, half = _as(v, 1.0), _as(v, 0.5)
    a = abs(v)
    m = a if a > root_b else root_b
    large, tiny = m > big, m < small
    scale = down if large else (up if tiny else one)
    inverse = one / down if large else (one / up if tiny else one)  # (constants: powers of two)
    w = v * scale
    h = math.sqrt(w * w + (b_down if large else (b_up if tiny else b))) * inverse
    return h, half * h + half * a


@njit(**_INLINE)
def _squareplus(v, scalars):
    # d for x >= 0; the same value as (b / 4) / d for x < 0, without the cancellation of (x + h) / 2.
    h, d = _squareplus_parts(v, scalars)
    quarter_b = scalars[1]
    r = quarter_b / d if v < _as(v, 0.0) else d
    return r if v == v else v


@njit(**_INLINE)
def _squareplus_slope(v, scalars):
    # (1 + x / h) / 2; for x < 0, (b / 4) / (h d) without cancellation. 1 at +inf (inf / inf there).
    h, d = _squareplus_parts(v, scalars)
    quarter_b = scalars[1]
    negative = v < _as(v, 0.0)
    q = (quarter_b if negative else v) / h
    r = q / d if negative else _as(v, 0.5) + _as(v, 0.5) * q
    r = _as(v, 1.0) if v == _as(v, _INF) else r
    return r if v == v else v


@njit(**_INLINE)
def _sparse_plus(v, scalars):
    # 0 for x <= -1, x from 1 on, (c + 1)^2 / 4 between (c: x clipped to [-1, 1]); JAX's branches.
    one = _as(v, 1.0)
    c = -one if v < -one else (one if v > one else v)
    r = _as(v, 0.0) if v <= -one else (v if v >= one else _as(v, 0.25) * ((c + one) * (c + one)))
    return r if v == v else v


@njit(**_INLINE)
def _sparse_plus_slope(v, scalars):
    one = _as(v, 1.0)
    c = -one if v < -one else (one if v > one else v)
    r = (c + one) * _as(v, 0.5)
    return r if v == v else v


# -- the kernels: y[start:stop] = f(x[start:stop]) ----------------------------------------------------------------
@njit(**_INLINE)
def _apply(element, x, y, start, stop, scalars):
    """y[i] = element(x[i], scalars) for i in [start, stop): the loop LLVM vectorises (see _in_place)."""
    xs, ys = x[start:stop], y[start:stop]
    if _in_place(xs, ys):
        for i in range(ys.size):
            ys[i] = element(ys[i], scalars)
    else:
        for i in range(xs.size):
            ys[i] = element(xs[i], scalars)


@njit(**_OPTIONS)
def sigmoid_forward(x, y, start, stop, streaming):
    _apply(_sigmoid, x, y, start, stop, ())


@njit(**_OPTIONS)
def sigmoid_derivative(x, y, start, stop, streaming):
    _apply(_sigmoid_slope, x, y, start, stop, ())


@njit(**_OPTIONS)
def silu_forward(x, y, start, stop, streaming, scale):
    _apply(_silu, x, y, start, stop, (scale,))


@njit(**_OPTIONS)
def silu_derivative(x, y, start, stop, streaming, scale):
    _apply(_silu_slope, x, y, start, stop, (scale,))


@njit(**_OPTIONS)
def gelu_tanh_forward(x, y, start, stop, streaming):
    _apply(_gelu_tanh, x, y, start, stop, ())


@njit(**_OPTIONS)
def gelu_tanh_derivative(x, y, start, stop, streaming):
    _apply(_gelu_tanh_slope, x, y, start, stop, ())


@njit(**_OPTIONS)
def tanh_forward(x, y, start, stop, streaming):
    _apply(_tanh, x, y, start, stop, ())


@njit(**_OPTIONS)
def tanh_derivative(x, y, start, stop, streaming):
    _apply(_tanh_slope, x, y, start, stop, ())


@njit(**_OPTIONS)
def elu_forward(x, y, start, stop, streaming, alpha, scale):
    _apply(_elu, x, y, start, stop, (alpha, scale))


@njit(**_OPTIONS)
def elu_derivative(x, y, start, stop, streaming, coefficient, scale, at_zero):
    _apply(_elu_slope, x, y, start, stop, (coefficient, scale, at_zero))


@njit(**_OPTIONS)
def gelu_forward(x, y, start, stop, streaming):
    _apply(_gelu, x, y, start, stop, ())


@njit(**_OPTIONS)
def gelu_derivative(x, y, start, stop, streaming):
    _apply(_gelu_slope, x, y, start, stop, ())


@njit(**_OPTIONS)
def mish_forward(x, y, start, stop, streaming):
    _apply(_mish, x, y, start, stop, ())


@njit(**_OPTIONS)
def mish_derivative(x, y, start, stop, streaming):
    _apply(_mish_slope, x, y, start, stop, ())


@njit(**_OPTIONS)
def hardswish_forward(x, y, start, stop, streaming):
    _apply(_hardswish, x, y, start, stop, ())


@njit(**_OPTIONS)
def hardswish_derivative(x, y, start, stop, streaming):
    _apply(_hardswish_slope, x, y, start, stop, ())


@njit(**_OPTIONS)
def squared_relu_forward(x, y, start, stop, streaming):
    _apply(_squared_relu, x, y, start, stop, ())


@njit(**_OPTIONS)
def squared_relu_derivative(x, y, start, stop, streaming):
    _apply(_squared_relu_slope, x, y, start, stop, ())


@njit(nogil=True, cache=True, error_model="numpy")
def exp_and_expm1(x, e, m):
    """exp and expm1 of x <= 0, elementwise (what the kernels use), for the error tests."""
    for i in range(x.size):
        e[i] = _exp_neg(x[i])
        m[i] = _expm1_neg(x[i])


@njit(**_OPTIONS)
def softplus_forward(x, y, start, stop, streaming, beta, threshold):
    _apply(_softplus, x, y, start, stop, (beta, threshold))


@njit(**_OPTIONS)
def softplus_derivative(x, y, start, stop, streaming, beta, threshold):
    _apply(_softplus_slope, x, y, start, stop, (beta, threshold))


@njit(**_OPTIONS)
def celu_forward(x, y, start, stop, streaming, alpha, divisor):
    _apply(_celu, x, y, start, stop, (alpha, divisor))


@njit(**_OPTIONS)
def celu_derivative(x, y, start, stop, streaming, divisor):
    _apply(_celu_slope, x, y, start, stop, (divisor,))


@njit(**_INLINE)
def _squareplus_scalars(b):
    """(b, b / 4, sqrt(b), b times the squares of _squareplus_parts's down and up factors) for b > 0 (b clamped
    first where the scaled-up value is never used: there it would overflow)."""
    if _double(b):
        small, down, up = _as(b, _SQ_SMALL_64), _as(b, _SQ_DOWN_64), _as(b, _SQ_UP_64)
    else:
        small, down, up = _as(b, _SQ_SMALL_32), _as(b, _SQ_DOWN_32), _as(b, _SQ_UP_32)
    return b, _as(b, 0.25) * b, math.sqrt(b), (b * down) * down, (min(b, small * small) * up) * up


@njit(**_OPTIONS)
def squareplus_forward(x, y, start, stop, streaming, b):
    _apply(_squareplus, x, y, start, stop, _squareplus_scalars(b))


@njit(**_OPTIONS)
def squareplus_derivative(x, y, start, stop, streaming, b):
    _apply(_squareplus_slope, x, y, start, stop, _squareplus_scalars(b))


@njit(**_OPTIONS)
def sparse_plus_forward(x, y, start, stop, streaming):
    _apply(_sparse_plus, x, y, start, stop, ())


@njit(**_OPTIONS)
def sparse_plus_derivative(x, y, start, stop, streaming):
    _apply(_sparse_plus_slope, x, y, start, stop, ())


@njit(nogil=True, cache=True, error_model="numpy")
def log1p_unit(t, y):
    """log1p of 0 <= t <= 1, elementwise (what softplus uses), for the error tests."""
    for i in range(t.size):
        y[i] = _log1p_unit(t[i])
