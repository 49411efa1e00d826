"""swap: every matching activation module, at any depth, torch.nn or relulab, in place or not."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import relulab as rl
import relulab.nn as rnn


class Block(torch.nn.Module):
    def __init__(self, act: torch.nn.Module):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)
        self.act = act

    def forward(self, x):
        return self.act(self.linear(x))


class Nested(torch.nn.Module):
    def __init__(self):
        super().__init__()
        shared = torch.nn.ReLU()
        self.stem = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(inplace=True))
        self.blocks = torch.nn.ModuleList([Block(rnn.ReLU(lean=True)), Block(torch.nn.LeakyReLU(0.2))])
        self.heads = torch.nn.ModuleDict({"a": torch.nn.Sequential(torch.nn.Linear(4, 4), shared),
                                          "b": torch.nn.Sequential(torch.nn.Linear(4, 4), shared)})
        self.deep = torch.nn.Sequential(torch.nn.Sequential(torch.nn.Sequential(Block(torch.nn.ReLU()))))
        self.other = torch.nn.GELU()

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        x = self.heads["a"](x) + self.heads["b"](x)
        return self.other(self.deep(x))


def test_swap_replaces_every_relu_at_any_depth():
    torch.manual_seed(0)
    model = Nested()
    count = rnn.swap(model, "relu", "leaky_relu", negative_slope=0.1)
    assert count == 5  # stem, blocks[0], heads a and b (one shared module, two places), deep
    swapped = [model.stem[1], model.blocks[0].act, model.heads["a"][1], model.heads["b"][1], model.deep[0][0][0].act]
    assert all(type(m) is rnn.LeakyReLU and m.negative_slope == 0.1 for m in swapped)
    assert model.stem[1].inplace and not model.blocks[0].act.inplace  # inplace carries over
    assert model.heads["a"][1] is model.heads["b"][1]  # sharing is kept
    assert type(model.blocks[1].act) is torch.nn.LeakyReLU and type(model.other) is torch.nn.GELU  # untouched
    assert not any(rnn.activation_name(m) == "relu" for m in model.modules())
    # the model computes with the new activation
    x = torch.randn(3, 4)
    block = model.deep[0][0][0]
    pre = block.linear(torch.randn(2, 4))
    np.testing.assert_allclose(block.act(pre).detach().numpy(),
                               rl.leaky_relu(pre.detach().numpy(), negative_slope=0.1), rtol=1e-6)
    assert model(x).shape == (3, 4)


def test_swap_matches_aliases_and_torch_or_relulab_modules():
    model = torch.nn.Sequential(torch.nn.SiLU(inplace=True), rnn.SiLU(), torch.nn.Identity(), torch.nn.Tanh())
    assert rnn.swap(model, "swish", "gelu", approximate="tanh") == 2
    assert [type(m) for m in model] == [rnn.GELU, rnn.GELU, torch.nn.Identity, torch.nn.Tanh]
    assert model[0].approximate == "tanh"
    assert rnn.swap(model, "tanh", "Tanh") == 1 and type(model[3]) is rnn.Tanh


def test_swap_to_prelu_places_new_slopes_on_the_models_dtype():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4), torch.nn.ReLU())
    model = model.double()
    assert rnn.swap(model, "relu", "prelu", num_parameters=4) == 2
    assert model[1] is not model[3]  # one set of slopes per place
    assert model[1].weight.dtype == torch.float64
    assert model(torch.randn(2, 4, dtype=torch.float64)).dtype == torch.float64


def test_swap_keeps_the_training_mode():
    model = torch.nn.Sequential(torch.nn.ReLU()).eval()
    rnn.swap(model, "relu", "rrelu")
    assert not model[0].training


def test_swap_validates_before_changing_anything():
    model = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.ReLU())
    with pytest.raises(ValueError, match="negative_slope"):
        rnn.swap(model, "relu", "leaky_relu", negative_slope=float("nan"))
    with pytest.raises(rl.UnknownActivationError, match="did you mean 'relu'"):
        rnn.swap(model, "rleu", "gelu")
    with pytest.raises(TypeError, match="alpha"):
        rnn.swap(model, "relu", "gelu", alpha=1.0)
    assert all(type(m) is torch.nn.ReLU for m in model)
    with pytest.raises(ValueError, match="itself"):
        rnn.swap(torch.nn.ReLU(), "relu", "gelu")
    with pytest.raises(TypeError, match="^swap: model must be a torch.nn.Module; got int$"):
        rnn.swap(3, "relu", "gelu")


class Functional(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)

    def forward(self, x):
        return F.relu(self.linear(x))


def test_swap_cannot_see_functional_calls():
    # documented limitation: F.relu inside forward is not a module
    model = Functional()
    assert rnn.swap(model, "relu", "gelu") == 0
    x = torch.randn(5, 4)
    assert torch.equal(model(x), torch.relu(model.linear(x)))
