"""Every relulab.nn module in float16 and bfloat16 against a float64 reference, with half-precision tolerances.

The reference is the family's NumPy member in float64 (itself checked against mpmath in tests/family), evaluated at
the half-precision input converted exactly to float64, then rounded to the half dtype: a module may differ from it
by rounding only (one ulp of the half dtype, twice that for the derivative, which torch forms from a rounded
forward). Issue 10: exact GELU in bfloat16 was 44 % off at x = -3 (ndtr computed in half precision).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import relulab as rl
import relulab.nn as rnn
from nn_cases import CASE_IDS, CASES, kinks

HALF = [torch.float16, torch.bfloat16]


def half_points(member: str, params: dict, dtype: torch.dtype) -> torch.Tensor:
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(0.0, 3.0, 300), rng.uniform(-12.0, 12.0, 100), [-3.0, -1.0, -0.5, 0.5, 1.0],
                             [float(torch.finfo(dtype).max), -float(torch.finfo(dtype).max), np.inf, -np.inf]])
    x = torch.tensor(values).to(dtype)
    # Points within one half ulp of a kink round onto either side; the kink's own convention is tested elsewhere.
    for k in kinks(member, params):
        if k != 0.0:
            x = x[(x.double() - k).abs() > 0.1]
    return x


def reference(member: str, params: dict, x: torch.Tensor, grad: bool) -> np.ndarray:
    fn = rl.get(member).grad if grad else rl.get(member)
    with np.errstate(over="ignore"):
        return fn(x.double().numpy(), **params)


def assert_close_in(dtype: torch.dtype, got: torch.Tensor, want: np.ndarray, ulps: float, what: str,
                    absolute: float = 0.0) -> None:
    """Within ``ulps`` of the rounded reference (relative), plus ``absolute`` * eps and a few of the dtype's tiny."""
    eps = torch.finfo(dtype).eps
    want_rounded = torch.tensor(want).to(dtype).double()
    got = got.double()
    finite = torch.isfinite(want_rounded)
    assert torch.equal(got[~finite], want_rounded[~finite]), f"{what}: infinities differ"
    error = (got[finite] - want_rounded[finite]).abs()
    allowed = ulps * eps * want_rounded[finite].abs() + absolute * eps + 4 * torch.finfo(dtype).tiny
    worst = int((error - allowed).argmax())
    assert bool((error <= allowed).all()), (
        f"{what}: element {worst}: got {got[finite][worst]!r}, want {want_rounded[finite][worst]!r}")


@pytest.mark.parametrize("dtype", HALF, ids=["float16", "bfloat16"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_half_precision_forward_and_backward_match_float64(case, dtype):
    _, member, params = case
    x = half_points(member, params, dtype)
    m = rnn.make(member, **params).eval()
    tensor = x.clone().requires_grad_(True)
    y = m(tensor * 1)
    assert y.dtype == dtype
    y.backward(torch.ones_like(y))
    assert_close_in(dtype, y.detach(), reference(member, params, x, grad=False), 1.0, f"{member} value")
    # sigmoid and tanh save their rounded output y, as torch does, and form y (1 - y) or 1 - y^2 from it: an
    # absolute error of about one ulp of y (docs/nn.md says so), not a relative one.
    absolute = 2.0 if member in ("sigmoid", "tanh") else 0.0
    assert_close_in(dtype, tensor.grad, reference(member, params, x, grad=True), 2.0, f"{member} derivative",
                    absolute)


@pytest.mark.parametrize("lean", [False, True])
@pytest.mark.parametrize("dtype", HALF, ids=["float16", "bfloat16"])
def test_prelu_half_precision(dtype, lean):
    m = rnn.PReLU(3, init=0.3, lean=lean).to(dtype)
    x = torch.linspace(-6, 6, 30, dtype=dtype).reshape(10, 3)
    leaf = x.clone().requires_grad_(True)
    y = m(leaf * 1)
    y.backward(torch.ones_like(y))
    weight = m.weight.detach().double().numpy()
    want = rl.prelu(x.double().numpy(), weight)
    np.testing.assert_array_equal(y.detach().double().numpy(), torch.tensor(want).to(dtype).double().numpy())
    want_grad = rl.prelu.grad(x.double().numpy(), weight)
    np.testing.assert_array_equal(leaf.grad.double().numpy(), torch.tensor(want_grad).to(dtype).double().numpy())
    # dL/dw = sum of min(x, 0) per channel, summed in at least the half dtype's precision
    want_w = rl.prelu.grad_weight(x.double().numpy(), weight).sum(axis=0)
    np.testing.assert_allclose(m.weight.grad.double().numpy(), want_w, rtol=4 * torch.finfo(dtype).eps)


def test_exact_gelu_in_bfloat16_at_minus_three():
    x = torch.tensor([-3.0], dtype=torch.bfloat16)
    want = torch.tensor(rl.gelu(np.array([-3.0]))).to(torch.bfloat16)  # -0.0040496 -> -0.00405
    assert torch.equal(rnn.functional.gelu(x), want)
