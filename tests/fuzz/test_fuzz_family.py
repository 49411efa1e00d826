"""Fuzz every member x inputs x parameters against the mpmath reference (tests/family/reference.py).

Inputs: every dtype the boundary sees (float16/32/64, integers, bool, complex, object, str), shapes up to 3-D,
special values, np.matrix, masked arrays, lists, scalars, None. Parameters: inside and outside their ranges, huge,
NaN, wrong types. A call either returns the reference value (to the accuracy its dtype allows) or raises
TypeError/ValueError naming the argument at fault.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import relulab as rl
from family import reference as R

from .conftest import FUZZ

SPECIAL = [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, -5e-324, 1e-310, 1e-45, 6e-8, 65504.0, 65520.0,
           -65504.0, 3.4e38, -3.4e38, 1e308, -1e308, 1.7976931348623157e308, -3.0, 3.0, 6.0, 20.0, -0.75, 1e4, -1e5,
           -40.0, -80.0, -700.0, 1e154, -1e154]
FLOATS = st.one_of(st.sampled_from(SPECIAL), st.floats(allow_nan=True, allow_infinity=True),
                   st.floats(-10, 10), st.floats(-1e-6, 1e-6))
FLOAT_DTYPES = [np.float16, np.float32, np.float64]
INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
HUGE = [1e39, -1e39, 1e300, 1e-300, 5e-324, 1e-46, 10**400, -(10**400), 2**63, 1.7976931348623157e308]
WRONG = ["1", None, [1.0], 1j, True, b"1", object(), np.array([1.0, 2.0])]
ALLOWED_INPUT_KINDS = "fiu"


@st.composite
def inputs(draw):
    """(x as passed, its float64 values as an array or None when the call must be refused)."""
    kind = draw(st.sampled_from(["float", "float", "float", "int", "list", "scalar", "matrix", "masked", "bad"]))
    shape = draw(st.sampled_from([(), (1,), (5,), (2, 3), (2, 1, 3), (0,), (3, 0)]))
    size = int(np.prod(shape))
    values = np.array(draw(st.lists(FLOATS, min_size=size, max_size=size)), dtype=np.float64).reshape(shape)
    if kind in ("float", "matrix"):
        dtype = draw(st.sampled_from(FLOAT_DTYPES))
        with np.errstate(over="ignore"):
            x = values.astype(dtype)
        if kind == "matrix":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PendingDeprecationWarning)
                x = np.matrix(x.reshape(1, -1) if x.ndim < 2 else x.reshape(x.shape[0], -1))
        if draw(st.booleans()) and x.ndim >= 1 and x.size > 1:
            x = x[..., ::-1]  # a non-contiguous view
        return x
    if kind == "int":
        dtype = draw(st.sampled_from(INT_DTYPES))
        info = np.iinfo(dtype)
        ints = draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=size, max_size=size))
        return np.array(ints, dtype=dtype).reshape(shape)
    if kind == "list":
        return draw(st.lists(st.one_of(FLOATS, st.integers(-1000, 1000)), max_size=6))
    if kind == "scalar":
        value = draw(FLOATS)
        wrap = draw(st.sampled_from([float, np.float64, np.float32, np.float16, int]))
        if wrap is int:
            return draw(st.integers(-10**6, 10**6))
        with np.errstate(over="ignore"):
            return wrap(value)
    if kind == "masked":
        return np.ma.masked_array(values, mask=np.zeros(values.shape, bool))
    return draw(st.sampled_from([None, "1.0", b"x", True, np.bool_(False), 1 + 2j, np.array([1 + 1j]),
                                 np.array(["a"]), np.array([1.0], dtype=object), [[1.0], [1.0, 2.0]],
                                 np.array([True, False]), {"x": 1}]))


def param_values(param):
    if param.kind == "choice":
        return st.sampled_from(list(param.choices) + ["TANH", None, 1, ""])
    if param.kind == "bool":
        return st.sampled_from([True, False, "False", 1, 0, None, np.bool_(True)])
    if param.kind == "int":
        return st.one_of(st.integers(-5, 70), st.sampled_from([None, 2**63, 2**63 - 1, -(2**64), 10**400, 1.5,
                                                              "1", np.int64(3), True]))
    if param.kind == "object":
        return st.sampled_from([None, np.random.default_rng(0), "rng", 3])
    return st.one_of(st.floats(-2, 2), st.floats(0, 1), st.sampled_from(HUGE + WRONG + SPECIAL),
                     st.integers(-3, 3), st.floats(allow_nan=True, allow_infinity=True))


@st.composite
def calls(draw):
    name = draw(st.sampled_from(rl.names()))
    member = rl.get(name)
    params = {}
    for param in member.params:
        if draw(st.booleans()):
            params[param.name] = draw(param_values(param))
    if draw(st.integers(0, 30)) == 0:
        params["no_such_parameter"] = 1.0
    args = ()
    if member.takes_weight:
        args = (draw(st.one_of(st.floats(-2, 2), st.lists(st.floats(-2, 2), min_size=1, max_size=4),
                               st.sampled_from([math.nan, math.inf, 10**400, "w", None, [[1.0]], [True]]))),)
    at_zero = draw(st.one_of(st.none(), st.floats(-1, 2), st.sampled_from([math.nan, 10**400, "0"])))
    return name, args, params, at_zero


# -- the oracle ---------------------------------------------------------------------------------------------------
def reference_pair(name, params, weight_slope=None):
    """(value, derivative, terms) of the mpmath reference at these (valid) parameters."""
    p = {param.name: param.default for param in rl.get(name).params} | params
    simple = {"relu": (R.relu, R.relu_grad), "relu6": (R.relu6, R.relu6_grad),
              "hardswish": (R.hardswish, R.hardswish_grad), "squared_relu": (R.squared_relu, R.squared_relu_grad),
              "silu": (R.silu, R.silu_grad), "mish": (R.mish, R.mish_grad), "sigmoid": (R.sigmoid_mp, R.sigmoid_grad),
              "tanh": (R.tanh, R.tanh_grad), "identity": (R.identity, R.identity_grad),
              "hard_sigmoid": (R.hard_sigmoid, R.hard_sigmoid_grad), "quick_gelu": (R.quick_gelu, R.quick_gelu_grad)}
    terms = {"silu": R.silu_terms, "mish": R.mish_terms, "hardswish": R.hardswish_terms,
             "quick_gelu": R.quick_gelu_terms}.get(name)
    if name == "relu" and (p["max_value"] is not None or float(p["threshold"]) != 0):
        cap = None if p["max_value"] is None else float(p["max_value"])
        return (*R.relu_clipped(cap, float(p["threshold"])), None)
    if name in simple:
        return (*simple[name], terms)
    if name == "squareplus":
        return (*R.squareplus(float(p["b"])), None)
    if name == "sparse_plus":
        return R.sparse_plus, R.sparse_plus_grad, None
    if name == "gelu":
        if p["approximate"] == "tanh":
            return R.gelu_tanh, R.gelu_tanh_grad, R.gelu_tanh_terms
        return R.gelu, R.gelu_grad, R.gelu_terms
    if name == "leaky_relu":
        return (*R.leaky(float(p["negative_slope"])), None)
    if name == "prelu":
        return (*R.leaky(weight_slope), None)
    if name == "rrelu":
        return (*R.leaky((float(p["lower"]) + float(p["upper"])) / 2), None)
    if name == "elu":
        return (*R.elu(float(p["alpha"])), None)
    if name == "selu":
        return (*R.elu(R.SELU_ALPHA, R.SELU_LAMBDA), None)
    if name == "celu":
        return (*R.celu(float(p["alpha"])), None)
    if name == "softplus":
        return (*R.softplus(float(p["beta"]), float(p["threshold"])), None)
    if name == "hard_tanh":
        return (*R.hard_tanh(float(p["min_val"]), float(p["max_val"])), None)
    raise AssertionError(f"no reference for {name}")


FAR, FARTHER = R.ctx.mpf("1e400"), R.ctx.mpf("1e800")


def _at(fn, value: float):
    """fn at value; at +-inf the mathematical limit: fn far beyond any float, and +-inf where fn still grows there
    (a linear piece with a tiny slope is still finite at 1e400)."""
    if not math.isinf(value):
        return fn(R.mpf(value))
    sign = 1 if value > 0 else -1
    far, farther = fn(FAR * sign), fn(FARTHER * sign)
    if abs(farther) > 2 * abs(far) and abs(farther) > 1:
        return R.ctx.inf if farther > 0 else -R.ctx.inf
    return farther


def _log_derivative(fn, x) -> float:
    """|x g'(x) / g(x)|, the condition number of g at x (0 where g vanishes or x is infinite)."""
    try:
        value = fn(x)
        if value == 0 or R.ctx.isinf(x):
            return 0.0
        return float(abs(x * R.ctx.diff(fn, x) / value))
    except (ValueError, ZeroDivisionError, OverflowError):
        return 0.0


