"""relulab.lab.models and relulab.lab.train: architectures, inits, the deterministic monitored training loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import relulab.nn as rnn  # noqa: E402
from relulab.lab import data as lab_data  # noqa: E402
from relulab.lab.models import build_model, initialise, weight_layers  # noqa: E402
from relulab.lab.train import RunConfig, run  # noqa: E402

SMALL = dict(data="digits", model="mlp", depth=2, width=16, epochs=2, lr=0.05, batch_size=64)


def _activations(model):
    return [m for m in model.modules() if rnn.activation_name(m) is not None]


def test_mlp_has_depth_hidden_layers_each_followed_by_a_relulab_activation():
    torch.manual_seed(0)
    model = build_model("mlp", (1, 8, 8), 10, activation="leaky_relu", depth=4, width=32,
                        params={"negative_slope": 0.2})
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [l.in_features for l in linears] == [64, 32, 32, 32, 32] and linears[-1].out_features == 10
    acts = _activations(model)
    assert len(acts) == 4 and all(isinstance(a, rnn.LeakyReLU) for a in acts)
    assert rnn.activation_params(acts[0])["negative_slope"] == 0.2
    assert model(torch.zeros(3, 1, 8, 8)).shape == (3, 10)


@pytest.mark.parametrize("shape, conv", [((1, 8, 8), nn.Conv2d), ((1, 40), nn.Conv1d)])
def test_cnn_is_2d_for_images_and_1d_for_sequences(shape, conv):
    torch.manual_seed(0)
    model = build_model("cnn", shape, 10, activation="gelu", depth=2, width=24)
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    assert len(convs) == 2 and all(isinstance(c, conv) for c in convs)
    assert len(_activations(model)) == 3  # two conv activations and the hidden dense one
    assert model(torch.zeros(5, *shape)).shape == (5, 10)


@torch.no_grad()
def test_inits():
    torch.manual_seed(0)
    model = build_model("mlp", (400,), 10, activation="relu", depth=2, width=400, init="he")
    first, hidden, head = (layer for _, layer in weight_layers(model))
    # relulab.nn.init_: N(0, gain^2 / fan_in) with the gain of the activation feeding the layer; zero biases.
    assert float(first.weight.std()) == pytest.approx(1 / math.sqrt(400), rel=0.02)
    assert float(hidden.weight.std()) == pytest.approx(math.sqrt(2) / math.sqrt(400), rel=0.02)
    assert all(float(layer.bias.abs().max()) == 0 for layer in (first, hidden, head))
    initialise(model, "xavier")
    bound = math.sqrt(6 / (400 + 400))
    assert float(hidden.weight.abs().max()) <= bound and float(hidden.weight.abs().max()) > 0.95 * bound
    assert float(hidden.bias.abs().max()) == 0
    torch.manual_seed(0)
    default = build_model("mlp", (400,), 10, activation="relu", depth=2, width=400, init="default")
    assert float(default[1].bias.abs().max()) > 0  # PyTorch's default draws biases too
    assert float(default[1].weight.abs().max()) <= 1 / math.sqrt(400)
    with pytest.raises(ValueError, match="init must be one of he, default, xavier"):
        initialise(model, "lecun")


def _without_timing(result):
    return {k: v for k, v in result.items() if k != "seconds"}


def test_a_run_is_deterministic_per_seed():
    first = run(RunConfig(**SMALL, seed=3))
    again = run(RunConfig(**SMALL, seed=3))
    other = run(RunConfig(**SMALL, seed=4))
    assert _without_timing(first) == _without_timing(again)
    assert first["epochs"][-1]["train_loss"] != other["epochs"][-1]["train_loss"]


def test_every_epoch_records_the_monitor_window_and_gradient_norms():
    result = run(RunConfig(**SMALL, activation="relu", seed=0, probe=True))
    assert result["status"] == "ok" and [e["epoch"] for e in result["epochs"]] == [1, 2]
    assert result["activation_layers"] == ["2", "4"]
    for record in result["epochs"]:
        assert 0 <= record["train_error"] <= 1 and 0 <= record["test_accuracy"] <= 1
        assert [l["name"] for l in record["layers"]] == ["2", "4"]
        for layer in record["layers"]:
            assert layer["kind"] == "relu" and layer["units"] == 16
            assert 0 <= layer["dead_fraction"] <= 1 and 0 < layer["sparsity"] < 1 and layer["grad_norm"] > 0
        assert len(record["weight_grad"]) == 3 and all(g > 0 for g in record["weight_grad"])
    # Probe at init: about half the relu outputs are exact zeros (zero biases, symmetric weights).
    assert 0.35 < result["init"]["sparsity"] < 0.65
    assert result["trained"]["train_loss"] < result["init"]["train_loss"]
    final = result["final"]
    assert final["test_accuracy"] == result["epochs"][-1]["test_accuracy"] > 0.5
    assert final["grad_ratio"] == pytest.approx(result["epochs"][-1]["weight_grad"][0]
                                                / result["epochs"][-1]["weight_grad"][-1])


def test_epochs_to_target_can_be_a_fraction_of_an_epoch():
    result = run(RunConfig(**{**SMALL, "epochs": 2}, evals_per_epoch=4, target_error=0.5))
    points = [at for e in result["epochs"] for at, _ in e["curve"]]
    batches = math.ceil(1078 / 64)  # digits' training split in batches of 64: points fall on batch boundaries
    assert np.allclose(points, [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0], atol=0.5 / batches)
    assert points[3] == 1.0 and points[-1] == 2.0
    first_below = next(at for e in result["epochs"] for at, err in e["curve"] if err <= 0.5)
    assert result["final"]["epochs_to_target"] == first_below


def test_divergence_marks_the_run_and_does_not_raise():
    result = run(RunConfig(**{**SMALL, "lr": 1e8}, activation="relu"))
    assert result["status"] == "diverged" and result["diverged_at"] in (1, 2)
    assert result["final"]["test_accuracy"] is None


def test_a_negative_bias_shift_kills_relu_units_and_revive_brings_them_back():
    config = dict(SMALL, epochs=3, depth=3, width=32, lr=0.03, bias_shift=-3.0)
    plain = run(RunConfig(**config))
    assert plain["epochs"][0]["dead_fraction"] > 0.8
    revived = run(RunConfig(**config, revive_after=1))
    assert revived["revived"] > 0
    assert revived["epochs"][0]["dead_fraction"] == plain["epochs"][0]["dead_fraction"]
    assert revived["epochs"][-1]["dead_fraction"] < 0.5 * plain["epochs"][-1]["dead_fraction"]
    # leaky_relu cannot die: its gradient is never zero; the same event is counted as inactive.
    leaky = run(RunConfig(**config, activation="leaky_relu"))
    assert leaky["epochs"][0]["dead_fraction"] == 0 and leaky["epochs"][0]["inactive_fraction"] > 0.8


def test_runs_accept_a_config_dict_and_reject_unknown_fields():
    result = run(RunConfig(**SMALL).to_dict())
    assert result["config"] == RunConfig(**SMALL).to_dict()
    with pytest.raises(ValueError, match="unknown RunConfig fields: colour"):
        RunConfig.from_dict({"colour": "red"})


def test_runs_on_sequences_and_points():
    for config in (dict(data="mnist1d", model="cnn"), dict(data="spiral", model="mlp")):
        result = run(RunConfig(**{**SMALL, **config, "epochs": 1}))
        data = lab_data.load(config["data"])
        assert result["status"] == "ok"
        assert np.isfinite(result["epochs"][0]["train_loss"])
        assert result["epochs"][0]["test_accuracy"] > 1.0 / data.num_classes - 0.1
