"""The monitor on real architectures built from their own libraries (random weights, tiny configs, no downloads).

Ground truth never comes from relulab: each activation's input is captured with a plain forward hook on the
layer that produces it (or computed by hand for the residual block), "ever > 0" is counted along the true feature
axis, the output is recomputed with torch's own function, and dL/dx is read with retain_grad.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from relulab import Monitor, born_dead, revive  # noqa: E402
import relulab.nn as rnn  # noqa: E402

PLANTED = [1, 4]  # producer rows that get a -1000 bias: never positive on any input


def _plant(layer: nn.Module) -> None:
    with torch.no_grad():  # the bias is per output unit (GPT-2's Conv1D too, though it stores its weight (in, out))
        if layer.bias is not None:
            layer.bias[PLANTED] = -1e3
        else:  # Llama's projections have no bias: a zero row makes the pre-activation exactly 0, never > 0
            layer.weight[PLANTED] = 0.0


def bert(act):
    config = transformers.BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=24, hidden_act=act, max_position_embeddings=32)
    model = transformers.BertModel(config)
    producers = {f"encoder.layer.{i}.intermediate.intermediate_act_fn": f"encoder.layer.{i}.intermediate.dense"
                 for i in range(2)}
    return model, producers


def gpt2():
    config = transformers.GPT2Config(vocab_size=60, n_embd=16, n_layer=2, n_head=2, n_positions=32, n_inner=24,
                                     bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2Model(config)
    return model, {f"h.{i}.mlp.act": f"h.{i}.mlp.c_fc" for i in range(2)}


def llama():
    config = transformers.LlamaConfig(vocab_size=60, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32)
    model = transformers.LlamaModel(config)
    return model, {f"layers.{i}.mlp.act_fn": f"layers.{i}.mlp.gate_proj" for i in range(2)}


def t5_gated():
    config = transformers.T5Config(vocab_size=60, d_model=16, d_kv=8, d_ff=24, num_layers=2, num_heads=2,
                                   feed_forward_proj="gated-gelu", dropout_rate=0.0)
    model = transformers.T5EncoderModel(config)
    with torch.no_grad():  # T5's feed-forward has no biases: plant dead gate units by their weights instead
        for block in model.encoder.block:
            block.layer[1].DenseReluDense.wi_0.weight[PLANTED] = 0.0
    return model, {f"encoder.block.{i}.layer.1.DenseReluDense.act": f"encoder.block.{i}.layer.1.DenseReluDense.wi_0"
                   for i in range(2)}


def vit():
    config = transformers.ViTConfig(image_size=16, patch_size=4, hidden_size=16, num_hidden_layers=2,
                                    num_attention_heads=2, intermediate_size=24, num_channels=3)
    model = transformers.ViTModel(config, add_pooling_layer=False)
    return model, {f"layers.{i}.mlp.activation_fn": f"layers.{i}.mlp.fc1" for i in range(2)}


def _inputs(kind: str, seed: int, tokens: int):
    g = torch.Generator().manual_seed(seed)
    if kind == "vit":
        return {"pixel_values": torch.randn(3, 3, 16, 16, generator=g)}
    return {"input_ids": torch.randint(0, 60, (3, tokens), generator=g)}


CASES = {
    "bert-gelu": (lambda: bert("gelu"), "gelu", lambda z: F.gelu(z)),
    "bert-relu": (lambda: bert("relu"), "relu", torch.relu),
    "gpt2": (gpt2, "gelu", lambda z: F.gelu(z, approximate="tanh")),
    "llama": (llama, "silu", F.silu),
    "t5-gated-gelu": (t5_gated, "gelu", lambda z: F.gelu(z, approximate="tanh")),
    "vit": (vit, "gelu", lambda z: F.gelu(z)),
}


def _ground_truth(model, producers, batches, act, feature_dim=-1):
    """Pre-activations captured from the producers, outputs recomputed by torch, dL/dx by retain_grad."""
    captured = {site: [] for site in producers}
    grads = {site: [] for site in producers}
    handles = []
    for site, producer in producers.items():
        def hook(module, inputs, output, site=site):
            output.retain_grad()
            captured[site].append(output)
        handles.append(model.get_submodule(producer).register_forward_hook(hook))
    for batch in batches:
        out = model(**batch)
        loss = out[0].pow(2).mean()
        loss.backward()
        for site in producers:
            grads[site].append(float(captured[site][-1].grad.double().norm()))
    for handle in handles:
        handle.remove()
    truth = {}
    for site, tensors in captured.items():
        units = tensors[0].shape[feature_dim]
        flat = [t.detach().movedim(feature_dim, -1).reshape(-1, units).double() for t in tensors]
        pre = torch.cat(flat)
        y = torch.cat([act(t.detach().movedim(feature_dim, -1).reshape(-1, units)) for t in tensors])
        truth[site] = {
            "units": units,
            "never_positive": [int(u) for u in torch.nonzero((pre > 0).sum(0) == 0).flatten()],
            "sparsity": float((y == 0).double().mean()),
            "grad_norm": math.sqrt(sum(g * g for g in grads[site]) / len(grads[site])),
        }
    return truth


@pytest.mark.parametrize("case", sorted(CASES))
def test_transformers_activations_found_with_the_true_units(case):
    build, member, act = CASES[case]
    torch.manual_seed(0)
    model, producers = build()
    model.train()  # dropout on: the monitor must read through it
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0  # deterministic for the ground-truth pass, still train-mode Dropout modules
    if case != "t5-gated-gelu":
        for producer in producers.values():
            _plant(model.get_submodule(producer))
    kind = "vit" if case == "vit" else "text"
    batches = [_inputs(kind, seed, tokens) for seed, tokens in ((1, 7), (2, 11), (3, 5))]  # lengths change
    truth = _ground_truth(model, producers, batches, act)
    model.zero_grad()
    with Monitor(model) as mon:
        for batch in batches:
            model(**batch)[0].pow(2).mean().backward()
    report = mon.report()
    found = {layer.name: layer for layer in report.layers}
    for site, expected in truth.items():
        assert site in found, f"{case}: {site} not found; found {sorted(found)}"
        layer = found[site]
        assert layer.kind == member
        assert layer.units == expected["units"], (site, layer.units, expected["units"])
        assert expected["never_positive"] and set(PLANTED) <= set(expected["never_positive"])
        assert layer.inactive_units == expected["never_positive"]
        assert layer.dead_units == (expected["never_positive"] if member == "relu" else [])
        assert layer.sparsity == pytest.approx(expected["sparsity"], abs=1e-12)
        assert layer.grad_norm == pytest.approx(expected["grad_norm"], rel=1e-5)
        assert layer.unit_dim == -1
        assert site in mon.sites and mon.sites[site].producer == producers[site]


def test_gpt2_born_dead_takes_keyword_inputs_and_model_outputs():
    torch.manual_seed(0)
    model, _ = gpt2()
    result = born_dead(model, {"input_ids": torch.randint(0, 60, (4, 6))})
    assert not result.born_dead and result.output_spread > 0
    assert set(result.dead_fraction) == {"h.0.mlp.act", "h.1.mlp.act"}


def test_modules_by_name_on_gpt2():
    torch.manual_seed(0)
    model, _ = gpt2()
    with Monitor(model, modules=["h.0.mlp.act"]) as mon:
        model(input_ids=torch.randint(0, 60, (2, 5)))
    assert [layer.name for layer in mon.report().layers] == ["h.0.mlp.act"]
    assert mon.report().layers[0].units == 24


# -- torch's own TransformerEncoderLayer calls F.relu inside forward -----------------------------------------------

def test_transformer_encoder_layer_functional_relu():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=24, dropout=0.0, activation="relu", batch_first=True)
    with torch.no_grad():
        layer.linear1.bias[PLANTED] = -1e3
    with pytest.raises(ValueError, match="functional=True"):
        Monitor(layer)
    xs = [torch.randn(2, t, 16) for t in (7, 4)]
    truth = _ground_truth_by_hook(layer, "linear1", xs)
    with Monitor(layer, functional=True) as mon:
        for x in xs:
            layer(x).pow(2).mean().backward()
    report = mon.report()
    assert [l.name for l in report.layers] == ["TransformerEncoderLayer:relu[0]"]
    site = report.layers[0]
    assert site.units == 24 and site.dead_units == truth["never_positive"]
    assert site.grad_norm == pytest.approx(truth["grad_norm"], rel=1e-5)
    assert site.sparsity == pytest.approx(truth["sparsity"], abs=1e-12)


def _ground_truth_by_hook(model, producer, xs):
    captured = []

    def hook(module, inputs, output):
        output.retain_grad()
        captured.append(output)

    handle = model.get_submodule(producer).register_forward_hook(hook)
    norms = []
    for x in xs:
        model(x).pow(2).mean().backward()
        norms.append(float(captured[-1].grad.double().norm()))
    handle.remove()
    model.zero_grad()
    pre = torch.cat([c.detach().reshape(-1, c.shape[-1]) for c in captured])
    return {"never_positive": [int(u) for u in torch.nonzero((pre > 0).sum(0) == 0).flatten()],
            "sparsity": float((pre <= 0).double().mean()),
            "grad_norm": math.sqrt(sum(n * n for n in norms) / len(norms))}


def test_functional_calls_of_every_spelling_are_sites():
    class Spellings(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 6)

        def forward(self, x):
            z = self.fc(x)
            a = F.relu(z) + torch.relu(z) + z.relu() + F.gelu(z) + F.silu(z)
            return torch.sigmoid(a) + torch.tanh(z) + F.leaky_relu(z, 0.2)

    model = Spellings()
    with Monitor(model, functional=True) as mon:
        model(torch.randn(5, 3, 4))
    layers = mon.report().layers
    assert [(l.name, l.kind, l.units) for l in layers] == [
        ("Spellings:relu[0]", "relu", 6), ("Spellings:relu[1]", "relu", 6), ("Spellings:relu[2]", "relu", 6),
        ("Spellings:gelu[0]", "gelu", 6), ("Spellings:silu[0]", "silu", 6), ("Spellings:sigmoid[0]", "sigmoid", 6),
        ("Spellings:tanh[0]", "tanh", 6), ("Spellings:leaky_relu[0]", "leaky_relu", 6)]
    assert all(l.samples == 5 for l in layers)


# -- a torchvision-style residual block with one inplace ReLU used twice ------------------------------------------

class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock shape: conv-bn-relu-conv-bn, + identity, relu (the same inplace module)."""

    def __init__(self, channels=6):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return self.relu(out)


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(6)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(BasicBlock(), BasicBlock())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Identity()  # a placeholder, as timm's drop_path
        self.fc = nn.Linear(6, 4)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer1(x)
        return self.fc(self.drop(torch.flatten(self.pool(x), 1)))


