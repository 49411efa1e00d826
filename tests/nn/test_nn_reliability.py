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


# -- found by the fuzz harness (tests/fuzz) --------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "params"), [
    ("softplus", {"threshold": 1e39}), ("leaky_relu", {"negative_slope": 1e39}), ("celu", {"alpha": 1e39}),
    ("elu", {"alpha": 1e39}), ("softplus", {"beta": 1e-46}), ("leaky_relu", {"negative_slope": 1e5}),
])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_parameters_beyond_the_dtype_compute_wider_and_round_once(name, params, dtype):
    # Was: RuntimeError "value cannot be converted to type float without overflow" (float16, threshold=1e39), or
    # NaN at 0 (the slope rounded to inf): torch converts scalar parameters to the input's dtype.
    x = torch.tensor([-2.0, -0.0, 0.0, 0.5, 3.0], dtype=dtype)
    leaf = x.clone().requires_grad_(True)
    y = rnn.make(name, **params)(leaf * 1)
    y.backward(torch.ones_like(y))
    with np.errstate(over="ignore"):
        want = torch.tensor(rl.get(name)(x.double().numpy(), **params)).to(dtype)
        want_grad = torch.tensor(rl.get(name).grad(x.double().numpy(), **params)).to(dtype)
    assert y.dtype == dtype
    torch.testing.assert_close(y, want, rtol=torch.finfo(dtype).eps, atol=0)
    torch.testing.assert_close(leaf.grad, want_grad, rtol=torch.finfo(dtype).eps, atol=0)


@pytest.mark.parametrize("alpha", [5e-142, 1.1760820927695406, 1e39, 1e300])
@pytest.mark.parametrize("inplace", [False, True])
def test_celu_gradient_in_float64_for_any_alpha(alpha, inplace):
    # torch's celu backward forms 1 / alpha from alpha rounded to float32: NaN at 0 (alpha tiny), slope 0 for x < 0
    # (alpha huge), f'(0) = 0.99999996 (alpha = 1.176), all in float64. Found by the fuzz harness.
    x = torch.tensor([-1e300, -5.0, -1e-300, 0.0, 2.0], dtype=torch.float64, requires_grad=True)
    y = rnn.CELU(alpha, inplace=inplace)(x * 1)
    y.backward(torch.ones(5, dtype=torch.float64))
    np.testing.assert_allclose(x.grad.numpy(), [math.exp(v / alpha) if v <= 0 else 1.0 for v in x.detach().tolist()],
                               rtol=1e-15)
    np.testing.assert_array_equal(y.detach().numpy(), F.celu(x.detach(), alpha).numpy())
    (g,) = torch.autograd.grad(rnn.CELU(alpha)(x * 1).sum(), x, create_graph=True)  # differentiable again
    (gg,) = torch.autograd.grad(g.sum(), x)
    assert torch.isfinite(gg).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_softplus_without_threshold_does_not_overflow(dtype):
    # Was inf for x > 89 (float32) with threshold=inf: torch's kernel forms exp(beta x).
    x = torch.tensor([-math.inf, -100.0, 0.0, 100.0, 1e4, math.inf], dtype=dtype, requires_grad=True)
    y = RF.softplus(x * 1, 2.0, math.inf)
    y.backward(torch.ones_like(y))
    want = [0.0, math.log1p(math.exp(-200)) / 2, math.log(2) / 2, 100.0, 1e4, math.inf]
    torch.testing.assert_close(y.double(), torch.tensor(want, dtype=torch.float64).to(dtype).double(),
                               rtol=torch.finfo(dtype).eps, atol=0)
    assert x.grad.tolist() == [0.0, pytest.approx(1 / (1 + math.exp(200)), rel=1e-3, abs=0) if dtype == torch.float64
                               else 0.0, 0.5, 1.0, 1.0, 1.0]


def test_gain_of_huge_parameters_is_finite_or_a_named_error():
    # Was OverflowError (slope ** 2) and NaN (E[f^2] overflowing), with no argument named.
    assert rnn.gain("leaky_relu", negative_slope=1e300) == pytest.approx(math.sqrt(2) / 1e300, rel=1e-15)
    # elu with alpha = 1e300: E[f^2] = alpha^2 E[expm1(z)^2; z < 0] (+ 1/2, negligible), beyond float64 itself
    z = np.linspace(-14.0, 0.0, 200_001)
    negative = np.trapezoid(np.expm1(z) ** 2 * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi), z)
    assert rnn.gain("elu", alpha=1e300) == pytest.approx(1 / (1e300 * math.sqrt(negative)), rel=1e-8)
    with pytest.raises(ValueError, match=r"^gain: prelu's init .* got an int of \d+ bits"):
        rnn.gain("prelu", init=10**400)
    with pytest.raises(TypeError, match=r"^gain: alpha must be a real number"):
        rnn.gain("celu", alpha=np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"^gain: softplus with beta=.* beyond float64"):
        rnn.gain("softplus", beta=2.2250738585e-313)
