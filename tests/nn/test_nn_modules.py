"""relulab.nn modules and functions against the NumPy members (float64): values, gradients, kinks, edges, errors.

Reference: the family member, ``relulab.get(name)(x)`` and ``.grad(x)``. Tolerances: rtol 1e-12 plus an absolute
1e-14, which only matters where torch's kernels round in absolute rather than relative terms: gelu computes
x/2 (1 + erf(x / sqrt 2)) (or 1 + tanh(...)), which cancels for x << 0 (in the tanh form -2.9929e-12 instead of
-2.9911e-12 near x = -7: absolute error ~|x| eps), and tanh' / sigmoid' are computed from the output (1 - y^2 is 0
at x = 50 where the true value is 1.5e-43). Both are listed in docs/nn.md.
"""

from __future__ import annotations

import copy
import doctest
import inspect
import io
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

import relulab as rl
import relulab.nn as rnn
import relulab.nn.functional as RF
from nn_cases import CASE_IDS, CASES, KINK_AT_ZERO, away_from_kinks, module, points, run

RTOL, ATOL = 1e-12, 1e-14


def assert_close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)


def test_every_registered_member_has_a_module_and_a_function():
    assert set(rnn.MODULES) == set(rl.names())
    assert set(RF.FUNCTIONS) == set(rl.names())
    for name, cls in rnn.MODULES.items():
        assert cls.activation is rl.get(name)


def test_every_module_has_test_cases():
    # CASES (nn_cases.py) drives every numeric test here, in test_nn_lean and test_nn_compile: a member without a
    # case would go untested (prelu has its own tests).
    assert {case[1] for case in CASES} | {"prelu"} == set(rnn.MODULES)


def test_import_relulab_does_not_import_torch():
    code = "import sys, relulab; relulab.relu([1.0]); assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- numbers against the family --------------------------------------------------------------------------------------