def _planted_resnet():
    torch.manual_seed(0)
    model = TinyResNet().train()
    with torch.no_grad():
        for seed in range(3):  # BatchNorm running statistics away from their initial 0 and 1
            model(torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(100 + seed)))
        model.layer1[0].bn1.bias[[2, 5]] = -1e3  # dead channels of the first block's first relu call
        model.layer1[1].bn1.bias[[0]] = -1e3
    return model.eval()


def _resnet_pre_activations(model, x):
    """Every relu call's input, computed by hand from the submodules (eval mode: BatchNorm is deterministic)."""
    pre = {}
    stem = model.bn1(model.conv1(x))
    pre["relu"] = stem
    h = torch.relu(stem)
    for b, block in enumerate(model.layer1):
        z1 = block.bn1(block.conv1(h))
        z2 = block.bn2(block.conv2(torch.relu(z1))) + h
        pre[f"layer1.{b}.relu[0]"], pre[f"layer1.{b}.relu[1]"] = z1, z2
        h = torch.relu(z2)
    return pre


def test_resnet_block_with_a_reused_inplace_relu():
    model = _planted_resnet()
    xs = [torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(s)) for s in range(3)]
    with torch.no_grad():
        pres = [_resnet_pre_activations(model, x) for x in xs]
    with Monitor(model) as mon, torch.no_grad():
        for x in xs:
            model(x)
    report = mon.report()
    assert [l.name for l in report.layers] == ["relu", "layer1.0.relu[0]", "layer1.0.relu[1]", "layer1.1.relu[0]",
                                                "layer1.1.relu[1]"]  # the Identity placeholder is not an activation
    for layer in report.layers:
        pre = torch.cat([p[layer.name].transpose(0, 1).reshape(6, -1) for p in pres], dim=1)
        assert layer.units == 6 and layer.unit_dim == 1
        assert layer.dead_units == [int(u) for u in torch.nonzero((pre > 0).sum(1) == 0).flatten()]
        assert layer.sparsity == pytest.approx(float((pre <= 0).double().mean()), abs=1e-12)
    assert report["layer1.0.relu[0]"].dead_units == [2, 5] and report["layer1.1.relu[0]"].dead_units == [0]


