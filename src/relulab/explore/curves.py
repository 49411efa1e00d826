"""What the Curves view shows, computed by the family itself: the page draws these numbers, it never recomputes them.

NumPy only (like ``relulab.family``): the Curves view works without torch.

>>> spec = member_spec("elu")
>>> [(p["name"], p["allowed"]) for p in spec["params"]]
[('alpha', 'a real number in [0, inf)')]
>>> curve = evaluate_curve({"name": "relu", "points": 5, "x_min": -2, "x_max": 2})
>>> curve["example"]["f"]
[0.0, 0.0, 0.0, 1.0, 2.0]
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

import numpy as np

from .. import family
from .errors import FieldError

__all__ = ["EXAMPLE_X", "member_spec", "members", "evaluate_curve"]

EXAMPLE_X = (-2.0, -1.0, 0.0, 1.0, 2.0)  # the seeds' worked example: relu gives [0, 0, 0, 1, 2]
# prelu's slope is a positional weight array, not a keyword; the page offers one slope for all (PyTorch's init).
WEIGHT_DEFAULT = 0.25
_MAX_POINTS = 4001


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _slider_range(param: family.Param) -> tuple[float, float]:
    """A finite range for a slider over a parameter whose allowed range may be infinite at either end."""
    default = float(param.default) if isinstance(param.default, (int, float)) else 0.0
    span = max(1.0, 4.0 * abs(default))
    if math.isfinite(param.low) and math.isfinite(param.high):
        return float(param.low), float(param.high)
    if math.isfinite(param.low):
        return float(param.low), float(param.low) + span
    if math.isfinite(param.high):
        return float(param.high) - span, float(param.high)
    return default - span, default + span


def _param_spec(param: family.Param) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": param.name, "kind": param.kind, "default": param.default, "doc": param.doc,
                            "allowed": param.allowed, "allow_none": param.allow_none}
    if param.kind in ("real", "int"):
        spec.update(low=_finite_or_none(param.low), high=_finite_or_none(param.high), low_open=param.low_open,
                    high_open=param.high_open)
        if param.kind == "real":
            spec["slider"] = _slider_range(param)
    if param.kind == "choice":
        spec["choices"] = list(param.choices)
    return spec


def member_spec(name: str) -> dict[str, Any]:
    """A member as the page needs it: formulas, parameters with their allowed ranges, properties."""
    act = family.get(name)
    props = act.properties
    # "object" parameters (rrelu's rng) are Python objects: nothing a form field can hold.
    params = [_param_spec(p) for p in act.params if p.kind != "object"]
    if act.takes_weight:
        params.insert(0, {"name": "weight", "kind": "real", "default": WEIGHT_DEFAULT, "allow_none": False,
                          "doc": "The slope for x < 0 (one for every channel here).",
                          "allowed": "a finite real number", "low": None, "high": None, "low_open": True,
                          "high_open": True, "slider": (-1.0, 2.0)})
    return {
        "name": act.name, "aliases": list(act.aliases), "summary": act.summary, "formula": act.formula,
        "derivative_formula": act.derivative_formula, "params": params, "takes_weight": act.takes_weight,
        "has_kink_at_zero": act.has_kink_at_zero, "conventions": act.conventions, "use": act.use,
        "failure_mode": act.failure_mode,
        "properties": {"monotonic": props.monotonic, "smooth": props.smooth, "kinks": list(props.kinks),
                       "zero_for_negative": props.zero_for_negative, "piecewise_linear": props.piecewise_linear,
                       "lower_bound": props.lower_bound, "upper_bound": props.upper_bound},
    }


def members() -> list[dict[str, Any]]:
    """Every registered member's :func:`member_spec`, in registration order."""
    return [member_spec(name) for name in family.names()]


def _number(body: Mapping[str, Any], key: str, default: float) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FieldError(key, f"{key} must be a finite number; got {value!r}")
    return float(value)


def _json_floats(values: np.ndarray) -> list[float | None]:
    """JSON has no NaN or inf: they become null (the page leaves a gap there)."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=np.float64).tolist()]


def evaluate_curve(body: Mapping[str, Any]) -> dict[str, Any]:
    """f and f' of one member over [x_min, x_max], its kinks with the derivative convention, and the example.

    ``body``: ``{"name", "params": {...}, "at_zero": number or null, "x_min", "x_max", "points"}``. A bad value
    raises :class:`FieldError` carrying the family's own message and the field it belongs to.
    """
    name = body.get("name")
    try:
        act = family.get(name)
    except (TypeError, ValueError) as error:  # UnknownActivationError is a ValueError
        raise FieldError("name", str(error)) from None
    params = body.get("params") or {}
    if not isinstance(params, Mapping):
        raise FieldError("params", f"params must be an object of parameter values; got {params!r}")
    params = dict(params)
    args: tuple[Any, ...] = ()
    if act.takes_weight:
        weight = params.pop("weight", WEIGHT_DEFAULT)
        args = (weight,)
    x_min, x_max = _number(body, "x_min", -4.0), _number(body, "x_max", 4.0)
    if not x_min < x_max:
        raise FieldError("x_max", f"x_max must be greater than x_min; got x_min={x_min:g}, x_max={x_max:g}")
    points = body.get("points", 801)
    if isinstance(points, bool) or not isinstance(points, int) or not 2 <= points <= _MAX_POINTS:
        raise FieldError("points", f"points must be an integer in [2, {_MAX_POINTS}]; got {points!r}")
    at_zero = body.get("at_zero")

    def library(f, *xs, **extra):
        """Call the family; its error becomes a FieldError naming the field its message starts with."""
        try:
            return f(*xs, *args, **params, **extra)
        except (TypeError, ValueError) as error:
            message = str(error)
            fields = list(params) + ["weight", "at_zero"]
            # the family's messages start "member: parameter ..." (or "member: at_zero=...")
            field = next((k for k in fields if re.match(rf"{re.escape(act.name)}: {k}\b", message)), "params")
            raise FieldError(field, message) from None

    def call(f, xs, **extra):
        return library(f, np.asarray(xs, dtype=np.float64), **extra)

    kinks = sorted(k for k in library(lambda *a, **p: act.properties_for(**p)).kinks if x_min <= k <= x_max)

    # The kinks are in the grid, so the plotted f' shows the convention's value exactly where it applies.
    xs = np.union1d(np.linspace(x_min, x_max, points), kinks)
    values = call(act, xs)
    derivative = call(act.grad, xs)
    chosen = call(act.grad, xs, at_zero=at_zero) if at_zero is not None else derivative
    marks = []
    for k in kinks:
        left, right = call(act.grad, [k - 1e-6, k + 1e-6])
        mark = {"x": k, "f": float(call(act, [k])[0]), "grad": float(call(act.grad, [k])[0]),
                "left": float(left), "right": float(right), "at_zero": None, "subdifferential": None}
        if k == 0.0 and act.has_kink_at_zero:
            mark["subdifferential"] = sorted([float(left), float(right)])
            mark["at_zero"] = float(call(act.grad, [0.0], at_zero=at_zero)[0]) if at_zero is not None else mark["grad"]
        marks.append(mark)
    example = np.array(EXAMPLE_X)
    return {
        "name": act.name, "x": _json_floats(xs), "f": _json_floats(values), "grad": _json_floats(chosen),
        "kinks": marks,
        "example": {"x": list(EXAMPLE_X), "f": _json_floats(call(act, example)),
                    "grad": _json_floats(call(act.grad, example, **({"at_zero": at_zero} if at_zero is not None
                                                                     else {})))},
    }
