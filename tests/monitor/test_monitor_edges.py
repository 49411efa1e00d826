"""The monitor where practitioners' code departs from one plain forward: submodules called directly, two monitors,
gradient checkpointing, attention scores, recurrent producers, late branches, compiled modules, shared layers."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import relulab  # noqa: E402
import relulab.nn as rnn  # noqa: E402
from relulab import Monitor  # noqa: E402


def _never_positive(z: torch.Tensor) -> list[int]:
    flat = z.detach().reshape(-1, z.shape[-1])
    return [int(u) for u in torch.nonzero((flat > 0).sum(0) == 0).flatten()]


def test_a_submodule_called_directly_keeps_its_site_and_units():
    torch.manual_seed(0)  # unseeded, about 1 draw in 75 leaves a third unit never positive on these 34 rows
    wrapper = nn.Module()
    wrapper.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
    with torch.no_grad():
        wrapper.net[0].bias[[2, 6]] = -1e3
    xs = [torch.randn(2, t, 4) for t in (5, 3, 9)]  # (N, T, F): the sequence length changes
    with Monitor(wrapper) as mon:
        for x in xs:
            wrapper.net(x)  # the wrapper's own forward never runs (Lightning's training_step, generate())
    layers = mon.report().layers
    assert [(l.name, l.units, l.unit_dim) for l in layers] == [("net.1", 8, -1)]
    pre = torch.cat([wrapper.net[0](x).reshape(-1, 8) for x in xs])
    assert layers[0].dead_units == _never_positive(pre) == [2, 6] and layers[0].samples == 6


def test_two_monitors_on_one_model_both_count_every_batch():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    a, b = Monitor(model), Monitor(model)
    with a, b:
        for _ in range(2):
            model(torch.randn(3, 4)).sum().backward()
    for mon in (a, b):
        layer = mon.report()["1"]
        assert layer.samples == 6 and layer.grad_norm is not None
    assert a.report()["1"].grad_norm == b.report()["1"].grad_norm  # the second monitor's hook takes another route


@pytest.mark.parametrize("user_first", [True, False])
def test_gradient_norms_beside_the_users_own_tensor_hooks(user_first):
    # The monitor puts its gradient hook in the activation input's backward-hook dict, or beside a dict the user's
    # Tensor.register_hook made first: either way both hooks see dL/dx once per backward pass.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    seen = []

    def on_linear_output(module, inputs, output):
        output.register_hook(lambda g: seen.append(g.clone()))

    def on_relu_input(module, inputs, output):
        inputs[0].register_hook(lambda g: seen.append(g.clone()))

    mon = Monitor(model)
    handle = model[0].register_forward_hook(on_linear_output) if user_first else None
    with mon:
        if not user_first:  # the user's hook runs after the monitor's, on the same tensor
            handle = model[1].register_forward_hook(on_relu_input)
        xs = [torch.randn(5, 4) for _ in range(3)]
        for x in xs:
            model(x).square().sum().backward()
    handle.remove()
    truth = []
    for x in xs:
        pre = model[0](x)
        truth.append(torch.autograd.grad(model[2](torch.relu(pre)).square().sum(), pre)[0])
    assert len(seen) == 3 and all(torch.equal(a, b) for a, b in zip(seen, truth))
    rms = float(np.sqrt(np.mean([float((g.double() ** 2).sum()) for g in truth])))
    assert mon.report()["1"].grad_norm == pytest.approx(rms, rel=1e-6)


def test_gradient_checkpointing_recompute_is_not_a_second_batch():
    class Checkpointed(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.act, self.out = nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)

        def forward(self, x):
            hidden = torch.utils.checkpoint.checkpoint(lambda z: self.act(self.fc(z)), x, use_reentrant=True)
            return self.out(hidden)

    model = Checkpointed()
    with Monitor(model) as mon:
        for _ in range(3):
            model(torch.randn(5, 6, 4, requires_grad=True)).sum().backward()
    layers = mon.report().layers
    assert [(l.name, l.units, l.samples) for l in layers] == [("act", 8, 15)]


def test_attention_scores_are_not_units_and_do_not_crash():
    class SoftCapped(nn.Module):  # Gemma-2-style: tanh on q @ k^T, whose last dim is the sequence length
        def __init__(self):
            super().__init__()
            self.q, self.k = nn.Linear(8, 8), nn.Linear(8, 8)

        def forward(self, x):
            scores = self.q(x) @ self.k(x).transpose(1, 2)
            return torch.tanh(scores / 10).softmax(-1) @ x

    model = SoftCapped()
    with Monitor(model, functional=True) as mon:
        model(torch.randn(2, 7, 8))
        model(torch.randn(2, 11, 8))
    layer = mon.report().layers[0]
    assert layer.name == "SoftCapped:tanh[0]" and layer.samples == 4 and "one unit" in layer.how


@pytest.mark.parametrize("kind", ["lstm", "cat", "layernorm"])
def test_units_after_recurrent_layers_concatenation_and_norms(kind):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(4, 6, batch_first=True)
            self.a, self.b = nn.Linear(4, 3), nn.Linear(4, 5)
            self.norm = nn.LayerNorm(4)
            self.act = nn.ReLU()

        def forward(self, x):
            if kind == "lstm":
                z = self.lstm(x)[0]
            elif kind == "cat":
                z = torch.cat([self.a(x), self.b(x)], dim=-1)
            else:
                z = self.norm(x)
            self.seen = z
            return self.act(z)

    model = Net()
    units = {"lstm": 6, "cat": 8, "layernorm": 4}[kind]
    pres = []
    with Monitor(model) as mon, torch.no_grad():
        for t in (5, 7):
            model(torch.randn(2, t, 4))
            pres.append(model.seen.reshape(-1, units))
    layer = mon.report()["act"]
    assert layer.units == units and layer.unit_dim == -1
    assert layer.dead_units == _never_positive(torch.cat(pres))


def test_a_branch_first_taken_later_is_traced_before_it_is_counted():
    class Branch(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.ra, self.b, self.rb = nn.Linear(6, 10), nn.ReLU(), nn.Linear(6, 12), nn.GELU()
            self.use_b = False

        def forward(self, x):
            return self.rb(self.b(x)) if self.use_b else self.ra(self.a(x))

    model = Branch()
    with Monitor(model) as mon:
        model(torch.randn(2, 5, 6))
        model.use_b = True
        model(torch.randn(2, 5, 6))  # rb is new: this pass is not counted for it, the next one is traced
        model(torch.randn(2, 3, 6))
    report = mon.report()
    assert (report["rb"].units, report["rb"].unit_dim, report["rb"].samples) == (12, -1, 2)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # importing dynamo touches torch.jit's deprecated API
def test_compiled_modules_are_refused_with_the_way_out():
    model = torch.compile(nn.Sequential(nn.Linear(6, 12), nn.ReLU()))
    with pytest.raises(ValueError, match=r"torch.compile'd modules.*_orig_mod"):
        Monitor(model)
    with Monitor(model._orig_mod) as mon:
        model._orig_mod(torch.randn(2, 6))
    assert mon.report()["1"].units == 12


def test_a_shared_producer_revives_only_units_dead_at_every_call():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.act = nn.Linear(4, 4), nn.ReLU()

        def forward(self, x):
            return self.act(self.fc(-self.act(self.fc(x)) - 1))

    model = Shared()
    with torch.no_grad():
        model.fc.weight.copy_(torch.eye(4))
        model.fc.bias.zero_()
    with Monitor(model) as mon:
        model(torch.rand(8, 4) + 0.1)
    report = mon.report()
    assert report["act[0]"].dead_units == [] and report["act[1]"].dead_units == [0, 1, 2, 3]
    before = model.fc.weight.detach().clone()
    assert relulab.revive(model, report) == 0
    assert torch.equal(model.fc.weight, before)


def test_conv_transpose_fan_in_keeps_the_variance():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.ConvTranspose2d(32, 32, 2, stride=2))
    rnn.init_(model, torch.randn(2, 32, 8, 8))
    with torch.no_grad():
        hidden = model[0](torch.randn(16, 32, 8, 8))
        out = model[2](model[1](hidden))
    # He's rule: the output keeps the pre-activation variance; the stride spreads each input over 2x2 outputs
    assert float(out.var() / hidden.var()) == pytest.approx(1.0, rel=0.15)


def test_born_dead_sees_functional_activations():
    layer = nn.TransformerEncoderLayer(16, 2, 24, batch_first=True)
    result = relulab.born_dead(layer, torch.randn(3, 5, 16))
    assert list(result.dead_fraction) == ["TransformerEncoderLayer:relu[0]"] and not result.born_dead
    with pytest.raises(ValueError, match="rtol must be a finite number >= 0; got -1"):
        relulab.born_dead(layer, torch.randn(3, 5, 16), rtol=-1)


def test_modules_argument_shapes():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    with pytest.raises(TypeError, match=r"modules must be an iterable of module names or modules \(e.g. \['1'\]\)"):
        Monitor(model, modules="1")
    with pytest.raises(ValueError, match="modules is empty"):
        Monitor(model, modules=[])


def test_the_probe_leaves_the_random_stream_alone():
    class Noise(nn.Module):
        def forward(self, x):
            return x + torch.rand_like(x)

    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    rnn.identify(Noise())
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("shape", [(9, 3, 16), (8, 5, 1), (13, 4, 64), (4, 2, 7), (6, 2, 300)])
@pytest.mark.parametrize("positive", [True, False])
def test_the_compiled_pass_counts_exactly_with_nan_and_inf(shape, positive):
    pytest.importorskip("numba")
    import numpy as np

    from relulab.monitor import _fused

    rng = np.random.default_rng(0)
    v = rng.standard_normal(shape).astype(np.float32)
    if positive:  # outputs of a member zero for x <= 0
        v = np.maximum(v, 0)
    v[1, 0, 0] = np.nan
    v[2, 1, -1] = np.inf
    v[3, 1, 0] = np.inf if positive else -np.inf  # inf - inf in one unit's sum
    v[0, -1, 0] = 0.0
    with np.errstate(invalid="ignore"):
        expected = v.astype(np.float64).sum(axis=(0, 2))
    # The array entry point, and the one the monitor's hooks call with a tensor's address.
    for call in (lambda *acc: _fused.unit_stats(v, *acc, positive),
                 lambda *acc: _fused.bound(_fused.unit_stats_at, _fused.LIKE[v.dtype], *shape, *acc, positive)(v.ctypes.data)):
        counts, zeros, total, total_sq = np.zeros(shape[1]), np.zeros(1), np.zeros(shape[1]), np.zeros(shape[1])
        call(counts, zeros, total, total_sq)
        assert zeros[0] == np.count_nonzero(v == 0)
        if positive:
            np.testing.assert_array_equal(counts, np.count_nonzero(v > 0, axis=(0, 2)))
        np.testing.assert_allclose(total, expected, rtol=1e-6)  # NaN where the unit saw a NaN or inf - inf
    positive_counts, squares = np.zeros(shape[1]), np.zeros(1)
    _fused.positive_counts_at(_fused.LIKE[v.dtype], *shape, positive_counts, v.ctypes.data)
    np.testing.assert_array_equal(positive_counts, np.count_nonzero(v > 0, axis=(0, 2)))
    finite = np.nan_to_num(v, nan=1.5, posinf=2.0, neginf=-3.0).astype(np.float64)
    _fused.bound(_fused.sum_squares_at, _fused.LIKE[finite.dtype], squares)(finite.size, finite.ctypes.data)
    assert squares[0] == pytest.approx(float((finite ** 2).sum()), rel=1e-12)


def _direct_relu_stats(pre: torch.Tensor) -> tuple[list[int], float]:
    """Dead units (never > 0 over the rows) and the sparsity of relu(pre), computed here."""
    return _never_positive(pre), float((torch.relu(pre) == 0).double().mean())


def test_parameter_free_activations_are_watched_through_their_forward_and_given_back():
    # A forward hook sends every call through Module.__call__'s slow path; a parameter-free activation is watched
    # by an instance-level forward instead, removed on exit; a PReLU (it has a weight) keeps hooks.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.PReLU(8), nn.Linear(8, 1))
    with torch.no_grad():
        model[0].bias[[1, 5]] = -1e3
    xs = [torch.randn(6, 4) for _ in range(3)]
    with Monitor(model) as mon:
        assert "forward" in model[1].__dict__ and "forward" not in model[3].__dict__
        assert len(model[1]._forward_hooks) == 0 and len(model[3]._forward_hooks) == 1
        for x in xs:
            model(x).sum().backward()
    assert "forward" not in model[1].__dict__ and len(model[3]._forward_hooks) == 0
    pre = torch.cat([model[0](x) for x in xs])
    dead, sparsity = _direct_relu_stats(pre)
    assert mon.report()["1"].dead_units == dead == [1, 5]
    assert mon.report()["1"].sparsity == pytest.approx(sparsity, abs=1e-15)
    assert mon.report()["3"].samples == 18


def test_a_deep_copy_made_while_watched_computes_with_its_own_modules():
    # copy.deepcopy (an EMA or a best-so-far checkpoint) carries the watched forward along, as it carries hooks: the
    # copy's outputs must still be its own.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.PReLU(8), nn.Linear(8, 1))
    x = torch.randn(5, 4)
    with Monitor(model):
        copy_ = __import__("copy").deepcopy(model)
        with torch.no_grad():
            copy_[3].weight.fill_(0.5)
            copy_[0].weight.mul_(-1)
        got = copy_(x)
    h = copy_[2](torch.relu(copy_[0](x)))
    expected = copy_[4](torch.where(h > 0, h, 0.5 * h))
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize("first_out", ["first", "second"])
def test_two_monitors_and_a_foreign_forward_wrapper_are_unwound_in_any_order(first_out):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(inplace=True), nn.Linear(8, 1))
    act = model[1]
    calls = []
    inner = act.forward

    def foreign(*args, **kwargs):  # another library's wrapper (accelerate puts its hooks this way)
        calls.append(1)
        return inner(*args, **kwargs)

    act.forward = foreign
    a, b = Monitor(model), Monitor(model)
    xs = [torch.randn(3, 4) for _ in range(4)]
    a.attach()
    b.attach()
    for x in xs[:2]:
        model(x).sum().backward()
    (a if first_out == "first" else b).detach()
    model(xs[2]).sum().backward()  # seen by the monitor still attached only
    (b if first_out == "first" else a).detach()
    model(xs[3]).sum().backward()
    assert act.__dict__["forward"] is foreign and len(calls) == 4
    pre = torch.cat([model[0](x) for x in xs])
    still = b if first_out == "first" else a
    gone = a if first_out == "first" else b
    assert still.report()["1"].samples == 9 and gone.report()["1"].samples == 6
    assert still.report()["1"].dead_units == _never_positive(pre[:9])


def test_an_in_place_activation_that_raises_leaves_the_monitor_consistent():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(inplace=True))
    with Monitor(model) as mon:
        with pytest.raises(TypeError):
            model[1]("not a tensor")
        xs = [torch.randn(5, 4) for _ in range(2)]
        for x in xs:
            model(x)
    pre = torch.cat([model[0](x) for x in xs])
    assert mon.report()["1"].samples == 10 and mon.report()["1"].dead_units == _never_positive(pre)
