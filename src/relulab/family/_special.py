"""Numerically careful building blocks shared by several members (NumPy only, no SciPy).

Every function here takes a floating-point array and never overflows or produces a spurious NaN: exponentials
are only ever taken of non-positive arguments.
"""

from __future__ import annotations

import numpy as np

SQRT_2_OVER_PI = 0.7978845608028654  # sqrt(2 / pi)
INV_SQRT_2PI = 0.3989422804014327  # 1 / sqrt(2 pi)

# Rational approximations of erf and erfc (W. J. Cody's form, coefficients as published in S. L. Moshier's
# Cephes library, ndtr.c): erf(z) = z T(z^2) / U(z^2) for |z| < 1; erfc(z) = exp(-z^2) P(z) / Q(z) for
# 1 <= z < 8 and exp(-z^2) R(z) / S(z) for z >= 8. Peak relative error ~6e-14 on [0, 26.6].
_ERF_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
          7.00332514112805075473e3, 5.55923013010394962768e4)
_ERF_U = (1.0, 3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
          2.26290000613890934246e4, 4.92673942608635921086e4)
_ERFC_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
           4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
           9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2)
_ERFC_Q = (1.0, 1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
           9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
           1.65666309194161350182e3, 5.57535340817727675546e2)
_ERFC_R = (5.64189583547755073984e-1, 1.27536670759978104416e0, 5.01905042251180477414e0,
           6.16021097993053585195e0, 7.40974269950448939160e0, 2.97886665372100240670e0)
_ERFC_S = (1.0, 2.26052863220117276590e0, 9.39603524938001434673e0, 1.20489539808096656605e1,
           1.70814450747565897222e1, 9.60896809063285878198e0, 3.36907645100081516050e0)


_BITS = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def select(condition: np.ndarray, a, b, out: np.ndarray | None = None) -> np.ndarray:
    """``np.where(condition, a, b)``, bit for bit, for a boolean condition and floating-point a and b.

    np.where branches on every element, and on the random signs of pre-activations the branch is mispredicted half
    the time: ~5 ns per element. Here a and b are blended through their bit patterns with an all-ones/all-zeros
    mask, b ^ ((a ^ b) & mask), four branch-free passes (~1 ns per element). The values, signs of zero and NaN
    payloads are exactly np.where's, as is the result's dtype (NumPy's promotion of a and b). ``out`` (of that
    dtype and the result's shape) receives the result and may be a or b itself.
    """
    dtype = np.result_type(a, b)
    if condition.dtype != np.bool_ or dtype.kind != "f" or dtype.itemsize not in _BITS:
        value = np.where(condition, a, b)
        return value if out is None else _into(value, out)
    bits = _BITS[dtype.itemsize]
    a_bits = np.asarray(a, dtype).view(bits)
    b_bits = np.asarray(b, dtype).view(bits)
    mask = condition.astype(bits)
    np.negative(mask, out=mask)  # 1 -> all ones (unsigned wrap-around), 0 -> 0
    blend = np.bitwise_xor(a_bits, b_bits)
    whole = blend.shape == np.broadcast_shapes(blend.shape, mask.shape)  # else the and broadcasts to a new array
    blend = np.bitwise_and(blend, mask, out=blend if whole else None)
    if out is not None and out.dtype == dtype and out.shape == blend.shape:
        np.bitwise_xor(blend, b_bits, out=out.view(bits))  # reads a and b only through blend and b_bits here
        return out
    np.bitwise_xor(blend, b_bits, out=blend)
    return blend.view(dtype) if out is None else _into(blend.view(dtype), out)


def _into(value: np.ndarray, out: np.ndarray) -> np.ndarray:
    out[...] = value
    return out


# The signed integer dtype of each float width: a float viewed as it has its sign in the top bit.
SIGNED = {2: np.int16, 4: np.int32, 8: np.int64}


def negative_abs(x: np.ndarray) -> np.ndarray:
    """-|x| in one pass: x with its sign bit set (np.negative(np.abs(x)), bit for bit, NaN included)."""
    bits = _BITS[x.dtype.itemsize]
    sign = bits(1 << (8 * x.dtype.itemsize - 1))
    return np.bitwise_or(x.view(bits), sign).view(x.dtype)


