"""Every peer `relulab bench` times computes the member's function: the bench compares like with like.

Each implementation of every member and operation (relulab, the NumPy idioms, the torch calls) runs once on a small
input; its result is compared with a float64 reference written here from the definitions (the derivative: a central
difference of that reference, on points kept away from the kinks), never with relulab.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from relulab import bench
from relulab import family

torch = pytest.importorskip("torch")

SELU_ALPHA, SELU_SCALE = 1.6732632423543772848, 1.0507009873554804934
RRELU_MEAN_SLOPE = (1 / 8 + 1 / 3) / 2  # torch's rrelu defaults lower = 1/8, upper = 1/3


def _sigmoid(x):
    return 0.5 * (1 + np.tanh(x / 2))


REFERENCE = {  # float64 forward of each member, from its textbook definition
    "relu": lambda x: np.where(x > 0, x, 0.0),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "prelu": lambda x: np.where(x > 0, x, 0.25 * x),
    "rrelu": lambda x: np.where(x > 0, x, RRELU_MEAN_SLOPE * x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "selu": lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0))),
    "celu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "relu6": lambda x: np.minimum(np.maximum(x, 0), 6),
    "hardswish": lambda x: x * np.minimum(np.maximum(x + 3, 0), 6) / 6,
    "hard_sigmoid": lambda x: np.minimum(np.maximum(x + 3, 0), 6) / 6,
    "hard_tanh": lambda x: np.minimum(np.maximum(x, -1), 1),
    "squared_relu": lambda x: np.maximum(x, 0) ** 2,
    "gelu": lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    "silu": lambda x: x * _sigmoid(x),
    "quick_gelu": lambda x: x * _sigmoid(1.702 * x),
    "mish": lambda x: x * np.tanh(np.logaddexp(0, x)),
    "softplus": lambda x: np.where(x > 20, x, np.logaddexp(0, x)),
    "squareplus": lambda x: (x + np.sqrt(x * x + 4)) / 2,
    "sparse_plus": lambda x: np.where(x <= -1, 0, np.where(x >= 1, x, (x + 1) ** 2 / 4)),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
}
KINKS = (-3.0, -1.0, 0.0, 1.0, 3.0, 6.0, 20.0)
H = 1e-5


def _points(n: int = 256) -> np.ndarray:
    """Points in [-8, 8] and a few past softplus's threshold of 20, none within 1e-3 of a kink (float32-exact)."""
    x = np.random.default_rng(7).uniform(-8, 8, 4 * n)
    x = np.concatenate([[-22.5, -20.5, 20.5, 22.5], x])
    x = x[np.min(np.abs(x[:, None] - np.array(KINKS)[None, :]), axis=1) > 1e-3]
    return x[:n].astype(np.float32).astype(np.float64)


def _reference(member: str, op: str, x: np.ndarray) -> np.ndarray:
    f = REFERENCE[member]
    if op.startswith("grad"):
        return (f(x + H) - f(x - H)) / (2 * H)
    return f(x)


def test_every_member_but_the_skipped_has_peers():
    assert set(bench.MEMBERS) | set(bench.SKIPPED) == set(family.names())
    assert not set(bench.MEMBERS) & set(bench.SKIPPED)
    assert set(REFERENCE) == set(bench.MEMBERS)


@pytest.mark.parametrize("member", bench.MEMBERS)
def test_every_peer_computes_the_members_function(member, monkeypatch):
    x64 = _points()
    for name in ("float32", "float64"):
        dtype = np.dtype(name)
        monkeypatch.setattr(bench, "_input", lambda n, d, seed=0: x64[:n].astype(d))
        cases = bench._member_cases(member, x64.size, dtype, torch)
        assert [case.op for case in cases] == [f"{member}.{op}" for op in bench.OPS]
        tol = dict(rtol=2e-4, atol=2e-5) if name == "float32" else dict(rtol=1e-7, atol=1e-8)
        for case in cases:
            want = _reference(member, case.op.split(".")[1], x64)
            impls = [impl for impl in case.impls if impl.impl != "copy"]
            assert {impl.impl for impl in impls} == {"relulab", "numpy", "torch"}
            for impl in impls:
                if impl.setup is not None:
                    impl.setup()
                with np.errstate(all="ignore"):
                    got = impl.fn()
                got = got.numpy() if isinstance(got, torch.Tensor) else got
                assert isinstance(got, np.ndarray), (case.op, impl.label, type(got))
                assert got.dtype == dtype and got.shape == x64.shape, (case.op, impl.label, got.dtype, got.shape)
                np.testing.assert_allclose(got.astype(np.float64), want, **tol,
                                           err_msg=f"{case.op} {name} {impl.impl}: {impl.label}")
