"""relulab's speed against its peers, measured in one process, interleaved: ``relulab bench``.

For every member but identity (MEMBERS; SKIPPED says why), five operations are timed: the forward allocating its
result, the forward into a given buffer (``out=``), the forward in place, and the derivative allocating (``grad``)
and into a buffer (``grad_out``). Each is timed for

* **relulab** -- the member itself (``rl.relu(x, out=y)``; the fast path of family/_parallel.py);
* **numpy** -- the plain NumPy one-liners people write (``np.maximum(x, 0)``, ``x * (x > 0)``, ...), into a buffer
  as ``y[...] = <one-liner>`` unless a ufunc's ``out=`` does better;
* **torch** -- PyTorch on the CPU on the same memory (``F.relu``, ``relu_``, ``clamp_min(out=)``; for derivatives
  the aten backward kernels with a scalar upstream gradient of 1; for members torch lacks, the obvious torch
  composition, labelled), skipped with a note when torch is missing;
* **copy** -- a copy of the same bytes (``np.copyto`` on one thread and on every core), timed with each member's
  forward into a buffer: the bandwidth reference.

tests/test_bench.py checks that every peer computes the member's function (against a float64 reference).

The implementations of one case run in rotating order within each repeat, so drift and background load hit all
of them alike; each figure is the median over the repeats. Bandwidth counts bytes read plus bytes written (for
relu into a buffer: 2 x n x itemsize), so "vs copy" is the fraction of the machine's copy bandwidth reached.

Fused operations (family/fused.py) are timed against their unfused compositions, and the textbook claim that
relu is cheap is measured as what sigmoid and tanh cost relative to relu, in NumPy and in torch.

    relulab bench                      # full run: 64 KiB .. 256 MiB per array
    relulab bench --quick --json       # under a minute
    relulab bench --dtype float32 float64 --markdown README.md   # regenerate the README's tables
    python benchmarks/bench_family.py  # the same
"""

from __future__ import annotations

import datetime
import gc
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import family
from ._io import write_atomic
from .family import fused

__all__ = ["MEMBERS", "SKIPPED", "DTYPES", "OPS", "FULL_SIZES", "QUICK_SIZES", "BenchConfig", "run_bench",
           "format_report", "format_markdown", "write_markdown", "parse_size", "ByteSize", "elements_for",
           "main_rows_for"]

DTYPES = ("float16", "float32", "float64")
# Forward allocating, into a buffer, in place; the derivative allocating and into a buffer.
OPS = ("forward", "forward_out", "forward_inplace", "grad", "grad_out")
IMPLS = ("relulab", "numpy", "torch", "copy")
SKIPPED = {"identity": "identity is not timed: f(x) = x computes nothing (every peer would be a copy or a no-op)"}


def _defaults(member: str) -> dict[str, Any]:
    return {p.name: p.default for p in family.get(member).params}


SLOPE = _defaults("leaky_relu")["negative_slope"]
PRELU_WEIGHT = 0.25  # torch.nn.PReLU's initial slope (one for all channels)
RRELU_SLOPE = (_defaults("rrelu")["lower"] + _defaults("rrelu")["upper"]) / 2  # rrelu in eval: the mean slope
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805  # torch's selu constants (elu's alpha and scale)
QUICK_GELU_K = 1.702
GELU_C = math.sqrt(2.0 / math.pi)  # gelu is timed in its tanh form, the one NumPy can express without erf
# The members with peers (every member relulab ships, in its order, but those in SKIPPED).
MEMBERS = ("relu", "leaky_relu", "prelu", "rrelu", "elu", "selu", "celu", "relu6", "hardswish", "hard_sigmoid",
           "hard_tanh", "squared_relu", "gelu", "silu", "quick_gelu", "mish", "softplus", "squareplus", "sparse_plus",
           "sigmoid", "tanh")
# What a reader of a row must know about its peers.
NOTES = {
    "gelu": "tanh approximation (NumPy has no erf)",
    "prelu": "one weight of 0.25 for all channels (torch.nn.PReLU's default); torch's backward kernel also "
             "computes the weight's elementwise gradient",
    "rrelu": "eval mode (training=False): leaky_relu with the mean slope (lower + upper) / 2",
    "softplus": "beta = 1, threshold = 20 (torch's defaults)",
    "squareplus": "b = 4 (JAX's default); torch has no squareplus: a torch composition",
    "sparse_plus": "JAX's definition; torch has no sparse_plus: a torch composition",
    "squared_relu": "torch has no squared_relu: a torch composition",
    "quick_gelu": "x sigmoid(1.702 x); torch has no quick_gelu: a torch composition",
    "sigmoid": "torch's sigmoid_backward takes the forward's output (computed before the timing), relulab takes x",
    "tanh": "torch's tanh_backward takes the forward's output (computed before the timing), relulab takes x",
}

FULL_SIZES = (1 << 14, 1 << 18, 1 << 22, 1 << 26)  # float32: 64 KiB (L1/L2), 1 MiB (L2), 16 MiB (L3), 256 MiB
QUICK_SIZES = (1 << 14, 1 << 20)


@dataclass
class BenchConfig:
    sizes: Sequence[int] = FULL_SIZES
    dtype: str | Sequence[str] = "float32"  # one element type or several, timed one after the other
    members: Sequence[str] = MEMBERS
    repeats: int = 5
    min_sample_s: float = 0.01  # a sample repeats the call until it has run this long (timer resolution, noise)
    fused: bool = True
    torch: bool = True
    quick: bool = False

    @property
    def dtypes(self) -> tuple[str, ...]:
        return (self.dtype,) if isinstance(self.dtype, str) else tuple(self.dtype)

    @classmethod
    def quick_config(cls, **overrides: Any) -> "BenchConfig":
        settings = dict(sizes=QUICK_SIZES, repeats=3, min_sample_s=0.002, quick=True)
        settings.update(overrides)
        return cls(**settings)


@dataclass
class Impl:
    impl: str  # relulab, numpy, torch or copy
    label: str  # the exact call
    fn: Callable[[], Any]
    setup: Callable[[], Any] | None = None  # untimed, before every call (restores an in-place buffer)
    variant: str = ""  # fused / unfused for the fused operations
    times: list[float] = field(default_factory=list)


@dataclass
class Case:
    op: str
    member: str
    n: int
    dtype: str
    nbytes: int  # bytes read + written by one call
    impls: list[Impl]
    note: str = ""


class ByteSize(int):
    """A size given in bytes per array (``64KiB``, ``256MiB``): each dtype is timed on ``bytes // itemsize``
    elements, so float32 and float64 cover the same range of memory."""

    def elements(self, dtype: np.dtype) -> int:
        return int(self) // np.dtype(dtype).itemsize

    def __str__(self) -> str:
        for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
            if self >= scale and self % scale == 0:
                return f"{int(self) // scale}{unit}"
        return f"{int(self)}B"


