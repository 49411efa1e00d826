"""The monitor finds planted dead units exactly and its statistics equal a direct float64 computation."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from relulab import Monitor  # noqa: E402

DEAD_1 = [2, 5, 11]  # planted dead units of the first hidden layer
DEAD_2 = [0, 7]  # and of the second


def planted_mlp(activation: type[nn.Module] = nn.ReLU, **kwargs) -> nn.Sequential:
    """An MLP whose planted units get a -1000 bias (dead on any input of moderate size); all other units get
    positive bias and non-negative weights into layer 2, so they are active on typical inputs."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), activation(**kwargs), nn.Linear(16, 12), activation(**kwargs),
                          nn.Linear(12, 3)).double()
    with torch.no_grad():
        model[0].bias.fill_(0.5)
        model[0].bias[DEAD_1] = -1000.0
        model[2].weight.abs_()
        model[2].weight[:, DEAD_1] = 0.0  # so a leaky unit's -10 output cannot switch layer 2 off
        model[2].bias.fill_(0.5)
        model[2].bias[DEAD_2] = -1000.0
    return model


def batches(n_batches: int = 4, size: int = 64, features: int = 8, seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(size, features, generator=g, dtype=torch.float64) for _ in range(n_batches)]


def direct_mlp_stats(model: nn.Sequential, xs: list[torch.Tensor], slope: float = 0.0):
    """Pre-activations, outputs and ||dL/dz|| per layer computed by hand, independent of the monitor."""
    pre = {0: [], 1: []}
    post = {0: [], 1: []}
    grads = {0: [], 1: []}
    for x in xs:
        z1 = model[0](x)
        z1.retain_grad()
        a1 = torch.where(z1 > 0, z1, slope * z1)
        z2 = model[2](a1)
        z2.retain_grad()
        a2 = torch.where(z2 > 0, z2, slope * z2)
        loss = model[4](a2).pow(2).mean()
        loss.backward()
        for i, (z, a) in enumerate([(z1, a1), (z2, a2)]):
            pre[i].append(z.detach().numpy())
            post[i].append(a.detach().numpy())
            grads[i].append(float(np.linalg.norm(z.grad.numpy())))
        model.zero_grad()
    cat = lambda d: {k: np.concatenate(v) for k, v in d.items()}
    return cat(pre), cat(post), grads


def run_monitored(model: nn.Module, xs: list[torch.Tensor], **kwargs) -> Monitor:
    with Monitor(model, **kwargs) as mon:
        for x in xs:
            model(x).pow(2).mean().backward()
            model.zero_grad()
    return mon


@pytest.fixture(params=["fused", "torch"], autouse=True)
def statistics_path(request, monkeypatch):
    """Run every test twice: with the compiled one-pass kernel (when numba is installed) and with torch ops."""
    from relulab.monitor import core

    if request.param == "torch":
        monkeypatch.setattr(core, "_FUSED", False)
    elif core._fused_kernel() is None:
        pytest.skip("numba is not installed: the fused statistics kernel is not available")
    return request.param


def test_planted_dead_units_are_found_exactly():
    model = planted_mlp()
    xs = batches()
    pre, _, _ = direct_mlp_stats(model, xs)
    # The planting is what we think: exactly these units are never positive (computed directly).
    assert [int(u) for u in np.flatnonzero((pre[0] > 0).sum(0) == 0)] == DEAD_1
    assert [int(u) for u in np.flatnonzero((pre[1] > 0).sum(0) == 0)] == DEAD_2
    report = run_monitored(model, xs).report().to_dict()
    first, second = report["layers"]
    assert (first["name"], first["kind"], first["units"]) == ("1", "relu", 16)
    assert first["dead_units"] == DEAD_1 and first["dead"] == 3 and first["dead_fraction"] == 3 / 16
    assert second["dead_units"] == DEAD_2 and second["dead"] == 2 and second["dead_fraction"] == 2 / 12
    assert first["inactive_units"] == DEAD_1 and second["inactive_units"] == DEAD_2
    assert report["samples"] == 4 * 64
    assert all(type(u) is int for u in first["dead_units"])
    assert set(first) == {"name", "kind", "units", "dead", "dead_units", "dead_fraction", "inactive",
                          "inactive_units", "nan_units", "sparsity", "grad_norm", "unit_dim", "how"}
    assert first["unit_dim"] == -1 and first["nan_units"] == []


