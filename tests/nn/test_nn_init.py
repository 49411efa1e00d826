"""gain, init_ and param_groups."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch

import relulab as rl
import relulab.nn as rnn
from relulab.nn.init import second_moment


# -- gain ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("slope", [0.0, 0.01, 0.2, 1.0])
def test_leaky_gains_are_the_closed_form_and_torch_agrees(slope):
    assert rnn.gain("leaky_relu", negative_slope=slope) == pytest.approx(math.sqrt(2 / (1 + slope**2)), rel=1e-15)
    assert rnn.gain("leaky_relu", negative_slope=slope) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", slope), rel=1e-15)
    assert rnn.gain("prelu", init=slope) == pytest.approx(math.sqrt(2 / (1 + slope**2)), rel=1e-15)


def test_closed_form_gains():
    assert rnn.gain("relu") == math.sqrt(2) == torch.nn.init.calculate_gain("relu")
    assert rnn.gain("identity") == 1.0 == torch.nn.init.calculate_gain("linear")
    assert rnn.gain("squared_relu") == pytest.approx(math.sqrt(2 / 3), rel=1e-15)
    # rrelu trains with a ~ U(l, u): E[f^2] = (1 + E[a^2]) / 2, E[a^2] = (l^2 + l u + u^2) / 3
    assert rnn.gain("rrelu", lower=0.1, upper=0.3) == pytest.approx(math.sqrt(2 / (1 + 0.13 / 3)), rel=1e-15)


@pytest.mark.parametrize("member, params", [("relu", {}), ("leaky_relu", {"negative_slope": 0.2}),
                                            ("squared_relu", {}), ("relu6", {})])
def test_quadrature_reproduces_the_closed_forms(member, params):
    f = rl.get(member)
    exact = {"relu": 0.5, "leaky_relu": (1 + 0.04) / 2, "squared_relu": 1.5}.get(member)
    if member == "relu6":  # E[min(relu(z), 6)^2] = 1/2 - (tail of z^2 beyond 6) + 36 P(z > 6), by mpmath
        phi = lambda z: mpmath.exp(-z * z / 2) / mpmath.sqrt(2 * mpmath.pi)  # noqa: E731
        exact = float(mpmath.quad(lambda z: z * z * phi(z), [0, 6]) + 36 * mpmath.quad(phi, [6, mpmath.inf]))
    assert second_moment(lambda z: f(z, **params), (0.0, 6.0)) == pytest.approx(exact, rel=1e-13)


NUMERICAL = [("elu", {}), ("elu", {"alpha": 0.5}), ("selu", {}), ("celu", {"alpha": 2.0}), ("hardswish", {}),
             ("gelu", {}), ("gelu", {"approximate": "tanh"}), ("silu", {}), ("mish", {}), ("softplus", {}),
             ("softplus", {"beta": 2.0}), ("sigmoid", {}), ("tanh", {}), ("relu6", {}), ("quick_gelu", {}),
             ("hard_sigmoid", {}), ("hard_tanh", {}), ("hard_tanh", {"min_val": -0.5, "max_val": 2.0}),
             ("relu", {"threshold": 1.0}), ("relu", {"max_value": 2.0, "threshold": 0.5})]


@pytest.mark.parametrize("member, params", NUMERICAL, ids=[f"{m}-{p}" for m, p in NUMERICAL])
def test_numerical_gains_agree_with_mpmath(member, params):
    # an independent integrator (mpmath's tanh-sinh, split at the kinks) of the same family member
    f = rl.get(member)
    breaks = sorted({0.0, *f.properties_for(**params).kinks})
    phi = lambda z: mpmath.exp(-z * z / 2) / mpmath.sqrt(2 * mpmath.pi)  # noqa: E731
    integrand = lambda z: mpmath.mpf(float(f(np.array([float(z)]), **params)[0])) ** 2 * phi(z)  # noqa: E731
    moment = mpmath.quad(integrand, [-40, *breaks, 40])
    assert rnn.gain(member, **params) == pytest.approx(1 / math.sqrt(float(moment)), rel=1e-10)


@pytest.mark.parametrize("low, high", [(-1.0, 1.0), (-0.5, 2.0)])
def test_hard_tanh_gain_is_the_closed_form(low, high):
    # E[clip(z, a, b)^2] = E[z^2; a < z < b] + a^2 P(z < a) + b^2 P(z > b), E[z^2; a < z < b] = [Phi - z phi]_a^b
    cdf = lambda z: 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))  # noqa: E731
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    moment = (cdf(high) - high * pdf(high)) - (cdf(low) - low * pdf(low)) + low**2 * cdf(low) + high**2 * (1 - cdf(high))
    assert rnn.gain("hard_tanh", min_val=low, max_val=high) == pytest.approx(1 / math.sqrt(moment), rel=1e-12)


@pytest.mark.parametrize("b", [0.0, 1e-6, 0.5, 4.0, 100.0])
def test_squareplus_gain_is_the_closed_form(b):
    # E[((z + sqrt(z^2 + b)) / 2)^2] by mpmath's quadrature of the written-out integrand (odd part: zero mean)
    with mpmath.workdps(30):
        moment = mpmath.quad(lambda z: ((z + mpmath.sqrt(z * z + b)) / 2) ** 2 * mpmath.npdf(z), [-40, 0, 40])
    assert rnn.gain("squareplus", b=b) == pytest.approx(float(1 / mpmath.sqrt(moment)), rel=1e-13)


def test_sparse_plus_gain_by_its_pieces():
    # E[f(z)^2] = int_{-1}^{1} (z + 1)^4 / 16 phi + int_1^inf z^2 phi, the pieces written out (f'' jumps at +-1)
    with mpmath.workdps(30):
        moment = (mpmath.quad(lambda z: (z + 1) ** 4 / 16 * mpmath.npdf(z), [-1, 0, 1])
                  + mpmath.quad(lambda z: z * z * mpmath.npdf(z), [1, mpmath.inf]))
    assert rnn.gain("sparse_plus") == pytest.approx(float(1 / mpmath.sqrt(moment)), rel=1e-13)


def test_relu_gain_with_max_value_and_threshold():
    assert rnn.gain("relu", max_value=None, threshold=0.0) == math.sqrt(2)  # the defaults: the closed form
    # relu6's gain equals relu with max_value=6
    assert rnn.gain("relu", max_value=6.0) == pytest.approx(rnn.gain("relu6"), rel=1e-15)
    # f = 0 wherever N(0, 1) has mass: no gain
    for params in ({"max_value": 0.0}, {"threshold": 40.0}):
        with pytest.raises(ValueError, match="is 0 on N\\(0, 1\\); no gain can make its output variance 1"):
            rnn.gain("relu", **params)


def test_selu_gain_is_one_and_differs_from_torch_on_purpose():
    # SELU's constants make E[selu(z)^2] = 1 for z ~ N(0, 1); torch returns 3/4, chosen for gradient flow in
    # deep rectangular networks rather than to preserve the forward variance (docs/nn.md).
    assert rnn.gain("selu") == pytest.approx(1.0, abs=1e-9)
    assert torch.nn.init.calculate_gain("selu") == 0.75
    # tanh: 1 / sqrt(E[tanh(z)^2]) = 1.5925...; torch's 5/3 is an empirical choice (docs/nn.md)
    assert rnn.gain("tanh") == pytest.approx(1.5925374197, rel=1e-9)
    assert rnn.gain("sigmoid") == pytest.approx(1.8462285453, rel=1e-9)


def test_gain_rejects_bad_names_and_parameters():
    with pytest.raises(rl.UnknownActivationError, match="did you mean 'gelu'"):
        rnn.gain("gelux")
    with pytest.raises(TypeError, match="negative_slope"):
        rnn.gain("relu", negative_slope=0.1)
    with pytest.raises(ValueError, match="alpha must be"):
        rnn.gain("elu", alpha=-1.0)
    with pytest.raises(ValueError, match="lower must be <= upper"):
        rnn.gain("rrelu", lower=0.5, upper=0.1)
    with pytest.raises(ValueError, match="init"):
        rnn.gain("prelu", init=float("inf"))


# -- init_ -----------------------------------------------------------------------------------------------------------
def mlp(member: str, width: int, depth: int) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    for i in range(depth):
        layers.append(torch.nn.Linear(width, width))
        if i < depth - 1:
            layers.append(torch.nn.Tanh() if member == "tanh" else rnn.make(member))
    return torch.nn.Sequential(*layers)


def output_to_input_moment(member: str, initialise, seeds: int = 8) -> float:
    """Geometric mean over independent initialisations of E[y^2] / E[x^2] for a 30-layer MLP, x ~ N(0, 1)."""
    logs = []
    for seed in range(seeds):
        torch.manual_seed(seed)
        model = mlp(member, width=256, depth=30)
        initialise(model, seed)
        x = torch.randn(128, 256)
        with torch.no_grad():
            logs.append(math.log(model(x).pow(2).mean().item() / x.pow(2).mean().item()))
    return math.exp(sum(logs) / len(logs))


@pytest.mark.parametrize("member", ["relu", "leaky_relu", "elu", "selu", "tanh"])
def test_init_keeps_the_second_moment_through_30_layers(member):
    # Band: within a factor 2 of the input's. At width 256 a single relu network's output moment is itself random
    # (log-standard deviation ~0.75 after 29 layers), so the geometric mean over 8 initialisations is tested.
    ratio = output_to_input_moment(member, lambda model, seed: rnn.init_(
        model, generator=torch.Generator().manual_seed(seed)))
    assert 0.5 <= ratio <= 2.0, ratio
    # torch's default Linear init (variance 1 / (3 fan_in)) loses the signal: the band is a real constraint.
    assert output_to_input_moment(member, lambda model, seed: None, seeds=1) < 0.05


def test_init_pairs_each_layer_with_the_activation_it_consumes():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(inplace=True),
        torch.nn.Conv2d(8, 8, 3), rnn.LeakyReLU(0.2), torch.nn.Dropout(0.1),
        torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 10),
    )
    plan = rnn.init_(model, generator=torch.Generator().manual_seed(0))
    assert plan == {"0": ("identity", 1.0), "3": ("relu", math.sqrt(2)),
                    "7": ("leaky_relu", rnn.gain("leaky_relu", negative_slope=0.2))}
    assert torch.count_nonzero(model[0].bias) == 0
    std = model[7].weight.std().item()
    assert std == pytest.approx(rnn.gain("leaky_relu", negative_slope=0.2) / math.sqrt(128), rel=0.1)


def test_init_uses_the_current_prelu_slopes():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.PReLU(4, init=0.5), torch.nn.Linear(4, 2))
    plan = rnn.init_(model)
    assert plan["2"] == ("prelu", pytest.approx(math.sqrt(2 / 1.25)))


# -- param_groups ----------------------------------------------------------------------------------------------------
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.norm = torch.nn.BatchNorm2d(4)
        self.act = rnn.PReLU(4)
        self.block = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.PReLU(), torch.nn.LayerNorm(4))
        self.head = torch.nn.Linear(4, 2, bias=False)
        self.tied = self.head  # the same parameters reachable twice


def test_param_groups_exempt_prelu_slopes_biases_and_norms():
    net = Net()
    decay, no_decay = rnn.param_groups(net, weight_decay=0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    ids = lambda params: {id(p) for p in params}  # noqa: E731
    assert ids(decay["params"]) == ids([net.conv.weight, net.block[0].weight, net.head.weight])
    assert ids(no_decay["params"]) == ids([net.conv.bias, net.norm.weight, net.norm.bias, net.act.weight,
                                           net.block[0].bias, net.block[1].weight, net.block[2].weight,
                                           net.block[2].bias])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(net.parameters()))


def test_adamw_with_param_groups_leaves_prelu_slopes_undecayed():
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), rnn.PReLU(3))
    optimizer = torch.optim.AdamW(rnn.param_groups(net, weight_decay=0.5), lr=0.1)
    before = net[1].weight.detach().clone(), net[0].weight.detach().clone()
    for p in net.parameters():
        p.grad = torch.zeros_like(p)  # no gradient: only weight decay can move a parameter
    optimizer.step()
    assert torch.equal(net[1].weight, before[0])
    assert torch.allclose(net[0].weight, before[1] * (1 - 0.1 * 0.5))


def test_param_groups_leave_out_empty_groups_and_check_weight_decay():
    assert [len(g["params"]) for g in rnn.param_groups(torch.nn.PReLU(), weight_decay=0.1)] == [1]
    with pytest.raises(ValueError, match="weight_decay"):
        rnn.param_groups(Net(), weight_decay=-1.0)
