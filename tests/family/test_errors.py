"""Bad input: the right exception, raised before any computation, with a message that names the argument, the
value given and what is allowed."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import relulab as rl

ALLOWED_X = re.escape("x must be a real number, a list of them or a NumPy array of dtype float16, float32, "
                      "float64 or integer; got ")


def args_for(name: str) -> tuple:
    return (0.25,) if name == "prelu" else ()


BAD_X = [
    ("str", "1.0", r"'1\.0' \(type str\)"),
    ("bytes", b"1", r"b'1' \(type bytes\)"),
    ("None", None, r"None \(type NoneType\)"),
    ("complex", 1 + 2j, r"\(1\+2j\) \(type complex\)"),
    ("numpy complex", np.complex64(1), r"np\.complex64\(1\+0j\) \(type complex64\)"),
    ("bool", True, r"True \(type bool\)"),
    ("numpy bool", np.bool_(False), r"np\.False_ \(type bool\)"),
    ("bool array", np.array([True, False]), r"an array of dtype bool and shape \(2,\) with bool elements"),
    ("bool list", [True, False], r"\[True, False\] \(type list\) with bool elements"),
    ("complex array", np.array([1j]), r"an array of dtype complex128 and shape \(1,\) with complex elements"),
    ("object array", np.array([1.0, "a"], dtype=object), r"an array of dtype object and shape \(2,\)"),
    ("list with None", [1.0, None], r"\[1\.0, None\] \(type list\) with object elements"),
    ("ragged list", [[1.0, 2.0], [3.0]], r"\[\[1\.0, 2\.0\], \[3\.0\]\] \(type list\) \(setting an array element"),
    ("str array", np.array(["a"]), r"an array of dtype <U1 and shape \(1,\) with str elements"),
]


@pytest.mark.parametrize(("label", "x", "given"), BAD_X, ids=[b[0] for b in BAD_X])
@pytest.mark.parametrize("name", rl.names())
def test_bad_x_raises_type_error_naming_x(name, label, x, given):
    member = rl.get(name)
    with pytest.raises(TypeError, match="^" + ALLOWED_X + given):
        member(x, *args_for(name))
    with pytest.raises(TypeError, match="^" + ALLOWED_X + given):
        member.grad(x, *args_for(name))


def test_unsupported_float_dtype_raises_type_error():
    with pytest.raises(TypeError, match=r"^x has dtype float128; allowed are float16, float32, float64 and the "
                                        r"integer dtypes"):
        rl.relu(np.array([1.0], np.longdouble)) if np.dtype(np.longdouble).itemsize > 8 else pytest.skip(
            "long double is float64 on this platform")


BAD_PARAMS = [
    # member, parameters, exception, message (the argument, what is allowed, what was given)
    ("leaky_relu", {"negative_slope": math.nan}, ValueError,
     r"^leaky_relu: negative_slope must be a real number in \(-inf, inf\); got nan \(type float\)$"),
    ("leaky_relu", {"negative_slope": math.inf}, ValueError, r"negative_slope must be .*; got inf"),
    ("leaky_relu", {"negative_slope": "0.1"}, TypeError,
     r"^leaky_relu: negative_slope must be a real number; got '0\.1' \(type str\)$"),
    ("leaky_relu", {"negative_slope": True}, TypeError, r"negative_slope must be a real number; got True"),
    ("leaky_relu", {"negative_slope": 1j}, TypeError, r"negative_slope must be a real number; got 1j"),
    ("elu", {"alpha": -0.5}, ValueError, r"^elu: alpha must be a real number in \[0, inf\); got -0\.5 \(type float\)$"),
    ("elu", {"alpha": math.nan}, ValueError, r"^elu: alpha must be a real number in \[0, inf\); got nan"),
    ("celu", {"alpha": 0}, ValueError, r"^celu: alpha must be a real number in \(0, inf\); got 0 \(type int\)$"),
    ("celu", {"alpha": -1.0}, ValueError, r"^celu: alpha must be a real number in \(0, inf\); got -1\.0"),
    ("softplus", {"beta": 0}, ValueError, r"^softplus: beta must be a real number in \(0, inf\); got 0 \(type int\)$"),
    ("softplus", {"beta": -2.0}, ValueError, r"^softplus: beta must be a real number in \(0, inf\); got -2\.0"),
    ("softplus", {"beta": math.inf}, ValueError, r"^softplus: beta must be a real number in \(0, inf\); got inf"),
    # Python ints beyond float64 (issue 10): a ValueError naming the parameter, not "int too large to convert".
    ("elu", {"alpha": 10**400}, ValueError,
     r"^elu: alpha is too large for a float64 .*; got 1000000000.* \(type int\)$"),
    ("leaky_relu", {"negative_slope": -(10**5000)}, ValueError, r"^leaky_relu: negative_slope is too large .*bits"),
    ("rrelu", {"training": True, "seed": 10**400}, ValueError, r"^rrelu: seed is too large for a float64"),
    ("softplus", {"threshold": math.nan}, ValueError, r"^softplus: threshold must be .*; got nan"),
    ("rrelu", {"lower": 0.5, "upper": 0.1}, ValueError, r"^rrelu: lower must be <= upper; got lower=0\.5, upper=0\.1$"),
    ("rrelu", {"lower": -0.1}, ValueError, r"^rrelu: lower must be a real number in \[0, 1\]; got -0\.1"),
    ("rrelu", {"upper": 1.5}, ValueError, r"^rrelu: upper must be a real number in \[0, 1\]; got 1\.5"),
    ("rrelu", {"training": 1}, TypeError, r"^rrelu: training must be True or False; got 1 \(type int\)$"),
    ("rrelu", {"training": True, "seed": 1.5}, TypeError,
     r"^rrelu: seed must be an integer in \[0, 9223372036854775807\] or None; got 1\.5"),
    ("rrelu", {"training": True, "seed": -1}, ValueError,
     r"^rrelu: seed must be an integer in \[0, 9223372036854775807\] or None; got -1"),
    ("rrelu", {"rng": 3}, TypeError, r"^rrelu: rng must be a numpy\.random\.Generator or None; got 3 \(type int\)$"),
    ("rrelu", {"seed": 1, "rng": np.random.default_rng(0)}, ValueError, r"^rrelu: give seed or rng, not both$"),
    ("gelu", {"approximate": "foo"}, ValueError, r"^gelu: approximate must be one of 'none', 'tanh'; got 'foo'"),
    ("gelu", {"approximate": None}, ValueError, r"^gelu: approximate must be one of 'none', 'tanh'; got None"),
    ("relu", {"max_value": 1.0, "threshold": 2.0}, ValueError,
     r"^relu: max_value must be None or >= threshold; got max_value=1\.0, threshold=2\.0$"),
    ("relu", {"threshold": -0.5}, ValueError, r"^relu: threshold must be a real number in \[0, inf\); got -0\.5"),
    ("relu", {"max_value": -1.0}, ValueError,
     r"^relu: max_value must be a real number in \[0, inf\) or None; got -1\.0"),
    ("relu", {"max_value": "6"}, TypeError, r"^relu: max_value must be a real number; got '6'"),
    ("squareplus", {"b": -1.0}, ValueError, r"^squareplus: b must be a real number in \[0, inf\); got -1\.0"),
    ("squareplus", {"b": math.inf}, ValueError, r"^squareplus: b must be a real number in \[0, inf\); got inf"),
    ("hard_tanh", {"min_val": 1.0}, ValueError, r"^hard_tanh: min_val must be < max_val; got min_val=1\.0, max_val=1\.0$"),
    ("hard_tanh", {"min_val": 2.0, "max_val": -2.0}, ValueError, r"^hard_tanh: min_val must be < max_val"),
    ("hard_tanh", {"max_val": math.inf}, ValueError, r"^hard_tanh: max_val must be a real number in \(-inf, inf\)"),
    ("prelu", {"channel_axis": 1.5}, TypeError, r"^prelu: channel_axis must be an integer in \[-64, 64\]; got 1\.5"),
]


@pytest.mark.parametrize(("name", "params", "error", "message"), BAD_PARAMS,
                         ids=[f"{b[0]}-{'-'.join(map(str, b[1]))}" for b in BAD_PARAMS])
def test_bad_parameter_raises_naming_it(name, params, error, message):
    member = rl.get(name)
    with pytest.raises(error, match=message):
        member(np.array([-1.0, 2.0]), *args_for(name), **params)
    with pytest.raises(error, match=message):
        member.grad(np.array([-1.0, 2.0]), *args_for(name), **params)


@pytest.mark.parametrize(("name", "params", "error", "message"), BAD_PARAMS[:6],
                         ids=[f"{b[0]}-{'-'.join(map(str, b[1]))}" for b in BAD_PARAMS[:6]])
def test_bad_parameter_is_rejected_before_any_computation(name, params, error, message):
    out = np.full(2, 123.0)
    with pytest.raises(error):
        rl.get(name)(np.array([-1.0, 2.0]), *args_for(name), out=out, **params)
    np.testing.assert_array_equal(out, [123.0, 123.0])


def test_valid_parameter_edges_are_accepted():
    assert rl.elu(-1.0, alpha=0.0) == 0.0  # alpha = 0 is relu
    assert rl.rrelu(-1.0, lower=0.3, upper=0.3) == -0.3
    assert rl.softplus(30.0, threshold=math.inf) == 30.0 + math.log1p(math.exp(-30.0))  # no switch to x
    assert rl.leaky_relu(-2.0, negative_slope=-1.0) == 2.0  # any finite slope


@pytest.mark.parametrize("name", rl.names())
def test_unknown_keyword_argument_raises_type_error(name):
    allowed = ", ".join(p.name for p in rl.get(name).params) or "no parameters"
    message = rf"^{name}: unexpected keyword argument 'slope'; {name} takes {re.escape(allowed)}$"
    with pytest.raises(TypeError, match=message):
        rl.get(name)(1.0, *args_for(name), slope=0.1)
    with pytest.raises(TypeError, match=message):
        rl.get(name).grad(1.0, *args_for(name), slope=0.1)


def test_unknown_keyword_argument_lists_the_parameters():
    with pytest.raises(TypeError, match=r"^leaky_relu: unexpected keyword argument 'alpha'; leaky_relu takes "
                                        r"negative_slope$"):
        rl.leaky_relu(1.0, alpha=0.1)
    with pytest.raises(TypeError, match=r"softplus takes beta, threshold$"):
        rl.softplus(1.0, negative_slope=0.1)


def test_extra_positional_argument_raises_type_error():
    with pytest.raises(TypeError, match=r"^relu takes x as positional arguments; got 2$"):
        rl.relu(1.0, 0.5)
    with pytest.raises(TypeError, match=r"^prelu takes x and weight as positional arguments; got 1$"):
        rl.prelu(1.0)


def test_out_of_the_wrong_shape_raises():
    with pytest.raises(ValueError, match=r"^out has shape \(4,\); the result has shape \(3,\), and out must match it$"):
        rl.relu(np.ones(3), out=np.empty(4))
    with pytest.raises(ValueError, match=r"out has shape \(3, 1\)"):
        rl.gelu.grad(np.ones(3), out=np.empty((3, 1)))
    with pytest.raises(ValueError, match=r"out has shape \(1,\); the result has shape \(\)"):
        rl.relu(1.0, out=np.empty(1))


def test_out_of_the_wrong_dtype_raises():
    with pytest.raises(ValueError, match=r"^out has dtype float32; the result has dtype float64, and out must "
                                         r"match it$"):
        rl.relu(np.ones(3), out=np.empty(3, np.float32))
    with pytest.raises(ValueError, match=r"out has dtype int64; the result has dtype float64"):
        rl.relu.grad(np.array([1, 2]), out=np.empty(2, np.int64))  # derivatives of integers are float64
    with pytest.raises(ValueError, match=r"out has dtype int64; the result has dtype float64"):
        rl.elu(np.array([1, 2]), out=np.empty(2, np.int64))


def test_out_that_is_not_an_array_or_read_only_raises():
    with pytest.raises(TypeError, match=r"^out must be a NumPy array of shape \(3,\) and dtype float64; got "
                                        r"\[0, 0, 0\] \(type list\)$"):
        rl.relu(np.ones(3), out=[0, 0, 0])
    read_only = np.empty(3)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="^out is read-only; pass a writeable array$"):
        rl.relu(np.ones(3), out=read_only)


def test_prelu_weight_that_does_not_match_the_channel_axis_raises():
    x = np.ones((2, 3, 4))
    with pytest.raises(ValueError, match=r"^prelu: weight has 2 slopes but x has 3 channels along channel_axis=1; "
                                         r"give one slope per channel or a single slope$"):
        rl.prelu(x, [0.1, 0.2])
    with pytest.raises(ValueError, match=r"weight has 3 slopes but x has 4 channels along channel_axis=-1"):
        rl.prelu.grad(x, [0.1, 0.2, 0.3], channel_axis=-1)
    with pytest.raises(ValueError, match=r"^prelu: channel_axis=3 is out of range for x with 3 dimensions"):
        rl.prelu(x, [0.1, 0.2, 0.3], channel_axis=3)
    with pytest.raises(ValueError, match=r"channel_axis=1 is out of range for x with 1 dimensions"):
        rl.prelu(np.ones(3), [0.1, 0.2, 0.3])


def test_prelu_bad_weight_raises():
    with pytest.raises(ValueError, match=r"^prelu: weight must be a scalar or 1-D \(one slope per channel\); got "
                                         r"shape \(2, 2\)$"):
        rl.prelu(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"^prelu: weight must be finite; got \[0.1 nan\]$"):
        rl.prelu(np.ones((1, 2)), [0.1, math.nan])
    for bad in ("0.25", None, True, [0.1, "a"], 1j):
        with pytest.raises(TypeError, match=r"^prelu: weight must be a real number or a 1-D array of them; got "):
            rl.prelu(np.ones(2), bad)


def test_at_zero_must_be_a_real_number():
    with pytest.raises(TypeError, match=r"^relu: at_zero must be a real number; got '1' \(type str\)$"):
        rl.relu.grad(0.0, at_zero="1")
