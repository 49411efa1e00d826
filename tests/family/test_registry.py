"""The registry (get, names, register, unregister), pickling, and the docs: formulas and runnable examples."""

from __future__ import annotations

import doctest
import pickle
import subprocess
import sys

import numpy as np
import pytest

import relulab
import relulab as rl
from relulab.family import Activation, Properties, UnknownActivationError

MEMBERS = ["relu", "leaky_relu", "prelu", "rrelu", "elu", "selu", "celu", "relu6", "hardswish", "hard_sigmoid",
           "hard_tanh", "squared_relu", "gelu", "silu", "quick_gelu", "mish", "softplus", "sigmoid", "tanh", "identity",
           "squareplus", "sparse_plus"]


def test_names_are_exactly_the_22_members():
    assert len(rl.names()) == 22
    assert sorted(rl.names()) == sorted(MEMBERS)


@pytest.mark.parametrize("name", MEMBERS)
def test_each_member_is_exported_under_its_name(name):
    assert getattr(rl, name) is rl.get(name)
    assert rl.get(name).name == name and isinstance(rl.get(name), Activation)


@pytest.mark.parametrize(("query", "name"), [
    ("RELU", "relu"), ("ReLU", "relu"), ("Gelu", "gelu"), ("SiLU", "silu"),
    ("swish", "silu"), ("Swish", "silu"), ("hard_swish", "hardswish"), ("Hard-Swish", "hardswish"),
    ("LeakyReLU", "leaky_relu"), ("leaky relu", "leaky_relu"), ("leaky-relu", "leaky_relu"), ("PReLU", "prelu"),
    ("ReLU6", "relu6"), ("SELU", "selu"), ("logistic", "sigmoid"), ("linear", "identity"),
    ("Hardsigmoid", "hard_sigmoid"), ("Hardtanh", "hard_tanh"), ("QuickGELU", "quick_gelu"),
    ("Squareplus", "squareplus"), ("SparsePlus", "sparse_plus"), ("sparseplus", "sparse_plus"),
])
def test_get_is_case_insensitive_and_resolves_aliases(query, name):
    assert rl.get(query) is getattr(rl, name)


def test_swish_is_silu():
    assert rl.swish is rl.silu and rl.get("swish") is rl.silu


def test_get_passes_an_activation_through():
    assert rl.get(rl.mish) is rl.mish


def test_get_of_a_non_string_raises_type_error():
    with pytest.raises(TypeError, match=r"^name must be a str naming an activation; got 3 \(type int\)$"):
        rl.get(3)


def test_unknown_name_lists_close_matches():
    with pytest.raises(UnknownActivationError, match=r"^unknown activation 'rleu'; did you mean 'relu'.*Known: relu,"):
        rl.get("rleu")
    with pytest.raises(UnknownActivationError, match=r"did you mean 'gelu'"):
        rl.get("gleu")
    with pytest.raises(UnknownActivationError, match=r"^unknown activation 'zzzz' Known: relu, leaky_relu"):
        rl.get("zzzz")


def test_unknown_name_error_is_both_key_and_value_error():
    with pytest.raises(KeyError):
        rl.get("nope")
    with pytest.raises(ValueError):
        rl.get("nope")


def _shifted_relu(name="shifted_relu_test", aliases=("shifted_test",)):
    return Activation(
        name,
        aliases=aliases,
        forward=lambda x, out: np.maximum(x - 1.0, 0.0, out=out),
        derivative=lambda x, out: np.heaviside(x - 1.0, 0.0, out=out),
        formula=r"\max(0, x - 1)",
        derivative_formula=r"[x > 1]",
        summary="ReLU shifted right by one.",
        properties=Properties(monotonic=True, lower_bound=0.0, upper_bound=None, smooth=False, kinks=(1.0,),
                              zero_for_negative=True, piecewise_linear=True),
    )


@pytest.fixture
def shifted():
    member = rl.register(_shifted_relu())
    yield member
    if "shifted_relu_test" in rl.names():
        rl.unregister("shifted_relu_test")


def test_register_and_unregister_a_user_member(shifted):
    assert rl.get("Shifted-ReLU-Test") is shifted and rl.get("shifted_test") is shifted
    assert "shifted_relu_test" in rl.names()
    np.testing.assert_array_equal(shifted([0.0, 1.0, 3.5]), [0.0, 0.0, 2.5])
    np.testing.assert_array_equal(shifted.grad([0.0, 3.5]), [0.0, 1.0])
    rl.unregister("shifted_test")  # by alias
    assert "shifted_relu_test" not in rl.names()
    for key in ("shifted_relu_test", "shifted_test"):
        with pytest.raises(UnknownActivationError):
            rl.get(key)
    assert len(rl.names()) == 22


def test_register_refuses_a_taken_name_unless_replace(shifted):
    with pytest.raises(ValueError, match=r"name 'shiftedrelutest' of 'shifted_relu_test' is already registered"):
        rl.register(_shifted_relu())
    with pytest.raises(ValueError, match=r"already registered to 'relu'; pass replace=True"):
        rl.register(_shifted_relu(name="relu_clash", aliases=("ReLU",)))
    replacement = _shifted_relu()
    assert rl.register(replacement, replace=True) is replacement and rl.get("shifted_relu_test") is replacement


