"""Every member of the ReLU family, each defined once: kernels, formula, parameters, properties, notes.

A kernel is a pure function ``kernel(x, out, **params) -> ndarray`` on an already-validated floating-point array
(integer arrays only for members that are exact on integers). ``out`` is either ``None`` or a buffer of x's shape
and dtype that the kernel may fill and return; a kernel may also ignore it and return a new array. Kernels must be
safe when ``out`` is ``x`` itself (in-place use).

Conventions every kernel follows (README, "Conventions"): NaN in gives NaN out, for values and derivatives; at +-inf the
mathematical limit (never NaN from inf * 0, never an overflow from exp); relu(-0.0) = +0.0; at a kink at 0 the
derivative is PyTorch's value unless ``at_zero=`` picks another point of the subdifferential.

Adding a member: write its two kernels and one ``register(Activation(...))`` block below (everything another room
needs, from the gain to the relulab.nn class name, is an argument of that block), then add its reference formula to
``tests/family/reference.py``. docs/architecture.md, "Adding a member", has the steps.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from . import _special as sp
from ._compiled import vector
from ._core import Activation, Kink, Param, Properties, register
from ._gain import leaky_gain, numeric_gain
from ._input import describe, is_whole

# SELU's constants to full double precision (Klambauer et al. 2017, eq. 14; the closed forms solved to 30 digits).
SELU_SCALE = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717

_PAPER_RELU = "Nair & Hinton 2010, Rectified Linear Units Improve Restricted Boltzmann Machines (ICML)."
_PAPER_LEAKY = "Maas, Hannun & Ng 2013, Rectifier Nonlinearities Improve Neural Network Acoustic Models (ICML)."


def _fix_infinities(result: np.ndarray, x: np.ndarray, at_pos_inf: float, at_neg_inf: float) -> np.ndarray:
    """Write the mathematical limits at +-inf where an inf * 0 product would have produced NaN."""
    if np.isinf(x).any():  # one cheap pass saves two masked copies in the common case of no infinity
        np.copyto(result, at_pos_inf, where=x == np.inf)
        np.copyto(result, at_neg_inf, where=x == -np.inf)
    return result


def _nan_where_nan(result: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Put NaN wherever x is NaN (for derivative kernels built from comparisons, which lose NaN)."""
    np.copyto(result, x, where=np.isnan(x))
    return result


def _outside(x: np.ndarray, bound: float) -> bool:
    """Whether some element of x has |x| > bound (NaN does not count): one pass and a reduction."""
    return bool(np.any(np.abs(x) > bound))


def _finite(x: np.ndarray) -> np.ndarray:
    """x with +-inf replaced by the largest finite values (NaN kept): products such as x * sigmoid(x) then never
    form inf * 0; the true limits at +-inf are written afterwards by _fix_infinities."""
    if not np.isinf(x).any():
        return x  # nothing to clip: x itself, no pass over it
    big = np.finfo(x.dtype).max
    return np.clip(x, -big, big)