def test_leaky_network_reports_planted_units_inactive_not_dead():
    model = planted_mlp(nn.LeakyReLU, negative_slope=0.01)
    layers = run_monitored(model, batches()).report().to_dict()["layers"]
    assert [l["kind"] for l in layers] == ["leaky_relu", "leaky_relu"]
    assert [l["dead"] for l in layers] == [0, 0]
    assert [l["inactive_units"] for l in layers] == [DEAD_1, DEAD_2]


def test_statistics_equal_a_direct_computation():
    model = planted_mlp()
    xs = batches()
    pre, post, grads = direct_mlp_stats(model, xs)
    report = run_monitored(model, xs).report()
    for i, layer in enumerate(report.layers):
        np.testing.assert_allclose(layer.active_fraction, (pre[i] > 0).mean(0), rtol=0, atol=0)
        np.testing.assert_allclose(layer.mean, post[i].mean(0), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(layer.std, post[i].std(0), rtol=1e-5, atol=1e-7)
        assert layer.sparsity == pytest.approx((post[i] == 0).mean(), abs=0)
        rms = float(np.sqrt(np.mean(np.square(grads[i]))))
        assert layer.grad_norm == pytest.approx(rms, rel=1e-6)


def test_inplace_relu_gives_the_same_statistics():
    xs = batches()
    plain = run_monitored(planted_mlp(), xs).report().to_dict()
    inplace = run_monitored(planted_mlp(nn.ReLU, inplace=True), xs).report().to_dict()
    for a, b in zip(plain["layers"], inplace["layers"]):
        assert a["dead_units"] == b["dead_units"]
        assert a["sparsity"] == b["sparsity"]
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-12)


class PlantedCNN(nn.Module):
    def __init__(self, dead_1=(1,), dead_2=(0, 4), activation=nn.ReLU, **kwargs):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.act1 = activation(**kwargs)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.act2 = activation(**kwargs)
        self.head = nn.Linear(6, 2)
        with torch.no_grad():
            self.conv1.bias.fill_(0.3)
            self.conv1.bias[list(dead_1)] = -1000.0
            self.conv2.weight.abs_()  # live channels stay live on the non-negative relu outputs ...
            self.conv2.weight[:, list(dead_1)] = 0.0  # ... and a leaky dead channel's -100 cannot switch them off
            self.bn.bias.fill_(0.3)
            self.bn.bias[list(dead_2)] = -1000.0

    def forward(self, x):
        h = self.act2(self.bn(self.conv2(self.act1(self.conv1(x)))))
        return self.head(h.mean(dim=(2, 3)))


def test_planted_cnn_channels_are_found_exactly():
    model = PlantedCNN().eval()
    g = torch.Generator().manual_seed(3)
    xs = [torch.randn(16, 1, 8, 8, generator=g) for _ in range(3)]
    report = run_monitored(model, xs).report().to_dict()
    layers = {l["name"]: l for l in report["layers"]}
    assert layers["act1"]["dead_units"] == [1] and layers["act1"]["units"] == 4
    assert layers["act2"]["dead_units"] == [0, 4] and layers["act2"]["units"] == 6
    assert report["sources"] == {"act1": ["conv1"], "act2": ["bn", "conv2"]}
    # Sparsity counts exact zeros over every element, spatial positions included.
    with torch.no_grad():
        outs = [F.relu(model.conv1(x)) for x in xs]
    assert layers["act1"]["sparsity"] == pytest.approx(float(torch.cat(outs).eq(0).double().mean()), abs=0)


def test_leaky_cnn_reports_inactive_channels():
    model = PlantedCNN(activation=nn.LeakyReLU, negative_slope=0.1).eval()
    xs = [torch.randn(8, 1, 8, 8)]
    layers = run_monitored(model, xs).report().to_dict()["layers"]
    assert [l["dead"] for l in layers] == [0, 0]
    assert [l["inactive_units"] for l in layers] == [[1], [0, 4]]


def test_a_module_called_twice_is_two_layers():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.act = nn.Linear(3, 5), nn.Linear(5, 7), nn.ReLU()
            with torch.no_grad():
                self.fc2.bias[3] = -1e3

        def forward(self, x):
            return self.act(self.fc2(self.act(self.fc1(x))))

    report = run_monitored(Shared(), [torch.randn(32, 3)]).report()
    assert [(l.name, l.units) for l in report.layers] == [("act[0]", 5), ("act[1]", 7)]
    assert 3 in report["act[1]"].dead_units


