"""revive re-initialises exactly the dead units; born_dead detects a constant network."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import relulab  # noqa: E402
from relulab import Monitor, born_dead, revive  # noqa: E402

from .test_monitor import DEAD_1, DEAD_2, PlantedCNN, batches, planted_mlp  # noqa: E402


def monitored_report(model, xs):
    with Monitor(model) as mon:
        for x in xs:
            model(x)
    return mon.report()


def test_revive_brings_planted_units_back_and_leaves_live_units_alone():
    model = planted_mlp()
    xs = batches()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = monitored_report(model, xs)
    assert revive(model, report, generator=torch.Generator().manual_seed(0)) == len(DEAD_1) + len(DEAD_2)
    after = model.state_dict()
    live_1 = [u for u in range(16) if u not in DEAD_1]
    live_2 = [u for u in range(12) if u not in DEAD_2]
    assert torch.equal(after["0.weight"][live_1], before["0.weight"][live_1])
    assert torch.equal(after["0.bias"][live_1], before["0.bias"][live_1])
    assert torch.equal(after["2.weight"][live_2], before["2.weight"][live_2])
    assert torch.equal(after["4.weight"], before["4.weight"])  # the output layer is not touched
    assert torch.all(after["0.bias"][DEAD_1] == 0.01)
    # He-style rows: std sqrt(2 / fan_in) for relu (a loose band: 3 rows x 8 weights).
    assert 0.2 < float(after["0.weight"][DEAD_1].std()) < 1.0
    again = monitored_report(model, xs).to_dict()
    assert [layer["dead"] for layer in again["layers"]] == [0, 0]


def test_revive_through_batchnorm_in_a_cnn():
    model = PlantedCNN().eval()
    xs = [torch.randn(16, 1, 8, 8)]
    report = monitored_report(model, xs)
    assert revive(model, report) == 3
    assert torch.all(model.bn.bias[[0, 4]] == 0) and torch.all(model.bn.weight[[0, 4]] == 1)
    assert [layer["dead"] for layer in monitored_report(model, xs).to_dict()["layers"]] == [0, 0]


def test_revive_clears_optimizer_state_of_revived_rows():
    model = planted_mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(batches(1)[0]).sum().backward()
    optimizer.step()
    momentum = optimizer.state[model[0].weight]["momentum_buffer"]
    momentum.fill_(1.0)
    revive(model, monitored_report(model, batches(1)), optimizer=optimizer)
    assert torch.all(momentum[DEAD_1] == 0) and torch.all(momentum[[0, 1, 3]] == 1)


def test_revive_warns_about_what_it_cannot_map():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.act = nn.Linear(4, 4), nn.ReLU()
            with torch.no_grad():
                self.fc.bias[1] = -1e3

        def forward(self, x):
            return self.act(self.fc(x) - 1e3 * (torch.arange(4) == 2))  # a functional op feeds the activation

    model = Residual()
    report = monitored_report(model, [torch.randn(16, 4)])
    with pytest.warns(RuntimeWarning, match=r"skipped layer 'act' \(2 dead units\): no Linear/Conv was seen"):
        assert revive(model, report) == 0


def test_born_dead_detects_a_dead_network_and_passes_a_healthy_one():
    torch.manual_seed(0)
    dead = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1))
    with torch.no_grad():
        dead[2].bias.fill_(-1e3)  # the second hidden layer never fires: the output is the constant bias
    x = torch.randn(256, 2)
    result = born_dead(dead, x)
    assert result.born_dead and bool(result)
    assert result.dead_layers == ["3"]
    assert result.output_spread == 0.0
    healthy = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
    relulab.nn.init_(healthy)
    verdict = born_dead(healthy, x)
    assert not verdict.born_dead and verdict.dead_layers == [] and verdict.output_spread > 0.1


def test_born_dead_restores_training_mode():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)).train()
    born_dead(model, torch.randn(8, 2))
    assert model.training