def assert_matches(got, xs, fn, dtype, terms=None, *, is_grad=False):
    """The accuracy tests/family/test_reference.py documents: float64 within 1e-9 relative (measured against the
    smallest normal below it, and against |A| + |x A'| where a derivative's terms cancel); float32 within 4 ulps
    times (1 + the condition number); float16 within one ulp plus its float32 computation's error."""
    got = np.asarray(got, dtype=np.float64).reshape(-1)
    dtype = np.dtype(dtype)
    for value, x in zip(got, xs.reshape(-1)):
        x = float(x)
        if math.isnan(x):
            assert math.isnan(value), f"f(nan) = {value}, want nan"
            continue
        point = R.mpf(x) if math.isfinite(x) else None
        exact = _at(fn, x)
        with np.errstate(over="ignore"):
            want = float(np.float64(float(exact)).astype(dtype)) if dtype.kind == "f" else float(exact)
        if math.isinf(want) or math.isinf(value):
            assert value == want, f"at x={x!r}: got {value!r}, want {want!r}"
            continue
        scale = max(abs(float(exact)), float(terms(point)) if terms is not None and point is not None else 0.0)
        if dtype == np.float64 or dtype.kind != "f":
            allowed = 1e-9 * max(scale, float(np.finfo(np.float64).tiny))
        else:
            eps32, tiny = float(np.finfo(np.float32).eps), float(np.finfo(dtype).tiny)
            condition = _log_derivative(fn, point) if point is not None else 0.0
            allowed = 4 * eps32 * (1 + condition) * max(scale, float(np.finfo(np.float32).tiny))
            if dtype == np.float16:
                allowed += float(np.finfo(np.float16).eps) * max(scale, tiny)
        assert abs(value - want) <= allowed, (
            f"at x={x!r} ({'derivative' if is_grad else 'value'}, {dtype}): got {value!r}, want {want!r}")