def test_register_refuses_a_non_activation():
    with pytest.raises(TypeError, match=r"^activation must be an Activation; got 'relu' \(type str\)$"):
        rl.register("relu")


@pytest.mark.parametrize("name", MEMBERS)
def test_pickling_a_member_round_trips_to_the_same_object(name):
    member = rl.get(name)
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(member, protocol=protocol)) is member


def test_pickling_a_registered_user_member(shifted):
    assert pickle.loads(pickle.dumps(shifted)) is shifted


def test_repr_shows_the_parameters_and_defaults():
    assert repr(rl.silu) == "<Activation silu()>"
    assert repr(rl.relu) == "<Activation relu(max_value=None, threshold=0.0)>"
    assert repr(rl.leaky_relu) == "<Activation leaky_relu(negative_slope=0.01)>"
    assert repr(rl.softplus) == "<Activation softplus(beta=1.0, threshold=20.0)>"


# -- docs ----------------------------------------------------------------------------------------------------------
# A fragment of each formula, written independently: the docstring must show the member's actual mathematics.
FORMULA_FRAGMENTS = {
    "relu": [r"\max(0, x)"], "leaky_relu": [r"s\,x"], "prelu": [r"w_c\,x"], "rrelu": [r"U(l, u)", r"\tfrac{l + u}{2}"],
    "elu": [r"\alpha\,(e^{x} - 1)"], "selu": [r"\lambda", r"\alpha\,(e^{x} - 1)"], "celu": [r"e^{x/\alpha} - 1"],
    "relu6": [r"\min(\max(0, x), 6)"], "hardswish": [r"x\,(x + 3)/6"], "squared_relu": [r"\max(0, x)^2"],
    "gelu": [r"x\,\Phi(x)", r"\operatorname{erf}", r"0.044715 x^3"], "silu": [r"x\,\sigma(x)"],
    "mish": [r"x \tanh", r"\ln(1 + e^{x})"], "softplus": [r"\ln(1 + e^{\beta x})"],
    "sigmoid": [r"\frac{1}{1 + e^{-x}}"], "tanh": [r"\tanh(x)"], "identity": [r"f(x) = x"],
    "hard_sigmoid": [r"x/6 + 1/2"], "hard_tanh": [r"a < x < b", r"\text{min\_val}"],
    "quick_gelu": [r"x\,\sigma(1.702\,x)"],
    "squareplus": [r"\sqrt{x^2 + b}"], "sparse_plus": [r"\tfrac{1}{4}(x + 1)^2", r"x \ge 1"],
}


@pytest.mark.parametrize("name", MEMBERS)
def test_docstring_contains_the_formula(name):
    member = rl.get(name)
    doc = member.__doc__
    assert ".. math::" in doc
    assert member.formula in doc and member.derivative_formula in doc
    for fragment in FORMULA_FRAGMENTS[name]:
        assert fragment in doc, (name, fragment)
    for param in member.params:
        assert f"    {param.name}: " in doc, (name, param.name)  # every parameter documented with its range
        assert param.allowed in doc


def _run_doctests(text: str, name: str) -> doctest.TestResults:
    parser = doctest.DocTestParser()
    test = parser.get_doctest(text, {"rl": relulab, "np": np}, name, None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test, out=lambda message: None)
    return runner.summarize(verbose=False)


@pytest.mark.parametrize("name", MEMBERS)
def test_docstring_example_runs(name):
    result = _run_doctests(rl.get(name).__doc__, name)
    assert result.attempted >= 1, f"{name} has no example"
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"


@pytest.mark.parametrize("obj", [rl.prelu.grad_weight, rl.get], ids=["prelu.grad_weight", "get"])
def test_function_docstring_examples_run(obj):
    result = _run_doctests(obj.__doc__, obj.__name__)
    assert result.attempted >= 1 and result.failed == 0


@pytest.mark.parametrize("module", ["relulab", "relulab.family._core"])
def test_module_docstring_examples_run(module):
    imported = __import__(module, fromlist=["_"])
    before = set(rl.names())
    result = _run_doctests(imported.__doc__, module)
    assert result.attempted >= 2 and result.failed == 0
    assert set(rl.names()) == before  # the registration example cleans up after itself


def test_a_failing_example_is_detected():
    # The doctest harness itself can fail: a wrong expected output is reported as a failure.
    assert _run_doctests(">>> rl.relu([-1, 2])\narray([0, 3])\n", "broken").failed == 1


# -- import hygiene ---------------------------------------------------------------------------------------------------
def test_importing_relulab_loads_neither_torch_nor_matplotlib():
    code = ("import sys, relulab; relulab.relu([1.0]); relulab.get('gelu').grad(0.5); "
            "print(sorted(m for m in ('torch', 'matplotlib', 'sklearn', 'relulab.nn') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