def _store(value: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    if out is None:
        return value
    out[...] = value
    return out


# -- relu ------------------------------------------------------------------------------------------------------
def _relu(x, out, max_value=None, threshold=0.0):
    if max_value is not None or threshold != 0:
        return _clipped_relu(x, out, max_value, threshold)
    # np.maximum(x, 0.0) returns +0.0 for x = -0.0 and propagates NaN; works on integer arrays too.
    return np.maximum(x, 0, out=out)


def _relu_grad(x, out, at_zero, max_value=None, threshold=0.0):
    if max_value is not None or threshold != 0:
        return _clipped_relu_grad(x, out, at_zero, max_value, threshold)
    # np.heaviside(x, at_zero): 0 for x < 0, at_zero at x == 0 (both signs of zero), 1 for x > 0, NaN for NaN.
    # Spelled out with comparisons because np.heaviside branches per element (7 ns on random signs, not 1).
    return _store(_step(x, x > 0, at_zero), out)


def _step(x, one, at_zero):
    """1 where ``one``, at_zero where x == 0, 0 elsewhere, NumPy's NaN where x is NaN (np.heaviside's values)."""
    nan = np.isnan(x)
    grad = one.astype(x.dtype)
    if at_zero != 0:
        grad = sp.select(x == 0, at_zero, grad)
    if nan.any():
        np.copyto(grad, np.nan, where=nan)
    return grad


# -- relu's max_value and threshold (Keras's relu): relu itself at the defaults, which keep the paths above ----------
def _relu_defaults(p: Mapping[str, Any]) -> bool:
    return p.get("max_value") is None and p.get("threshold", 0.0) == 0


def _relu_bounds(x, max_value, threshold, cap_up=False):
    """(cap, low) in x's dtype, such that comparisons with them decide exactly what comparisons with the real
    parameters decide: x <= threshold is x <= low for low the largest value of the dtype <= threshold (f jumps
    there, so a threshold rounded up would zero a float32 x just above a real threshold such as 0.1); the cap is
    rounded to nearest for min(x, cap), or up (``cap_up``) for x < max_value. Integers: Python ints, the cap no
    larger than the dtype's largest."""
    if x.dtype.kind in "iu":
        cap = None if max_value is None else min(int(max_value), int(np.iinfo(x.dtype).max))
        return cap, int(threshold)
    low = _rounded(threshold, x.dtype, -np.inf)
    if max_value is None:
        return None, low
    return (_rounded(max_value, x.dtype, np.inf) if cap_up else x.dtype.type(max_value)), low


def _rounded(value: float, dtype: np.dtype, toward: float):
    """value in dtype, rounded toward -inf or +inf (value itself where dtype holds it)."""
    rounded = dtype.type(value)
    if (float(rounded) > value) if toward < 0 else (float(rounded) < value):  # in float64: NumPy would round value
        rounded = np.nextafter(rounded, dtype.type(toward))
    return rounded


def _clipped_relu(x, out, max_value, threshold):
    # x where x > threshold, else +0 (Keras: x * (x > threshold); torch.nn.Threshold(threshold, 0)), then capped at
    # max_value. "x <= threshold" is False for NaN, so NaN stays NaN through both passes; -0.0 becomes +0.0.
    cap, low = _relu_bounds(x, max_value, threshold)
    zero = np.zeros((), x.dtype)
    value = sp.select(x <= low, zero, x)  # a new array (np.where's for integers)
    if cap is not None:
        np.minimum(value, cap, out=value)
    return _store(value, out)


def _clipped_relu_grad(x, out, at_zero, max_value, threshold):
    # 1 strictly inside (threshold, max_value); 0 at x == threshold (Keras's x * (x > threshold), torch's
    # threshold_backward) and from max_value on (PyTorch's relu6/hardtanh, TensorFlow's relu6); at_zero at x == 0
    # where 0 is a kink (threshold 0); NaN at NaN.
    high, low = _relu_bounds(x, max_value, threshold, cap_up=True)
    inside = x > low
    if high is not None:
        inside &= x < high
    return _store(_step(x, inside, at_zero if threshold == 0 else 0.0), out)


def _relu_kink(p: Mapping[str, Any]) -> Kink:
    # A kink at 0 only with threshold 0 and room above it; otherwise f is constant around 0 (f' = 0 there).
    corner = p["threshold"] == 0 and (p["max_value"] is None or p["max_value"] > 0)
    return Kink(default=0.0, low=0.0, high=1.0 if corner else 0.0)


def _relu_properties(p: Mapping[str, Any]) -> Properties:
    cap, low = p["max_value"], p["threshold"]
    kinks = () if cap == 0 else tuple(sorted({low} | ({cap} if cap is not None else set())))
    return Properties(monotonic=True, lower_bound=0.0, upper_bound=cap, smooth=False, kinks=kinks,
                      zero_for_negative=True, piecewise_linear=True)


def _check_relu(p: Mapping[str, Any], owner: str) -> None:
    if p["max_value"] is not None and p["max_value"] < p["threshold"]:
        raise ValueError(f"{owner}: max_value must be None or >= threshold; got max_value={p['max_value']!r}, "
                         f"threshold={p['threshold']!r}")


def _relu_gain(p: Mapping[str, Any]) -> float:
    # sqrt(2) at the defaults (E[relu(z)^2] = 1/2); capped or thresholded, the quadrature with panels broken at the
    # cap, the threshold (where f jumps) and 0.
    if _relu_defaults(p):
        return math.sqrt(2.0)
    bound = relu.bind(p)
    return numeric_gain(lambda z: relu(z, **bound), _relu_properties(bound).kinks + (0.0,), "relu", p)



relu = register(Activation(
    "relu",
    aliases=("rectifier", "rectified_linear"),
    summary="Rectified linear unit: max(0, x); Keras's max_value (a cap) and threshold (a thresholded relu).",
    formula=r"\max(0, x) = \begin{cases} x & x > 0 \\ 0 & x \le 0 \end{cases};\ \text{in general } "
            r"\begin{cases} m & x \ge m \\ x & t < x < m \\ 0 & x \le t \end{cases},\ "
            r"t = \text{threshold},\ m = \text{max\_value}",
    derivative_formula=r"\begin{cases} 1 & x > 0 \\ \text{at\_zero} \in [0, 1] & x = 0 \\ 0 & x < 0 \end{cases};\ "
                       r"\text{in general } 1 \text{ for } t < x < m,\ 0 \text{ elsewhere (also at } x = t, m)",
    params=(
        Param("max_value", None, "The cap m: f(x) = m for x >= m (Keras's max_value; 6 gives relu6); None: no cap.",
              low=0.0, high=math.inf, high_open=True, allow_none=True, keyword_only=True),
        Param("threshold", 0.0, "The threshold t: f(x) = 0 for x <= t, x above it (Keras's thresholded relu; "
                                "f jumps from 0 to t at t).", low=0.0, high=math.inf, high_open=True,
              keyword_only=True),
    ),
    check=_check_relu,
    properties=_relu_properties,
    kink_at_zero=_relu_kink,
    integer_exact=lambda p: is_whole(p["threshold"]) and (p["max_value"] is None or is_whole(p["max_value"])),
    elementwise=True,
    forward=_relu,
    derivative=_relu_grad,
    # The compiled twins (family/_stream.py, with numba) for large arrays, at the defaults only: the same
    # comparisons, whole cache lines.
    single_pass=True,
    stream=lambda p, dtype: ("relu_forward", ()) if _relu_defaults(p) else None,
    stream_derivative=lambda p, dtype: ("relu_derivative", (dtype.type(p["at_zero"]),)) if _relu_defaults(p)
    else None,
    gain=_relu_gain,
    nn_class="ReLU", torch_class="ReLU", torch_function="relu", inplace=True,
    nn_example=("rnn.ReLU()", "tensor([0., 0., 3.])"),
    conventions="relu(-0.0) = +0.0; f'(0) = 0 (PyTorch, JAX); integers stay integers (with whole max_value and "
                "threshold). max_value and threshold follow Keras's relu (negative_slope is leaky_relu's): f(t) = 0 "
                "and f'(t) = 0 at the threshold (Keras's x * (x > t), torch.nn.Threshold(t, 0)); f'(m) = 0 at the "
                "cap (PyTorch's relu6/hardtanh, TensorFlow's relu6); at_zero applies where 0 is a kink (threshold "
                "0). The defaults are relu itself, on its fast paths.",
    use="The default for hidden layers of deep networks: cheap, non-saturating for x > 0, sparse outputs.",
    failure_mode="Dying units: a unit whose input is negative for every sample outputs 0 and gets zero gradient, "
                 "so it never recovers (large learning rates, bad init or a large negative bias cause it).",
    paper=_PAPER_RELU,
    example=">>> rl.relu([-2, -1, 0, 1, 2])\narray([0, 0, 0, 1, 2])\n>>> rl.relu.grad([-1.0, 0.0, 1.0])\n"
            "array([0., 0., 1.])\n>>> rl.relu([-1.0, 0.5, 2.0, 9.0], max_value=6.0, threshold=1.0)\n"
            "array([0., 0., 2., 6.])\n>>> rl.relu.grad([0.0], at_zero=1.0)\narray([1.])",
))


# -- the leaky family: leaky_relu, prelu and rrelu share these two kernels -----------------------------------------
def _leaky(x, out, slope):
    if np.ndim(slope) == 0 and slope == 0:
        return _relu(x, out)  # 0 * -inf would be NaN; the limit is 0
    if x.dtype.kind in "iu":
        return _store(_leaky_integer(x, int(slope)), out)
    slope = np.asarray(slope, dtype=x.dtype)
    if np.ndim(slope) > 0:
        # Per-element slopes (prelu, rrelu in training): a zero slope times -inf would be NaN, with a warning, where
        # the limit is 0; so zero slopes multiply 0 instead of x, and NaN inputs are put back afterwards.
        negative = slope * sp.select(slope == 0, 0, x)
        negative = sp.select(np.isnan(x), x, negative)
        return _store(sp.select(x > 0, x, negative), out)
    # where(x > 0, x, s * x) is max(x, s * x) for 0 < s <= 1 and min(x, s * x) for s > 1, element for element, signed
    # zeros and NaN included (both operands are then the same zero or the same NaN): two passes instead of six.
    # For x = -inf and s > 0, s * x is -inf, the limit. A negative slope keeps the select (max(+0, -0) is unsigned).
    if slope > 0:
        # s * x goes straight into out unless out is x's memory (in place), which the second pass still reads.
        scratch = out if out is not None and not np.may_share_memory(x, out) else None
        negative = np.multiply(x, slope, out=scratch)
        return (np.maximum if slope <= 1 else np.minimum)(x, negative, out=negative if out is None else out)
    return _store(sp.select(x > 0, x, x * slope), out)


class IntegerOverflowError(OverflowError, ValueError):
    """An exact integer result that does not fit the input's integer dtype (a ValueError too: the arguments
    together are out of range, as with any other bad argument)."""


def _leaky_integer(x, slope):
    """leaky_relu on integers with a whole slope, exactly. NumPy's integer products wrap around silently, so a
    product that does not fit x's dtype raises instead of returning a wrong integer."""
    lowest = int(x.min()) if x.size else 0
    if lowest >= 0:
        return x.copy()
    info = np.iinfo(x.dtype)
    if not info.min <= lowest * slope <= info.max:  # the product of largest magnitude (Python ints: exact)
        raise IntegerOverflowError(
            f"leaky_relu: negative_slope={slope} times the input {lowest} is {lowest * slope}, outside the range "
            f"of {x.dtype} [{info.min}, {info.max}]; pass a float array"
        )
    negative = (np.minimum(x, 0).astype(np.int64) * slope).astype(x.dtype)  # fits: checked above
    return np.where(x > 0, x, negative)


def _leaky_grad(x, out, slope, at_zero):
    slope = np.asarray(slope, dtype=x.dtype)
    at_zero = slope if at_zero is None else np.asarray(at_zero, x.dtype)
    grad = sp.select(x > 0, np.ones((), x.dtype), slope)
    if np.any(at_zero != slope):  # at x == 0 the select above already gave the slope
        grad = sp.select(x == 0, at_zero, grad)
    if grad.shape != x.shape:
        grad = np.broadcast_to(grad, x.shape).copy()
    return _store(_nan_where_nan(grad, x), out)


def _leaky_relu(x, out, negative_slope):
    return _leaky(x, out, negative_slope)


def _leaky_relu_grad(x, out, negative_slope, at_zero):
    return _leaky_grad(x, out, negative_slope, at_zero)


def _leaky_stream(p, dtype):
    slope = p["negative_slope"]
    return ("relu_forward", ()) if slope == 0 else ("leaky_forward", (dtype.type(slope),))


def _leaky_grad_stream(p, dtype):
    # _leaky_grad rounds the slope to x's dtype first and uses that rounded slope as the default at_zero.
    slope = dtype.type(p["negative_slope"])
    return "leaky_derivative", (slope, slope if p["at_zero"] is None else dtype.type(p["at_zero"]))



def _slope_kink(slope):
    return Kink(default=slope, low=slope, high=1.0)


leaky_relu = register(Activation(
    "leaky_relu",
    aliases=("leaky", "lrelu"),
    summary="Leaky ReLU: x for x > 0, negative_slope * x otherwise.",
    formula=r"\begin{cases} x & x > 0 \\ s\,x & x \le 0 \end{cases}",
    derivative_formula=r"\begin{cases} 1 & x > 0 \\ \text{at\_zero} \in [s, 1]\ (\text{default } s) & x = 0 \\ "
                       r"s & x < 0 \end{cases}",
    params=(Param("negative_slope", 0.01, "Slope s for x < 0 (usually small, in [0, 1)).", low=-math.inf,
                  high=math.inf, low_open=True, high_open=True),),
    properties=lambda p: Properties(
        monotonic=p["negative_slope"] >= 0, lower_bound=0.0 if p["negative_slope"] == 0 else None,
        upper_bound=None, smooth=False, kinks=() if p["negative_slope"] == 1 else (0.0,),
        zero_for_negative=p["negative_slope"] == 0, piecewise_linear=True),
    kink_at_zero=lambda p: _slope_kink(p["negative_slope"]),
    integer_exact=lambda p: is_whole(p["negative_slope"]),
    elementwise=True,
    forward=_leaky_relu,
    derivative=_leaky_relu_grad,
    single_pass=True,
    stream=_leaky_stream,
    stream_derivative=_leaky_grad_stream,
    gain=lambda p: leaky_gain(float(p.get("negative_slope", 0.01))),
    nn_class="LeakyReLU", torch_class="LeakyReLU", torch_function="leaky_relu", inplace=True,
    nn_example=("rnn.LeakyReLU(0.1)", "tensor([-0.2000,  0.0000,  3.0000])"),
    conventions="f'(0) = negative_slope (PyTorch; JAX uses 1); leaky_relu(-0.0) = -0.0 (the sign of s * x); "
                "integer input stays integer when negative_slope is a whole number, else becomes float64.",
    use="A drop-in for relu when units die: the small negative slope keeps a gradient for x < 0.",
    failure_mode="The slope is one more hyperparameter; with s close to 1 the network becomes nearly linear.",
    paper=_PAPER_LEAKY,
    example=">>> rl.leaky_relu([-2.0, 0.0, 3.0], negative_slope=0.1)\narray([-0.2,  0. ,  3. ])\n"
            ">>> rl.leaky_relu.grad([-2.0, 0.0, 3.0])\narray([0.01, 0.01, 1.  ])",
))


def _prelu_weight(weight: Any, x: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """Validate prelu's weight against x and return it shaped to broadcast along channel_axis."""
    try:
        w = np.asarray(weight, dtype=np.float64)
    except OverflowError:  # a Python int beyond float64
        raise ValueError(f"prelu: weight must be finite real numbers; got {describe(weight)}") from None
    except (TypeError, ValueError):
        raise TypeError(f"prelu: weight must be a real number or a 1-D array of them; got {describe(weight)}") from None
    if isinstance(weight, (bool, np.bool_)) or np.asarray(weight).dtype.kind not in "iuf":
        raise TypeError(f"prelu: weight must be a real number or a 1-D array of them; got {describe(weight)}")
    if w.ndim > 1:
        raise ValueError(f"prelu: weight must be a scalar or 1-D (one slope per channel); got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"prelu: weight must be finite; got {w}")
    if w.size == 1:
        return w.reshape(())
    axis = params["channel_axis"]
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(
            f"prelu: channel_axis={axis} is out of range for x with {x.ndim} dimensions "
            f"(a weight of {w.size} slopes needs a channel axis)"
        )
    channels = x.shape[axis]
    if channels != w.size:
        raise ValueError(
            f"prelu: weight has {w.size} slopes but x has {channels} channels along channel_axis={axis}; "
            "give one slope per channel or a single slope"
        )
    shape = [1] * x.ndim
    shape[axis] = channels
    return w.reshape(shape)


prelu = register(Activation(
    "prelu",
    aliases=("parametric_relu",),
    summary="Parametric ReLU: leaky ReLU whose slope is learned, one per channel (or one in all).",
    formula=r"\begin{cases} x & x > 0 \\ w_c\,x & x \le 0 \end{cases}",
    derivative_formula=r"\frac{\partial f}{\partial x} = \begin{cases} 1 & x > 0 \\ w_c & x \le 0 \end{cases}"
                       r",\quad \frac{\partial f}{\partial w_c} = \min(x, 0)",
    params=(Param("channel_axis", 1, "Axis of x that holds the channels (PyTorch: dim 1).", kind="int",
                  low=-64, high=64, torch=False),),
    properties=Properties(monotonic=False, lower_bound=None, upper_bound=None, smooth=False, kinks=(0.0,),
                          zero_for_negative=False, piecewise_linear=True),
    kink_at_zero=lambda p: _slope_kink(p["weight"]),
    weight=_prelu_weight,
    # One slope for all is elementwise; one per channel broadcasts along an axis, so it runs whole.
    elementwise=lambda p: np.ndim(p["weight"]) == 0,
    forward=lambda x, out, channel_axis, weight: _leaky(x, out, weight),
    derivative=lambda x, out, channel_axis, weight, at_zero: _leaky_grad(x, out, weight, at_zero),
    # One slope for all: leaky_relu's compiled twins (asked only for elementwise calls, so a 0-d weight).
    stream=lambda p, dtype: _leaky_stream({"negative_slope": float(p["weight"])}, dtype),
    stream_derivative=lambda p, dtype: _leaky_grad_stream(
        {"negative_slope": float(p["weight"]), "at_zero": p["at_zero"]}, dtype),
    gain=lambda p: leaky_gain(float(p.get("init", 0.25))),  # relulab.nn.PReLU's initial slope
    nn_class="PReLU", torch_class="PReLU", torch_function="prelu",
    nn_example=("rnn.PReLU()", "tensor([-0.5000,  0.0000,  3.0000], grad_fn=<PreluKernelBackward0>)"),
    conventions="f'(0) = w_c (PyTorch). Monotonic only where every slope is >= 0. "
                "prelu.grad_weight gives the elementwise derivative with respect to the slope.",
    use="When the best negative slope is unknown: the network learns it (He et al. used it on ImageNet).",
    failure_mode="Slopes are parameters: weight decay pulls them to 0 (back to relu); exclude them from decay.",
    paper="He, Zhang, Ren & Sun 2015, Delving Deep into Rectifiers (ICCV).",
    example=">>> rl.prelu([[-1.0, 2.0], [-1.0, 2.0]], [0.25, 0.5], channel_axis=0)\n"
            "array([[-0.25,  2.  ],\n       [-0.5 ,  2.  ]])",
))


def _prelu_grad_weight(x, weight, channel_axis: int = 1):
    """Elementwise derivative of prelu with respect to its slope: min(x, 0) (0 at x = 0; NaN at NaN).

    Sum it over every axis but ``channel_axis`` (after multiplying by the upstream gradient) for dL/dw.

    >>> import relulab as rl
    >>> rl.prelu.grad_weight([-2.0, 0.0, 3.0], 0.25)
    array([-2.,  0.,  0.])
    """
    work, scalar, bound, dtype = prelu.prepare(x, (weight,), {"channel_axis": channel_axis}, None, grad=True)
    value = np.minimum(work, 0.0).astype(dtype, copy=False)  # float16 is computed in float32: round back
    value = np.broadcast_to(value, np.broadcast_shapes(work.shape, np.shape(bound["weight"])))
    return value[0] if scalar else np.array(value)  # work is at least 1-D: a scalar x gives a NumPy scalar


prelu.grad_weight = _prelu_grad_weight


def _rrelu_slopes(x: np.ndarray, p: Mapping[str, Any]):
    if not p["training"]:  # (x unused: None from _rrelu_eval)
        return 0.5 * (p["lower"] + p["upper"])  # eval: the deterministic mean slope, as in PyTorch
    rng = p["rng"] if p["rng"] is not None else np.random.default_rng(p["seed"])
    return rng.uniform(p["lower"], p["upper"], size=x.shape).astype(x.dtype)


def _rrelu_eval(p: Mapping[str, Any]) -> dict[str, Any]:
    """rrelu's eval-mode parameters as leaky_relu's."""
    return {"negative_slope": _rrelu_slopes(None, p), "at_zero": p.get("at_zero")}


def _check_rrelu(p: Mapping[str, Any], owner: str) -> None:
    if p["lower"] > p["upper"]:
        raise ValueError(f"{owner}: lower must be <= upper; got lower={p['lower']!r}, upper={p['upper']!r}")
    if p["rng"] is not None and not isinstance(p["rng"], np.random.Generator):
        raise TypeError(f"{owner}: rng must be a numpy.random.Generator or None; got {describe(p['rng'])}")
    if p["rng"] is not None and p["seed"] is not None:
        raise ValueError(f"{owner}: give seed or rng, not both")


def _rrelu_gain(p: Mapping[str, Any]) -> float:
    # Training draws a ~ U(lower, upper): E[a^2] = (l^2 + l u + u^2) / 3 (the eval slope is the mean).
    lower, upper = float(p.get("lower", 1 / 8)), float(p.get("upper", 1 / 3))
    return leaky_gain(math.sqrt((lower * lower + lower * upper + upper * upper) / 3.0))


rrelu = register(Activation(
    "rrelu",
    aliases=("randomized_relu", "randomized_leaky_relu"),
    summary="Randomized leaky ReLU: in training each element's slope is drawn from U(lower, upper); "
            "in evaluation the slope is the mean (lower + upper) / 2.",
    formula=r"\begin{cases} x & x > 0 \\ a\,x & x \le 0 \end{cases},\quad a \sim U(l, u) "
            r"\text{ (training)},\ a = \tfrac{l + u}{2} \text{ (eval)}",
    derivative_formula=r"\begin{cases} 1 & x > 0 \\ a & x \le 0 \end{cases}",
    params=(
        Param("lower", 1 / 8, "Lower end of the slope distribution.", low=0.0, high=1.0),
        Param("upper", 1 / 3, "Upper end of the slope distribution.", low=0.0, high=1.0),
        Param("training", False, "Draw random slopes (True) or use the mean slope (False).", kind="bool",
              torch=False),
        Param("seed", None, "Seed for the slopes in training; the same seed gives the same slopes in "
                            "rrelu and rrelu.grad.", kind="int", low=0, high=2**63 - 1, allow_none=True, torch=False),
        Param("rng", None, "a numpy.random.Generator or None", kind="object", torch=False),
    ),
    check=_check_rrelu,
    properties=lambda p: Properties(monotonic=True, lower_bound=0.0 if p["upper"] == 0 else None,
                                    upper_bound=None, smooth=False, kinks=(0.0,),
                                    zero_for_negative=p["upper"] == 0, piecewise_linear=True),
    # Valid for every element: at least the largest slope that can have been drawn.
    kink_at_zero=lambda p: Kink(default=None, low=p["upper"] if p["training"] else 0.5 * (p["lower"] + p["upper"]),
                                high=1.0),
    elementwise=lambda p: not p["training"],  # training draws one slope per element from the seed
    forward=lambda x, out, lower, upper, training, seed, rng: _leaky(x, out, _rrelu_slopes(x, locals())),
    derivative=lambda x, out, lower, upper, training, seed, rng, at_zero: _leaky_grad(
        x, out, _rrelu_slopes(x, locals()), at_zero),
    # Eval mode is leaky_relu with the mean slope: leaky_relu's compiled twins (training is not elementwise).
    stream=lambda p, dtype: None if p["training"] else _leaky_stream(_rrelu_eval(p), dtype),
    stream_derivative=lambda p, dtype: None if p["training"] else _leaky_grad_stream(_rrelu_eval(p), dtype),
    gain=_rrelu_gain,
    nn_class="RReLU", torch_class="RReLU", torch_function="rrelu", inplace=True,
    nn_example=("rnn.RReLU().eval()", "tensor([-0.4583,  0.0000,  3.0000])"),
    conventions="Eval mode is deterministic (mean slope 11/48 by default); f'(0) = the element's slope.",
    use="A regulariser on small data sets: the random negative slope acts like noise (Xu et al. 2015).",
    failure_mode="Training and evaluation compute different functions; results depend on the mode.",
    paper="Xu, Wang, Chen & Li 2015, Empirical Evaluation of Rectified Activations in Convolutional Network.",
    example=">>> rl.rrelu([-48.0, 1.0])  # eval: slope (1/8 + 1/3) / 2 = 11/48\narray([-11.,   1.])",
))


# -- elu, selu, celu -------------------------------------------------------------------------------------------
def _elu_exponent(x, divisor):
    """-|x| / divisor (celu's x / alpha), which is x / divisor where the negative branch is taken and keeps exp
    finite elsewhere. A division, not a product with 1 / alpha: that reciprocal overflows to inf for a subnormal
    alpha, and 0 * inf is NaN. An alpha below x's smallest subnormal would round to 0; clamping it there changes
    no rounded result (every |f| <= alpha rounds to 0 anyway)."""
    z = sp.negative_abs(x)
    if divisor == 1.0:
        return z
    return z / max(divisor, float(np.finfo(x.dtype).smallest_subnormal))


def _elu(x, out, alpha, scale=1.0, divisor=1.0):
    if alpha == 1.0 and scale == 1.0 and divisor == 1.0:
        # max(x, expm1(min(x, 0))): expm1(x) >= x, so this is x for x > 0 and expm1(x) for x < 0, in three passes.
        # min(x, 0) as bits: x where its sign bit is set (so elu(-0.0) = expm1(-0.0) = -0.0), else +0.0; a NaN
        # stays NaN through np.maximum either way.
        width = 8 * x.dtype.itemsize
        signed = x.view(sp.SIGNED[x.dtype.itemsize])
        negative = np.bitwise_and(signed, np.right_shift(signed, width - 1)).view(x.dtype)
        np.expm1(negative, out=negative)
        return np.maximum(x, negative, out=negative if out is None else out)
    exponent = _elu_exponent(x, divisor)
    negative = np.expm1(exponent)  # expm1: exact near 0; exp of x <= 0 only
    if alpha != 1.0:  # times 1.0 changes no bit
        negative = alpha * negative
    if divisor > 1.0:
        # celu: x / alpha below the smallest normal keeps only a subnormal's few bits, and alpha * expm1(.) gives
        # them back as x's (2e-5 off in float32 at x = -4.5e-29, alpha = 1.8e12). There f = x (1 + x / 2 alpha)
        # rounds to x itself.
        np.copyto(negative, x, where=np.abs(exponent) < np.finfo(x.dtype).tiny, casting="unsafe")
    # The negative branch for x < 0 and -0.0 (expm1(-0.0) = -0.0, as PyTorch), x itself for +0.0 and x > 0.
    if scale != 1.0:
        return _store(scale * sp.sign_select(x, negative, x), out)
    return sp.sign_select(x, negative, x, out=out)


def _elu_grad(x, out, alpha, scale=1.0, divisor=1.0, at_zero=None):
    # celu: alpha / alpha is exactly 1, so f'(0) = 1 for every alpha (alpha * (1 / alpha) is 1 - 2^-53 for 49).
    coefficient = scale * alpha / divisor
    if coefficient == 1.0 and scale == 1.0 and divisor == 1.0 and (at_zero is None or at_zero == 1.0):
        # elu with alpha = 1 (celu's alpha = divisor goes the general way): f' = exp(min(x, 0)), 1 at 0 on both
        # sides. min(x, 0) as bits: x where its sign bit is set, else +0.0; NaNs with a clear sign bit put back.
        width = 8 * x.dtype.itemsize
        signed = x.view(sp.SIGNED[x.dtype.itemsize])
        exponent = np.bitwise_and(signed, np.right_shift(signed, width - 1)).view(x.dtype)
        nan = np.isnan(x)  # taken before out (maybe x itself) is written
        grad = np.exp(exponent, out=exponent if out is None else out)
        if nan.any():
            np.copyto(grad, np.nan, where=nan)
        return grad
    negative = coefficient * np.exp(_elu_exponent(x, divisor))
    grad = sp.select(x > 0, np.asarray(scale, x.dtype), negative)
    # At x == 0 the negative branch is coefficient * exp(0): the select is needed only for another at_zero.
    if at_zero is not None and np.asarray(at_zero, x.dtype) != np.asarray(coefficient, x.dtype):
        grad = sp.select(x == 0, np.asarray(at_zero, x.dtype), grad)
    return _store(grad, out)


# elu's and selu's compiled twins (family/_vector.py): one kernel, alpha and scale as its scalars.
def _elu_twin(alpha, scale):
    return lambda p, dtype: ("elu_forward", (dtype.type(alpha(p)), dtype.type(scale)))


def _elu_grad_twin(alpha, scale):
    def choose(p, dtype):
        coefficient = scale * alpha(p)
        at_zero = coefficient if p["at_zero"] is None else p["at_zero"]
        return "elu_derivative", (dtype.type(coefficient), dtype.type(scale), dtype.type(at_zero))

    return choose


elu = register(Activation(
    "elu",
    summary="Exponential linear unit: x for x > 0, alpha * (exp(x) - 1) otherwise.",
    formula=r"\begin{cases} x & x > 0 \\ \alpha\,(e^{x} - 1) & x \le 0 \end{cases}",
    derivative_formula=r"\begin{cases} 1 & x > 0 \\ \alpha\,e^{x} & x \le 0 \end{cases}",
    params=(Param("alpha", 1.0, "Saturation value -alpha for x -> -inf.", low=0.0, high=math.inf, high_open=True),),
    properties=lambda p: Properties(monotonic=True, lower_bound=-p["alpha"], upper_bound=None, smooth=False,
                                    kinks=() if p["alpha"] == 1 else (0.0,), zero_for_negative=p["alpha"] == 0,
                                    piecewise_linear=p["alpha"] == 0),
    kink_at_zero=lambda p: Kink(default=p["alpha"], low=p["alpha"], high=1.0),
    elementwise=True,
    forward=lambda x, out, alpha: _elu(x, out, alpha),
    derivative=lambda x, out, alpha, at_zero: _elu_grad(x, out, alpha, at_zero=at_zero),
    stream=vector(_elu_twin(lambda p: p["alpha"], 1.0)),
    stream_derivative=vector(_elu_grad_twin(lambda p: p["alpha"], 1.0)),
    nn_class="ELU", torch_class="ELU", torch_function="elu", inplace=True,
    nn_example=("rnn.ELU(alpha=1.0)", "tensor([-0.8647,  0.0000,  3.0000])"),
    conventions="f'(0) = alpha (PyTorch); with alpha = 1 the derivative is continuous (1 at 0); "
                "elu(-0.0) = -0.0 (PyTorch's expm1(-0.0)).",
    use="Mean activations closer to zero than relu, a smooth negative saturation; often trains a bit faster.",
    failure_mode="exp costs more than max; saturates at -alpha, so very negative inputs get small gradients.",
    paper="Clevert, Unterthiner & Hochreiter 2016, Fast and Accurate Deep Network Learning by Exponential "
          "Linear Units (ELUs) (ICLR).",
    example=">>> rl.elu([-1.0, 0.0, 2.0])\narray([-0.63212056,  0.        ,  2.        ])",
))

selu = register(Activation(
    "selu",
    summary="Scaled ELU: lambda * elu(x, alpha) with the constants that make activations self-normalising.",
    formula=r"\lambda \begin{cases} x & x > 0 \\ \alpha\,(e^{x} - 1) & x \le 0 \end{cases},\quad "
            r"\lambda \approx 1.0507,\ \alpha \approx 1.6733",
    derivative_formula=r"\lambda \begin{cases} 1 & x > 0 \\ \alpha\,e^{x} & x \le 0 \end{cases}",
    properties=Properties(monotonic=True, lower_bound=-SELU_SCALE * SELU_ALPHA, upper_bound=None, smooth=False,
                          kinks=(0.0,), zero_for_negative=False, piecewise_linear=False),
    kink_at_zero=lambda p: Kink(default=SELU_SCALE * SELU_ALPHA, low=SELU_SCALE * SELU_ALPHA, high=SELU_SCALE),
    elementwise=True,
    forward=lambda x, out: _elu(x, out, SELU_ALPHA, scale=SELU_SCALE),
    derivative=lambda x, out, at_zero: _elu_grad(x, out, SELU_ALPHA, scale=SELU_SCALE, at_zero=at_zero),
    stream=vector(_elu_twin(lambda p: SELU_ALPHA, SELU_SCALE)),
    stream_derivative=vector(_elu_grad_twin(lambda p: SELU_ALPHA, SELU_SCALE)),
    nn_class="SELU", torch_class="SELU", torch_function="selu", inplace=True,
    nn_example=("rnn.SELU()", "tensor([-1.5202,  0.0000,  3.1521])"),
    conventions="f'(0) = lambda * alpha (PyTorch). lambda and alpha to full double precision.",
    use="Deep fully connected networks without normalisation layers, with LeCun-normal init and alpha-dropout.",
    failure_mode="Self-normalisation needs its conditions: LeCun init, no batch norm, alpha-dropout only.",
    paper="Klambauer, Unterthiner, Mayr & Hochreiter 2017, Self-Normalizing Neural Networks (NeurIPS).",
    example=">>> rl.selu([-1.0, 1.0])\narray([-1.11133074,  1.05070099])",
))


def _celu_divisor(p: Mapping[str, Any], dtype: np.dtype):
    """celu's divisor alpha in ``dtype``, at least the smallest subnormal (as _elu_exponent)."""
    return dtype.type(max(p["alpha"], float(np.finfo(dtype).smallest_subnormal)))


celu = register(Activation(
    "celu",
    summary="Continuously differentiable ELU: max(0, x) + min(0, alpha * (exp(x / alpha) - 1)).",
    formula=r"\begin{cases} x & x > 0 \\ \alpha\,(e^{x/\alpha} - 1) & x \le 0 \end{cases}",
    derivative_formula=r"\begin{cases} 1 & x > 0 \\ e^{x/\alpha} & x \le 0 \end{cases}",
    params=(Param("alpha", 1.0, "Saturation value -alpha; the derivative is 1 at 0 for every alpha.", low=0.0,
                  high=math.inf, low_open=True, high_open=True),),
    properties=lambda p: Properties(monotonic=True, lower_bound=-p["alpha"], upper_bound=None, smooth=False,
                                    kinks=(), zero_for_negative=False, piecewise_linear=False),
    elementwise=True,
    forward=lambda x, out, alpha: _elu(x, out, alpha, divisor=alpha),
    derivative=lambda x, out, alpha: _elu_grad(x, out, alpha, divisor=alpha),
    stream=vector(lambda p, dtype: ("celu_forward", (dtype.type(p["alpha"]), _celu_divisor(p, dtype)))),
    stream_derivative=vector(lambda p, dtype: ("celu_derivative", (_celu_divisor(p, dtype),))),
    nn_class="CELU", torch_class="CELU", torch_function="celu", inplace=True,
    nn_example=("rnn.CELU(alpha=2.0)", "tensor([-1.2642,  0.0000,  3.0000])"),
    conventions="Differentiable at 0 for every alpha (f'(0) = 1), so at_zero does not apply.",
    use="ELU with a tunable saturation that stays continuously differentiable.",
    failure_mode="As elu: exp cost, small gradients deep in the negative saturation.",
    paper="Barron 2017, Continuously Differentiable Exponential Linear Units (arXiv:1704.07483).",
    example=">>> rl.celu([-1.0, 0.0, 2.0], alpha=2.0)\narray([-0.78693868,  0.        ,  2.        ])",
))


# -- relu6, hardswish, squared_relu -------------------------------------------------------------------------------
def _relu6(x, out):
    value = np.maximum(x, 0, out=out)
    return np.minimum(value, 6, out=value)


def _relu6_grad(x, out, at_zero):
    # 1 on (0, 6); at_zero at 0; 0 below 0 and from 6 on (PyTorch's hardtanh backward); NaN at NaN.
    return _store(_step(x, (x > 0) & (x < 6), at_zero), out)


relu6 = register(Activation(
    "relu6",
    summary="ReLU capped at 6: min(max(0, x), 6).",
    formula=r"\min(\max(0, x), 6)",
    derivative_formula=r"\begin{cases} 1 & 0 < x < 6 \\ \text{at\_zero}\ (\text{default } 0) & x = 0 \\ "
                       r"0 & \text{otherwise (also at } x = 6) \end{cases}",
    properties=Properties(monotonic=True, lower_bound=0.0, upper_bound=6.0, smooth=False, kinks=(0.0, 6.0),
                          zero_for_negative=True, piecewise_linear=True),
    kink_at_zero=lambda p: Kink(default=0.0, low=0.0, high=1.0),
    integer_exact=True,
    elementwise=True,
    forward=_relu6,
    derivative=_relu6_grad,
    # The clamp kernel of family/_stream.py (also hard_tanh's and hard_sigmoid's), under vector()'s rule all the same:
    # hard_sigmoid's division may underflow, which an error state that raises must see from the NumPy kernel.
    stream=vector(lambda p, dtype: ("clip_forward", tuple(dtype.type(v) for v in (0.0, 1.0, 0.0, 6.0)))),
    stream_derivative=vector(
        lambda p, dtype: ("clip_derivative", tuple(dtype.type(v) for v in (0.0, 6.0, 1.0, p["at_zero"])))),
    single_pass=True,
    nn_class="ReLU6", torch_class="ReLU6", torch_function="relu6", inplace=True,
    nn_example=("rnn.ReLU6()", "tensor([0., 0., 3.])"),
    conventions="f'(0) = 0 and f'(6) = 0 (PyTorch); relu6(-0.0) = +0.0; integers stay integers.",
    use="Mobile and quantised networks (MobileNet): the bounded range suits low-precision arithmetic.",
    failure_mode="Dies like relu for x < 0 and also saturates for x > 6, where the gradient is 0 too.",
    paper="Krizhevsky 2010, Convolutional Deep Belief Networks on CIFAR-10 (tech. report); Howard et al. 2017, "
          "MobileNets.",
    example=">>> rl.relu6([-1, 3, 9])\narray([0, 3, 6])",
))


def _hardswish(x, out):
    c = np.clip(x, -3.0, 3.0)  # the quadratic piece only ever sees [-3, 3]
    return _store(sp.select(x <= -3.0, 0.0, sp.select(x >= 3.0, x, c * (c + 3.0) / 6.0)), out)


def _hardswish_grad(x, out):
    # PyTorch's hardswish_backward: 0 for x <= -3, (2x + 3) / 6 for -3 < x < 3, 1 for x >= 3.
    c = np.clip(x, -3.0, 3.0)
    grad = sp.select(x <= -3.0, 0.0, sp.select(x < 3.0, (2.0 * c + 3.0) / 6.0, 1.0)).astype(x.dtype, copy=False)
    return _store(_nan_where_nan(grad, x), out)


hardswish = register(Activation(
    "hardswish",
    aliases=("hard_swish", "h_swish"),
    summary="Hard swish: x * relu6(x + 3) / 6, a piecewise-polynomial stand-in for silu.",
    formula=r"\begin{cases} 0 & x \le -3 \\ x\,(x + 3)/6 & -3 < x < 3 \\ x & x \ge 3 \end{cases}",
    derivative_formula=r"\begin{cases} 0 & x \le -3 \\ (2x + 3)/6 & -3 < x < 3 \\ 1 & x \ge 3 \end{cases}",
    properties=Properties(monotonic=False, lower_bound=-0.375, upper_bound=None, smooth=False, kinks=(-3.0, 3.0),
                          zero_for_negative=False, piecewise_linear=False),
    elementwise=True,
    forward=_hardswish,
    derivative=_hardswish_grad,
    stream=vector(lambda p, dtype: ("hardswish_forward", ())),
    stream_derivative=vector(lambda p, dtype: ("hardswish_derivative", ())),
    nn_class="Hardswish", torch_class="Hardswish", torch_function="hardswish", inplace=True,
    nn_example=("rnn.Hardswish()", "tensor([-0.3333,  0.0000,  3.0000])"),
    conventions="At the kinks PyTorch's values: f'(-3) = 0, f'(3) = 1 (the outer branches). "
                "hardswish(-inf) = 0.",
    use="Mobile networks (MobileNetV3): silu's shape without exp.",
    failure_mode="Zero gradient for x < -3, so units can die there like relu's.",
    paper="Howard et al. 2019, Searching for MobileNetV3 (ICCV).",
    example=">>> rl.hardswish([-4.0, -1.5, 0.0, 1.0, 4.0])\narray([ 0.        , -0.375     ,  0.        ,  "
            "0.66666667,  4.        ])",
))


def _hard_sigmoid(x, out):
    # relu6(x + 3) / 6 as PyTorch computes it: x + 3 is exact near -3 (Sterbenz), NaN stays NaN through clip.
    value = np.clip(x + 3.0, 0.0, 6.0)
    return np.divide(value, 6.0, out=value if out is None else out)


def _hard_sigmoid_grad(x, out):
    # PyTorch's hardsigmoid_backward region: 1/6 strictly inside (-3, 3), 0 at the kinks and outside.
    inside = (x > -3.0) & (x < 3.0)
    grad = sp.select(inside, np.asarray(1.0 / 6.0, x.dtype), np.zeros((), x.dtype))
    return _store(_nan_where_nan(grad, x), out)


hard_sigmoid = register(Activation(
    "hard_sigmoid",
    aliases=("h_sigmoid",),
    summary="Hard sigmoid: relu6(x + 3) / 6, a piecewise-linear stand-in for sigmoid (torch.nn.Hardsigmoid).",
    formula=r"\begin{cases} 0 & x \le -3 \\ x/6 + 1/2 & -3 < x < 3 \\ 1 & x \ge 3 \end{cases}",
    derivative_formula=r"\begin{cases} 1/6 & -3 < x < 3 \\ 0 & \text{otherwise (also at } x = \pm 3) \end{cases}",
    properties=Properties(monotonic=True, lower_bound=0.0, upper_bound=1.0, smooth=False, kinks=(-3.0, 3.0),
                          zero_for_negative=False, piecewise_linear=True),
    elementwise=True,
    forward=_hard_sigmoid,
    derivative=_hard_sigmoid_grad,
    stream=vector(lambda p, dtype: ("clip_forward", tuple(dtype.type(v) for v in (3.0, 6.0, 0.0, 6.0)))),
    stream_derivative=vector(
        lambda p, dtype: ("clip_derivative", tuple(dtype.type(v) for v in (-3.0, 3.0, 1 / 6, 0.0)))),
    nn_class="Hardsigmoid", torch_class="Hardsigmoid", torch_function="hardsigmoid", inplace=True,
    nn_example=("rnn.Hardsigmoid()", "tensor([0.1667, 0.5000, 1.0000])"),
    conventions="At the kinks PyTorch's values: f'(-3) = f'(3) = 0. f'(x) = 1/6 exactly in float64 (PyTorch's "
                "float64 backward uses float32's 1/6, 0.16666667163; relulab.nn gives 1/6).",
    use="Gates in mobile networks (MobileNetV3's squeeze-and-excitation): sigmoid's shape without exp.",
    failure_mode="Zero gradient outside (-3, 3): a saturated gate stops learning.",
    paper="Courbariaux, Bengio & David 2015, BinaryConnect; Howard et al. 2019, Searching for MobileNetV3 (ICCV).",
    example=">>> rl.hard_sigmoid([-4.0, 0.0, 1.5, 4.0])\narray([0.  , 0.5 , 0.75, 1.  ])",
))


def _hard_tanh(x, out, min_val, max_val):
    return np.clip(x, min_val, max_val, out=out)  # NaN stays NaN; -0.0 inside the range stays -0.0


def _hard_tanh_grad(x, out, min_val, max_val):
    # PyTorch's hardtanh_backward region: 1 strictly inside (min_val, max_val), 0 at the kinks and outside.
    return _store(_nan_where_nan(((x > min_val) & (x < max_val)).astype(x.dtype), x), out)


def _check_hard_tanh(p: Mapping[str, Any], owner: str) -> None:
    if not p["min_val"] < p["max_val"]:
        raise ValueError(f"{owner}: min_val must be < max_val; got min_val={p['min_val']!r}, "
                         f"max_val={p['max_val']!r}")


hard_tanh = register(Activation(
    "hard_tanh",
    summary="Hard tanh: x clipped to [min_val, max_val] (torch.nn.Hardtanh; [-1, 1] by default).",
    formula=r"\begin{cases} a & x \le a \\ x & a < x < b \\ b & x \ge b \end{cases},\quad "
            r"a = \text{min\_val},\ b = \text{max\_val}",
    derivative_formula=r"\begin{cases} 1 & a < x < b \\ 0 & \text{otherwise (also at } x = a, b) \end{cases}",
    params=(
        Param("min_val", -1.0, "Lower end of the linear region (the output's minimum).", low=-math.inf,
              high=math.inf, low_open=True, high_open=True),
        Param("max_val", 1.0, "Upper end of the linear region (the output's maximum); must exceed min_val.",
              low=-math.inf, high=math.inf, low_open=True, high_open=True),
    ),
    check=_check_hard_tanh,
    properties=lambda p: Properties(monotonic=True, lower_bound=p["min_val"], upper_bound=p["max_val"], smooth=False,
                                    kinks=(p["min_val"], p["max_val"]), zero_for_negative=p["min_val"] == 0,
                                    piecewise_linear=True),
    elementwise=True,
    forward=_hard_tanh,
    derivative=_hard_tanh_grad,
    stream=vector(
        lambda p, dtype: ("clip_forward", tuple(dtype.type(v) for v in (0.0, 1.0, p["min_val"], p["max_val"])))),
    stream_derivative=vector(
        lambda p, dtype: ("clip_derivative", tuple(dtype.type(v) for v in (p["min_val"], p["max_val"], 1.0, 0.0)))),
    nn_class="Hardtanh", torch_class="Hardtanh", torch_function="hardtanh", inplace=True,
    nn_example=("rnn.Hardtanh(-1.0, 1.0)", "tensor([-1.,  0.,  1.])"),
    conventions="At the kinks PyTorch's values: f'(min_val) = f'(max_val) = 0; -0.0 stays -0.0. "
                "hard_tanh(min_val=0, max_val=6) is relu6 (whose at_zero= this member does not offer).",
    use="A bounded, piecewise-linear tanh: cheap, used in quantised and binarised networks and in some RNNs.",
    failure_mode="Zero gradient outside (min_val, max_val): saturated units stop learning.",
    paper="Collobert 2004, Large Scale Machine Learning (PhD thesis, Universite Paris VI).",
    example=">>> rl.hard_tanh([-2.0, 0.5, 3.0])\narray([-1. ,  0.5,  1. ])\n"
            ">>> rl.hard_tanh([-2.0, 0.5, 3.0], min_val=0.0, max_val=2.0)\narray([0. , 0.5, 2. ])",
))


def _squared_relu(x, out):
    positive = np.maximum(x, 0.0)
    return np.square(positive, out=out)  # x > 1.3e154 squares to inf, the correctly rounded result


def _squared_relu_grad(x, out):
    return np.multiply(np.maximum(x, 0.0), 2.0, out=out)


squared_relu = register(Activation(
    "squared_relu",
    aliases=("relu2", "relu_squared"),
    summary="Squared ReLU: max(0, x)^2.",
    formula=r"\max(0, x)^2",
    derivative_formula=r"2 \max(0, x)",
    properties=Properties(monotonic=True, lower_bound=0.0, upper_bound=None, smooth=False, kinks=(),
                          zero_for_negative=True, piecewise_linear=False),
    elementwise=True,
    forward=_squared_relu,
    derivative=_squared_relu_grad,
    stream=vector(lambda p, dtype: ("squared_relu_forward", ())),
    stream_derivative=vector(lambda p, dtype: ("squared_relu_derivative", ())),
    single_pass=True,
    gain=math.sqrt(2.0 / 3.0),  # E[relu(z)^4] = E[z^4] / 2 = 3/2
    nn_class="SquaredReLU",
    nn_example=("rnn.SquaredReLU()", "tensor([0., 0., 9.])"),
    conventions="Continuously differentiable (f'(0) = 0), so at_zero does not apply; integers become float64.",
    use="Transformer feed-forward layers (Primer): a cheap, sparse activation that grows faster than relu.",
    failure_mode="Dies like relu for x < 0; the quadratic growth can make large activations larger.",
    paper="So et al. 2021, Primer: Searching for Efficient Transformers for Language Modeling (NeurIPS).",
    example=">>> rl.squared_relu([-2.0, 3.0])\narray([0., 9.])",
))


# -- smooth members: gelu, silu, mish, softplus -------------------------------------------------------------------
_GELU_CUBIC = 0.044715


def _gelu(x, out, approximate):
    if approximate == "none":
        value = _finite(x) * sp.ndtr(x)
    else:
        # 0.5 x (1 + tanh(u)) = x * sigmoid(2u): no cancellation for x << 0. Clipping x keeps x^3 finite; the
        # sigmoid has saturated long before |x| = 1e5.
        # c * c * c, not c**3: NumPy's power has no fast path for 3 and costs ~90 ns per element (float32).
        c = np.clip(x, -1e5, 1e5) if _outside(x, 1e5) else x  # no clip (and no inf) in the common case
        value = _finite(x) * sp.sigmoid(2.0 * sp.SQRT_2_OVER_PI * (c + _GELU_CUBIC * (c * c * c)))
    return _store(_fix_infinities(value, x, np.inf, 0.0), out)


def _gelu_grad(x, out, approximate):
    if approximate == "none":
        grad = sp.ndtr(x) + np.clip(x, -1e5, 1e5) * sp.normal_pdf(x)
    else:
        c = np.clip(x, -1e5, 1e5)
        u2 = 2.0 * sp.SQRT_2_OVER_PI * (c + _GELU_CUBIC * (c * c * c))
        du2 = 2.0 * sp.SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_CUBIC * c**2)
        value, slope = sp.sigmoid_and_slope(u2)
        grad = value + c * du2 * slope
    return _store(_fix_infinities(grad, x, 1.0, 0.0), out)


def _gelu_properties(p: Mapping[str, Any]) -> Properties:
    minimum = -0.16997120747990366 if p["approximate"] == "none" else -0.17004075057125405
    return Properties(monotonic=False, lower_bound=minimum, upper_bound=None, smooth=True, kinks=(),
                      zero_for_negative=False, piecewise_linear=False)


gelu = register(Activation(
    "gelu",
    summary="Gaussian error linear unit: x * Phi(x), Phi the standard normal CDF (or its tanh approximation).",
    formula=r"x\,\Phi(x) = \frac{x}{2}\left(1 + \operatorname{erf}\frac{x}{\sqrt 2}\right);\ \text{tanh: } "
            r"\frac{x}{2}\left(1 + \tanh\left(\sqrt{2/\pi}\,(x + 0.044715 x^3)\right)\right)",
    derivative_formula=r"\Phi(x) + x\,\varphi(x)",
    params=(Param("approximate", "none", "'none' for the exact erf form, 'tanh' for Hendrycks & Gimpel's "
                                         "approximation (as in PyTorch).", kind="choice", choices=("none", "tanh")),),
    properties=_gelu_properties,
    elementwise=True,
    forward=_gelu,
    derivative=_gelu_grad,
    stream=vector(lambda p, dtype: ("gelu_tanh_forward" if p["approximate"] == "tanh" else "gelu_forward", ())),
    stream_derivative=vector(
        lambda p, dtype: ("gelu_tanh_derivative" if p["approximate"] == "tanh" else "gelu_derivative", ())),
    nn_class="GELU", torch_class="GELU", torch_function="gelu",
    nn_example=("rnn.GELU()", "tensor([-0.0455,  0.0000,  2.9959])"),
    conventions="gelu(+inf) = +inf, gelu(-inf) = 0 (PyTorch gives NaN); accurate in the far negative tail.",
    use="Transformers (BERT, GPT) and modern vision models: a smooth, non-monotonic relu.",
    failure_mode="Costs an erf per element; non-monotonic dip (minimum -0.17 at x = -0.75).",
    paper="Hendrycks & Gimpel 2016, Gaussian Error Linear Units (GELUs) (arXiv:1606.08415).",
    example=">>> rl.gelu([-1.0, 0.0, 1.0])\narray([-0.15865525,  0.        ,  0.84134475])",
))


def _silu(x, out):
    # x / (1 + exp(-x)): four passes. Below exp_overflows_below (also at -inf), where exp(-x) overflows, the same
    # value is x * exp(x) (and the limit 0 at -inf), computed for those elements only.
    tail = x < sp.exp_overflows_below(x.dtype)
    tail_values = None
    if tail.any():  # rare; taken before out (maybe x) is written
        low = x[tail]
        tail_values = np.exp(low) * sp.select(np.isinf(low), 0.0, low)  # +0.0 at -inf, never -inf * 0
        x = sp.select(tail, 0.0, x)  # keeps the main formula finite there
    value = np.negative(x)
    np.exp(value, out=value)
    value += 1.0
    value = np.divide(x, value, out=value if out is None else out)
    if tail_values is not None:
        np.place(value, tail, tail_values)
    return value


def _silu_grad(x, out):
    value, slope = sp.sigmoid_and_slope(x)
    grad = value + _finite(x) * slope
    return _store(_fix_infinities(grad, x, 1.0, 0.0), out)


silu = register(Activation(
    "silu",
    aliases=("swish", "swish1"),
    summary="Sigmoid-weighted linear unit (swish): x * sigmoid(x).",
    formula=r"x\,\sigma(x) = \frac{x}{1 + e^{-x}}",
    derivative_formula=r"\sigma(x)\,\bigl(1 + x\,(1 - \sigma(x))\bigr)",
    properties=Properties(monotonic=False, lower_bound=-0.2784645427610738, upper_bound=None, smooth=True,
                          kinks=(), zero_for_negative=False, piecewise_linear=False),
    elementwise=True,
    forward=_silu,
    derivative=_silu_grad,
    stream=vector(lambda p, dtype: ("silu_forward", (dtype.type(1.0),))),
    stream_derivative=vector(lambda p, dtype: ("silu_derivative", (dtype.type(1.0),))),
    nn_class="SiLU", torch_class="SiLU", torch_function="silu", inplace=True,
    nn_example=("rnn.SiLU()", "tensor([-0.2384,  0.0000,  2.8577])"),
    conventions="silu(-inf) = 0 (PyTorch gives NaN), silu(+inf) = +inf.",
    use="EfficientNet and many modern CNNs; found by automated search to beat relu on deep models.",
    failure_mode="exp cost; non-monotonic dip (minimum -0.278 at x = -1.278).",
    paper="Elfwing, Uchibe & Doya 2018 (SiLU); Ramachandran, Zoph & Le 2017, Searching for Activation Functions.",
    example=">>> rl.silu([-1.0, 0.0, 1.0])\narray([-0.26894142,  0.        ,  0.73105858])",
))


QUICK_GELU_SCALE = 1.702  # the sigmoid's scale in QuickGELU (CLIP), fitted so x * sigmoid(1.702 x) ~ gelu(x)


def _quick_gelu(x, out):
    # x * sigmoid(a x): no exp overflows (sigmoid takes its exp(x) form in the tail), a x = +-inf for huge x still
    # gives sigmoid 1 or 0; _finite keeps inf * 0 out, the limits at +-inf are written afterwards.
    value = _finite(x) * sp.sigmoid(QUICK_GELU_SCALE * x)
    return _store(_fix_infinities(value, x, np.inf, 0.0), out)


def _quick_gelu_grad(x, out):
    # sigma(a x) + a x sigma'(a x); beyond |x| = 1e5 sigma' is 0 exactly, so clipping there keeps a x finite.
    u = QUICK_GELU_SCALE * np.clip(x, -1e5, 1e5)
    value, slope = sp.sigmoid_and_slope(u)
    return _store(value + u * slope, out)


quick_gelu = register(Activation(
    "quick_gelu",
    summary="Quick GELU: x * sigmoid(1.702 x), the sigmoid approximation of gelu used by CLIP.",
    formula=r"x\,\sigma(1.702\,x)",
    derivative_formula=r"\sigma(1.702\,x) + 1.702\,x\,\sigma(1.702\,x)\,\bigl(1 - \sigma(1.702\,x)\bigr)",
    properties=Properties(monotonic=False, lower_bound=-0.16361018963635358, upper_bound=None, smooth=True,
                          kinks=(), zero_for_negative=False, piecewise_linear=False),
    elementwise=True,
    forward=_quick_gelu,
    derivative=_quick_gelu_grad,
    stream=vector(lambda p, dtype: ("silu_forward", (dtype.type(QUICK_GELU_SCALE),))),
    stream_derivative=vector(lambda p, dtype: ("silu_derivative", (dtype.type(QUICK_GELU_SCALE),))),
    nn_class="QuickGELU",
    nn_example=("rnn.QuickGELU()", "tensor([-0.0643,  0.0000,  2.9819])"),
    conventions="quick_gelu(-inf) = 0, quick_gelu(+inf) = +inf; it is silu(1.702 x) / 1.702, not gelu: the two "
                "differ by up to 0.02.",
    use="CLIP and models fine-tuned from it (transformers' QuickGELUActivation, timm's QuickGELU).",
    failure_mode="As gelu/silu: non-monotonic dip (minimum -0.164 at x = -0.751), exp cost.",
    paper="Hendrycks & Gimpel 2016, Gaussian Error Linear Units (GELUs) (arXiv:1606.08415), section 2; "
          "Radford et al. 2021, CLIP.",
    example=">>> rl.quick_gelu([-1.0, 0.0, 1.0])\narray([-0.15420423,  0.        ,  0.84579577])",
))


def _mish_tanh_softplus(x):
    """tanh(softplus(x)) and 1 - tanh(softplus(x)), both without cancellation or overflow."""
    negative = x <= 0
    e = np.exp(np.minimum(x, 0.0))  # x <= 0: n = e (e + 2); t = n / (n + 2); 1 - t = 2 / (n + 2)
    n = e * (e + 2.0)
    q = np.exp(-np.maximum(x, 0.0))  # x > 0: t = (1 + 2q) / (1 + 2q + 2q^2); 1 - t = 2q^2 / (same)
    d = 1.0 + 2.0 * q + 2.0 * q * q
    t = sp.select(negative, n / (n + 2.0), (1.0 + 2.0 * q) / d)
    one_minus_t = sp.select(negative, 2.0 / (n + 2.0), 2.0 * q * q / d)
    return t, one_minus_t


def _mish(x, out):
    t, _ = _mish_tanh_softplus(x)
    return _store(_fix_infinities(_finite(x) * t, x, np.inf, 0.0), out)


def _mish_grad(x, out):
    t, one_minus_t = _mish_tanh_softplus(x)
    grad = t + _finite(x) * (one_minus_t * (1.0 + t)) * sp.sigmoid(x)
    return _store(_fix_infinities(grad, x, 1.0, 0.0), out)


mish = register(Activation(
    "mish",
    summary="Mish: x * tanh(softplus(x)).",
    formula=r"x \tanh\bigl(\ln(1 + e^{x})\bigr)",
    derivative_formula=r"\tanh(\operatorname{sp}(x)) + x\,\operatorname{sech}^2(\operatorname{sp}(x))\,\sigma(x)",
    properties=Properties(monotonic=False, lower_bound=-0.30884341301725040, upper_bound=None, smooth=True,
                          kinks=(), zero_for_negative=False, piecewise_linear=False),
    elementwise=True,
    forward=_mish,
    derivative=_mish_grad,
    stream=vector(lambda p, dtype: ("mish_forward", ())),
    stream_derivative=vector(lambda p, dtype: ("mish_derivative", ())),
    nn_class="Mish", torch_class="Mish", torch_function="mish", inplace=True,
    nn_example=("rnn.Mish()", "tensor([-0.2525,  0.0000,  2.9865])"),
    conventions="mish(-inf) = 0 (PyTorch gives NaN), mish(+inf) = +inf.",
    use="A smooth relu alternative reported to help some vision models (YOLOv4).",
    failure_mode="Three transcendental functions per element: the slowest member here.",
    paper="Misra 2019, Mish: A Self Regularized Non-Monotonic Activation Function (arXiv:1908.08681).",
    example=">>> rl.mish([-1.0, 0.0, 1.0])\narray([-0.30340146,  0.        ,  0.86509839])",
))


def _softplus(x, out, beta, threshold):
    bx = beta * x
    # softplus(bx) / beta as max(x, 0) + log1p(exp(-|bx|)) / beta: the linear part never goes through bx, which
    # overflows for finite results (x = 1e308, beta = 2 is 1e308, not inf).
    smooth = np.maximum(x, 0.0) + np.log1p(np.exp(sp.negative_abs(bx))) / beta
    value = sp.select(bx > threshold, x, smooth)
    return _store(value, out)


def _softplus_grad(x, out, beta, threshold):
    bx = beta * x
    return _store(sp.select(bx > threshold, np.ones((), x.dtype), sp.sigmoid(bx)), out)


def _softplus_gain(p: Mapping[str, Any]) -> float:
    # PyTorch's switch to x at beta x = threshold is a jump of f: a quadrature panel must end there too.
    threshold, beta = p.get("threshold", 20.0), p.get("beta", 1.0)
    breaks = (threshold / beta, 0.0) if math.isfinite(threshold) else (0.0,)
    return numeric_gain(lambda z: softplus(z, **p), breaks, "softplus", p)


softplus = register(Activation(
    "softplus",
    summary="Softplus: log(1 + exp(beta x)) / beta, a smooth relu; linear above the threshold (as PyTorch).",
    formula=r"\begin{cases} \tfrac{1}{\beta}\ln(1 + e^{\beta x}) & \beta x \le t \\ x & \beta x > t \end{cases}",
    derivative_formula=r"\begin{cases} \sigma(\beta x) & \beta x \le t \\ 1 & \beta x > t \end{cases}",
    params=(
        Param("beta", 1.0, "Sharpness; as beta grows softplus approaches relu.", low=0.0, high=math.inf,
              low_open=True, high_open=True),
        Param("threshold", 20.0, "Above beta * x > threshold the result is x (PyTorch's switch); inf disables it. "
                                 "Any real number, as in PyTorch (a threshold <= 0 makes f(x) = x wherever "
                                 "beta * x exceeds it).", low=-math.inf, high=math.inf),
    ),
    properties=Properties(monotonic=True, lower_bound=0.0, upper_bound=None, smooth=True, kinks=(),
                          zero_for_negative=False, piecewise_linear=False),
    elementwise=True,
    forward=_softplus,
    derivative=_softplus_grad,
    stream=vector(lambda p, dtype: ("softplus_forward", (dtype.type(p["beta"]), dtype.type(p["threshold"])))),
    stream_derivative=vector(
        lambda p, dtype: ("softplus_derivative", (dtype.type(p["beta"]), dtype.type(p["threshold"])))),
    gain=_softplus_gain,
    nn_class="Softplus", torch_class="Softplus", torch_function="softplus",
    nn_example=("rnn.Softplus(beta=1.0)", "tensor([0.1269, 0.6931, 3.0486])"),
    conventions="Computed as max(bx, 0) + log1p(exp(-|bx|)), so no overflow; softplus(+inf) = +inf, "
                "softplus(-inf) = 0. With a finite threshold f drops by log1p(exp(-threshold)) / beta "
                "(2.1e-9 at the defaults) at beta x = threshold, exactly as PyTorch.",
    use="Where a strictly positive, smooth output is needed (variances, rates) or as a smooth relu.",
    failure_mode="Never exactly zero, so no sparsity; log and exp cost.",
    paper="Dugas et al. 2001, Incorporating Second-Order Functional Knowledge for Better Option Pricing (NeurIPS).",
    example=">>> rl.softplus([-1.0, 0.0, 1.0])\narray([0.31326169, 0.69314718, 1.31326169])",
))


# -- squareplus, sparse_plus: softplus's algebraic relatives (JAX, Keras) -----------------------------------------
def _squareplus_parts(x, b):
    """h = sqrt(x^2 + b) without overflow (hypot), and h/2 + |x|/2 (h/2 - x/2 for x < 0): > 0, inf at +-inf."""
    h = np.hypot(x, math.sqrt(b))
    return h, 0.5 * h - 0.5 * sp.negative_abs(x)


def _squareplus(x, out, b):
    if b == 0:
        return _relu(x, out)  # (x + |x|) / 2
    # (x + h) / 2 = d for x >= 0; for x < 0 the same value as (b / 4) / d, which does not cancel. Halves before
    # sums: nothing overflows for finite x (d <= max), and +-inf give +inf and 0.
    h, d = _squareplus_parts(x, b)
    return _store(sp.select(x < 0, (0.25 * b) / d, d), out)


def _squareplus_grad(x, out, b):
    if b == 0:
        return _store(_step(x, x > 0, 0.5), out)  # relu's, with f'(0) = 1/2: the limit of 1/2 as b -> 0
    # (1 + x / h) / 2; for x < 0, 1 + x/h = b / (h (h - x)) without cancellation.
    h, d = _squareplus_parts(x, b)
    with np.errstate(invalid="ignore"):  # inf / inf at x = +inf, fixed below
        grad = sp.select(x < 0, ((0.25 * b) / h) / d, 0.5 + 0.5 * (x / h))
    return _store(_fix_infinities(grad, x, 1.0, 0.0), out)


squareplus = register(Activation(
    "squareplus",
    summary="Squareplus: (x + sqrt(x^2 + b)) / 2, a softplus-like smooth relu from one square root (JAX, Keras).",
    formula=r"\frac{x + \sqrt{x^2 + b}}{2}",
    derivative_formula=r"\frac{1}{2}\left(1 + \frac{x}{\sqrt{x^2 + b}}\right)",
    params=(Param("b", 4.0, "Smoothness b >= 0 (f(0) = sqrt(b) / 2); b = 0 is relu.", low=0.0, high=math.inf,
                  high_open=True),),
    properties=lambda p: Properties(monotonic=True, lower_bound=0.0, upper_bound=None, smooth=p["b"] > 0,
                                    kinks=() if p["b"] > 0 else (0.0,), zero_for_negative=p["b"] == 0,
                                    piecewise_linear=p["b"] == 0),
    elementwise=True,
    forward=_squareplus,
    derivative=_squareplus_grad,
    # b = 0 is relu: relu's twins (f'(0) = 1/2).
    stream=vector(lambda p, dtype: ("squareplus_forward", (dtype.type(p["b"]),)) if p["b"] > 0
                  else ("relu_forward", ())),
    stream_derivative=vector(lambda p, dtype: ("squareplus_derivative", (dtype.type(p["b"]),))
                             if p["b"] > 0 else ("relu_derivative", (dtype.type(0.5),))),
    # E[f(z)^2] = (E[2 z^2 + b] + 2 E[z sqrt(z^2 + b)]) / 4 = (2 + b) / 4: the second expectation is odd in z.
    gain=lambda p: 2.0 / math.sqrt(2.0 + p.get("b", 4.0)),
    nn_class="Squareplus",
    nn_example=("rnn.Squareplus(b=4.0)", "tensor([0.4142, 1.0000, 3.3028])"),
    conventions="For x < 0 computed as b / (2 (sqrt(x^2 + b) - x)), so no cancellation in the left tail; "
                "squareplus(-inf) = 0, squareplus(+inf) = +inf. b = 0 is relu, with f'(0) = 1/2 (the value "
                "for every b > 0).",
    use="A cheap smooth relu: one square root instead of softplus's exp and log; jax.nn.squareplus, "
        "keras.activations.squareplus.",
    failure_mode="Approaches 0 only like b / (4|x|) for x -> -inf, far slower than softplus; never exactly 0.",
    paper="Barron 2021, Squareplus: A Softplus-Like Algebraic Rectifier (arXiv:2112.11687).",
    example=">>> rl.squareplus([-1.0, 0.0, 1.0])\narray([0.61803399, 1.        , 1.61803399])",
))


def _sparse_plus(x, out):
    # 0 for x <= -1, (x + 1)^2 / 4 on (-1, 1), x from 1 on (JAX's branches); the quadratic sees only [-1, 1].
    c = np.clip(x, -1.0, 1.0)
    quadratic = 0.25 * ((c + 1.0) * (c + 1.0))
    value = sp.select(x <= -1.0, np.zeros((), x.dtype), sp.select(x >= 1.0, x, quadratic))
    return _store(value, out)


def _sparse_plus_grad(x, out):
    c = np.clip(x, -1.0, 1.0)  # (c + 1) / 2 is 0 at -1 and 1 at 1: continuous, and NaN stays NaN
    return np.multiply(c + 1.0, 0.5, out=out)


sparse_plus = register(Activation(
    "sparse_plus",
    aliases=("sparseplus",),
    summary="Sparse plus: 0 for x <= -1, (x + 1)^2 / 4 on (-1, 1), x for x >= 1 (JAX, Keras).",
    formula=r"\begin{cases} 0 & x \le -1 \\ \tfrac{1}{4}(x + 1)^2 & -1 < x < 1 \\ x & x \ge 1 \end{cases}",
    derivative_formula=r"\begin{cases} 0 & x \le -1 \\ \tfrac{1}{2}(x + 1) & -1 < x < 1 \\ 1 & x \ge 1 "
                       r"\end{cases}",
    properties=Properties(monotonic=True, lower_bound=0.0, upper_bound=None, smooth=False, kinks=(),
                          zero_for_negative=False, piecewise_linear=False),
    elementwise=True,
    forward=_sparse_plus,
    derivative=_sparse_plus_grad,
    stream=vector(lambda p, dtype: ("sparse_plus_forward", ())),
    stream_derivative=vector(lambda p, dtype: ("sparse_plus_derivative", ())),
    nn_class="SparsePlus",
    nn_example=("rnn.SparsePlus()", "tensor([0.0000, 0.2500, 3.0000])"),
    conventions="Continuously differentiable (f'(-1) = 0, f'(1) = 1 from both sides), so no kinks and no at_zero; "
                "exactly 0 for x <= -1 (sparse), f(0) = 1/4; integers become float64.",
    use="A softplus with an exactly-zero region: sparse outputs with a continuous derivative "
        "(jax.nn.sparse_plus, keras.activations.sparse_plus).",
    failure_mode="Zero gradient for x <= -1, so units can die there like relu's (the region is shifted left).",
    paper="Blondel, Martins & Niculae 2020, Learning with Fenchel-Young Losses (JMLR), the sparsemax's "
          "2-D case.",
    example=">>> rl.sparse_plus([-2.0, 0.0, 0.5, 2.0])\narray([0.    , 0.25  , 0.5625, 2.    ])",
))


# -- baselines -------------------------------------------------------------------------------------------------
sigmoid = register(Activation(
    "sigmoid",
    aliases=("logistic",),
    summary="Logistic sigmoid: 1 / (1 + exp(-x)). A baseline the ReLU family replaced in hidden layers.",
    formula=r"\sigma(x) = \frac{1}{1 + e^{-x}}",
    derivative_formula=r"\sigma(x)\,(1 - \sigma(x))",
    properties=Properties(monotonic=True, lower_bound=0.0, upper_bound=1.0, smooth=True, kinks=(),
                          zero_for_negative=False, piecewise_linear=False),
    elementwise=True,
    forward=lambda x, out: sp.sigmoid(x, out=out),
    derivative=lambda x, out: _store(sp.sigmoid_slope(x), out),
    stream=vector(lambda p, dtype: ("sigmoid_forward", ())),
    stream_derivative=vector(lambda p, dtype: ("sigmoid_derivative", ())),
    nn_class="Sigmoid", torch_class="Sigmoid", torch_function="sigmoid",
    nn_example=("rnn.Sigmoid()", "tensor([0.1192, 0.5000, 0.9526])"),
    conventions="Computed from exp(-|x|) only: no overflow, exact tails.",
    use="Output layers for probabilities and gates (LSTM); a poor choice for deep hidden layers.",
    failure_mode="Vanishing gradients: the derivative is at most 1/4 and decays exponentially for large |x|.",
    paper="Rumelhart, Hinton & Williams 1986, Learning representations by back-propagating errors (Nature).",
    example=">>> rl.sigmoid([-1.0, 0.0, 1.0])\narray([0.26894142, 0.5       , 0.73105858])",
))

tanh = register(Activation(
    "tanh",
    summary="Hyperbolic tangent. A zero-centred baseline.",
    formula=r"\tanh(x) = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}}",
    derivative_formula=r"1 - \tanh^2(x) = \operatorname{sech}^2(x)",
    properties=Properties(monotonic=True, lower_bound=-1.0, upper_bound=1.0, smooth=True, kinks=(),
                          zero_for_negative=False, piecewise_linear=False),
    elementwise=True,
    forward=lambda x, out: np.tanh(x, out=out),
    derivative=lambda x, out: sp.sech2(x, out=out),
    stream=vector(lambda p, dtype: ("tanh_forward", ())),
    stream_derivative=vector(lambda p, dtype: ("tanh_derivative", ())),
    single_pass=True,
    nn_class="Tanh", torch_class="Tanh", torch_function="tanh",
    nn_example=("rnn.Tanh()", "tensor([-0.9640,  0.0000,  0.9951])"),
    conventions="The derivative is computed as 4e/(1+e)^2, e = exp(-2|x|): accurate where 1 - tanh^2 cancels.",
    use="Recurrent networks and shallow models; zero-centred, unlike sigmoid.",
    failure_mode="Vanishing gradients: saturates for |x| > 3, so deep stacks learn slowly.",
    paper="LeCun, Bottou, Orr & Mueller 1998, Efficient BackProp.",
    example=">>> rl.tanh([-1.0, 0.0, 1.0])\narray([-0.76159416,  0.        ,  0.76159416])",
))


def _identity(x, out):
    if out is None:
        return x.copy()
    out[...] = x
    return out


def _identity_grad(x, out):
    nan = np.isnan(x)  # taken before writing: out may be x itself (in-place use)
    if out is None:
        out = np.empty_like(x)
    out[...] = 1
    np.copyto(out, np.nan, where=nan)
    return out


identity = register(Activation(
    "identity",
    aliases=("linear", "none"),
    summary="Identity: f(x) = x. The linear baseline (a network of these is one linear map).",
    formula=r"x",
    derivative_formula=r"1",
    properties=Properties(monotonic=True, lower_bound=None, upper_bound=None, smooth=True, kinks=(),
                          zero_for_negative=False, piecewise_linear=True),
    integer_exact=True,
    elementwise=True,
    forward=_identity,
    derivative=_identity_grad,
    single_pass=True,
    gain=1.0,
    nn_class="Identity", torch_class="Identity",
    nn_example=("rnn.Identity()", "tensor([-2.,  0.,  3.])"),
    conventions="Returns a copy (never the input itself); f'(NaN) = NaN.",
    use="A control in experiments: what the network does with no nonlinearity at all.",
    failure_mode="No nonlinearity: any depth collapses to one linear map.",
    example=">>> rl.identity([-1.0, 2.0])\narray([-1.,  2.])",
))