def names_argument(message: str, owner: str, candidates) -> bool:
    names = "|".join(re.escape(c) for c in candidates)
    return re.match(rf"^({owner}: ({names})\b|({names})\b|{owner} takes )", message) is not None


def call_ok(member, x, args, params, at_zero, grad):
    fn = member.grad if grad else member
    kwargs = dict(params)
    if grad and at_zero is not None:
        kwargs["at_zero"] = at_zero
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(x, *args, **kwargs)


KINKS = {"relu": (0.0,), "leaky_relu": (0.0,), "prelu": (0.0,), "rrelu": (0.0,), "elu": (0.0,), "selu": (0.0,),
         "relu6": (0.0, 6.0), "hardswish": (-3.0, 3.0), "celu": (), "softplus": ()}


@FUZZ
@given(call=calls(), x=inputs(), grad=st.booleans())
def test_member_value_or_named_error(call, x, grad):
    name, args, params, at_zero = call
    member = rl.get(name)
    candidates = ["x", "out", "at_zero", "weight", "channel_axis", "lower", "upper", "give seed",
                  "unexpected keyword argument"] + [p.name for p in member.params]
    try:
        got = call_ok(member, x, args, params, at_zero, grad)
    except (TypeError, ValueError) as error:
        assert names_argument(str(error), name, candidates), f"message names no argument: {error}"
        event(f"refused: {type(error).__name__}")
        return
    event("value checked")
    # Success: everything passed must have been valid, and the value must be the reference's.
    array = np.asarray(x)
    assert array.dtype.kind in ALLOWED_INPUT_KINDS and not isinstance(x, (np.ma.MaskedArray, bool, np.bool_))
    for param in member.params:
        if param.name in params and param.kind == "real":
            value = float(params[param.name])
            assert not math.isnan(value) and param.low <= value <= param.high, f"{param.name}={value} accepted"
    if member.name == "rrelu" and params.get("training"):
        return  # random slopes: bounded by the eval reference's ends, checked in tests/family
    if name == "prelu":
        slopes = np.atleast_1d(np.asarray(args[0], dtype=np.float64))
        if slopes.size != 1:
            return  # per-channel slopes: tests/family/test_reference.py covers them
        weight_slope = float(slopes[0])
    else:
        weight_slope = None
    value_fn, grad_fn, terms = reference_pair(member.name, params, weight_slope)
    result_dtype = np.asarray(got).dtype
    if result_dtype.kind != "f":
        assert result_dtype == array.dtype  # integer-exact members keep integers
    xs = array.astype(np.float64)
    with np.errstate(over="ignore"):  # beta * x beyond float64 is simply not near the threshold
        near_switch = np.isclose(xs * float(params.get("beta", 1.0)), float(params.get("threshold", 20.0)),
                                 rtol=1e-6)
    if grad:
        kinks = KINKS.get(member.name, ())
        if member.name == "relu":  # and its threshold and cap, where they are given
            kinks = tuple(float(v) for v in (0.0, params.get("threshold"), params.get("max_value")) if v is not None)
        if member.name == "squareplus" and float(params.get("b", 4.0)) == 0:
            kinks = (0.0,)
        if member.name == "leaky_relu" and float(params.get("negative_slope", 0.01)) == 1.0:
            kinks = ()
        keep = ~np.isin(xs, kinks)
        if member.name == "softplus":  # the switch to x at beta x = threshold is a jump of f' as well
            keep &= ~near_switch
        assert_matches(np.asarray(got).reshape(-1)[keep.reshape(-1)], xs[keep], grad_fn, result_dtype, terms,
                       is_grad=True)
    else:
        if member.name == "softplus":
            keep = ~near_switch
            assert_matches(np.asarray(got).reshape(-1)[keep.reshape(-1)], xs[keep], value_fn, result_dtype)
        else:
            assert_matches(got, xs, value_fn, result_dtype)