def test_windows_reset_and_history():
    model = planted_mlp()
    xs = batches(n_batches=3)
    with Monitor(model) as mon:
        model(xs[0])
        first = mon.reset()
        model(xs[1])
        model(xs[2])
        second = mon.report()
    assert first.samples == 64 and second.samples == 128
    assert len(mon.history) == 1 and mon.history[0]["samples"] == 64
    assert mon.history[0]["layers"][0]["dead_units"] == DEAD_1
    assert second.layers[0].grad_norm is None  # no backward pass in that window


def test_every_skips_batches():
    model = planted_mlp()
    mon = run_monitored(model, batches(n_batches=4), every=2)
    assert mon.report().samples == 2 * 64


def test_modules_argument_selects_layers():
    model = planted_mlp()
    mon = run_monitored(model, batches(1), modules=["3"])
    assert [l.name for l in mon.report().layers] == ["3"]
    with pytest.raises(ValueError, match=r"modules: '0' is not an activation module.*activation modules are: 1, 3"):
        Monitor(model, modules=["0"])


def test_hooks_are_removed_on_exit():
    model = planted_mlp()
    with Monitor(model):
        pass
    assert not model._forward_pre_hooks and not model[1]._forward_pre_hooks and not model[1]._forward_hooks
    assert not model[0]._forward_hooks


def test_no_activation_modules_is_a_clear_error():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            return F.relu(self.fc(x))

    with pytest.raises(ValueError, match=r"found no activation modules in Functional; it looks for torch.nn ReLU"):
        Monitor(Functional())


def test_functional_activations_are_noted_in_the_report():
    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.act = nn.Linear(2, 2), nn.ReLU()

        def forward(self, x):
            return torch.tanh(self.act(self.fc(x)))

    mon = run_monitored(Mixed(), [torch.randn(4, 2)])
    text = str(mon.report())
    assert "torch.tanh" in text and "cannot see" in text


def test_report_text_json_and_plot(tmp_path):
    model = planted_mlp()
    with Monitor(model) as mon:
        for x in batches(2):
            model(x).sum().backward()
            mon.reset()
        model(batches(1)[0]).sum().backward()
    report = mon.report()
    text = str(report)
    assert "dead %" in text and "18.8%" in text  # 3 of 16
    path = tmp_path / "report.json"
    report.to_json(path)
    saved = json.loads(path.read_text())
    assert saved["layers"] == report.to_dict()["layers"] and len(saved["history"]) == 2
    png = report.plot(tmp_path / "flow.png")
    with open(png, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_bad_arguments():
    model = planted_mlp()
    with pytest.raises(ValueError, match="every must be an integer >= 1; got 0"):
        Monitor(model, every=0)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        Monitor("model")


def test_import_relulab_does_not_import_torch_for_monitor():
    import subprocess
    import sys

    code = "import sys, relulab; from relulab import family; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_diverged_window_reports_nan_without_warnings():
    model = planted_mlp()
    x = batches(1)[0]
    x[0, 0] = float("inf")  # inf in, NaN and inf through the network
    with Monitor(model) as mon:
        model(x)
        report = mon.reset()
    layer = report.layers[0]
    assert np.isnan(layer.mean).any() or np.isinf(layer.mean).any()
    assert report.to_dict()["layers"][0]["units"] == 16


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_activations_are_counted_exactly(dtype):
    # 5001 x 3 values: all positive but row 0 (negative, so 3 zeros); sums of ones beyond 256/2048 are inexact in
    # bfloat16/float16, so the monitor must widen before it sums.
    x = torch.randn(5001, 3, generator=torch.Generator().manual_seed(0)).abs() + 1
    x[0] = -1
    model = nn.Sequential(nn.ReLU())
    with Monitor(model) as mon:
        model(x.to(dtype))
    layer = mon.report().layers[0]
    np.testing.assert_array_equal(layer.active_fraction, np.full(3, 5000 / 5001))
    assert layer.sparsity == pytest.approx(3 / 15003, rel=1e-12)
    expected = x.to(dtype).double().clamp_min(0)
    np.testing.assert_allclose(layer.mean, expected.mean(0).numpy(), rtol=1e-6)


def test_large_float16_activations_do_not_overflow_the_moments():
    x = (torch.randn(20000, 2, generator=torch.Generator().manual_seed(1)) * 30).half()
    model = nn.Sequential(nn.ReLU())
    with Monitor(model) as mon:
        model(x)
    layer = mon.report().layers[0]
    expected = x.double().clamp_min(0)
    np.testing.assert_allclose(layer.mean, expected.mean(0).numpy(), rtol=1e-6)
    np.testing.assert_allclose(layer.std, expected.std(0, unbiased=False).numpy(), rtol=1e-5)


def test_an_empty_batch_adds_nothing():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with Monitor(model) as mon:
        model(torch.randn(0, 3, 8, 8))
        model(torch.randn(2, 3, 8, 8))
    report = mon.report()
    assert report.samples == 2 and report.layers[0].units == 4


def test_nan_outputs_are_neither_positive_nor_zero():
    x = torch.tensor([[float("nan"), 1.0], [-1.0, 2.0]])
    model = nn.Sequential(nn.ReLU())
    with Monitor(model) as mon:
        model(x)
    layer = mon.report().layers[0]
    # Unit 0 saw a NaN pre-activation (and -1): it was never shown positive, but a NaN is not a dead unit either.
    assert layer.nan_units == [0] and layer.dead_units == [] and layer.inactive_units == []
    assert layer.active_fraction[1] == 1.0
    assert layer.sparsity == 0.25  # only relu(-1) is an exact zero


@pytest.mark.parametrize("activation", [nn.ReLU, nn.GELU])
@pytest.mark.parametrize("side", [4, 12])  # 16 and 144 positions per unit: the fused pass's two layouts
def test_conv_statistics_with_nans_equal_a_direct_computation(activation, side):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), activation())
    xs = [torch.randn(5, 2, side, side) for _ in range(3)]
    xs[1][2, :, 1, 1] = float("nan")  # NaN reaches every channel at a few positions of one batch
    with torch.no_grad():
        model[0].bias[4] = -100.0  # channel 4 never positive
        pre = [model[0](x).double() for x in xs]
        with Monitor(model) as mon:
            for x in xs:
                model(x)
        layer = mon.report().layers[0]
    z = torch.cat(pre).transpose(0, 1).reshape(6, -1).numpy()  # (units, positions)
    y = (torch.relu(torch.from_numpy(z)) if activation is nn.ReLU else F.gelu(torch.from_numpy(z))).numpy()
    nan_units = [int(u) for u in np.flatnonzero(np.isnan(z).any(1))]
    assert layer.nan_units == nan_units and nan_units  # every unit saw a NaN input
    assert layer.sparsity == pytest.approx(float((y == 0).sum()) / y.size, abs=0)
    assert layer.samples == 15


