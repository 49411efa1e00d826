"""init_ follows the data flow: each layer gets the gain of the activation whose output it really consumes."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import relulab.nn as rnn  # noqa: E402


def _gain_by_quadrature(f) -> float:
    """1 / sqrt(E[f(z)^2]), z ~ N(0, 1), by the trapezoid rule on a fine grid (independent of relulab)."""
    z = np.linspace(-12, 12, 480001)
    values = f(torch.from_numpy(z)).numpy()
    density = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return 1.0 / math.sqrt(np.trapezoid(values * values * density, z))


class Registered(nn.Module):
    """Modules registered out of call order (as OPT registers activation_fn before fc1 and fc2)."""

    def __init__(self):
        super().__init__()
        self.act = nn.ReLU()
        self.norm = nn.LayerNorm(8)
        self.fc1 = nn.Linear(8, 32)
        self.fc2 = nn.Linear(32, 8)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(self.norm(x))))


def test_data_flow_beats_registration_order():
    model = Registered()
    by_order = rnn.init_(model)
    assert by_order.method == "registration order" and by_order["fc1"][0] == "relu"  # the old, wrong guess
    plan = rnn.init_(model, torch.randn(4, 8), generator=torch.Generator().manual_seed(0))
    assert plan.method == "data flow"
    assert plan["fc1"] == ("identity", 1.0)
    assert plan["fc2"][0] == "relu" and plan["fc2"][1] == pytest.approx(_gain_by_quadrature(torch.relu), rel=1e-6)
    std = float(model.fc2.weight.detach().std())
    assert std == pytest.approx(math.sqrt(2) / math.sqrt(32), rel=0.1)  # 256 draws: ~4.4 % standard error
    assert torch.all(model.fc2.bias == 0)


def test_functional_activations_and_pooling_are_followed():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)
            self.fc = nn.Linear(8, 4)
            self.out = nn.Linear(4, 2)

        def forward(self, x):
            h = F.adaptive_avg_pool2d(F.leaky_relu(self.conv(x), 0.2), 1).flatten(1)
            return self.out(torch.tanh(self.fc(h)))

    model = Net()
    plan = rnn.init_(model, torch.randn(2, 3, 6, 6))
    leaky = _gain_by_quadrature(lambda z: F.leaky_relu(z, 0.2))
    assert plan["conv"] == ("identity", 1.0)
    assert plan["fc"][0] == "leaky_relu" and plan["fc"][1] == pytest.approx(leaky, rel=1e-6)
    assert plan["out"][0] == "tanh" and plan["out"][1] == pytest.approx(_gain_by_quadrature(torch.tanh), rel=1e-6)


def test_unreached_layers_are_left_and_named():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = nn.Linear(3, 3), nn.Linear(3, 3)

        def forward(self, x):
            return self.used(x)

    model = Branchy()
    before = model.unused.weight.detach().clone()
    plan = rnn.init_(model, torch.randn(2, 3))
    assert "unused" not in plan and "not called" in plan.skipped["unused"]
    assert torch.equal(model.unused.weight, before)


def test_resnet_layers_get_the_relu_gain_through_pooling_and_placeholders():
    from tests.monitor.test_real_models import TinyResNet

    model = TinyResNet()
    plan = rnn.init_(model, torch.randn(2, 3, 8, 8))
    assert plan["conv1"] == ("identity", 1.0)
    for name in ("layer1.0.conv1", "layer1.0.conv2", "layer1.1.conv1", "layer1.1.conv2", "fc"):
        assert plan[name][0] == "relu", name
    assert model.training  # the tracing pass ran in eval mode and the mode was restored


def test_gpt2_conv1d_layers_are_initialised_with_their_fan_in():
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(vocab_size=40, n_embd=32, n_layer=1, n_head=2, n_positions=16, n_inner=128,
                                     bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2Model(config)
    plan = rnn.init_(model, {"input_ids": torch.randint(0, 40, (2, 6))}, generator=torch.Generator().manual_seed(0))
    mlp = model.h[0].mlp
    assert plan["h.0.mlp.c_fc"] == ("identity", 1.0)  # fed by ln_2
    gelu_tanh = _gain_by_quadrature(lambda z: F.gelu(z, approximate="tanh"))
    assert plan["h.0.mlp.c_proj"][0] == "gelu" and plan["h.0.mlp.c_proj"][1] == pytest.approx(gelu_tanh, rel=1e-6)
    # Conv1D stores (in, out): fan-in is the first dim
    assert float(mlp.c_fc.weight.detach().std()) == pytest.approx(1 / math.sqrt(32), rel=0.05)
    assert float(mlp.c_proj.weight.detach().std()) == pytest.approx(gelu_tanh / math.sqrt(128), rel=0.05)


def test_opt_fc1_and_fc2_get_their_own_feeders():
    transformers = pytest.importorskip("transformers")
    config = transformers.OPTConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, ffn_dim=32,
                                    num_attention_heads=2, max_position_embeddings=16, word_embed_proj_dim=16,
                                    activation_function="relu")
    model = transformers.OPTModel(config)
    plan = rnn.init_(model, {"input_ids": torch.randint(0, 40, (2, 5))})
    layer = "decoder.layers.0"
    assert plan[f"{layer}.fc1"] == ("identity", 1.0)
    assert plan[f"{layer}.fc2"] == ("relu", pytest.approx(math.sqrt(2)))
