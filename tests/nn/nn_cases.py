"""Shared test data for tests/nn: the parameter cases per member and the inputs (random points, kinks, edges)."""

from __future__ import annotations

import numpy as np
import torch

import relulab as rl
import relulab.nn as rnn

# (id, member, parameters): every member at its defaults plus the parameter values that change its behaviour.
CASES = [
    ("relu", "relu", {}),
    ("relu-max6", "relu", {"max_value": 6.0}),
    ("relu-t1", "relu", {"threshold": 1.0}),
    ("relu-max2.5-t0.5", "relu", {"max_value": 2.5, "threshold": 0.5}),
    ("leaky_relu", "leaky_relu", {}),
    ("leaky_relu-0.2", "leaky_relu", {"negative_slope": 0.2}),
    ("leaky_relu-neg", "leaky_relu", {"negative_slope": -0.5}),
    ("rrelu", "rrelu", {}),
    ("rrelu-0.1-0.3", "rrelu", {"lower": 0.1, "upper": 0.3}),
    ("elu", "elu", {}),
    ("elu-0.5", "elu", {"alpha": 0.5}),
    ("elu-0", "elu", {"alpha": 0.0}),
    ("selu", "selu", {}),
    ("celu", "celu", {}),
    ("celu-2", "celu", {"alpha": 2.0}),
    ("relu6", "relu6", {}),
    ("hardswish", "hardswish", {}),
    ("hard_sigmoid", "hard_sigmoid", {}),
    ("hard_tanh", "hard_tanh", {}),
    ("hard_tanh-0-6", "hard_tanh", {"min_val": 0.0, "max_val": 6.0}),
    ("hard_tanh-neg2.5-0.5", "hard_tanh", {"min_val": -2.5, "max_val": 0.5}),
    ("squared_relu", "squared_relu", {}),
    ("gelu", "gelu", {}),
    ("gelu-tanh", "gelu", {"approximate": "tanh"}),
    ("silu", "silu", {}),
    ("quick_gelu", "quick_gelu", {}),
    ("mish", "mish", {}),
    ("softplus", "softplus", {}),
    ("softplus-2-5", "softplus", {"beta": 2.0, "threshold": 5.0}),
    ("sigmoid", "sigmoid", {}),
    ("tanh", "tanh", {}),
    ("identity", "identity", {}),
    ("squareplus", "squareplus", {}),
    ("squareplus-0.5", "squareplus", {"b": 0.5}),
    ("squareplus-0", "squareplus", {"b": 0.0}),
    ("sparse_plus", "sparse_plus", {}),
]
CASE_IDS = [case[0] for case in CASES]
PIECEWISE = ("relu", "leaky_relu", "relu6", "rrelu", "prelu", "hard_tanh", "hard_sigmoid")  # the members with a bit-mask lean path
KINK_AT_ZERO = [name for name in rnn.MODULES if rl.get(name).has_kink_at_zero]

BIG = np.finfo(np.float64).max
EDGES = np.array([
    -np.inf, -BIG, -1e300, -1e200, -1e154, -1e20, -1e10, -1e5, -1e4, -745.0, -50.0, -30.0, -20.0, -10.0,
    -2.2250738585072014e-308, -5e-324, -0.0, 0.0, 5e-324, 2.2250738585072014e-308, 1e-300, 1e-8,
    10.0, 20.0, 30.0, 50.0, 745.0, 1e4, 1e5, 1e10, 1e20, 1e154, 1e200, 1e300, BIG, np.inf,
])


def kinks(member: str, params: dict) -> list[float]:
    """Every point where the member's derivative jumps, plus 0 and softplus's switch to x."""
    points = [0.0, *rl.get(member).properties_for(**params).kinks]
    if member == "softplus":
        points.append(params.get("threshold", 20.0) / params.get("beta", 1.0))
    return points


def points(member: str, params: dict, seed: int = 0) -> np.ndarray:
    """Random points, the kinks and their float neighbours, and the edge values: float64, no NaN."""
    rng = np.random.default_rng(seed)
    near = []
    for k in kinks(member, params):
        near += [np.nextafter(k, -np.inf), k, np.nextafter(k, np.inf), k - 1e-3, k + 1e-3]
    return np.concatenate([rng.normal(0.0, 3.0, 200), rng.uniform(-40.0, 40.0, 50), near, EDGES])


def away_from_kinks(member: str, params: dict, n: int = 24, seed: int = 1) -> torch.Tensor:
    """float64 points at least 0.05 from every kink (for finite-difference gradcheck)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-7.0, 7.0, 4 * n)
    for k in kinks(member, params):
        x = x[np.abs(x - k) > 0.05]
    return torch.tensor(x[:n], dtype=torch.float64)


def module(member: str, params: dict, **options) -> torch.nn.Module:
    """The relulab module in evaluation mode (rrelu's deterministic mean slope), in float64."""
    return rnn.make(member, **params, **options).double().eval()


def run(m: torch.nn.Module, x: np.ndarray | torch.Tensor, grad_output: float | torch.Tensor = 1.0):
    """Forward and backward in float64; returns (values, input gradients) as NumPy arrays."""
    tensor = torch.as_tensor(x, dtype=torch.float64).clone().requires_grad_(True)
    y = m(tensor * 1.0)  # a non-leaf input, so inplace modules work too
    upstream = torch.full_like(y, grad_output) if not isinstance(grad_output, torch.Tensor) else grad_output
    y.backward(upstream)
    return y.detach().numpy(), tensor.grad.numpy()