def test_revive_on_the_resnet_touches_only_the_revived_channels():
    model = _planted_resnet()
    x = torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with Monitor(model) as mon, torch.no_grad():
        model(x)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    revived = revive(model, mon.report(), generator=torch.Generator().manual_seed(1))
    assert revived == 3
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {f"layer1.{b}.{p}" for b in (0, 1) for p in (
        "conv1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var")}  # bn1.weight was 1 already
    for b, channels in ((0, [2, 5]), (1, [0])):
        keep = [c for c in range(6) if c not in channels]
        for p in ("conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"):
            key = f"layer1.{b}.{p}"
            assert torch.equal(before[key][keep], after[key][keep]), key
    with Monitor(model) as mon, torch.no_grad():
        model(x)
    assert mon.report()["layer1.0.relu[0]"].dead_units == [] and mon.report()["layer1.1.relu[0]"].dead_units == []


def test_revive_through_train_mode_dropout():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Dropout(0.5), nn.ReLU(), nn.Linear(8, 2)).train()
    with torch.no_grad():
        model[0].bias[[3, 6]] = -1e3
    with Monitor(model) as mon:
        model(torch.randn(32, 5))
    before = model[0].weight.detach().clone()
    assert revive(model, mon.report()) == 2
    keep = [u for u in range(8) if u not in (3, 6)]
    assert torch.equal(model[0].weight[keep], before[keep]) and not torch.equal(model[0].weight[3], before[3])