@pytest.mark.parametrize("lean", [False, True], ids=["default", "lean"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_values_and_gradients_match_the_numpy_member(case, lean):
    _, member, params = case
    x = points(member, params)
    upstream = torch.tensor(np.random.default_rng(2).uniform(0.5, 2.0, x.size))
    y, grad = run(module(member, params, lean=lean), x, upstream)
    f = rl.get(member)
    assert_close(y, f(x, **params))
    assert_close(grad, upstream.numpy() * f.grad(x, **params))


@pytest.mark.parametrize("lean", [False, True], ids=["default", "lean"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_limits_at_infinity_are_exact(case, lean):
    # torch gives NaN for gelu(-inf), silu(-inf), mish(-inf), hardswish(-inf) and for gelu', silu', mish' at +-inf;
    # relulab.nn gives the family's limits.
    _, member, params = case
    x = np.array([-np.inf, np.inf, -np.finfo(np.float64).max, np.finfo(np.float64).max])
    y, grad = run(module(member, params, lean=lean), x)
    f = rl.get(member)
    np.testing.assert_array_equal(y, f(x, **params))
    np.testing.assert_array_equal(grad, f.grad(x, **params))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_functional_matches_the_numpy_member(case):
    _, member, params = case
    x = points(member, params, seed=3)
    tensor = torch.tensor(x, requires_grad=True)
    function = RF.FUNCTIONS[member]
    args = {"rrelu": lambda: function(tensor, params.get("lower", 1 / 8), params.get("upper", 1 / 3))}
    y = args[member]() if member in args else function(tensor, **params)
    y.backward(torch.ones_like(y))
    f = rl.get(member)
    assert_close(y.detach().numpy(), f(x, **params))
    assert_close(tensor.grad.numpy(), f.grad(x, **params))


def test_functional_defaults_are_the_family_defaults():
    for name, function in RF.FUNCTIONS.items():
        signature = inspect.signature(function)
        for param in rl.get(name).params:
            if param.name in signature.parameters:
                assert signature.parameters[param.name].default == param.default, (name, param.name)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_nan_in_gives_nan_out(case):
    _, member, params = case
    y, _ = run(module(member, params), np.array([np.nan, 1.0]))
    assert np.isnan(y[0])


# f'(NaN): torch's piecewise kernels take the "else" branch of a comparison, so they pass the upstream gradient
# (times the slope) where the family gives NaN; one bit per element in lean mode cannot encode a third outcome, so
# relulab.nn keeps torch's value on both paths (docs/nn.md). The forward value is NaN either way.
NAN_DERIVATIVE = {
    "relu": 1.0, "leaky_relu": 0.01, "leaky_relu-0.2": 0.2, "leaky_relu-neg": -0.5, "rrelu": 11 / 48,
    "rrelu-0.1-0.3": 0.2, "elu": 1.0, "elu-0.5": 1.0, "elu-0": 1.0, "selu": rl.SELU_SCALE, "celu": 1.0,
    "celu-2": 1.0, "relu6": 1.0, "hardswish": 1.0, "identity": 1.0,
    "hard_tanh": 1.0, "hard_tanh-0-6": 1.0, "hard_tanh-neg2.5-0.5": 1.0,  # torch's hardtanh_backward, as relu6
    "hard_sigmoid": 0.0,  # torch's hardsigmoid_backward: the region test -3 < x < 3 fails
    "relu-max6": 1.0, "relu-t1": 1.0, "relu-max2.5-t0.5": 1.0,  # as relu and relu6 (threshold/hardtanh_backward)
}


@pytest.mark.parametrize("lean", [False, True], ids=["default", "lean"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_derivative_at_nan_is_the_documented_value(case, lean):
    case_id, member, params = case
    _, grad = run(module(member, params, lean=lean), np.array([np.nan]))
    expected = NAN_DERIVATIVE.get(case_id, np.nan)
    np.testing.assert_allclose(grad, [expected], rtol=1e-15)
    if np.isnan(expected):
        assert np.isnan(rl.get(member).grad(np.array([np.nan]), **params)[0])


# torch's kernels return -0.0 for these where the family returns +0.0 (relu(-0.0) = +0.0 in the family); equal
# as numbers, listed in docs/nn.md. Every other member has the family's sign.
NEGATIVE_ZERO_KEPT = {"relu", "relu6"}


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_negative_zero_is_zero_with_the_documented_sign(case):
    case_id, member, params = case
    y, _ = run(module(member, params), np.array([-0.0]))
    expected = rl.get(member)(np.array([-0.0]), **params)
    assert y[0] == expected[0]
    if case_id in NEGATIVE_ZERO_KEPT:  # (relu with max_value or threshold has the family's +0.0)
        assert np.signbit(y[0]) and not np.signbit(expected[0])
    else:
        assert np.signbit(y[0]) == np.signbit(expected[0])


# -- kinks: at_zero --------------------------------------------------------------------------------------------------
SUBDIFFERENTIAL_AT_ZERO = {  # the interval of valid derivatives at 0, at default parameters
    "relu": (0.0, 1.0), "leaky_relu": (0.01, 1.0), "elu": (1.0, 1.0), "selu": (rl.SELU_SCALE * rl.SELU_ALPHA,
    rl.SELU_SCALE), "relu6": (0.0, 1.0), "rrelu": (1 / 3, 1.0),
}


@pytest.mark.parametrize("lean", [False, True], ids=["default", "lean"])
@pytest.mark.parametrize("member", [m for m in KINK_AT_ZERO if m != "prelu"])
def test_at_zero_gives_the_family_subgradient(member, lean):
    params = {"alpha": 0.5} if member == "elu" else {}
    low, high = (0.5, 1.0) if member == "elu" else SUBDIFFERENTIAL_AT_ZERO[member]
    x = np.array([-2.0, -0.0, 0.0, 1e-300, 2.5, 6.0, 7.0])
    for at_zero in (low, 0.25 * low + 0.75 * high, high):
        y, grad = run(module(member, params, at_zero=at_zero, lean=lean), x)
        f = rl.get(member)
        family_params = dict(params, training=True, seed=0) if member == "rrelu" else params
        expected = f.grad(x, at_zero=at_zero, **family_params)
        if member == "rrelu":  # the module is in eval mode: the mean slope away from 0
            expected = np.where(x < 0, 11 / 48, expected)
        np.testing.assert_array_equal(grad[1:3], [at_zero, at_zero])
        assert_close(grad, expected)
        assert_close(y, f(x, **params))


@pytest.mark.parametrize("member", [m for m in KINK_AT_ZERO if m != "prelu"])
def test_at_zero_outside_the_subdifferential_is_rejected(member):
    with pytest.raises(ValueError, match="at_zero"):
        rnn.make(member, at_zero=5.0)
    with pytest.raises(ValueError, match="at_zero"):
        RF.FUNCTIONS[member](torch.zeros(2), at_zero=-0.5)


def test_at_zero_is_not_offered_where_there_is_no_kink():
    with pytest.raises(TypeError, match="at_zero"):
        rnn.CELU(at_zero=1.0)
    with pytest.raises(TypeError, match="at_zero"):
        RF.gelu(torch.zeros(1), at_zero=0.5)


# -- rrelu in training -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lean", [False, True], ids=["default", "lean"])
def test_rrelu_training_draws_one_slope_per_element(lean):
    torch.manual_seed(0)
    m = rnn.RReLU(0.1, 0.3, lean=lean).double()  # training mode
    x = np.concatenate([np.random.default_rng(4).normal(0.0, 2.0, 20000), [0.0, np.inf, -np.inf]])
    y, grad = run(m, x)
    finite_negative = (x < 0) & np.isfinite(x)
    slopes = y[finite_negative] / x[finite_negative]
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3
    assert abs(slopes.mean() - 0.2) < 0.003  # U(0.1, 0.3): mean 0.2, standard error 0.0004
    # the gradient is the element's slope: the family's leaky_relu derivative with that slope
    for j, i in enumerate(np.flatnonzero(finite_negative)[:50]):
        assert grad[i] == pytest.approx(rl.leaky_relu.grad(x[i], negative_slope=float(slopes[j])), rel=1e-12)
    positive = x > 0
    np.testing.assert_array_equal(y[positive], x[positive])
    np.testing.assert_array_equal(grad[positive], 1.0)
    assert y[-1] == -np.inf and 0.1 <= grad[-1] <= 0.3


def test_rrelu_eval_is_deterministic_mean_slope():
    m = rnn.RReLU().double().eval()
    y, grad = run(m, np.array([-48.0, 1.0]))
    np.testing.assert_array_equal(y, rl.rrelu(np.array([-48.0, 1.0])))
    np.testing.assert_array_equal(grad, [11 / 48, 1.0])


# -- prelu -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lean", [False, True], ids=["default", "lean"])
@pytest.mark.parametrize("channels", [1, 3])
def test_prelu_values_and_gradients_match_the_family(channels, lean):
    rng = np.random.default_rng(5)
    m = rnn.PReLU(channels, lean=lean).double()
    with torch.no_grad():
        m.weight.copy_(torch.tensor(rng.uniform(-0.5, 1.5, channels)))
    x = rng.normal(0.0, 2.0, (5, 3, 4))
    x[0, :, 0] = 0.0
    x[1, :, 1] = [np.inf, -np.inf, -0.0]
    upstream = torch.tensor(rng.uniform(0.5, 2.0, x.shape))
    y, grad = run(m, x, upstream)
    w = m.weight.detach().numpy()
    assert_close(y, rl.prelu(x, w, channel_axis=1))
    assert_close(grad, upstream.numpy() * rl.prelu.grad(x, w, channel_axis=1))
    finite = np.where(np.isfinite(x), x, 0.0)
    grad_w = upstream.numpy() * rl.prelu.grad_weight(finite, w, channel_axis=1)
    expected_w = grad_w.sum(axis=(0, 2)) if channels == 3 else np.array([grad_w.sum()])
    x_finite = torch.tensor(finite, requires_grad=True)
    m.weight.grad = None
    m(x_finite).backward(upstream)
    assert_close(m.weight.grad.numpy(), expected_w)


@pytest.mark.parametrize("lean", [False, True], ids=["default", "lean"])
def test_prelu_at_zero_and_frozen_slopes(lean):
    m = rnn.PReLU(2, init=0.25, at_zero=1.0, lean=lean).double()
    m.weight.requires_grad_(False)  # frozen slopes: the lean path saves bits only
    x = np.array([[-1.0, 0.0], [0.0, 2.0]])
    _, grad = run(m, x)
    np.testing.assert_array_equal(grad, rl.prelu.grad(x, [0.25, 0.25], at_zero=1.0))
    with pytest.raises(ValueError, match="at_zero"):
        rnn.PReLU(at_zero=0.1)


def test_prelu_rejects_a_channel_mismatch_naming_num_parameters():
    m = rnn.PReLU(num_parameters=4)
    with pytest.raises(ValueError, match="num_parameters=4.*3 channels"):
        m(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="num_parameters"):
        rnn.PReLU(num_parameters=0)
    with pytest.raises(TypeError, match="num_parameters"):
        rnn.PReLU(num_parameters=2.0)
    with pytest.raises(ValueError, match="init"):
        rnn.PReLU(init=float("nan"))
    with pytest.raises(ValueError, match="weight"):
        RF.prelu(torch.randn(2, 3), torch.ones(2))
    assert rnn.PReLU(3)(torch.randn(2, 3, 5)).shape == (2, 3, 5)
    assert rnn.PReLU(1)(torch.randn(7)).shape == (7,)


def test_prelu_slopes_are_learnable_parameters_with_torch_init():
    m = rnn.PReLU(5, init=0.1)
    assert [name for name, _ in m.named_parameters()] == ["weight"]
    assert m.weight.requires_grad and torch.equal(m.weight, torch.full((5,), 0.1))
    assert m.params == {"num_parameters": 5, "init": 0.1}


# -- finite differences ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lean", [False, True], ids=["default", "lean"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_gradcheck_away_from_kinks(case, lean):
    _, member, params = case
    x = away_from_kinks(member, params).requires_grad_(True)
    assert torch.autograd.gradcheck(module(member, params, lean=lean), (x,))


@pytest.mark.parametrize("lean", [False, True], ids=["default", "lean"])
def test_gradcheck_prelu_input_and_slopes(lean):
    x = away_from_kinks("prelu", {}, n=24).reshape(4, 3, 2).requires_grad_(True)
    w = torch.tensor([0.25, -0.5, 1.5], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w: RF.prelu(x, w, lean=lean), (x, w))


# -- dtypes and bad input --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_reduced_precision_keeps_its_dtype_and_is_close(case, dtype):
    _, member, params = case
    x = np.linspace(-8.0, 8.0, 161)
    m = rnn.make(member, **params).eval()
    y = m(torch.tensor(x, dtype=dtype))
    assert y.dtype == dtype
    rtol = {torch.float16: 2e-3, torch.bfloat16: 2e-2, torch.float32: 1e-6}[dtype]
    rounded = torch.tensor(x, dtype=dtype).double().numpy()  # the input as the dtype holds it
    np.testing.assert_allclose(y.double().numpy(), rl.get(member)(rounded, **params), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("name", list(rnn.MODULES))
def test_integer_and_non_tensor_input_is_a_type_error_naming_input(name):
    m = rnn.make(name)
    for bad in (torch.arange(3), torch.tensor([True, False]), torch.zeros(2, dtype=torch.complex64)):
        with pytest.raises(TypeError, match=r"input has dtype .*float16, torch.bfloat16, torch.float32"):
            m(bad)
    with pytest.raises(TypeError, match="input must be a torch.Tensor"):
        m([1.0, 2.0])
    with pytest.raises(TypeError, match="input has dtype torch.int64"):
        RF.FUNCTIONS[name](torch.arange(3)) if name != "prelu" else RF.prelu(torch.arange(3), torch.ones(1))


@pytest.mark.parametrize("build, match, error", [
    (lambda: rnn.LeakyReLU(float("nan")), "negative_slope", ValueError),
    (lambda: rnn.ELU(alpha=-1.0), "alpha must be", ValueError),
    (lambda: rnn.CELU(alpha=0.0), "alpha must be", ValueError),
    (lambda: rnn.RReLU(0.5, 0.1), "lower must be <= upper", ValueError),
    (lambda: rnn.RReLU(-0.1, 0.1), "lower must be", ValueError),
    (lambda: rnn.GELU("fast"), "approximate must be one of 'none', 'tanh'", ValueError),
    (lambda: rnn.Softplus(beta=0.0), "beta must be", ValueError),
    (lambda: rnn.LeakyReLU(negative_slope="0.1"), "negative_slope must be a real number", TypeError),
    (lambda: rnn.ReLU(foo=1), "unexpected keyword argument 'foo'", TypeError),
    (lambda: rnn.ReLU(True, True), "too many positional arguments", TypeError),
    (lambda: rnn.ReLU(inplace="yes"), "inplace must be True or False", TypeError),
    (lambda: rnn.SiLU(lean=1), "lean must be True or False", TypeError),
    (lambda: rnn.make("relux"), "unknown activation 'relux'; did you mean 'relu'", rl.UnknownActivationError),
    (lambda: rnn.make("gelu", approximate="exact"), "approximate", ValueError),
    (lambda: RF.elu(torch.zeros(1), alpha=float("inf")), "alpha must be", ValueError),
    (lambda: RF.relu(torch.zeros(1), inplace=1), "inplace must be True or False", TypeError),
])
def test_bad_arguments_are_named(build, match, error):
    with pytest.raises(error, match=match):
        build()


# -- torch.nn conventions --------------------------------------------------------------------------------------------
TORCH_EQUIVALENTS = [
    ("ReLU", (), {}), ("ReLU", (True,), {}), ("LeakyReLU", (0.2, True), {}), ("ELU", (0.5,), {}),
    ("CELU", (2.0, True), {}), ("SELU", (), {"inplace": True}), ("ReLU6", (True,), {}), ("RReLU", (0.1, 0.3), {}),
    ("GELU", ("tanh",), {}), ("Softplus", (2.0, 5.0), {}), ("SiLU", (), {}), ("Mish", (), {}),
    ("Hardswish", (), {}), ("Sigmoid", (), {}), ("Tanh", (), {}), ("PReLU", (3,), {}),
    ("Hardsigmoid", (), {}), ("Hardtanh", (), {}), ("Hardtanh", (-2.0, 0.5, True), {}),
]


@pytest.mark.parametrize("name, args, kwargs", TORCH_EQUIVALENTS)
def test_constructor_and_repr_follow_torch_nn(name, args, kwargs):
    ours, theirs = getattr(rnn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert rnn.activation_name(theirs) == rnn.activation_name(ours) == ours.activation.name
    assert rnn.activation_params(theirs) == rnn.activation_params(ours) == ours.params
    assert type(ours).torch_counterpart is type(theirs)


def test_identity_is_an_activation_only_when_chosen_from_relulab():
    # torch.nn.Identity is a placeholder (timm's drop_path, HF ConvNeXt); relulab.nn.Identity is an explicit choice.
    assert repr(rnn.Identity()) == repr(torch.nn.Identity()) and rnn.Identity.torch_counterpart is torch.nn.Identity
    assert rnn.activation_name(torch.nn.Identity()) is None and rnn.activation_name(rnn.Identity()) == "identity"


def test_repr_shows_relulab_options():
    assert repr(rnn.ReLU(at_zero=1.0, lean=True)) == "ReLU(at_zero=1.0, lean=True)"
    assert repr(rnn.LeakyReLU(0.1, lean=True)) == "LeakyReLU(negative_slope=0.1, lean=True)"


def test_make_resolves_names_and_aliases_like_relulab_get():
    assert type(rnn.make("swish")) is rnn.SiLU
    assert type(rnn.make("Hard-Swish")) is rnn.Hardswish
    assert type(rnn.make(rl.get("relu2"))) is rnn.SquaredReLU
    m = rnn.make("LeakyReLU", negative_slope=0.2, inplace=True, lean=True)
    assert (m.negative_slope, m.inplace, m.lean) == (0.2, True, True)
    assert rnn.activation_name(torch.nn.Linear(1, 1)) is None
    with pytest.raises(ValueError, match="activation module"):
        rnn.activation_params(torch.nn.Linear(1, 1))


@pytest.mark.parametrize("lean", [False, True], ids=["default", "lean"])
@pytest.mark.parametrize("case", [c for c in CASES if "inplace" in inspect.signature(rnn.MODULES[c[1]]).parameters],
                         ids=lambda c: c[0])
def test_inplace_overwrites_the_input_and_keeps_the_numbers(case, lean):
    _, member, params = case
    m = module(member, params, inplace=True, lean=lean)
    x = points(member, params, seed=6)
    tensor = torch.tensor(x, requires_grad=True)
    hidden = tensor * 1.0
    y = m(hidden)
    assert y.data_ptr() == hidden.data_ptr()
    y.backward(torch.ones_like(y))
    f = rl.get(member)
    assert_close(y.detach().numpy(), f(x, **params))
    assert_close(tensor.grad.numpy(), f.grad(x, **params))
    with pytest.raises(RuntimeError, match="leaf Variable"):
        m(torch.zeros(2, dtype=torch.float64, requires_grad=True))


@pytest.mark.parametrize("name", list(rnn.MODULES))
def test_state_dict_and_pickle_round_trip(name):
    m = rnn.make(name, **({"num_parameters": 3} if name == "prelu" else {})).double().eval()
    if name == "prelu":
        with torch.no_grad():
            m.weight.copy_(torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64))
    buffer = io.BytesIO()
    torch.save(m.state_dict(), buffer)
    buffer.seek(0)
    fresh = rnn.make(name, **({"num_parameters": 3, "init": 0.9} if name == "prelu" else {})).double().eval()
    fresh.load_state_dict(torch.load(buffer))
    assert list(m.state_dict()) == (["weight"] if name == "prelu" else [])
    x = torch.linspace(-4, 4, 24, dtype=torch.float64).reshape(2, 3, 4)
    expected = rl.prelu(x.numpy(), [0.1, -0.2, 0.3]) if name == "prelu" else rl.get(name)(x.numpy())
    for copy_ in (fresh, copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert type(copy_) is type(m)
        assert_close(copy_(x).detach().numpy(), expected)


def test_module_attributes_and_signature():
    m = rnn.ELU(0.5)
    assert m.activation is rl.get("elu") and m.params == {"alpha": 0.5}
    assert str(inspect.signature(rnn.LeakyReLU)) == "(negative_slope=0.01, inplace=False, *, at_zero=None, lean=False)"
    assert str(inspect.signature(rnn.GELU)) == "(approximate='none', *, lean=False)"
    assert "f(x) =" in rnn.Mish.__doc__ and "Shape:" in rnn.Mish.__doc__ and ">>> m = rnn.Mish()" in rnn.Mish.__doc__


@pytest.mark.parametrize("module_name", ["relulab.nn", "relulab.nn.modules", "relulab.nn.functional",
                                         "relulab.nn.init", "relulab.nn.swap", "relulab.nn.counterparts",
                                         "relulab.nn.flow"])
def test_docstring_examples_run(module_name):
    __import__(module_name)
    result = doctest.testmod(sys.modules[module_name], optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0



@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("member, params", [("gelu", {}), ("gelu", {"approximate": "tanh"}), ("silu", {}),
                                            ("mish", {}), ("hardswish", {})])
def test_limits_hold_in_every_float_dtype(member, params, dtype):
    # float16/bfloat16 always take the clamped path; float32 takes it when x . x overflows. Beyond the clamp
    # (1e4) the values are x or 0 and the derivatives 1 or 0, exactly, as the family's.
    big = float(torch.finfo(dtype).max)
    x = torch.tensor([-np.inf, -big, -3e4, -1e4, 1e4, 3e4, big, np.inf], dtype=dtype)
    tensor = x.clone().requires_grad_(True)
    y = rnn.make(member, **params)(tensor * 1)
    y.backward(torch.ones_like(y))
    expected = rl.get(member)(x.double().numpy(), **params)
    np.testing.assert_array_equal(y.detach().double().numpy(), expected.astype(np.float32 if dtype == torch.float32
                                                                              else np.float64))
    np.testing.assert_array_equal(tensor.grad.double().numpy(), rl.get(member).grad(x.double().numpy(), **params))