def test_unit_that_turns_positive_in_a_later_batch_is_alive():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU()).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(4, 3, dtype=torch.float64))
        model[0].bias.zero_()
    early = -torch.ones(8, 3, dtype=torch.float64)  # every unit at or below zero
    late = early.clone()
    late[5, 1] = 2.0  # unit 1 positive once, in the last batch
    with Monitor(model) as mon:
        model(early)
        assert mon.report().layers[0].dead_units == [0, 1, 2, 3]
        model(late)
    layer = mon.report().layers[0]
    assert layer.dead_units == [0, 2, 3] and layer.nan_units == []
    assert layer.sparsity == pytest.approx(63 / 64, abs=0)  # one positive output of 2 x 8 x 4


class _Split(nn.Module):
    """The activation's input is the second output of a multi-output node (chunk), or the model's leaf input."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 8)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = self.fc(x).chunk(2, dim=1)
        return first.sum(1) + self.act(second).pow(2).sum(1)


def test_gradient_norm_of_a_chunked_input_equals_a_direct_computation():
    torch.manual_seed(0)
    model = _Split().double()
    xs = [torch.randn(6, 4, dtype=torch.float64) for _ in range(3)]
    norms = []
    for x in xs:
        second = model.fc(x).chunk(2, dim=1)[1].detach().requires_grad_()
        torch.where(second > 0, second, 0.0).pow(2).sum().backward()
        norms.append(float(np.linalg.norm(second.grad.numpy())))
    with Monitor(model) as mon:
        for x in xs:
            model(x).sum().backward()
    rms = float(np.sqrt(np.mean(np.square(norms))))
    assert mon.report()["act"].grad_norm == pytest.approx(rms, rel=1e-12)


def test_gradient_norm_of_a_leaf_input_equals_a_direct_computation():
    model = nn.Sequential(nn.ReLU())
    x = torch.tensor([[1.0, -2.0, 3.0]], dtype=torch.float64, requires_grad=True)
    with Monitor(model) as mon:
        (model(x) * torch.tensor([2.0, 5.0, 7.0], dtype=torch.float64)).sum().backward()
    # dL/dx = (2, 0, 7): relu'(-2) = 0
    assert mon.report().layers[0].grad_norm == pytest.approx(float(np.sqrt(4 + 49)), rel=1e-12)