def test_identity_returning_modules_do_not_hang_born_dead():
    # Linear -> Dropout (eval: returns its input) -> ReLU, and an Identity in between: round 1 looped forever here.
    model = nn.Sequential(nn.Linear(4, 4), nn.Identity(), nn.Dropout(0.1), nn.ReLU(), nn.Linear(4, 2))
    result = born_dead(model, torch.randn(6, 4))
    assert set(result.dead_fraction) == {"3"}


def test_unit_dim_override_is_validated():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    with pytest.raises(ValueError, match=r"unit_dim=5 is out of range for layer '1'.*2 dims; allowed: -2 to 1"):
        with Monitor(model, unit_dim=5):
            model(torch.randn(3, 4))


def test_nested_with_blocks_keep_collecting():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    mon = Monitor(model)
    with mon:
        model(torch.randn(3, 4))
        with mon:
            model(torch.randn(3, 4))
        model(torch.randn(3, 4))  # still inside the outer block
    assert mon.report().samples == 9


def test_nan_window_writes_json_nulls(tmp_path):
    import json

    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    with Monitor(model) as mon:
        model(torch.tensor([[float("inf"), 1.0], [1.0, 1.0]])).pow(2).sum().backward()  # NaN gradients
        assert math.isnan(mon.report().layers[0].grad_norm)
        mon.reset()
        model(torch.randn(4, 2)).pow(2).sum().backward()  # a healthy window after the diverged one
    path = tmp_path / "r.json"
    mon.report().to_json(path)
    saved = json.loads(path.read_text())
    assert saved["history"][0]["layers"][0]["grad_norm"] is None
    assert saved["layers"][0]["grad_norm"] > 0


@pytest.mark.parametrize("case", sorted(CASES))
def test_swap_to_relu_then_revive_on_every_architecture(case):
    build, member, _ = CASES[case]
    torch.manual_seed(0)
    model, producers = build()
    model.eval()
    if member != "relu":
        assert rnn.swap(model, member, "relu") >= len(producers)
    for producer in producers.values():
        _plant(model.get_submodule(producer))
    kind = "vit" if case == "vit" else "text"
    batch = _inputs(kind, 5, 9)

    def never_positive() -> dict[str, list[int]]:  # by hook on the producers, not by relulab
        seen = {}
        handles = [model.get_submodule(p).register_forward_hook(
            lambda m, i, o, site=s: seen.__setitem__(site, o.detach().reshape(-1, o.shape[-1])))
            for s, p in producers.items()]
        with torch.no_grad():
            model(**batch)
        for handle in handles:
            handle.remove()
        return {s: [int(u) for u in torch.nonzero((z > 0).sum(0) == 0).flatten()] for s, z in seen.items()}

    before = never_positive()
    assert all(set(PLANTED) <= set(units) for units in before.values())
    with Monitor(model) as mon, torch.no_grad():
        model(**batch)
    report = mon.report()
    assert {s: report[s].dead_units for s in producers} == before
    revived = revive(model, report, generator=torch.Generator().manual_seed(0))
    assert revived == sum(len(units) for units in before.values())
    assert all(units == [] for units in never_positive().values())
