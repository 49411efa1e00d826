"""relulab.prune: planted dead units are removed, the outputs on the data the report saw stay equal (float64),
the parameters saved match a count made here from the layer shapes, and structures it cannot map are refused."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import relulab as rl
from relulab.monitor import PruneResult


def _report(model: nn.Module, x: torch.Tensor):
    model.eval()
    with rl.Monitor(model) as mon, torch.no_grad():
        model(x)
    return mon.report()


def _kill(layer: nn.Module, units: list[int]) -> None:
    with torch.no_grad():
        layer.bias[units] = -1e3  # far below anything the weights can reach on standard normal inputs


def test_mlp_with_batchnorm_and_dropout_keeps_its_outputs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 8),
                          nn.ReLU(), nn.Linear(8, 3)).double()
    with torch.no_grad():  # running statistics that are not the identity, so the BatchNorm pruning matters
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    _kill(model[0], [0, 3, 7])  # BatchNorm's shift could revive them: make its bias small
    with torch.no_grad():
        model[1].bias.zero_()
    _kill(model[4], [1, 2])
    x = torch.randn(200, 5, dtype=torch.float64)
    report = _report(model, x)
    with torch.no_grad():  # the reference: pre-activations computed here, layer by layer
        first = model[1](model[0](x))
        second = model[4](torch.relu(first))
    dead2 = torch.nonzero(~(first > 0).any(0)).flatten().tolist()
    dead5 = torch.nonzero(~(second > 0).any(0)).flatten().tolist()
    assert report["2"].dead_units == dead2 and report["5"].dead_units == dead5 and {0, 3, 7} <= set(dead2)
    original = copy.deepcopy(model)
    result = rl.prune(model, report, x)
    assert isinstance(result, PruneResult) and not result.refused
    assert result.removed["2"]["producer"] == "0" and result.removed["2"]["norms"] == ["1"]
    assert result.removed["2"]["consumers"] == ["4"] and result.removed["5"]["consumers"] == ["6"]
    # Counted here from the shapes: a unit of layer 2 owns a row of Linear(5) + bias, 2 BatchNorm parameters and a
    # column of Linear(16 -> 8); a unit of layer 5 a row of Linear(16 -> 8) (after the first cut) + bias and a
    # column of the head.
    kept2, kept5 = 16 - len(dead2), 8 - len(dead5)
    assert result.saved == len(dead2) * (5 + 1 + 2 + 8) + len(dead5) * (kept2 + 1 + 3)
    assert result.params_before - sum(p.numel() for p in model.parameters()) == result.saved
    assert model[0].weight.shape == (kept2, 5) and model[1].running_mean.shape == (kept2,)
    assert model[4].weight.shape == (kept5, kept2) and model[6].weight.shape == (3, kept5)
    with torch.no_grad():
        torch.testing.assert_close(model(x), original(x), rtol=0, atol=1e-12)


def test_conv_net_with_pooling_and_flatten_keeps_its_outputs():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 6, 3, padding=1),
                          nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(6 * 2 * 2, 10), nn.ReLU(),
                          nn.Linear(10, 4)).double()
    _kill(model[0], [1, 4])
    _kill(model[3], [0, 5])
    x = torch.randn(32, 2, 8, 8, dtype=torch.float64)
    report = _report(model, x)
    with torch.no_grad():  # the reference: pre-activations computed here
        pre1 = model[0](x)
        pre4 = model[3](model[2](torch.relu(pre1)))
        pre8 = model[7](model[6](model[5](torch.relu(pre4))))
    dead = {name: torch.nonzero(~(pre > 0).transpose(0, 1).reshape(pre.shape[1], -1).any(1)).flatten().tolist()
            for name, pre in (("1", pre1), ("4", pre4), ("8", pre8))}
    assert all(report[name].dead_units == dead[name] for name in dead)
    assert dead["1"] == [1, 4] and dead["4"] == [0, 5]
    original = copy.deepcopy(model)
    result = rl.prune(model, report, x)
    assert not result.refused
    assert result.removed["1"]["consumers"] == ["3"] and result.removed["4"]["consumers"] == ["7"]
    assert result.removed["4"]["columns_per_unit"] == 4  # 2 x 2 spatial positions per channel after pooling
    assert model[7].in_features == 4 * 4 and model[3].weight.shape[:2] == (4, 6)
    assert model[9].in_features == 10 - len(dead["8"])
    d8 = len(dead["8"])
    # conv1 channel: 2*9 weights + bias, and 6*9 weights of conv2; conv2 channel: 6*9 (after conv1's cut) + 1 and
    # 4 columns of the Linear; Linear unit: 16 + 1 and a column of the head.
    expected = 2 * (2 * 9 + 1 + 6 * 9) + 2 * (6 * 9 + 1 + 10 * 4) + d8 * (16 + 1 + 4)
    assert result.saved == expected
    with torch.no_grad():
        torch.testing.assert_close(model(x), original(x), rtol=0, atol=1e-12)


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc, self.act, self.out = nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)

    def forward(self, x):
        return self.out(x + self.act(self.fc(x)))


class ManualHead(nn.Module):
    """A consumer that is not a Linear/Conv module: a matmul in forward."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(2, 8))

    def forward(self, x):
        return x @ self.weight.T


class FlattenInForward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.act, self.head = nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Linear(4 * 16, 2)

    def forward(self, x):
        return self.head(self.act(self.conv(x)).flatten(1))


@pytest.mark.parametrize("build, shape, producer, reason", [
    (Residual, (10, 8), "fc", "not in an nn.Sequential"),
    (lambda: nn.Sequential(nn.Linear(8, 8), nn.ReLU(), ManualHead()), (10, 8), "0", "no Linear/Conv consumes"),
    (lambda: nn.Sequential(nn.Conv2d(4, 8, 3, groups=2), nn.ReLU(), nn.Conv2d(8, 2, 1)), (3, 4, 6, 6), "0",
     "groups=2"),
    (FlattenInForward, (3, 1, 4, 4), "conv", "not in an nn.Sequential"),
    (lambda: nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.BatchNorm1d(8), nn.Linear(8, 2)), (10, 8), "0",
     "BatchNorm"),
])
def test_structures_it_cannot_map_are_refused_with_a_reason(build, shape, producer, reason):
    torch.manual_seed(2)
    model = build()
    _kill(model.get_submodule(producer), [0, 1])
    x = torch.randn(*shape)
    report = _report(model, x)
    before = copy.deepcopy(model.state_dict())
    result = rl.prune(model, report, x)
    assert not result.removed and result.saved == 0
    (name, why), = result.refused.items()
    assert reason in why, why
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # nothing changed


def test_a_layer_entirely_dead_is_refused_and_inputs_are_optional_for_an_mlp():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 2))
    _kill(model[0], [2])
    _kill(model[2], [0, 1, 2, 3, 4, 5])
    x = torch.randn(20, 4)
    report = _report(model, x)
    with torch.no_grad():
        dead1 = torch.nonzero(~(model[0](x) > 0).any(0)).flatten().tolist()
    result = rl.prune(model, report)  # no example batch: zeros of the first Linear's width trace the flow
    assert "every unit is dead" in result.refused["3"]
    assert 2 in dead1 and result.removed["1"]["units"] == dead1 and result.saved == len(dead1) * ((4 + 1) + 6)
