"""relulab.nn findings of issue 10, each pinned against torch or a float64 reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import relulab as rl
import relulab.nn as rnn
import relulab.nn.functional as RF


@pytest.mark.parametrize("name", ["silu", "mish", "gelu"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_double_backward_on_both_paths(name, dtype):
    # Was: "derivative for aten::silu_backward is not implemented" on the inf-safe path, which runs when the data
    # hold an infinity (or in half precision), so whether create_graph worked depended on the data.
    finite = torch.tensor([-3.0, -0.5, 0.25, 2.0], dtype=dtype)
    native = getattr(F, name)
    for extra in ([], [math.inf], [-math.inf]):
        x = torch.cat([finite, torch.tensor(extra, dtype=dtype)]).requires_grad_(True)
        (g,) = torch.autograd.grad(getattr(RF, name)(x).sum(), x, create_graph=True)
        (gg,) = torch.autograd.grad(g.sum(), x)
        ref_x = finite.double().requires_grad_(True)
        (ref_g,) = torch.autograd.grad(native(ref_x).sum(), ref_x, create_graph=True)
        (ref_gg,) = torch.autograd.grad(ref_g.sum(), ref_x)
        rtol = 1e-12 if dtype == torch.float64 else 1e-5
        torch.testing.assert_close(g[:4].double(), ref_g.detach(), rtol=rtol, atol=rtol)
        torch.testing.assert_close(gg[:4].double(), ref_gg, rtol=rtol, atol=rtol)
        if extra:
            assert g[4].item() == (1.0 if extra[0] > 0 else 0.0) and gg[4].item() == 0.0


def test_double_backward_gradgradcheck_on_the_fixed_path():
    x = torch.tensor([-2.0, -0.3, 0.7, 1.9], dtype=torch.float64, requires_grad=True)
    for name in ("silu", "mish", "gelu"):
        op = getattr(rnn.functional, name)
        fixed = lambda t: op(torch.cat([t, torch.tensor([math.inf], dtype=t.dtype)]))[:-1]
        assert torch.autograd.gradgradcheck(fixed, (x,))


@pytest.mark.parametrize("lean", [True, False])
@pytest.mark.parametrize("weight_grad", [True, False])
def test_prelu_under_autocast_bfloat16(lean, weight_grad):
    # Was: RuntimeError "Found dtype Float but expected BFloat16" (the lean path's kernel got a float32 weight).
    torch.manual_seed(0)
    x = torch.randn(16, 3, requires_grad=True)
    w = torch.randn(3, 3)
    ours, ref = rnn.PReLU(3, lean=lean), torch.nn.PReLU(3)
    ours.weight.requires_grad_(weight_grad)
    ref.weight.requires_grad_(weight_grad)
    with torch.autocast("cpu", torch.bfloat16):
        h = x @ w
        y, y_ref = ours(h), ref(h)
    assert y.dtype == y_ref.dtype == torch.bfloat16
    assert torch.equal(y, y_ref)
    y.float().sum().backward(retain_graph=True)
    grad = x.grad.clone()
    x.grad = None
    y_ref.float().sum().backward()
    assert torch.equal(grad, x.grad)
    if weight_grad and not lean:  # the native path is torch's own F.prelu
        assert torch.equal(ours.weight.grad, ref.weight.grad)
    if weight_grad and lean:  # the lean path sums the slope gradient in float32 (torch in bfloat16): vs float64
        want = torch.clamp(h.detach().double(), max=0).sum(0)
        torch.testing.assert_close(ours.weight.grad.double(), want, rtol=1e-6, atol=1e-6)


def test_rrelu_training_must_be_a_bool():
    # Was: bool("False") is True, so rrelu(training="False") trained.
    with pytest.raises(TypeError, match=r"^rrelu: training must be True or False; got 'False' \(type str\)$"):
        RF.rrelu(torch.tensor([-1.0]), training="False")
    with pytest.raises(TypeError, match=r"^rrelu: training must be True or False"):
        RF.rrelu(torch.tensor([-1.0]), training=1)


@pytest.mark.parametrize("inplace", [False, True])
def test_rrelu_lean_draws_the_same_slopes_as_torch(inplace):
    # Was: the lean path drew its own uniform noise, so RReLU(lean=True) and RReLU() differed for one seed.
    x = torch.linspace(-3, 3, 101)
    results = []
    for module in (torch.nn.RReLU(), rnn.RReLU(), rnn.RReLU(lean=True), rnn.RReLU(lean=True, inplace=inplace)):
        torch.manual_seed(123)
        leaf = x.clone().requires_grad_(True)
        y = module(leaf * 1)
        y.backward(torch.ones_like(y))
        results.append((y.detach(), leaf.grad))
    for y, grad in results[1:]:
        assert torch.equal(y, results[0][0]) and torch.equal(grad, results[0][1])
    slopes = results[0][0][x < 0] / x[x < 0]
    assert bool(((slopes >= 1 / 8) & (slopes <= 1 / 3)).all()) and len(set(slopes.tolist())) > 10


def test_softplus_threshold_below_zero_is_accepted_as_torch():
    # torch's own module tests use nn.Softplus(2, -100); relulab refused threshold <= 0.
    x = torch.linspace(-60, 5, 131, dtype=torch.float64)
    for beta, threshold in ((2.0, -100.0), (1.0, -1.0), (0.5, 0.0)):
        assert torch.equal(rnn.Softplus(beta, threshold)(x), F.softplus(x, beta, threshold))
        np.testing.assert_allclose(rnn.Softplus(beta, threshold)(x).numpy(),
                                   rl.softplus(x.numpy(), beta=beta, threshold=threshold), rtol=4e-16, atol=0)