_BYTE_UNITS = {"B": 1, "KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30}


def parse_size(text: str) -> int:
    """An element count: ``65536``, ``64K`` (x 1024), ``4M`` (x 1024^2), ``1G`` or ``2^20``; or bytes per array,
    the same for every dtype: ``64KiB``, ``4MiB``, ``1GiB``, ``4096B`` (a :class:`ByteSize`)."""
    raw = text.strip()
    unit = next((u for u in sorted(_BYTE_UNITS, key=len, reverse=True) if raw.upper().endswith(u)), None)
    try:
        if unit is not None and raw[:-len(unit)].strip().isdigit():
            return ByteSize(int(raw[:-len(unit)]) * _BYTE_UNITS[unit])
        if "^" in raw or "**" in raw:
            base, exponent = raw.replace("**", "^").split("^")
            value = int(base) ** int(exponent)
        elif raw[-1:].upper() in "KMG" and raw[:-1]:
            value = int(raw[:-1]) * 1024 ** ("KMG".index(raw[-1].upper()) + 1)
        else:
            value = int(raw)
    except (ValueError, IndexError):
        raise ValueError(f"size must be an element count such as 65536, 64K, 4M or 2^20, or bytes per array such as "
                         f"64KiB or 256MiB; got {text!r}") from None
    if value < 64:
        raise ValueError(f"size must be at least 64 elements; got {text!r}")
    return value


def elements_for(size: int, dtype: np.dtype) -> int:
    """The element count a size means for ``dtype`` (a :class:`ByteSize` is divided by the item size)."""
    return size.elements(dtype) if isinstance(size, ByteSize) else int(size)


# -- the cases -------------------------------------------------------------------------------------------------------
# The peers of each member: the allocating one-liners people write with NumPy (forward, derivative), from which the
# into-a-buffer and in-place forms are ``y[...] = <the one-liner>`` and ``x[...] = ...``, unless a member has a
# better idiom (``np.maximum(x, 0, out=y)``) in _NUMPY_IDIOMS.
def _into(target: np.ndarray, value: Any) -> np.ndarray:
    target[...] = value
    return target


def _numpy_forms(d: np.dtype) -> dict[str, tuple[str, Callable, str, Callable]]:
    """member -> (forward label, forward(x), derivative label, derivative(x)); constants of x's dtype."""
    c = d.type
    s, w, a = c(SLOPE), c(PRELU_WEIGHT), c(RRELU_SLOPE)
    lam, alpha = c(SELU_SCALE), c(SELU_ALPHA)
    zero, one, sixth, k = c(0), c(1), c(1 / 6), c(QUICK_GELU_K)

    def sigmoid(x):
        return one / (one + np.exp(-x))

    def mish_grad(x):
        t = np.tanh(np.logaddexp(zero, x))
        return t + x * (one - t * t) * sigmoid(x)

    def quick_gelu_grad(x):
        q = sigmoid(k * x)
        return q + k * x * q * (one - q)

    return {
        "relu": ("np.maximum(x, 0)", lambda x: np.maximum(x, 0),
                 "(x > 0).astype(x.dtype)", lambda x: (x > 0).astype(d)),
        "leaky_relu": ("np.where(x > 0, x, s * x)", lambda x: np.where(x > 0, x, s * x),
                       "np.where(x > 0, 1, s)", lambda x: np.where(x > 0, one, s)),
        "prelu": ("np.where(x > 0, x, w * x), w = 0.25", lambda x: np.where(x > 0, x, w * x),
                  "np.where(x > 0, 1, w)", lambda x: np.where(x > 0, one, w)),
        "rrelu": ("np.where(x > 0, x, a * x), a = (l + u) / 2", lambda x: np.where(x > 0, x, a * x),
                  "np.where(x > 0, 1, a)", lambda x: np.where(x > 0, one, a)),
        "elu": ("np.where(x > 0, x, np.expm1(x))", lambda x: np.where(x > 0, x, np.expm1(x)),
                "np.where(x > 0, 1, np.exp(x))", lambda x: np.where(x > 0, one, np.exp(x))),
        "selu": ("lam * np.where(x > 0, x, alpha * np.expm1(x))",
                 lambda x: lam * np.where(x > 0, x, alpha * np.expm1(x)),
                 "lam * np.where(x > 0, 1, alpha * np.exp(x))",
                 lambda x: lam * np.where(x > 0, one, alpha * np.exp(x))),
        "celu": ("np.where(x > 0, x, np.expm1(x / 1.0))", lambda x: np.where(x > 0, x, np.expm1(x / one)),
                 "np.where(x > 0, 1, np.exp(x / 1.0))", lambda x: np.where(x > 0, one, np.exp(x / one))),
        "relu6": ("np.clip(x, 0, 6)", lambda x: np.clip(x, 0, 6),
                  "((x > 0) & (x < 6)).astype(x.dtype)", lambda x: ((x > 0) & (x < 6)).astype(d)),
        "hardswish": ("x * np.clip(x + 3, 0, 6) / 6", lambda x: x * np.clip(x + 3, 0, 6) / 6,
                      "np.where(x <= -3, 0, np.where(x >= 3, 1, (2 * x + 3) / 6))",
                      lambda x: np.where(x <= -3, zero, np.where(x >= 3, one, (2 * x + 3) / 6))),
        "hard_sigmoid": ("np.clip(x / 6 + 0.5, 0, 1)", lambda x: np.clip(x / 6 + c(0.5), 0, 1),
                         "np.where((x > -3) & (x < 3), 1 / 6, 0)", lambda x: np.where((x > -3) & (x < 3), sixth, zero)),
        "hard_tanh": ("np.clip(x, -1, 1)", lambda x: np.clip(x, -1, 1),
                      "((x > -1) & (x < 1)).astype(x.dtype)", lambda x: ((x > -1) & (x < 1)).astype(d)),
        "squared_relu": ("np.square(np.maximum(x, 0))", lambda x: np.square(np.maximum(x, 0)),
                         "2 * np.maximum(x, 0)", lambda x: 2 * np.maximum(x, 0)),
        "gelu": ("0.5 * x * (1 + np.tanh(c * (x + 0.044715 * x**3)))", lambda x: _gelu_tanh(x, d),
                 "t = tanh(u); 0.5 (1 + t) + 0.5 x (1 - t^2) u'", lambda x: _gelu_tanh_grad(x, d)),
        "silu": ("x / (1 + np.exp(-x))", lambda x: x / (one + np.exp(-x)),
                 "s = 1 / (1 + np.exp(-x)); s * (1 + x * (1 - s))", lambda x: _silu_grad(x, one)),
        "quick_gelu": ("x / (1 + np.exp(-1.702 * x))", lambda x: x / (one + np.exp(-k * x)),
                       "q = sigmoid(1.702 x); q + 1.702 x q (1 - q)", quick_gelu_grad),
        "mish": ("x * np.tanh(np.logaddexp(0, x))", lambda x: x * np.tanh(np.logaddexp(zero, x)),
                 "t = tanh(softplus(x)); t + x (1 - t^2) sigmoid(x)", mish_grad),
        "softplus": ("np.where(x > 20, x, np.log1p(np.exp(x)))", lambda x: np.where(x > 20, x, np.log1p(np.exp(x))),
                     "np.where(x > 20, 1, 1 / (1 + np.exp(-x)))", lambda x: np.where(x > 20, one, sigmoid(x))),
        "squareplus": ("(x + np.sqrt(x * x + 4)) / 2", lambda x: (x + np.sqrt(x * x + 4)) / 2,
                       "(1 + x / np.sqrt(x * x + 4)) / 2", lambda x: (one + x / np.sqrt(x * x + 4)) / 2),
        "sparse_plus": ("np.where(x <= -1, 0, np.where(x >= 1, x, (x + 1)**2 / 4))",
                        lambda x: np.where(x <= -1, zero, np.where(x >= 1, x, (x + 1) ** 2 / 4)),
                        "np.clip((x + 1) / 2, 0, 1)", lambda x: np.clip((x + 1) / 2, 0, 1)),
        "sigmoid": ("1 / (1 + np.exp(-x))", sigmoid,
                    "s = 1 / (1 + np.exp(-x)); s * (1 - s)", lambda x: _sigmoid_grad(x, one)),
        "tanh": ("np.tanh(x)", np.tanh, "1 - np.tanh(x)**2", lambda x: one - np.tanh(x) ** 2),
    }


def _numpy_idioms(member: str, op: str, x: np.ndarray, y: np.ndarray, dtype: np.dtype):
    """(label, callable) pairs: how people write this member with NumPy alone. Each callable returns its result."""
    f_label, f, g_label, g = _numpy_forms(dtype)[member]
    special = _numpy_special(member, op, x, y, dtype)
    generic = {"forward": [(f_label, lambda: f(x))],
               "forward_out": [(f"y[...] = {f_label}", lambda: _into(y, f(x)))],
               "forward_inplace": [(f"x[...] = {f_label}", lambda: _into(x, f(x)))],
               "grad": [(g_label, lambda: g(x))],
               "grad_out": [(f"y[...] = {g_label}", lambda: _into(y, g(x)))]}[op]
    if special is None:
        return generic
    return generic + special if op in ("forward", "grad") else special


def _numpy_special(member: str, op: str, x: np.ndarray, y: np.ndarray, dtype: np.dtype):
    """The idioms better than ``y[...] = <one-liner>``: ufuncs with out=, or a second common spelling."""
    c = dtype.type
    s, one = c(SLOPE), c(1)

    def gelu_into(target):
        k, gc, half = c(0.044715), c(GELU_C), c(0.5)
        np.multiply(x, x, out=target); target *= x; target *= k; target += x; target *= gc
        np.tanh(target, out=target); target += one; target *= x; target *= half
        return target

    def sigmoid_into(source, target):
        np.negative(source, out=target); np.exp(target, out=target); target += one
        return np.reciprocal(target, out=target)

    def leaky_grad_into():
        y.fill(s)
        np.copyto(y, one, where=x > 0)
        return y

    table: dict[tuple[str, str], list[tuple[str, Callable[[], Any]]]] = {
        ("relu", "forward"): [("x * (x > 0)", lambda: x * (x > 0)),
                              ("np.where(x > 0, x, 0)", lambda: np.where(x > 0, x, 0))],
        ("relu", "forward_out"): [("np.maximum(x, 0, out=y)", lambda: np.maximum(x, 0, out=y)),
                                  ("np.multiply(x, x > 0, out=y)", lambda: np.multiply(x, x > 0, out=y))],
        ("relu", "forward_inplace"): [("np.maximum(x, 0, out=x)", lambda: np.maximum(x, 0, out=x))],
        ("relu", "grad"): [("np.heaviside(x, 0)", lambda: np.heaviside(x, c(0)))],
        ("relu", "grad_out"): [("np.heaviside(x, 0, out=y)", lambda: np.heaviside(x, 0, out=y))],
        ("leaky_relu", "forward"): [("np.maximum(x, s * x)", lambda: np.maximum(x, s * x))],
        ("leaky_relu", "forward_out"): [
            ("np.multiply(x, s, out=y); np.maximum(x, y, out=y)",
             lambda: np.maximum(x, np.multiply(x, s, out=y), out=y))],
        ("leaky_relu", "forward_inplace"): [("np.maximum(x, s * x, out=x)", lambda: np.maximum(x, s * x, out=x))],
        ("leaky_relu", "grad_out"): [("y[...] = s; np.copyto(y, 1, where=x > 0)", leaky_grad_into)],
        ("elu", "forward_out"): [("np.expm1(np.minimum(x, 0, out=y), out=y); np.maximum(x, y, out=y)",
                                  lambda: np.maximum(x, np.expm1(np.minimum(x, 0, out=y), out=y), out=y))],
        ("elu", "forward_inplace"): [("np.expm1(x, out=x, where=x <= 0)", lambda: np.expm1(x, out=x, where=x <= 0))],
        ("elu", "grad_out"): [("np.exp(np.minimum(x, 0, out=y), out=y)",
                               lambda: np.exp(np.minimum(x, 0, out=y), out=y))],
        ("relu6", "forward_out"): [("np.clip(x, 0, 6, out=y)", lambda: np.clip(x, 0, 6, out=y))],
        ("relu6", "forward_inplace"): [("np.clip(x, 0, 6, out=x)", lambda: np.clip(x, 0, 6, out=x))],
        ("hard_tanh", "forward_out"): [("np.clip(x, -1, 1, out=y)", lambda: np.clip(x, -1, 1, out=y))],
        ("hard_tanh", "forward_inplace"): [("np.clip(x, -1, 1, out=x)", lambda: np.clip(x, -1, 1, out=x))],
        ("gelu", "forward_out"): [("the same, step by step into y", lambda: gelu_into(y))],
        ("gelu", "forward_inplace"): [("x *= 0.5 * (1 + np.tanh(c * (x + 0.044715 * x**3)))",
                                       lambda: np.multiply(x, _gelu_factor(x, dtype), out=x))],
        ("silu", "forward_out"): [("np.exp(-x) + 1 into y; np.divide(x, y, out=y)",
                                   lambda: np.divide(x, np.add(np.exp(np.negative(x, out=y), out=y), one, out=y),
                                                     out=y))],
        ("silu", "forward_inplace"): [("np.divide(x, 1 + np.exp(-x), out=x)",
                                       lambda: np.divide(x, one + np.exp(-x), out=x))],
        ("sigmoid", "forward_out"): [("np.exp(-x) + 1 into y; np.reciprocal(y, out=y)", lambda: sigmoid_into(x, y))],
        ("sigmoid", "forward_inplace"): [("the same with y = x", lambda: sigmoid_into(x, x))],
        ("tanh", "forward_out"): [("np.tanh(x, out=y)", lambda: np.tanh(x, out=y))],
        ("tanh", "forward_inplace"): [("np.tanh(x, out=x)", lambda: np.tanh(x, out=x))],
        ("tanh", "grad_out"): [("np.tanh(x, out=y); y *= y; np.subtract(1, y, out=y)",
                                lambda: np.subtract(one, np.square(np.tanh(x, out=y), out=y), out=y))],
    }
    return table.get((member, op))


def _gelu_factor(x, dtype):
    c, k, half, one = (dtype.type(v) for v in (GELU_C, 0.044715, 0.5, 1.0))
    return half * (one + np.tanh(c * (x + k * x**3)))


def _gelu_tanh(x, dtype):
    return x * _gelu_factor(x, dtype)


def _gelu_tanh_grad(x, dtype):
    c, k, half, one = (dtype.type(v) for v in (GELU_C, 0.044715, 0.5, 1.0))
    t = np.tanh(c * (x + k * x**3))
    return half * (one + t) + half * x * (one - t * t) * c * (one + dtype.type(3) * k * x * x)


def _silu_grad(x, one):
    s = one / (one + np.exp(-x))
    return s * (one + x * (one - s))


def _sigmoid_grad(x, one):
    s = one / (one + np.exp(-x))
    return s * (one - s)


def _torch_table(member: str, op: str, t, ty, torch) -> dict[str, tuple[str, Callable[[], Any]]]:
    """op -> (label, callable) for PyTorch on the CPU, on tensors sharing x's and y's memory. An op left out is
    filled in by _torch_calls (the allocating call where torch has no out= or in-place form). Every member torch
    has comes with an aten backward kernel, so none needs autograd. Derivatives: the aten backward kernels with a
    scalar upstream gradient of 1, which then give f'(x)."""
    F = torch.nn.functional
    aten = torch.ops.aten
    g = torch.ones((), dtype=t.dtype)
    w = torch.full((1,), PRELU_WEIGHT, dtype=t.dtype)
    lo, hi = _defaults("rrelu")["lower"], _defaults("rrelu")["upper"]

    def quick_gelu_grad(out=None):
        q = torch.sigmoid(QUICK_GELU_K * t)
        return torch.mul(q, 1 + QUICK_GELU_K * t * (1 - q), out=out)

    def kernels(forward, out, inplace, backward, into="grad_input"):
        """The five ops of a member torch has, from its allocating call, its aten op and arguments (called with
        out=y), its in-place call and its aten backward and arguments (allocating, and with ``into``=y). The
        overloads are named (``.out``, ``.default``): resolving a packet's overload costs ~10 us a call."""
        (out_label, op, args, *kw), (back_label, back, back_args, *back_kw) = out, backward
        kw, back_kw = (kw or [{}])[0], (back_kw or [{}])[0]
        return {"forward": forward,
                "forward_out": (f"{out_label[:-1]}, out=y)", lambda: op.out(*args, out=ty, **kw)),
                "forward_inplace": inplace,
                "grad": (back_label, lambda: back.default(*back_args, **back_kw)),
                "grad_out": (f"{back_label[:-1]}, {into}=y)",
                             lambda: getattr(back, into)(*back_args, **{into: ty}, **back_kw))}

    tables: dict[str, dict[str, tuple[str, Callable[[], Any]]]] = {
        "relu": kernels(("F.relu(x)", lambda: F.relu(t)), ("torch.clamp_min(x, 0)", aten.clamp_min, (t, 0)),
                        ("F.relu_(x)", lambda: F.relu_(t)),
                        ("threshold_backward(1, x, 0)", aten.threshold_backward, (g, t, 0))),
        "leaky_relu": kernels(("F.leaky_relu(x, s)", lambda: F.leaky_relu(t, SLOPE)),
                              ("leaky_relu(x, s)", aten.leaky_relu, (t, SLOPE)),
                              ("F.leaky_relu_(x, s)", lambda: F.leaky_relu_(t, SLOPE)),
                              ("leaky_relu_backward(1, x, s)", aten.leaky_relu_backward, (g, t, SLOPE, False))),
        "prelu": {"forward": ("F.prelu(x, w), w = [0.25]", lambda: F.prelu(t, w)),
                  "grad": ("_prelu_kernel_backward(1, x, w)[0] (also computes the weight's gradient)",
                           lambda: aten._prelu_kernel_backward.default(g.expand(t.shape), t, w)[0])},
        "rrelu": kernels(("F.rrelu(x, training=False)", lambda: F.rrelu(t, lo, hi, training=False)),
                         ("leaky_relu(x, (l + u) / 2)", aten.leaky_relu, (t, RRELU_SLOPE)),
                         ("F.rrelu_(x, training=False)", lambda: F.rrelu_(t, lo, hi, training=False)),
                         ("leaky_relu_backward(1, x, (l + u) / 2)", aten.leaky_relu_backward,
                          (g, t, RRELU_SLOPE, False))),
        "elu": kernels(("F.elu(x)", lambda: F.elu(t)), ("elu(x)", aten.elu, (t,)),
                       ("F.elu_(x)", lambda: F.elu_(t)),
                       ("elu_backward(1, x)", aten.elu_backward, (g, 1.0, 1, 1, False, t))),
        "selu": kernels(("F.selu(x)", lambda: F.selu(t)),
                        ("elu(x, alpha, scale)", aten.elu, (t, SELU_ALPHA, SELU_SCALE, 1)),
                        ("F.selu(x, inplace=True)", lambda: F.selu(t, inplace=True)),
                        ("elu_backward(1, alpha, scale, 1, x)", aten.elu_backward,
                         (g, SELU_ALPHA, SELU_SCALE, 1, False, t))),
        "celu": kernels(("F.celu(x)", lambda: F.celu(t)), ("celu(x)", aten.celu, (t, 1.0)),
                        ("F.celu(x, inplace=True)", lambda: F.celu(t, inplace=True)),
                        ("elu_backward(1, 1, 1, 1 / alpha, x)", aten.elu_backward, (g, 1.0, 1, 1.0, False, t))),
        "relu6": kernels(("F.relu6(x)", lambda: F.relu6(t)), ("hardtanh(x, 0, 6)", aten.hardtanh, (t, 0, 6)),
                         ("F.relu6(x, inplace=True)", lambda: F.relu6(t, inplace=True)),
                         ("hardtanh_backward(1, x, 0, 6)", aten.hardtanh_backward, (g, t, 0, 6))),
        "hardswish": kernels(("F.hardswish(x)", lambda: F.hardswish(t)), ("hardswish(x)", aten.hardswish, (t,)),
                             ("F.hardswish(x, inplace=True)", lambda: F.hardswish(t, inplace=True)),
                             ("hardswish_backward(1, x)", aten.hardswish_backward, (g, t)), into="out"),
        "hard_sigmoid": kernels(("F.hardsigmoid(x)", lambda: F.hardsigmoid(t)),
                                ("hardsigmoid(x)", aten.hardsigmoid, (t,)),
                                ("F.hardsigmoid(x, inplace=True)", lambda: F.hardsigmoid(t, inplace=True)),
                                ("hardsigmoid_backward(1, x)", aten.hardsigmoid_backward, (g, t))),
        "hard_tanh": kernels(("F.hardtanh(x)", lambda: F.hardtanh(t)),
                             ("hardtanh(x, -1, 1)", aten.hardtanh, (t, -1, 1)),
                             ("F.hardtanh_(x)", lambda: F.hardtanh_(t)),
                             ("hardtanh_backward(1, x, -1, 1)", aten.hardtanh_backward, (g, t, -1, 1))),
        "squared_relu": {"forward": ("torch composition: torch.square(F.relu(x))", lambda: torch.square(F.relu(t))),
                         "forward_out": ("torch composition: clamp_min(x, 0, out=y).square_()",
                                         lambda: torch.clamp_min(t, 0, out=ty).square_()),
                         "forward_inplace": ("torch composition: F.relu_(x).square_()",
                                             lambda: F.relu_(t).square_()),
                         "grad": ("torch composition: 2 * F.relu(x)", lambda: 2 * F.relu(t)),
                         "grad_out": ("torch composition: clamp_min(x, 0, out=y).mul_(2)",
                                      lambda: torch.clamp_min(t, 0, out=ty).mul_(2))},
        "gelu": kernels(("F.gelu(x, approximate='tanh')", lambda: F.gelu(t, approximate="tanh")),
                        ("gelu(x, approximate='tanh')", aten.gelu, (t,), {"approximate": "tanh"}),
                        ("gelu_(x, approximate='tanh')", lambda: aten.gelu_.default(t, approximate="tanh")),
                        ("gelu_backward(1, x, approximate='tanh')", aten.gelu_backward, (g, t),
                         {"approximate": "tanh"})),
        "silu": kernels(("F.silu(x)", lambda: F.silu(t)), ("silu(x)", aten.silu, (t,)),
                        ("F.silu(x, inplace=True)", lambda: F.silu(t, inplace=True)),
                        ("silu_backward(1, x)", aten.silu_backward, (g, t))),
        "quick_gelu": {"forward": ("torch composition: x * torch.sigmoid(1.702 * x)",
                                   lambda: t * torch.sigmoid(QUICK_GELU_K * t)),
                       "forward_out": ("torch composition: torch.mul(x, torch.sigmoid(1.702 * x), out=y)",
                                       lambda: torch.mul(t, torch.sigmoid(QUICK_GELU_K * t), out=ty)),
                       "forward_inplace": ("torch composition: x.mul_(torch.sigmoid(1.702 * x))",
                                           lambda: t.mul_(torch.sigmoid(QUICK_GELU_K * t))),
                       "grad": ("torch composition: q = sigmoid(1.702 x); q * (1 + 1.702 x (1 - q))", quick_gelu_grad),
                       "grad_out": ("torch composition: the same, torch.mul(..., out=y)",
                                    lambda: quick_gelu_grad(ty))},
        "mish": {"forward": ("F.mish(x)", lambda: F.mish(t)),
                 "forward_out": ("mish(x, out=y)", lambda: aten.mish.out(t, out=ty)),
                 "forward_inplace": ("F.mish(x, inplace=True)", lambda: F.mish(t, inplace=True)),
                 "grad": ("mish_backward(1, x)", lambda: aten.mish_backward.default(g.expand(t.shape), t))},
        "softplus": kernels(("F.softplus(x)", lambda: F.softplus(t)),
                            ("softplus(x, 1, 20)", aten.softplus, (t, 1, 20)),
                            ("softplus(x, 1, 20, out=x)", lambda: aten.softplus.out(t, 1, 20, out=t)),
                            ("softplus_backward(1, x, 1, 20)", aten.softplus_backward, (g, t, 1, 20))),
        "squareplus": {"forward": ("torch composition: (x + torch.sqrt(x * x + 4)) / 2",
                                   lambda: (t + torch.sqrt(t * t + 4)) / 2),
                       "forward_out": ("torch composition: torch.add(x, torch.sqrt(x * x + 4), out=y).mul_(0.5)",
                                       lambda: torch.add(t, torch.sqrt(t * t + 4), out=ty).mul_(0.5)),
                       "forward_inplace": ("torch composition: x.add_(torch.sqrt(x * x + 4)).mul_(0.5)",
                                           lambda: t.add_(torch.sqrt(t * t + 4)).mul_(0.5)),
                       "grad": ("torch composition: (1 + x * torch.rsqrt(x * x + 4)) / 2",
                                lambda: (1 + t * torch.rsqrt(t * t + 4)) / 2),
                       "grad_out": ("torch composition: torch.mul(x, torch.rsqrt(x * x + 4), out=y).add_(1).mul_(0.5)",
                                    lambda: torch.mul(t, torch.rsqrt(t * t + 4), out=ty).add_(1).mul_(0.5))},
        "sparse_plus": {"forward": ("torch composition: "
                                    "torch.where(x <= -1, 0, torch.where(x >= 1, x, (x + 1)**2 / 4))",
                                    lambda: _torch_sparse_plus(torch, t)),
                        "forward_out": ("torch composition: the same with out=y",
                                        lambda: _torch_sparse_plus(torch, t, out=ty)),
                        "forward_inplace": ("torch composition: the same with out=x",
                                            lambda: _torch_sparse_plus(torch, t, out=t)),
                        "grad": ("torch composition: torch.clamp((x + 1) / 2, 0, 1)",
                                 lambda: torch.clamp((t + 1) / 2, 0, 1)),
                        "grad_out": ("torch composition: torch.clamp((x + 1) / 2, 0, 1, out=y)",
                                     lambda: torch.clamp((t + 1) / 2, 0, 1, out=ty))},
        "sigmoid": {"forward": ("torch.sigmoid(x)", lambda: torch.sigmoid(t)),
                    "forward_out": ("torch.sigmoid(x, out=y)", lambda: torch.sigmoid(t, out=ty)),
                    "forward_inplace": ("x.sigmoid_()", lambda: t.sigmoid_())},
        "tanh": {"forward": ("torch.tanh(x)", lambda: torch.tanh(t)),
                 "forward_out": ("torch.tanh(x, out=y)", lambda: torch.tanh(t, out=ty)),
                 "forward_inplace": ("x.tanh_()", lambda: t.tanh_())},
    }
    table = tables[member]
    if member in ("sigmoid", "tanh") and op.startswith("grad"):
        # their backward kernels take the forward's output, computed here, before the timing
        result = getattr(torch, member)(t)
        backward = getattr(aten, f"{member}_backward")
        table["grad"] = (f"{member}_backward(1, {member}(x))", lambda: backward.default(g, result))
        table["grad_out"] = (f"{member}_backward(1, {member}(x), grad_input=y)",
                             lambda: backward.grad_input(g, result, grad_input=ty))
    return table


def _torch_sparse_plus(torch, t, out=None):
    inner = torch.where(t >= 1, t, (t + 1) ** 2 / 4)
    zero = torch.zeros((), dtype=t.dtype)
    return torch.where(t <= -1, zero, inner) if out is None else torch.where(t <= -1, zero, inner, out=out)


def _torch_calls(member: str, op: str, t, ty, torch):
    """(label, callable) pairs for PyTorch on the CPU; where torch has no into-a-buffer or in-place form, its
    allocating call is the peer (labelled)."""
    table = _torch_table(member, op, t, ty, torch)
    if op in table:
        return [table[op]]
    fallback = {"forward_out": "forward", "forward_inplace": "forward", "grad_out": "grad"}[op]
    label, fn = _torch_calls(member, fallback, t, ty, torch)[0]
    return [(f"{label} (torch has no {'in-place' if op == 'forward_inplace' else 'out='} form: allocates)", fn)]


def _relulab_call(member: str, op: str, x: np.ndarray, y: np.ndarray):
    act = family.get(member)
    args, params, shown = _relulab_arguments(member)
    calls = {
        "forward": (f"rl.{member}(x{shown})", lambda: act(x, *args, **params)),
        "forward_out": (f"rl.{member}(x{shown}, out=y)", lambda: act(x, *args, out=y, **params)),
        "forward_inplace": (f"rl.{member}(x{shown}, out=x)", lambda: act(x, *args, out=x, **params)),
        "grad": (f"rl.{member}.grad(x{shown})", lambda: act.grad(x, *args, **params)),
        "grad_out": (f"rl.{member}.grad(x{shown}, out=y)", lambda: act.grad(x, *args, out=y, **params)),
    }
    return calls[op]


def _relulab_arguments(member: str) -> tuple[tuple, dict[str, Any], str]:
    """(positional args, keyword params, their text) of the timed call: the member's defaults, but prelu's weight
    (torch's initial 0.25) and gelu's tanh form (the one NumPy can express without erf)."""
    if member == "prelu":
        return (PRELU_WEIGHT,), {}, f", {PRELU_WEIGHT}"
    if member == "gelu":
        return (), {"approximate": "tanh"}, ", approximate='tanh'"
    return (), {}, ""


def _input(n: int, dtype: np.dtype, seed: int = 0) -> np.ndarray:
    # Standard normal: half the inputs negative, the regime of a pre-activation; no NaN/inf (they are the tests').
    return np.random.default_rng(seed).standard_normal(n, dtype=np.float32).astype(dtype)


def _member_cases(member: str, n: int, dtype: np.dtype, torch) -> list[Case]:
    x = _input(n, dtype)
    y = np.empty_like(x)
    scratch = np.empty_like(x)  # the in-place calls' input, restored from x before every call
    cases = []
    for op in OPS:
        source, setup = (scratch, lambda: np.copyto(scratch, x)) if op == "forward_inplace" else (x, None)
        label, fn = _relulab_call(member, op, source, y)
        impls = [Impl("relulab", label, fn, setup)]
        impls += [Impl("numpy", lab, f, setup) for lab, f in _numpy_idioms(member, op, source, y, dtype)]
        if op == "forward_out":  # the copies once per member and size: they are the same bytes in every op
            impls += _copy_impls(x, y)
        if torch is not None:
            t, ty = torch.from_numpy(source), torch.from_numpy(y)
            impls += [Impl("torch", lab, f, setup) for lab, f in _torch_calls(member, op, t, ty, torch)]
        cases.append(Case(op=f"{member}.{op}", member=member, n=n, dtype=dtype.name, nbytes=2 * x.nbytes,
                          impls=impls, note=NOTES.get(member, "")))
    return cases


def _copy_impls(x: np.ndarray, y: np.ndarray) -> list[Impl]:
    """The bandwidth reference, timed inside every case (interleaved with it): copies of the same bytes."""
    n = x.size
    threads = family.get_num_threads()
    chunk = max(64, -(-n // threads) // 64 * 64)  # one contiguous range per thread, as memcpy likes it

    def copy_threads():
        family.parallel_for(lambda a, b: np.copyto(y[a:b], x[a:b]), n, chunk)

    return [Impl("copy", "np.copyto(y, x), 1 thread", lambda: np.copyto(y, x)),
            Impl("copy", f"np.copyto in {threads} threads", copy_threads)]


def _fused_cases(n: int, dtype: np.dtype, torch) -> list[Case]:
    relu = family.relu
    x = _input(n, dtype)
    y = np.empty_like(x)
    g = _input(n, dtype, seed=1)
    _, mask = fused.relu_mask(x)
    bits = fused.unpack_mask(mask, x.shape)
    features = 1024 if n % 1024 == 0 else 64
    x2, y2 = x.reshape(-1, features), y.reshape(-1, features)
    bias = _input(features, dtype, seed=2)
    mask_bytes = mask.nbytes
    cases = [
        Case("fused.relu_mask", "relu", n, dtype.name, 2 * x.nbytes + mask_bytes, [
            Impl("relulab", "relu_mask(x, out=y)", lambda: fused.relu_mask(x, out=y), variant="fused"),
            Impl("relulab", "rl.relu(x, out=y); pack_mask(~(x <= 0))",
                 lambda: (relu(x, out=y), fused.pack_mask(~(x <= 0))), variant="unfused"),
        ], note="forward + packed 1-bit mask for the lean backward"),
        Case("fused.relu_backward_mask", "relu", n, dtype.name, 2 * x.nbytes + mask_bytes, [
            Impl("relulab", "relu_backward_mask(g, mask, out=y)", lambda: fused.relu_backward_mask(g, mask, out=y),
                 variant="fused"),
            Impl("relulab", "np.where(unpack_mask(mask), g, 0)",
                 lambda: np.where(fused.unpack_mask(mask, g.shape), g, 0), variant="unfused"),
            Impl("numpy", "np.where(bool_mask, g, 0) (a byte per element kept)", lambda: np.where(bits, g, 0)),
        ], note="the input gradient from the mask"),
        Case("fused.bias_relu", "relu", n, dtype.name, 2 * x.nbytes, [
            Impl("relulab", "bias_activation(x, b, 'relu', out=y)",
                 lambda: fused.bias_activation(x2, bias, "relu", out=y2), variant="fused"),
            Impl("relulab", "rl.relu(x + b, out=y)", lambda: relu(x2 + bias, out=y2), variant="unfused"),
            Impl("numpy", "np.maximum(x + b, 0, out=y)", lambda: np.maximum(x2 + bias, 0, out=y2)),
        ], note=f"bias of {features} features"),
    ]
    for case in cases:
        case.impls += _copy_impls(x, y)
    if torch is not None:
        t, ty, tg, tb = (torch.from_numpy(a) for a in (x2, y2, g, bias))
        tx = torch.from_numpy(x)
        cases[1].impls.append(Impl("torch", "threshold_backward(g, x, 0) (keeps x)",
                                   lambda: torch.ops.aten.threshold_backward.default(tg, tx, 0)))
        cases[2].impls.append(Impl("torch", "torch.clamp_min(x + b, 0, out=y)",
                                   lambda: torch.clamp_min(t + tb, 0, out=ty)))
    return cases


# -- timing ----------------------------------------------------------------------------------------------------------
_previous: list[str] = [""]  # the kind of implementation _time_calls ran last (across cases)


def _time_calls(impl: Impl, number: int) -> float:
    if _previous[0] == "torch" and impl.impl != "torch":
        time.sleep(SETTLE_S)  # torch's OpenMP threads spin after its calls: let them stop first (see SETTLE_S)
    _previous[0] = impl.impl
    total = 0.0
    for _ in range(number):
        if impl.setup is not None:
            impl.setup()
        start = time.perf_counter()
        impl.fn()
        total += time.perf_counter() - start
    return total / number


WARM_CALLS = 4  # at most this many warm-up calls after the first


def _warm(impl: Impl, min_sample_s: float) -> float:
    """Warm ``impl`` up and return the time of its last warm-up call, from which a sample's call count is taken.

    The first call may compile (relulab's threaded kernels are compiled per process, on the first call large enough
    to use threads: 0.1-0.2 s for a kernel's C entry point), load code, fault pages in or start threads. A call is
    repeated while it runs in under half the time of the one before. A peer's first call as long as 10 samples is counted from as it is (its
    cold start is a page fault per output page, not compilation, and at 256 MiB a second call of a slow idiom would
    cost a second); relulab's is always repeated, since a sample of one cold call measured its compiler, not its
    kernel (every allocating call at the first size past the threading threshold read 5-8x slow that way).
    """
    last = _time_calls(impl, 1)
    if impl.impl != "relulab" and last >= 10 * min_sample_s:
        return last
    for _ in range(WARM_CALLS):
        again = _time_calls(impl, 1)
        settled = again > 0.5 * last
        last = again
        if settled:
            break
    return last


# torch's OpenMP worker threads, at their default wait policy, spin for about 8 ms of CPU after torch's last
# parallel call (measured: 8 ms of CPU time during a 5-50 ms sleep after clamp_min on 1 MiB) before they sleep.
# Timed right after torch, another implementation's threads would share the cores with that spinning. Every call
# of another implementation that follows torch's (a warm-up, a sample, the next case) therefore starts after this
# untimed pause. (Setting OMP_WAIT_POLICY=PASSIVE instead, as earlier versions did, stopped the spinning but made
# torch wake its threads on every call: relu on 1 MiB float32 took 76 us instead of 20 us, so the ratios against
# torch read up to 3x in relulab's favour.)
SETTLE_S = 0.015

SLOW_PEER = 3.0  # a peer this many times slower than relulab on its warm-up call ...
SLOW_PEER_SAMPLES = 5  # ... and longer than this many samples (0.05 s by default) is timed once: see time_case


def time_case(case: Case, repeats: int, min_sample_s: float) -> None:
    """Fill each implementation's ``times`` with ``repeats`` medians-to-be, interleaving the implementations.

    A peer (NumPy or torch) that takes more than SLOW_PEER times relulab's time and more than SLOW_PEER_SAMPLES
    samples' time on its warm-up call keeps that call as its only sample: it cannot be the faster peer, and at the
    large sizes these slow idioms (an allocation and page faults per temporary) are most of a full run's time."""
    numbers = []
    reference = None
    short = []  # whether the implementation's warm call is short enough for thread wake-ups to show
    for impl in case.impls:
        first = _warm(impl, min_sample_s)
        short.append(first < 10 * min_sample_s)
        if impl.impl == "relulab" and reference is None:
            reference = first
        if (repeats > 1 and reference is not None and impl.impl in ("numpy", "torch")
                and first > max(SLOW_PEER * reference, SLOW_PEER_SAMPLES * min_sample_s)):
            impl.times.append(first)
            numbers.append(0)  # no more samples
        else:
            numbers.append(max(1, min(1000, math.ceil(min_sample_s / max(first, 1e-7)))))
    for r in range(repeats):
        order = list(range(len(case.impls)))
        order = order[r % len(order):] + order[:r % len(order)]  # rotate: no implementation always goes first
        for i in order:
            if numbers[i]:
                impl = case.impls[i]
                if short[i]:
                    _time_calls(impl, 1)  # untimed: this implementation's threads awake, as in a loop of calls
                impl.times.append(_time_calls(impl, numbers[i]))


def _rows(case: Case) -> list[dict[str, Any]]:
    rows = []
    for impl in case.impls:
        seconds = statistics.median(impl.times)
        rows.append({"op": case.op, "member": case.member, "impl": impl.impl, "label": impl.label,
                     "variant": impl.variant, "n": case.n, "dtype": case.dtype, "bytes": case.nbytes,
                     "seconds": seconds, "gbps": case.nbytes / seconds / 1e9, "samples": len(impl.times),
                     "note": case.note})
    return rows


# -- running ------------------------------------------------------------------------------------------------------
def _import_torch(wanted: bool):
    if not wanted:
        return None, "torch rows off (--no-torch)"
    # torch runs at its defaults, as its users run it (time_case pauses after its samples; see SETTLE_S). A wait
    # policy set in the environment is reported with the results.
    policy_note = ""
    policy = os.environ.get("OMP_WAIT_POLICY")
    if policy:
        policy_note = f", OMP_WAIT_POLICY={policy}"
    try:
        import torch
    except ImportError:
        return None, "torch is not installed: torch rows skipped (pip install 'relulab[torch]')"
    torch.set_num_threads(family.get_num_threads())
    return torch, f"torch {torch.__version__}, {torch.get_num_threads()} threads{policy_note}"


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": family.cores(), "threads": family.get_num_threads(),
            "python": platform.python_version(), "numpy": np.__version__,
            "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "streaming": family.stream_status(),
            "streaming_threshold_bytes": family.streaming_threshold_bytes()}


def _load() -> float | None:
    """The 1-minute load average (None where the system has none): how busy the machine was."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def run_bench(config: BenchConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Time every case of ``config``; returns ``{"rows": [...], "summary": [...], "claim": [...], ...}``."""
    dtypes = []
    for name in config.dtypes:
        try:
            dtype = np.dtype(name)
        except TypeError:
            dtype = None
        if dtype is None or dtype.name not in DTYPES:
            raise ValueError(f"dtype must be {', '.join(DTYPES[:-1])} or {DTYPES[-1]}; got {name!r}")
        dtypes.append(dtype)
    if not dtypes:
        raise ValueError(f"dtype must name at least one of {', '.join(DTYPES)}; got none")
    skipped = [m for m in config.members if m in SKIPPED]
    unknown = [m for m in config.members if m not in MEMBERS]
    if unknown:
        reasons = "".join(f" ({SKIPPED[m]})" for m in skipped)
        raise ValueError(f"members must be among {', '.join(MEMBERS)}; got {', '.join(unknown)}{reasons}")
    torch, torch_note = _import_torch(config.torch)
    info = machine_info()
    info["torch"] = torch_note
    info["load_before"] = _load()
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for size in config.sizes:
        for dtype in dtypes:
            if elements_for(size, dtype) < 64:
                raise ValueError(f"size must be at least 64 elements; got {size} ({dtype.name})")
    for dtype in dtypes:
        for n in (elements_for(size, dtype) for size in config.sizes):
            groups = [lambda m=m: _member_cases(m, n, dtype, torch) for m in config.members]
            if config.fused:
                groups.append(lambda: _fused_cases(n, dtype, torch))
            for make in groups:
                cases = make()
                for case in cases:
                    if progress is not None:
                        progress(f"{case.op} n={n:,} {dtype.name}")
                    with np.errstate(all="ignore"):  # the idioms overflow exp for large |x|; that is their business
                        time_case(case, config.repeats, config.min_sample_s)
                    rows += _rows(case)
                del cases
                gc.collect()
    settings = {"sizes": [str(s) if isinstance(s, ByteSize) else int(s) for s in config.sizes], "dtypes": [d.name for d in dtypes], "members": list(config.members),
                "skipped": {m: why for m, why in SKIPPED.items()}, "repeats": config.repeats,
                "min_sample_s": config.min_sample_s, "quick": config.quick}
    if len(dtypes) == 1:
        settings["dtype"] = dtypes[0].name  # the one-dtype contract of earlier versions
    info["load_after"] = _load()
    return {"rows": rows, "summary": summarize(rows), "claim": claim(rows), "machine": info, "config": settings,
            "seconds": time.perf_counter() - started}


# -- summaries ----------------------------------------------------------------------------------------------------
def _best(rows, **match):
    chosen = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    return max(chosen, key=lambda r: r["gbps"]) if chosen else None


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (op, n, dtype): relulab's GB/s and its ratio to the best NumPy idiom, the best torch call, the
    faster of the two (``vs_peer``) and the faster of the two copies timed with the member at that size (ratio > 1:
    relulab is faster; vs copy: the fraction of copy speed)."""
    cases: dict[tuple, list[dict[str, Any]]] = {}
    copies: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        cases.setdefault((r["op"], r["n"], r["dtype"]), []).append(r)
        if r["impl"] == "copy":
            copies.setdefault((r["op"] if r["op"].startswith("fused.") else r["member"], r["n"], r["dtype"]),
                              []).append(r)
    out = []
    for (op, n, dtype), same in cases.items():
        is_fused = op.startswith("fused.")
        mine = _best(same, impl="relulab", variant="fused") if is_fused else _best(same, impl="relulab")
        # the faster copy, timed interleaved with this case (fused) or with this member's forward into a buffer
        copy_best = _best(copies.get((op if is_fused else same[0]["member"], n, dtype), []))
        entry = {"op": op, "n": n, "dtype": dtype, "relulab_gbps": mine["gbps"], "relulab": mine["label"]}
        for name, match in (("numpy", {"impl": "numpy"}), ("torch", {"impl": "torch"}),
                            ("unfused", {"impl": "relulab", "variant": "unfused"})):
            peer = _best(same, **match)
            if peer is not None:
                entry[f"{name}_gbps"] = peer["gbps"]
                entry[f"{name}_label"] = peer["label"]
                entry[f"vs_{name}"] = peer["seconds"] / mine["seconds"]
        peers = [name for name in ("numpy", "torch") if f"vs_{name}" in entry]
        if peers:
            fastest = min(peers, key=lambda name: entry[f"vs_{name}"])
            entry["vs_peer"] = entry[f"vs_{fastest}"]
            entry["peer_label"] = f"{fastest}: {entry[f'{fastest}_label']}"
        if copy_best is not None:
            entry["copy_gbps"] = copy_best["gbps"]
            entry["copy_label"] = copy_best["label"]
            entry["vs_copy"] = mine["gbps"] / copy_best["gbps"]
        out.append(entry)
    return out


def claim(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The seeds' claim, measured: time of sigmoid and tanh (forward into a buffer) per time of relu, per size."""
    out = []
    for n, dtype in dict.fromkeys((r["n"], r["dtype"]) for r in rows):
        entry: dict[str, Any] = {"n": n, "dtype": dtype}
        for impl in ("numpy", "torch", "relulab"):
            relu = _best(rows, op="relu.forward_out", n=n, dtype=dtype, impl=impl)
            for other in ("sigmoid", "tanh"):
                peer = _best(rows, op=f"{other}.forward_out", n=n, dtype=dtype, impl=impl)
                if relu is not None and peer is not None:
                    entry[f"{impl}_{other}_per_relu"] = peer["seconds"] / relu["seconds"]
        if len(entry) > 2:
            out.append(entry)
    return out


def _size_text(n: int, dtype: str) -> str:
    nbytes = n * np.dtype(dtype).itemsize
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:g} {unit}"
    return f"{nbytes} B"


def format_report(result: dict[str, Any]) -> str:
    """The text ``relulab bench`` prints: per size a table of GB/s and ratios, the fused operations, the claim."""
    info = result["machine"]
    lines = [
        f"relulab bench -- {info['cpu']}, {info['cores']} cores, {info['threads']} threads; {info['date']}",
        f"python {info['python']}, numpy {info['numpy']}; {info['torch']}; streaming stores: {info['streaming']} "
        f"(from {info['streaming_threshold_bytes'] / 2**20:g} MiB in + out)",
        "GB/s = (bytes read + bytes written) / median time. Ratios are time(peer) / time(relulab): > 1 means relulab "
        "is faster; vs copy = relulab GB/s / GB/s of the faster copy (1 thread or all) timed in the same case.",
    ]
    summary = result["summary"]
    rows = result["rows"]
    for n, dtype in dict.fromkeys((e["n"], e["dtype"]) for e in summary):
        copies = [r for r in rows if r["impl"] == "copy" and r["n"] == n and r["dtype"] == dtype]
        lines += ["", f"n = {n:,} {dtype} ({_size_text(n, dtype)} per array)"]
        for label in dict.fromkeys(r["label"] for r in copies):
            speeds = sorted(r["gbps"] for r in copies if r["label"] == label)
            lines.append(f"  copy {label}: median {statistics.median(speeds):.1f} GB/s over the cases "
                         f"({speeds[0]:.1f} .. {speeds[-1]:.1f}: the machine's load as it varied)")
        header = f"  {'op':<26}{'relulab':>9}{'numpy':>9}{'torch':>9}{'copy':>9}   {'vs numpy':>9}{'vs torch':>9}" \
                 f"{'vs copy':>9}"
        lines.append(header)
        for e in summary:
            if e["n"] != n or e["dtype"] != dtype or e["op"].startswith("fused."):
                continue
            lines.append(f"  {e['op']:<26}{e['relulab_gbps']:>9.2f}{_num(e, 'numpy_gbps'):>9}"
                         f"{_num(e, 'torch_gbps'):>9}{_num(e, 'copy_gbps'):>9}   {_num(e, 'vs_numpy'):>9}"
                         f"{_num(e, 'vs_torch'):>9}{_num(e, 'vs_copy'):>9}")
        fused_rows = [e for e in summary if e["n"] == n and e["dtype"] == dtype and e["op"].startswith("fused.")]
        if fused_rows:
            lines.append(f"  {'fused op':<26}{'fused':>9}{'unfused':>9}{'numpy':>9}{'torch':>9}   {'vs unfsd':>9}"
                         f"{'vs numpy':>9}{'vs torch':>9}")
            for e in fused_rows:
                lines.append(f"  {e['op']:<26}{e['relulab_gbps']:>9.2f}{_num(e, 'unfused_gbps'):>9}"
                             f"{_num(e, 'numpy_gbps'):>9}{_num(e, 'torch_gbps'):>9}   {_num(e, 'vs_unfused'):>9}"
                             f"{_num(e, 'vs_numpy'):>9}{_num(e, 'vs_torch'):>9}")
    if result["claim"]:
        lines += ["", "The claim \"relu is computationally cheap\": time of sigmoid and tanh per time of relu "
                      "(forward into a buffer)"]
        lines.append(f"  {'size':<24}{'numpy sigm':>11}{'numpy tanh':>11}{'torch sigm':>11}{'torch tanh':>11}"
                     f"{'relulab sig':>12}{'relulab tanh':>13}")
        for e in result["claim"]:
            lines.append(f"  {_size_text(e['n'], e['dtype']) + ' ' + e['dtype']:<24}"
                         f"{_num(e, 'numpy_sigmoid_per_relu', 'x'):>11}{_num(e, 'numpy_tanh_per_relu', 'x'):>11}"
                         f"{_num(e, 'torch_sigmoid_per_relu', 'x'):>11}{_num(e, 'torch_tanh_per_relu', 'x'):>11}"
                         f"{_num(e, 'relulab_sigmoid_per_relu', 'x'):>12}{_num(e, 'relulab_tanh_per_relu', 'x'):>13}")
        lines.append("  In cache the difference is arithmetic (exp, division); once arrays outgrow the caches every "
                     "member waits on memory and the gap closes.")
    for dtype in dict.fromkeys(e["dtype"] for e in summary):
        sizes, matrix = ratio_matrix(summary, dtype)
        lines += ["", f"time of the faster peer (NumPy or torch) / time of relulab, {dtype}, every size "
                      "(>= 1: relulab is as fast or faster)"]
        lines.append(f"  {'op':<26}" + "".join(f"{_size_text(n, dtype):>10}" for n in sizes))
        for op, ratios in matrix:
            lines.append(f"  {op:<26}" + "".join(f"{_fmt(v):>10}" for v in ratios))
    notes = sorted({f"{r['member']}: {r['note']}" for r in rows if r["note"] and not r["op"].startswith("fused.")})
    lines += ["", "Peers:"] + [f"  {note}" for note in notes] if notes else []
    lines += [f"  {why}" for why in result["config"].get("skipped", {}).values()]
    lines.append(f"\n{len(rows)} timings in {result['seconds']:.1f} s")
    return "\n".join(lines)


def ratio_matrix(summary: list[dict[str, Any]], dtype: str) -> tuple[list[int], list[tuple[str, list]]]:
    """(sizes, [(op, [time of the faster peer / time of relulab, per size (None: no peer)])]) for one dtype: the
    goal of the family's speed work is >= 1.0 in every cell. The fused operations are left out (their peer is
    their unfused composition)."""
    entries = [e for e in summary if e["dtype"] == dtype and not e["op"].startswith("fused.")]
    sizes = sorted({e["n"] for e in entries})
    cell = {(e["op"], e["n"]): e.get("vs_peer") for e in entries}
    ops = list(dict.fromkeys(e["op"] for e in entries))
    return sizes, [(op, [cell.get((op, n)) for n in sizes]) for op in ops]


def _fmt(value: float | None, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.2f}{suffix}"


MARKDOWN_BEGIN = "<!-- relulab bench: begin -->"
MARKDOWN_END = "<!-- relulab bench: end -->"


def format_markdown(result: dict[str, Any]) -> str:
    """The README's tables, between MARKDOWN_BEGIN and MARKDOWN_END: per dtype, (a) every size, time of the faster
    peer / time of relulab, one row per member.op (below 1.0 in bold), and (b) GB/s at the largest size; then the
    fused operations, the claim, and what each row's peers are."""
    info, config, summary = result["machine"], result["config"], result["summary"]
    dtypes = list(dict.fromkeys(e["dtype"] for e in summary))
    sizes = " ".join(n if isinstance(n, str) else elements_text(n) for n in config["sizes"])
    lines = [MARKDOWN_BEGIN,
             f"Generated by `relulab bench --sizes {sizes} --repeats {config['repeats']} --dtype {' '.join(dtypes)} "
             f"--markdown FILE` in {result['seconds'] / 60:.1f} min: {info['cpu']}, {info['cores']} cores, "
             f"{info['threads']} threads, load average {_load_text(info)}; {info['date']}; Python {info['python']}, "
             f"NumPy {info['numpy']}, {info['torch']}. Ratios are time(peer) / time(relulab), medians of "
             f"{config['repeats']} interleaved repeats: > 1 means relulab is faster."]
    for dtype in dtypes:
        ratio_sizes, matrix = ratio_matrix(summary, dtype)
        lines += ["", f"Every size, {dtype}: time of the faster peer (the best NumPy idiom or torch) / time of relulab "
                      "(below 1.0 in bold):", "",
                  "| op | " + " | ".join(_size_text(n, dtype) for n in ratio_sizes) + " |",
                  "| --- |" + " ---: |" * len(ratio_sizes)]
        for op, ratios in matrix:
            cells = [f"**{_fmt(v)}**" if v is not None and v < 1 else _fmt(v) for v in ratios]
            lines.append(f"| {op} | " + " | ".join(cells) + " |")
        largest = max(ratio_sizes)
        size = _size_text(largest, dtype)
        lines += ["", f"| {size} {dtype} | relulab GB/s | best NumPy | torch | copy | vs NumPy | vs torch | vs copy |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for e in summary:
            if e["dtype"] == dtype and e["n"] == largest and not e["op"].startswith("fused."):
                lines.append(f"| {e['op']} | {e['relulab_gbps']:.2f} | {_num(e, 'numpy_gbps')} | "
                             f"{_num(e, 'torch_gbps')} | {_num(e, 'copy_gbps')} | {_num(e, 'vs_numpy', '×')} | "
                             f"{_num(e, 'vs_torch', '×')} | {_num(e, 'vs_copy')} |")
        fused_rows = [e for e in summary if e["dtype"] == dtype and e["n"] == largest and e["op"].startswith("fused.")]
        if fused_rows:
            lines += ["", f"| fused, {size} {dtype} | fused GB/s | unfused | NumPy | torch | vs unfused | vs NumPy | "
                          "vs torch |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
            for e in fused_rows:
                lines.append(f"| {e['op'].split('.', 1)[1]} | {e['relulab_gbps']:.2f} | {_num(e, 'unfused_gbps')} | "
                             f"{_num(e, 'numpy_gbps')} | {_num(e, 'torch_gbps')} | {_num(e, 'vs_unfused', '×')} | "
                             f"{_num(e, 'vs_numpy', '×')} | {_num(e, 'vs_torch', '×')} |")
    claims = result["claim"]
    if claims:
        lines += ["", "The claim, measured -- time of sigmoid and of tanh per time of relu (forward into a buffer):",
                  "",
                  "| size | NumPy sigmoid | NumPy tanh | torch sigmoid | torch tanh | relulab sigmoid | relulab tanh |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for e in claims:
            lines.append(f"| {_size_text(e['n'], e['dtype'])} {e['dtype']} | " + " | ".join(
                _num(e, f"{impl}_{other}_per_relu", "x") for impl in ("numpy", "torch", "relulab")
                for other in ("sigmoid", "tanh")) + " |")
    notes = {r["member"]: r["note"] for r in result["rows"] if r["note"] and not r["op"].startswith("fused.")}
    lines += ["", "Peers: the NumPy one-liners (into a buffer: `y[...] = <one-liner>` unless a ufunc's `out=` does "
                  "better) and torch on the CPU (its `out=` and in-place forms where it has them, else its allocating "
                  "call; derivatives: the aten `*_backward` kernels). " +
              " ".join(f"{member}: {note}." for member, note in notes.items()) +
              "".join(f" {why}." for why in config.get("skipped", {}).values()), MARKDOWN_END]
    return "\n".join(lines) + "\n"


def _load_text(info: dict[str, Any]) -> str:
    loads = [info.get(key) for key in ("load_before", "load_after")]
    return " -> ".join(f"{load:.2f}" for load in loads if load is not None) or "unknown"


def elements_text(n: int) -> str:
    """A count of elements as ``relulab bench --sizes`` takes it: 16K, 4M."""
    for suffix, scale in (("M", 1 << 20), ("K", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{suffix}"
    return str(n)


def check_markdown_target(path: str | os.PathLike) -> str | None:
    """The text around the tables in ``path`` (None: a new file); a ValueError naming the path where it exists
    without both markers (rather than overwriting a file that holds more than the tables)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        if not Path(path).parent.is_dir():
            raise ValueError(f"markdown file {str(path)!r}: its folder does not exist") from None
        return None
    begin, end = text.find(MARKDOWN_BEGIN), text.find(MARKDOWN_END)
    if begin < 0 or end < begin:
        raise ValueError(f"markdown file {str(path)!r} exists without the lines {MARKDOWN_BEGIN} and "
                         f"{MARKDOWN_END} (in that order) that mark where the tables go; add them, or name a new file")
    return text


def write_markdown(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write format_markdown(result) to ``path`` atomically: a new file holds just the tables; an existing one keeps
    everything outside its markers (``relulab bench --markdown README.md`` regenerates the README's tables)."""
    text = check_markdown_target(path)
    tables = format_markdown(result)
    if text is not None:
        begin, end = text.find(MARKDOWN_BEGIN), text.find(MARKDOWN_END)
        tables = text[:begin] + tables.rstrip("\n") + text[end + len(MARKDOWN_END):]
    return write_atomic(path, tables)


def _num(entry: dict[str, Any], key: str, suffix: str = "") -> str:
    return _fmt(entry.get(key), suffix)


def main_rows_for(result: dict[str, Any], n: int | None = None) -> list[dict[str, Any]]:
    """The summary entries of the largest size (or of ``n``): the closing table."""
    sizes = [e["n"] for e in result["summary"]]
    n = max(sizes) if n is None and sizes else n
    return [e for e in result["summary"] if e["n"] == n]