def sign_select(x: np.ndarray, if_negative, otherwise, out: np.ndarray | None = None) -> np.ndarray:
    """``if_negative`` where x's sign bit is set (x < 0, -0.0, NaNs with the bit set), else ``otherwise``.

    The mask is the sign bit itself, spread by an arithmetic shift: one pass instead of a comparison's three.
    ``if_negative`` and ``otherwise`` are floats of x's dtype (arrays of x's shape, or scalars); ``out`` (x's
    dtype and shape) receives the result and may be x, if_negative or otherwise itself.
    """
    width = 8 * x.dtype.itemsize
    mask = np.right_shift(x.view(SIGNED[x.dtype.itemsize]), width - 1).view(_BITS[x.dtype.itemsize])
    a_bits = np.asarray(if_negative, x.dtype).view(mask.dtype)
    b_bits = np.asarray(otherwise, x.dtype).view(mask.dtype)
    blend = np.bitwise_and(np.bitwise_xor(a_bits, b_bits), mask, out=mask)
    target = blend if out is None else out.view(mask.dtype)
    np.bitwise_xor(blend, b_bits, out=target)
    return blend.view(x.dtype) if out is None else out


def _horner(z: np.ndarray, coefficients: tuple[float, ...]) -> np.ndarray:
    result = np.full_like(z, coefficients[0])
    for c in coefficients[1:]:
        result *= z
        result += c
    return result


def ndtr(x: np.ndarray) -> np.ndarray:
    """Phi(x), the standard normal CDF, to ~1e-13 relative accuracy over the whole range (also the far tails)."""
    x = np.asarray(x)
    z = x * np.sqrt(0.5).astype(x.dtype)
    # erfc of |z| >= 26.6 underflows; clipping keeps the rational function finite for |x| = inf.
    a = np.minimum(np.abs(z), 40.0)
    gauss = np.exp(-0.5 * np.minimum(np.abs(x), 60.0) ** 2)  # exp(-z^2) computed from x to avoid one rounding
    tail = select(a < 8.0, _horner(a, _ERFC_P) / _horner(a, _ERFC_Q), _horner(a, _ERFC_R) / _horner(a, _ERFC_S))
    a2 = np.minimum(a, 1.0) ** 2
    erf_small = np.minimum(a, 1.0) * _horner(a2, _ERF_T) / _horner(a2, _ERF_U)
    erfc_abs = select(a < 1.0, 1.0 - erf_small, gauss * tail)
    half = 0.5 * erfc_abs  # Phi(-|x|)
    central = 0.5 + 0.5 * np.copysign(erf_small, z)  # accurate near 0, where erfc would cancel
    result = select(a < np.sqrt(0.5), central, select(z > 0, 1.0 - half, half))
    return result.astype(x.dtype, copy=False)


def normal_pdf(x: np.ndarray) -> np.ndarray:
    """phi(x) = exp(-x^2/2) / sqrt(2 pi); 0 at +-inf, NaN at NaN."""
    return INV_SQRT_2PI * np.exp(-0.5 * np.minimum(np.abs(x), 60.0) ** 2)


def exp_overflows_below(dtype: np.dtype) -> float:
    """A bound T with exp(-x) finite for every x >= T (float32: -80, float64: -700), and 1 + exp(-x) == exp(-x)
    exactly below it: where formulas in exp(-x) switch to their form in exp(x)."""
    return -80.0 if np.dtype(dtype).itemsize <= 4 else -700.0


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1 / (1 + exp(-x)); below :func:`exp_overflows_below`, where exp(-x) overflows, exp(x) (the same value to
    within a relative exp(x) < 1e-34, far below an ulp). Four passes, ~2.5 ulp. ``out`` may be x itself."""
    tail = x < exp_overflows_below(x.dtype)
    tail_values = np.exp(x[tail]) if tail.any() else None  # rare; taken before out (maybe x) is written
    with np.errstate(over="ignore"):  # exp(-x) = inf in the tail, replaced below
        value = np.negative(x)
        np.exp(value, out=value)
    value += 1.0
    value = np.reciprocal(value, out=value if out is None else out)
    if tail_values is not None:
        np.place(value, tail, tail_values)
    return value


def sigmoid_and_slope(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sigmoid(x), sigmoid_slope(x)) from one exponential, each bit for bit what the two functions give."""
    e = np.exp(negative_abs(x))
    numerator = sign_select(x, e, 1.0)
    denominator = e + 1.0
    slope = e / np.square(denominator)
    return np.divide(numerator, denominator, out=numerator), slope


def sigmoid_slope(x: np.ndarray) -> np.ndarray:
    """sigma(x) (1 - sigma(x)) = e / (1 + e)^2 with e = exp(-|x|): no cancellation in either tail."""
    e = np.exp(negative_abs(x))
    return e / (1.0 + e) ** 2


def sech2(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1 - tanh(x)^2 without the cancellation of that formula: (1 / cosh(x))^2, three passes. cosh overflows
    only where sech^2 is below the smallest subnormal (|x| > 89 in float32, 710 in float64): 0 there, exactly as
    rounding gives. ``out`` may be x itself."""
    value = np.cosh(x)
    np.reciprocal(value, out=value)
    return np.square(value, out=value if out is None else out)


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): exact in both tails, +inf at +inf, 0 at -inf."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(negative_abs(x)))
