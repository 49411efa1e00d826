"""identify / activation_name / activation_params on every class relulab recognises, each mapping checked by its
numbers: the class and the mapped family member evaluated on the same float64 inputs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import relulab as rl
import relulab.nn as rnn

X = np.concatenate([np.linspace(-8.0, 8.0, 321), [-3.0, -1.0, -0.0, 0.0, 1.0, 3.0, 6.0, 19.5, 25.0]])


def member_values(found: rnn.Identification, x: np.ndarray, module: torch.nn.Module) -> np.ndarray:
    """The family member's values at the identified parameters (prelu: the module's own slopes)."""
    activation = rl.get(found.member)
    if found.member == "prelu":
        return activation(x, module.weight.detach().double().numpy())
    family = {k: v for k, v in found.params.items() if k in activation.defaults}
    return activation(x, **family)


def module_values(module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module.double()(torch.tensor(x, dtype=torch.float64)).numpy()


def assert_computes_its_member(module, member, params, how, rtol=1e-12, atol=1e-13):
    found = rnn.identify(module)
    assert found is not None, type(module).__qualname__
    assert (found.member, found.params, found.how) == (member, params, how)
    assert rnn.activation_name(module) == member and rnn.activation_params(module) == params
    # torch's gelu forms cancel for x << 0 (absolute error ~|x| eps): atol covers that, nothing more
    np.testing.assert_allclose(module_values(module, X), member_values(found, X, module), rtol=rtol, atol=atol)


def differs_from_every_member(module: torch.nn.Module) -> float:
    """The smallest max-abs difference between the module and any member with a torch op at its defaults."""
    y = module_values(module, X)
    gaps = []
    for name in rnn.MODULES:
        if name != "prelu":
            gaps.append(np.max(np.abs(y - rl.get(name)(X))))
    gaps.append(np.max(np.abs(y - rl.gelu(X, approximate="tanh"))))
    return min(gaps)


# -- torch.nn ----------------------------------------------------------------------------------------------------
TORCH = [
    (lambda: torch.nn.ReLU(), "relu", {}),
    (lambda: torch.nn.ReLU(inplace=True), "relu", {}),
    (lambda: torch.nn.LeakyReLU(0.2), "leaky_relu", {"negative_slope": 0.2}),
    (lambda: torch.nn.PReLU(1, init=0.3), "prelu", {"num_parameters": 1, "init": 0.3}),
    (lambda: torch.nn.RReLU(0.1, 0.3).eval(), "rrelu", {"lower": 0.1, "upper": 0.3}),
    (lambda: torch.nn.ELU(alpha=0.5), "elu", {"alpha": 0.5}),
    (lambda: torch.nn.SELU(), "selu", {}),
    (lambda: torch.nn.CELU(alpha=2.0), "celu", {"alpha": 2.0}),
    (lambda: torch.nn.ReLU6(), "relu6", {}),  # a Hardtanh subclass: stays relu6
    (lambda: torch.nn.GELU(), "gelu", {"approximate": "none"}),
    (lambda: torch.nn.GELU(approximate="tanh"), "gelu", {"approximate": "tanh"}),
    (lambda: torch.nn.SiLU(), "silu", {}),
    (lambda: torch.nn.Mish(), "mish", {}),
    (lambda: torch.nn.Softplus(beta=2.0, threshold=5.0), "softplus", {"beta": 2.0, "threshold": 5.0}),
    (lambda: torch.nn.Hardswish(), "hardswish", {}),
    (lambda: torch.nn.Hardsigmoid(), "hard_sigmoid", {}),
    (lambda: torch.nn.Hardtanh(), "hard_tanh", {"min_val": -1.0, "max_val": 1.0}),
    (lambda: torch.nn.Hardtanh(-2.5, 0.5), "hard_tanh", {"min_val": -2.5, "max_val": 0.5}),
    (lambda: torch.nn.Sigmoid(), "sigmoid", {}),
    (lambda: torch.nn.Tanh(), "tanh", {}),
]


@pytest.mark.parametrize("build, member, params", TORCH, ids=[f"{m}{p or ''}" for _, m, p in TORCH])
def test_torch_classes_compute_their_member(build, member, params):
    assert_computes_its_member(build(), member, params, "torch")


def test_torch_placeholders_and_non_members_are_not_activations():
    assert rnn.identify(torch.nn.Identity()) is None
    for module in (torch.nn.Dropout(0.1), torch.nn.Softmax(-1), torch.nn.Flatten(), torch.nn.LayerNorm(3, bias=False),
                   torch.nn.Linear(2, 2)):
        assert rnn.identify(module) is None, module
    assert rnn.identify(rnn.Identity()).member == "identity"  # relulab's Identity is a choice, not a placeholder


# -- transformers ----------------------------------------------------------------------------------------------------
# Every key of transformers.activations.ACT2CLS and what it is: (member, params) or None with the reason.
HF_EXPECTED = {
    "gelu": ("gelu", {"approximate": "none"}), "gelu_python": ("gelu", {"approximate": "none"}),
    "gelu_new": ("gelu", {"approximate": "tanh"}), "gelu_fast": ("gelu", {"approximate": "tanh"}),
    "gelu_pytorch_tanh": ("gelu", {"approximate": "tanh"}), "gelu_python_tanh": ("gelu", {"approximate": "tanh"}),
    "gelu_accurate": ("gelu", {"approximate": "tanh"}), "quick_gelu": ("quick_gelu", {}),
    "hardswish": ("hardswish", {}), "leaky_relu": ("leaky_relu", {"negative_slope": 0.01}), "mish": ("mish", {}),
    "relu": ("relu", {}), "relu2": ("squared_relu", {}), "relu6": ("relu6", {}), "sigmoid": ("sigmoid", {}),
    "silu": ("silu", {}), "swish": ("silu", {}), "tanh": ("tanh", {}),
    "prelu": ("prelu", {"num_parameters": 1, "init": 0.25}),
    "gelu_10": None,  # gelu clipped to [-10, 10]
    "laplace": None,  # 0.5 (1 + erf((x - mu) / (sigma sqrt 2))): a shifted normal CDF
    "linear": None,  # returns its input: a placeholder
    "sqrtsoftplus": None,  # sqrt(softplus(x))
    "xielu": None,  # learned parameters
}


@pytest.fixture(scope="module")
def activations():
    return pytest.importorskip("transformers.activations")


def test_every_transformers_activation_is_decided(activations):
    assert set(activations.ACT2CLS) <= set(HF_EXPECTED), set(activations.ACT2CLS) - set(HF_EXPECTED)


@pytest.mark.parametrize("key", sorted(HF_EXPECTED))
def test_transformers_classes_compute_their_member(activations, key):
    if key not in activations.ACT2CLS:
        pytest.skip(f"{key!r} is not in this transformers release")
    module = activations.ACT2FN[key]
    expected = HF_EXPECTED[key]
    if expected is None:
        assert rnn.identify(module) is None
        return
    member, params = expected
    how = "torch" if type(module).__module__.startswith("torch.") else "transformers"
    # FastGELU writes sqrt(2/pi) as 0.7978845608 (4e-12 relative): within the atol below, far from any other member
    assert_computes_its_member(module, member, params, how, rtol=1e-12, atol=1e-11)


def test_transformers_non_members_really_are_not_members(activations):
    clipped = activations.ACT2FN["gelu_10"]
    np.testing.assert_allclose(module_values(clipped, np.array([-0.5, 12.0])), [rl.gelu(-0.5), 10.0], rtol=1e-12)
    for key in ("gelu_10", "laplace", "sqrtsoftplus"):
        assert differs_from_every_member(activations.ACT2FN[key]) > 1e-3, key
    linear = activations.ACT2FN["linear"]
    x = torch.randn(3)
    assert linear(x) is x  # a placeholder, as nn.Identity
    assert any(True for _ in activations.ACT2FN["xielu"].parameters())


def test_bloom_gelu_is_gelu_tanh():
    bloom = pytest.importorskip("transformers.models.bloom.modeling_bloom")
    # sqrt(2/pi) written 0.79788456: 8e-10 relative in the tanh's argument, ~1e-10 absolute in the value
    assert_computes_its_member(bloom.BloomGelu(), "gelu", {"approximate": "tanh"}, "transformers", atol=1e-9)


def test_recognition_imports_neither_transformers_nor_timm():
    code = ("import sys, torch, relulab.nn as rnn\n"
            "m = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.GELU(), torch.nn.Identity())\n"
            "[rnn.identify(x) for x in m.modules()]\n"
            "class Odd(torch.nn.Module):\n    def forward(self, x): return x.relu()\n"
            "assert rnn.identify(Odd()).how == 'probe'\n"
            "assert 'transformers' not in sys.modules and 'timm' not in sys.modules, 'imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- timm: not installable beside the pinned torch. Its classes, written out here from timm/layers/activations.py
# and activations_me.py (same module paths and class names, same formulas), identified by module.qualname. -----
def timm_class(qualname: str, forward, module: str = "timm.layers.activations", base=torch.nn.Module):
    def __init__(self, inplace: bool = False):
        base.__init__(self)
        self.inplace = inplace
    return type(qualname, (base,), {"__module__": module, "__qualname__": qualname, "__init__": __init__,
                                    "forward": lambda self, x: forward(x)})


F = torch.nn.functional
TIMM = [
    ("Swish", lambda x: x.mul(x.sigmoid()), "activations", "silu", {}),
    ("SwishMe", lambda x: x.mul(torch.sigmoid(x)), "activations_me", "silu", {}),
    ("Mish", lambda x: x.mul(F.softplus(x).tanh()), "activations", "mish", {}),
    ("MishMe", lambda x: x.mul(torch.tanh(F.softplus(x))), "activations_me", "mish", {}),
    ("Sigmoid", lambda x: x.sigmoid(), "activations", "sigmoid", {}),
    ("Tanh", lambda x: x.tanh(), "activations", "tanh", {}),
    ("HardSwish", lambda x: x.mul(F.relu6(x + 3.0).div_(6.0)), "activations", "hardswish", {}),
    ("HardSwishMe", lambda x: x * (x + 3).clamp(min=0, max=6).div(6.0), "activations_me", "hardswish", {}),
    ("HardSigmoid", lambda x: F.relu6(x + 3.0) / 6.0, "activations", "hard_sigmoid", {}),
    ("HardSigmoidMe", lambda x: (x + 3).clamp(min=0, max=6).div(6.0), "activations_me", "hard_sigmoid", {}),
    ("GELU", lambda x: F.gelu(x), "activations", "gelu", {"approximate": "none"}),
    ("GELUTanh", lambda x: F.gelu(x, approximate="tanh"), "activations", "gelu", {"approximate": "tanh"}),
    ("QuickGELU", lambda x: x * torch.sigmoid(1.702 * x), "activations", "quick_gelu", {}),
]


@pytest.mark.parametrize("qualname, forward, file, member, params", TIMM, ids=[t[0] for t in TIMM])
@pytest.mark.parametrize("package", ["timm.layers", "timm.models.layers"])
def test_timm_classes_compute_their_member(qualname, forward, file, member, params, package):
    cls = timm_class(qualname, forward, f"{package}.{file}")
    assert_computes_its_member(cls(), member, params, "timm")


def test_timm_prelu_hardmish_and_drop_path():
    class PReLU(torch.nn.PReLU):  # timm's: nn.PReLU with a dummy inplace argument
        __module__ = "timm.layers.activations"
        __qualname__ = "PReLU"

    assert_computes_its_member(PReLU(1, init=0.4), "prelu", {"num_parameters": 1, "init": 0.4}, "timm")
    hard_mish = timm_class("HardMish", lambda x: 0.5 * x * (x + 2).clamp(min=0, max=2))()
    assert rnn.identify(hard_mish) is None and differs_from_every_member(hard_mish) > 0.1
    calls = []
    drop_path = timm_class("DropPath", lambda x: calls.append(1) or x, "timm.layers.drop")()
    assert rnn.identify(drop_path) is None and not calls  # a placeholder in eval: never evaluated


# -- register_counterpart --------------------------------------------------------------------------------------------
class ScaledLeaky(torch.nn.Module):
    def __init__(self, alpha: float = 0.1):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return torch.where(x > 0, x, self.alpha * x)


class TanhGELU(torch.nn.Module):
    def forward(self, x):
        return 0.5 * x * (1.0 + torch.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))


@pytest.fixture
def declared():
    rnn.register_counterpart(ScaledLeaky, "leaky_relu", negative_slope=lambda m: m.alpha)
    rnn.register_counterpart(TanhGELU, "GELU", approximate="tanh")
    yield
    rnn.unregister_counterpart(ScaledLeaky)
    rnn.unregister_counterpart(TanhGELU)


def test_register_counterpart_with_constant_and_attribute_parameters(declared):
    assert_computes_its_member(ScaledLeaky(0.3), "leaky_relu", {"negative_slope": 0.3}, "registered")
    assert_computes_its_member(TanhGELU(), "gelu", {"approximate": "tanh"}, "registered", atol=1e-13)


def test_every_room_sees_a_registered_class(declared):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), ScaledLeaky(0.3), torch.nn.Linear(64, 64), TanhGELU(),
                                torch.nn.Linear(64, 4))
    plan = rnn.init_(model)
    assert plan["2"] == ("leaky_relu", rnn.gain("leaky_relu", negative_slope=0.3))
    assert plan["4"] == ("gelu", rnn.gain("gelu", approximate="tanh"))
    assert plan["2"][1] == pytest.approx((2 / (1 + 0.09)) ** 0.5, rel=1e-15)
    x = torch.randn(5, 64)
    expected = model[4](rnn.GELU("tanh")(model[2](rnn.LeakyReLU(0.3)(model[0](x)))))
    assert rnn.swap(model, "leaky_relu", "relu") == 1 and type(model[1]) is rnn.ReLU
    assert rnn.swap(model, "relu", "leaky_relu", negative_slope=0.3) == 1
    torch.testing.assert_close(model(x), expected)
    from relulab import Monitor
    with Monitor(model) as monitor:
        model(x)
    assert [layer.kind for layer in monitor.report().layers] == ["leaky_relu", "gelu"]


def test_a_declaration_wins_over_the_tables_and_none_means_not_an_activation():
    class NotReallyReLU(torch.nn.ReLU):
        pass

    class PlainReLU(torch.nn.Module):
        def forward(self, x):
            return torch.relu(x)

    assert rnn.identify(NotReallyReLU()).how == "torch" and rnn.identify(PlainReLU()).how == "probe"
    rnn.register_counterpart(NotReallyReLU, "relu6")
    rnn.register_counterpart(PlainReLU, None)
    try:
        assert rnn.identify(NotReallyReLU()) == rnn.Identification("relu6", {}, "registered")
        assert rnn.identify(PlainReLU()) is None
        with pytest.raises(ValueError, match="already declared as 'relu6'; pass replace=True"):
            rnn.register_counterpart(NotReallyReLU, "relu")
        rnn.register_counterpart(NotReallyReLU, "relu", replace=True)
        assert rnn.activation_name(NotReallyReLU()) == "relu"
    finally:
        rnn.unregister_counterpart(NotReallyReLU)
        rnn.unregister_counterpart(PlainReLU)
    assert rnn.identify(NotReallyReLU()).how == "torch" and rnn.identify(PlainReLU()).how == "probe"


def test_register_counterpart_rejects_bad_declarations():
    with pytest.raises(TypeError, match="cls must be a torch.nn.Module subclass"):
        rnn.register_counterpart(len, "relu")
    with pytest.raises(rl.UnknownActivationError, match="did you mean 'gelu'"):
        rnn.register_counterpart(TanhGELU, "gelux")
    with pytest.raises(TypeError, match="gelu takes approximate; got unexpected 'alpha'"):
        rnn.register_counterpart(TanhGELU, "gelu", alpha=1.0)
    with pytest.raises(ValueError, match="negative_slope must be a real number"):
        rnn.register_counterpart(ScaledLeaky, "leaky_relu", negative_slope=float("nan"))
    with pytest.raises(ValueError, match="min_val must be < max_val"):
        rnn.register_counterpart(ScaledLeaky, "hard_tanh", min_val=2.0, max_val=1.0)
    with pytest.raises(TypeError, match="prelu takes init, num_parameters; got unexpected 'weight'"):
        rnn.register_counterpart(ScaledLeaky, "prelu", weight=0.2)
    with pytest.raises(ValueError, match="relulab.nn module already"):
        rnn.register_counterpart(rnn.ReLU, "relu")
    with pytest.raises(ValueError, match="was not registered"):
        rnn.unregister_counterpart(ScaledLeaky)
    assert rnn.identify(ScaledLeaky(0.3)) is None  # nothing was registered by the failures (slope 0.3: no match)


# -- the probe ---------------------------------------------------------------------------------------------------
class Counted(torch.nn.Module):
    calls = 0

    def forward(self, x):
        type(self).calls += 1
        return self.fn(x)


def counted(fn, **attributes):
    cls = type("Probed", (Counted,), {"fn": staticmethod(fn), "calls": 0})
    module = cls()
    for key, value in attributes.items():
        setattr(module, key, value)
    return module


PROBE_MATCHES = [
    (lambda x: torch.clamp(x, min=0.0), "relu", {}),
    (lambda x: x * torch.sigmoid(1.702 * x), "quick_gelu", {}),
    (lambda x: torch.clamp(x + 3.0, 0.0, 6.0) / 6.0, "hard_sigmoid", {}),
    (lambda x: 0.5 * x * (1.0 + torch.tanh((2 / np.pi) ** 0.5 * (x + 0.044715 * x**3))), "gelu",
     {"approximate": "tanh"}),
    (lambda x: 0.5 * x * (1.0 + torch.erf(x / 2**0.5)), "gelu", {"approximate": "none"}),
    (lambda x: x / (1.0 + torch.exp(-x)), "silu", {}),
    (lambda x: torch.where(x > 0, x, 0.01 * x), "leaky_relu", {"negative_slope": 0.01}),
    (lambda x: torch.log1p(torch.exp(x)), "softplus", {"beta": 1.0, "threshold": 20.0}),
]


@pytest.mark.parametrize("fn, member, params", PROBE_MATCHES, ids=[f"{m}{p or ''}" for _, m, p in PROBE_MATCHES])
def test_probe_identifies_elementwise_parameter_free_modules(fn, member, params):
    module = counted(fn)
    assert_computes_its_member(module, member, params, "probe", atol=1e-12)


PROBE_REFUSALS = [
    ("times two", lambda x: x * 2),
    ("softmax (not elementwise)", lambda x: torch.softmax(x, -1)),
    ("relu minus the row mean", lambda x: torch.relu(x) - torch.relu(x).mean(-1, keepdim=True) + torch.relu(x).mean()),
    ("relu of the transpose", lambda x: torch.relu(x.transpose(0, 1)).reshape(x.shape)),
    ("relu, flattened", lambda x: torch.relu(x).flatten()),
    ("raises", lambda x: x.view(3, -1, 7)),
    ("returns its input", lambda x: x),
    ("leaky 0.2 (not at default parameters)", lambda x: torch.where(x > 0, x, 0.2 * x)),
    ("relu shifted by 1e-6", lambda x: torch.relu(x) + 1e-6),
]


@pytest.mark.parametrize("what, fn", PROBE_REFUSALS, ids=[r[0] for r in PROBE_REFUSALS])
def test_probe_refuses_what_is_not_a_member(what, fn):
    assert rnn.identify(counted(fn)) is None


def test_probe_is_cached_per_class_and_attributes_and_bypasses_hooks():
    module = counted(torch.relu, scale=1.0)
    seen = []
    module.register_forward_hook(lambda *args: seen.append(1))
    assert rnn.identify(module).member == "relu"
    calls = type(module).calls
    assert calls == 2 and not seen  # two shapes; forward hooks (a monitor's) never see the probe
    assert rnn.identify(module).member == "relu" and type(module).calls == calls
    twin = type(module)()
    twin.scale = 1.0
    assert rnn.identify(twin).member == "relu" and type(module).calls == calls  # same class and attributes
    twin.scale = 2.0
    rnn.identify(twin)
    assert type(module).calls == calls + 2  # another attribute value: probed again


def test_never_probed_modules():
    class MyDropout(torch.nn.Dropout):
        def forward(self, x):
            raise AssertionError("probed")

    class WithBuffer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("scale", torch.ones(1))

        def forward(self, x):
            return torch.relu(x)

    class Container(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = torch.nn.ReLU()

        def forward(self, x):
            return self.inner(x)

    assert rnn.identify(MyDropout()) is None
    assert rnn.identify(WithBuffer()) is None and rnn.identify(Container()) is None
    assert rnn.identify(counted(torch.relu), probe=False) is None
