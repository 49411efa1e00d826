"""Every relulab.nn module, default and lean, under torch.compile(fullgraph=True) on the CPU (inductor) backend.

Compiling is slow (seconds per graph), so all modules go into one model compiled once per test session: each
module gets its own input, and each parametrized test checks one module's compiled values and gradients against
eager mode (whose agreement with the NumPy members tests/nn/test_nn_modules.py proves). fullgraph=True makes any
graph break an error, so a module that did not trace fails the fixture.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import relulab.nn as rnn
import relulab.nn.functional as RF
from nn_cases import CASES, points

# pyproject turns warnings into errors. Two DeprecationWarnings come from torch 2.13 itself, for any model, and are
# ignored here: dynamo instantiates torch.autograd.Function while tracing any custom autograd.Function (even a
# minimal one), and inductor imports torch.utils.mkldnn, whose class body uses the deprecated
# torch.jit.script_method.
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:<class 'torch.autograd.function.Function'> should not be instantiated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"),
]


class Functional(torch.nn.Module):
    """A functional call as a module, so it can sit in the compiled model."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def frozen_prelu(**options):
    m = rnn.PReLU(3, **options)
    m.weight.requires_grad_(False)
    return m


ENTRIES = {f"{case_id}-{mode}": (lambda member=member, params=params, lean=(mode == "lean"):
                                  rnn.make(member, lean=lean, **params))
           for case_id, member, params in CASES for mode in ("default", "lean")}
ENTRIES.update({
    "prelu-default": lambda: rnn.PReLU(3),
    "prelu-lean": lambda: rnn.PReLU(3, lean=True),
    "prelu-frozen-lean": lambda: frozen_prelu(lean=True),
    "relu-at_zero-1-default": lambda: rnn.ReLU(at_zero=1.0),
    "relu-at_zero-0.5-lean": lambda: rnn.ReLU(at_zero=0.5, lean=True),
    "leaky_relu-at_zero-0.3-lean": lambda: rnn.LeakyReLU(at_zero=0.3, lean=True),
    "selu-at_zero-1.5-default": lambda: rnn.SELU(at_zero=1.5),
    "functional-relu-at_zero": lambda: Functional(lambda x: RF.relu(x, at_zero=1.0)),
    "functional-silu": lambda: Functional(RF.silu),
    "functional-leaky_relu-lean": lambda: Functional(lambda x: RF.leaky_relu(x, 0.2, lean=True)),
    "functional-gelu-tanh": lambda: Functional(lambda x: RF.gelu(x, "tanh")),
})
RRELU_TRAINING = ("rrelu-training-default", "rrelu-training-lean")


class Zoo(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.members = torch.nn.ModuleList(build() for build in ENTRIES.values())
        self.training_rrelu = torch.nn.ModuleList([rnn.RReLU(), rnn.RReLU(lean=True)])

    def forward(self, inputs):
        outputs = [m(x) for m, x in zip(self.members, inputs)]
        return outputs + [m(x) for m, x in zip(self.training_rrelu, inputs[len(self.members):])]


def inputs_for(name: str) -> torch.Tensor:
    member = name.split("-")[0].replace("functional", "relu")
    member = {"leaky_relu": "leaky_relu", "squared_relu": "squared_relu"}.get(member, member)
    x = points(member if member in rnn.MODULES else "relu", {}, seed=11)
    x = np.concatenate([x[:60], x[250:], [np.nan]])  # random points, the kinks and the edges
    x = x[: (len(x) // 3) * 3].reshape(-1, 3)  # 3 channels on dim 1 for PReLU(3)
    return torch.tensor(x, dtype=torch.float64)


@pytest.fixture(scope="module")
def compiled_and_eager():
    torch.manual_seed(0)
    zoo = Zoo().double()
    zoo.eval()
    zoo.training_rrelu.train()
    names = list(ENTRIES) + list(RRELU_TRAINING)
    base = [inputs_for(name) for name in names]

    def run(model):
        xs = [x.clone().requires_grad_(True) for x in base]
        outputs = model(xs)
        upstream = [torch.linspace(0.5, 1.5, y.numel(), dtype=y.dtype).reshape(y.shape) for y in outputs]
        grads = torch.autograd.grad(outputs, xs, upstream)
        return {name: (x.detach(), y.detach(), g) for name, x, y, g in zip(names, xs, outputs, grads)}

    eager = run(zoo)
    compiled = run(torch.compile(zoo, fullgraph=True, backend="inductor"))
    return compiled, eager


@pytest.mark.parametrize("name", list(ENTRIES))
def test_compiled_module_matches_eager(compiled_and_eager, name):
    compiled, eager = compiled_and_eager
    _, y_compiled, g_compiled = compiled[name]
    _, y_eager, g_eager = eager[name]
    # inductor generates its own vectorised exp/erf/tanh: agreement to ~1e-15 relative, exact at the limits.
    np.testing.assert_allclose(y_compiled.numpy(), y_eager.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g_compiled.numpy(), g_eager.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", RRELU_TRAINING)
def test_compiled_rrelu_training_draws_slopes_in_range(compiled_and_eager, name):
    compiled, _ = compiled_and_eager
    x, y, g = compiled[name]
    negative = (x < -1e-300) & torch.isfinite(x)  # (slope * subnormal x underflows to 0)
    slopes = y[negative] / x[negative]
    assert slopes.min() >= 1 / 8 and slopes.max() <= 1 / 3
    upstream = torch.linspace(0.5, 1.5, y.numel(), dtype=y.dtype).reshape(y.shape)
    torch.testing.assert_close(g[negative], upstream[negative] * slopes, rtol=1e-12, atol=0)
    positive = x > 0
    assert torch.equal(y[positive], x[positive])
