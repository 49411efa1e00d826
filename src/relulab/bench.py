"""relulab's speed against its peers, measured in one process, interleaved: ``relulab bench``.

For relu, leaky_relu, elu, gelu, silu, sigmoid and tanh, four operations are timed: the forward allocating its
result, the forward into a given buffer (``out=``), the forward in place, and the derivative into a buffer. Each
is timed for

* **relulab** -- the member itself (``rl.relu(x, out=y)``; the fast path of family/_parallel.py);
* **numpy** -- the plain NumPy idioms people write (``np.maximum(x, 0)``, ``x * (x > 0)``, ...);
* **torch** -- PyTorch on the CPU on the same memory (``F.relu``, ``relu_``, ``clamp_min(out=)``; for derivatives
  the backward kernels with a scalar upstream gradient of 1), skipped with a note when torch is missing;
* **copy** -- a copy of the same bytes (``np.copyto`` on one thread and on every core): the bandwidth reference.

The implementations of one case run in rotating order within each repeat, so drift and background load hit all
of them alike; each figure is the median over the repeats. Bandwidth counts bytes read plus bytes written (for
relu into a buffer: 2 x n x itemsize), so "vs copy" is the fraction of the machine's copy bandwidth reached.

Fused operations (family/fused.py) are timed against their unfused compositions, and the textbook claim that
relu is cheap is measured as what sigmoid and tanh cost relative to relu, in NumPy and in torch.

    relulab bench                      # full run: 64 KiB .. 256 MiB per array, a few minutes
    relulab bench --quick --json       # under a minute
    python benchmarks/bench_family.py  # the same
"""

from __future__ import annotations

import datetime
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from . import family
from .family import fused

__all__ = ["MEMBERS", "DTYPES", "OPS", "FULL_SIZES", "QUICK_SIZES", "BenchConfig", "run_bench", "format_report", "parse_size", "main_rows_for"]

MEMBERS = ("relu", "leaky_relu", "elu", "gelu", "silu", "sigmoid", "tanh")
DTYPES = ("float16", "float32", "float64")
OPS = ("forward", "forward_out", "forward_inplace", "grad")
IMPLS = ("relulab", "numpy", "torch", "copy")
SLOPE = 0.01  # leaky_relu's default negative slope
GELU_C = math.sqrt(2.0 / math.pi)  # gelu is timed in its tanh form, the one NumPy can express without erf

FULL_SIZES = (1 << 14, 1 << 18, 1 << 22, 1 << 26)  # float32: 64 KiB (L1/L2), 1 MiB (L2), 16 MiB (L3), 256 MiB
QUICK_SIZES = (1 << 14, 1 << 20)


@dataclass
class BenchConfig:
    sizes: Sequence[int] = FULL_SIZES
    dtype: str = "float32"
    members: Sequence[str] = MEMBERS
    repeats: int = 5
    min_sample_s: float = 0.01  # a sample repeats the call until it has run this long (timer resolution, noise)
    fused: bool = True
    torch: bool = True
    quick: bool = False

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


def parse_size(text: str) -> int:
    """An element count: ``65536``, ``64K`` (x 1024), ``4M`` (x 1024^2), ``1G`` or ``2^20``."""
    raw = text.strip()
    try:
        if "^" in raw or "**" in raw:
            base, exponent = raw.replace("**", "^").split("^")
            value = int(base) ** int(exponent)
        elif raw[-1:].upper() in "KMG" and raw[:-1]:
            value = int(raw[:-1]) * 1024 ** ("KMG".index(raw[-1].upper()) + 1)
        else:
            value = int(raw)
    except (ValueError, IndexError):
        raise ValueError(f"size must be an element count such as 65536, 64K, 4M or 2^20; got {text!r}") from None
    if value < 64:
        raise ValueError(f"size must be at least 64 elements; got {text!r}")
    return value


# -- the cases -------------------------------------------------------------------------------------------------------
def _numpy_idioms(member: str, op: str, x: np.ndarray, y: np.ndarray, dtype: np.dtype):
    """(label, callable) pairs: how people write this member with NumPy alone."""
    s = dtype.type(SLOPE)
    one = dtype.type(1)
    c = dtype.type(GELU_C)
    k = dtype.type(0.044715)
    half = dtype.type(0.5)

    def gelu_into(target):
        np.multiply(x, x, out=target); target *= x; target *= k; target += x; target *= c
        np.tanh(target, out=target); target += one; target *= x; target *= half

    def sigmoid_into(source, target):
        np.negative(source, out=target); np.exp(target, out=target); target += one
        np.reciprocal(target, out=target)

    table: dict[tuple[str, str], list[tuple[str, Callable[[], Any]]]] = {
        ("relu", "forward"): [("np.maximum(x, 0)", lambda: np.maximum(x, 0)), ("x * (x > 0)", lambda: x * (x > 0)),
                              ("np.where(x > 0, x, 0)", lambda: np.where(x > 0, x, 0))],
        ("relu", "forward_out"): [("np.maximum(x, 0, out=y)", lambda: np.maximum(x, 0, out=y)),
                                  ("np.multiply(x, x > 0, out=y)", lambda: np.multiply(x, x > 0, out=y))],
        ("relu", "forward_inplace"): [("np.maximum(x, 0, out=x)", lambda: np.maximum(x, 0, out=x))],
        ("relu", "grad"): [("np.heaviside(x, 0, out=y)", lambda: np.heaviside(x, 0, out=y)),
                           ("(x > 0).astype(x.dtype)", lambda: (x > 0).astype(dtype))],
        ("leaky_relu", "forward"): [("np.where(x > 0, x, s * x)", lambda: np.where(x > 0, x, s * x)),
                                    ("np.maximum(x, s * x)", lambda: np.maximum(x, s * x))],
        ("leaky_relu", "forward_out"): [
            ("np.multiply(x, s, out=y); np.maximum(x, y, out=y)",
             lambda: np.maximum(x, np.multiply(x, s, out=y), out=y))],
        ("leaky_relu", "forward_inplace"): [("np.maximum(x, s * x, out=x)", lambda: np.maximum(x, s * x, out=x))],
        ("leaky_relu", "grad"): [("np.where(x > 0, 1, s)", lambda: np.where(x > 0, one, s)),
                                 ("y[...] = s; np.copyto(y, 1, where=x > 0)",
                                  lambda: (y.fill(s), np.copyto(y, one, where=x > 0)))],
        ("elu", "forward"): [("np.where(x > 0, x, np.expm1(x))", lambda: np.where(x > 0, x, np.expm1(x)))],
        ("elu", "forward_out"): [("np.expm1(np.minimum(x, 0, out=y), out=y); np.maximum(x, y, out=y)",
                                  lambda: np.maximum(x, np.expm1(np.minimum(x, 0, out=y), out=y), out=y))],
        ("elu", "forward_inplace"): [("np.expm1(x, out=x, where=x <= 0)", lambda: np.expm1(x, out=x, where=x <= 0))],
        ("elu", "grad"): [("np.exp(np.minimum(x, 0, out=y), out=y)", lambda: np.exp(np.minimum(x, 0, out=y), out=y)),
                          ("np.where(x > 0, 1, np.exp(x))", lambda: np.where(x > 0, one, np.exp(x)))],
        ("gelu", "forward"): [("0.5 * x * (1 + np.tanh(c * (x + 0.044715 * x**3)))",
                               lambda: half * x * (one + np.tanh(c * (x + k * x**3))))],
        ("gelu", "forward_out"): [("the same, step by step into y", lambda: gelu_into(y))],
        ("gelu", "forward_inplace"): [("x *= 0.5 * (1 + np.tanh(c * (x + 0.044715 * x**3)))",
                                       lambda: np.multiply(x, half * (one + np.tanh(c * (x + k * x**3))), out=x))],
        ("gelu", "grad"): [("t = tanh(u); 0.5 (1 + t) + 0.5 x (1 - t^2) u'", lambda: _gelu_tanh_grad(x, dtype))],
        ("silu", "forward"): [("x / (1 + np.exp(-x))", lambda: x / (one + np.exp(-x)))],
        ("silu", "forward_out"): [("np.exp(-x) + 1 into y; np.divide(x, y, out=y)",
                                   lambda: np.divide(x, np.add(np.exp(np.negative(x, out=y), out=y), one, out=y),
                                                     out=y))],
        ("silu", "forward_inplace"): [("np.divide(x, 1 + np.exp(-x), out=x)",
                                       lambda: np.divide(x, one + np.exp(-x), out=x))],
        ("silu", "grad"): [("s = 1 / (1 + np.exp(-x)); s * (1 + x * (1 - s))", lambda: _silu_grad(x, one))],
        ("sigmoid", "forward"): [("1 / (1 + np.exp(-x))", lambda: one / (one + np.exp(-x)))],
        ("sigmoid", "forward_out"): [("np.exp(-x) + 1 into y; np.reciprocal(y, out=y)", lambda: sigmoid_into(x, y))],
        ("sigmoid", "forward_inplace"): [("the same with y = x", lambda: sigmoid_into(x, x))],
        ("sigmoid", "grad"): [("s = 1 / (1 + np.exp(-x)); s * (1 - s)", lambda: _sigmoid_grad(x, one))],
        ("tanh", "forward"): [("np.tanh(x)", lambda: np.tanh(x))],
        ("tanh", "forward_out"): [("np.tanh(x, out=y)", lambda: np.tanh(x, out=y))],
        ("tanh", "forward_inplace"): [("np.tanh(x, out=x)", lambda: np.tanh(x, out=x))],
        ("tanh", "grad"): [("np.tanh(x, out=y); y *= y; np.subtract(1, y, out=y)",
                            lambda: np.subtract(one, np.square(np.tanh(x, out=y), out=y), out=y))],
    }
    return table[(member, op)]


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


def _torch_calls(member: str, op: str, t, ty, torch):
    """(label, callable) pairs for PyTorch on the CPU, on tensors sharing x's and y's memory."""
    F = torch.nn.functional
    aten = torch.ops.aten
    nn = torch._C._nn
    g = torch.ones((), dtype=t.dtype)  # a scalar upstream gradient: the backward kernels then give f'(x)
    out_of = {"sigmoid": torch.sigmoid(t), "tanh": torch.tanh(t)}  # their backward takes the forward's output
    table: dict[tuple[str, str], list[tuple[str, Callable[[], Any]]]] = {
        ("relu", "forward"): [("F.relu(x)", lambda: F.relu(t))],
        ("relu", "forward_out"): [("torch.clamp_min(x, 0, out=y)", lambda: torch.clamp_min(t, 0, out=ty))],
        ("relu", "forward_inplace"): [("F.relu_(x)", lambda: F.relu_(t))],
        ("relu", "grad"): [("threshold_backward(1, x, 0, grad_input=y)",
                            lambda: aten.threshold_backward.grad_input(g, t, 0, grad_input=ty))],
        ("leaky_relu", "forward"): [("F.leaky_relu(x, s)", lambda: F.leaky_relu(t, SLOPE))],
        ("leaky_relu", "forward_out"): [("leaky_relu(x, s, out=y)", lambda: nn.leaky_relu(t, SLOPE, out=ty))],
        ("leaky_relu", "forward_inplace"): [("F.leaky_relu_(x, s)", lambda: F.leaky_relu_(t, SLOPE))],
        ("leaky_relu", "grad"): [("leaky_relu_backward(1, x, s, grad_input=y)",
                                  lambda: aten.leaky_relu_backward.grad_input(g, t, SLOPE, False, grad_input=ty))],
        ("elu", "forward"): [("F.elu(x)", lambda: F.elu(t))],
        ("elu", "forward_out"): [("elu(x, out=y)", lambda: nn.elu(t, out=ty))],
        ("elu", "forward_inplace"): [("F.elu_(x)", lambda: F.elu_(t))],
        ("elu", "grad"): [("elu_backward(1, x, grad_input=y)",
                           lambda: aten.elu_backward.grad_input(g, 1.0, 1, 1, False, t, grad_input=ty))],
        ("gelu", "forward"): [("F.gelu(x, approximate='tanh')", lambda: F.gelu(t, approximate="tanh"))],
        ("gelu", "forward_out"): [("gelu(x, approximate='tanh', out=y)",
                                   lambda: nn.gelu(t, approximate="tanh", out=ty))],
        ("gelu", "forward_inplace"): [("gelu_(x, approximate='tanh')", lambda: aten.gelu_(t, approximate="tanh"))],
        ("gelu", "grad"): [("gelu_backward(1, x, approximate='tanh', grad_input=y)",
                            lambda: aten.gelu_backward.grad_input(g, t, approximate="tanh", grad_input=ty))],
        ("silu", "forward"): [("F.silu(x)", lambda: F.silu(t))],
        ("silu", "forward_out"): [("silu(x, out=y)", lambda: nn.silu(t, out=ty))],
        ("silu", "forward_inplace"): [("F.silu(x, inplace=True)", lambda: F.silu(t, inplace=True))],
        ("silu", "grad"): [("silu_backward(1, x, grad_input=y)",
                            lambda: aten.silu_backward.grad_input(g, t, grad_input=ty))],
        ("sigmoid", "forward"): [("torch.sigmoid(x)", lambda: torch.sigmoid(t))],
        ("sigmoid", "forward_out"): [("torch.sigmoid(x, out=y)", lambda: torch.sigmoid(t, out=ty))],
        ("sigmoid", "forward_inplace"): [("x.sigmoid_()", lambda: t.sigmoid_())],
        ("sigmoid", "grad"): [("sigmoid_backward(1, sigmoid(x), grad_input=y)",
                               lambda: aten.sigmoid_backward.grad_input(g, out_of["sigmoid"], grad_input=ty))],
        ("tanh", "forward"): [("torch.tanh(x)", lambda: torch.tanh(t))],
        ("tanh", "forward_out"): [("torch.tanh(x, out=y)", lambda: torch.tanh(t, out=ty))],
        ("tanh", "forward_inplace"): [("x.tanh_()", lambda: t.tanh_())],
        ("tanh", "grad"): [("tanh_backward(1, tanh(x), grad_input=y)",
                            lambda: aten.tanh_backward.grad_input(g, out_of["tanh"], grad_input=ty))],
    }
    return table[(member, op)]


def _relulab_call(member: str, op: str, x: np.ndarray, y: np.ndarray):
    act = family.get(member)
    params = {"approximate": "tanh"} if member == "gelu" else {}
    label_params = ", approximate='tanh'" if member == "gelu" else ""
    calls = {
        "forward": (f"rl.{member}(x{label_params})", lambda: act(x, **params)),
        "forward_out": (f"rl.{member}(x{label_params}, out=y)", lambda: act(x, out=y, **params)),
        "forward_inplace": (f"rl.{member}(x{label_params}, out=x)", lambda: act(x, out=x, **params)),
        "grad": (f"rl.{member}.grad(x{label_params}, out=y)", lambda: act.grad(x, out=y, **params)),
    }
    return calls[op]


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
        impls += _copy_impls(x, scratch if op == "forward_inplace" else y)
        if torch is not None:
            t, ty = torch.from_numpy(source), torch.from_numpy(y)
            impls += [Impl("torch", lab, f, setup) for lab, f in _torch_calls(member, op, t, ty, torch)]
        note = "tanh approximation (NumPy has no erf)" if member == "gelu" else ""
        cases.append(Case(op=f"{member}.{op}", member=member, n=n, dtype=dtype.name, nbytes=2 * x.nbytes,
                          impls=impls, note=note))
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
                                   lambda: torch.ops.aten.threshold_backward(tg, tx, 0)))
        cases[2].impls.append(Impl("torch", "torch.clamp_min(x + b, 0, out=y)",
                                   lambda: torch.clamp_min(t + tb, 0, out=ty)))
    return cases


# -- timing ----------------------------------------------------------------------------------------------------------
def _time_calls(impl: Impl, number: int) -> float:
    total = 0.0
    for _ in range(number):
        if impl.setup is not None:
            impl.setup()
        start = time.perf_counter()
        impl.fn()
        total += time.perf_counter() - start
    return total / number


def time_case(case: Case, repeats: int, min_sample_s: float) -> None:
    """Fill each implementation's ``times`` with ``repeats`` medians-to-be, interleaving the implementations."""
    numbers = []
    for impl in case.impls:
        _time_calls(impl, 1)  # warm-up: compiles or loads compiled code, faults pages in, loads caches
        first = _time_calls(impl, 1)  # how many calls make a sample: from a warm call (a cold one may take 0.5 s)
        numbers.append(max(1, min(1000, math.ceil(min_sample_s / max(first, 1e-7)))))
    for r in range(repeats):
        order = list(range(len(case.impls)))
        order = order[r % len(order):] + order[:r % len(order)]  # rotate: no implementation always goes first
        for i in order:
            case.impls[i].times.append(_time_calls(case.impls[i], numbers[i]))


def _rows(case: Case) -> list[dict[str, Any]]:
    rows = []
    for impl in case.impls:
        seconds = statistics.median(impl.times)
        rows.append({"op": case.op, "member": case.member, "impl": impl.impl, "label": impl.label,
                     "variant": impl.variant, "n": case.n, "dtype": case.dtype, "bytes": case.nbytes,
                     "seconds": seconds, "gbps": case.nbytes / seconds / 1e9, "note": case.note})
    return rows


# -- running ------------------------------------------------------------------------------------------------------
def _import_torch(wanted: bool):
    if not wanted:
        return None, "torch rows off (--no-torch)"
    # torch's OpenMP threads otherwise spin for a while after every call, on the core that the implementation timed
    # next needs; interleaved timing would charge torch's idle spinning to its neighbours (relu into a buffer measured
    # 0.74 of copy speed with spinning, 0.85 without). It must be set before torch loads OpenMP.
    policy_note = ""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
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


def run_bench(config: BenchConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Time every case of ``config``; returns ``{"rows": [...], "summary": [...], "claim": [...], ...}``."""
    dtype = np.dtype(config.dtype)
    if dtype not in [np.dtype(d) for d in DTYPES]:
        raise ValueError(f"dtype must be {', '.join(DTYPES[:-1])} or {DTYPES[-1]}; got {config.dtype!r}")
    unknown = [m for m in config.members if m not in MEMBERS]
    if unknown:
        raise ValueError(f"members must be among {', '.join(MEMBERS)}; got {', '.join(unknown)}")
    torch, torch_note = _import_torch(config.torch)
    info = machine_info()
    info["torch"] = torch_note
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for n in config.sizes:
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
    return {"rows": rows, "summary": summarize(rows), "claim": claim(rows), "machine": info,
            "config": {"sizes": list(config.sizes), "dtype": dtype.name, "members": list(config.members),
                       "repeats": config.repeats, "quick": config.quick},
            "seconds": time.perf_counter() - started}


# -- summaries ----------------------------------------------------------------------------------------------------
def _best(rows, **match):
    chosen = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    return max(chosen, key=lambda r: r["gbps"]) if chosen else None


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (op, n): relulab's GB/s and its ratio to the best NumPy idiom, the best torch call and the faster
    of the two copies timed in the same case (ratio > 1: relulab is faster; vs copy: the fraction of copy speed)."""
    out = []
    keys = list(dict.fromkeys((r["op"], r["n"], r["dtype"]) for r in rows))
    for op, n, dtype in keys:
        same = [r for r in rows if r["op"] == op and r["n"] == n and r["dtype"] == dtype]
        is_fused = op.startswith("fused.")
        mine = _best(same, impl="relulab", variant="fused") if is_fused else _best(same, impl="relulab")
        numpy_best = _best(same, impl="numpy")
        torch_best = _best(same, impl="torch")
        unfused = _best(same, impl="relulab", variant="unfused")
        copy_best = _best(same, impl="copy")  # the faster copy, timed interleaved with this case
        entry = {"op": op, "n": n, "dtype": dtype, "relulab_gbps": mine["gbps"], "relulab": mine["label"]}
        for name, peer in (("numpy", numpy_best), ("torch", torch_best), ("unfused", unfused)):
            if peer is not None:
                entry[f"{name}_gbps"] = peer["gbps"]
                entry[f"{name}_label"] = peer["label"]
                entry[f"vs_{name}"] = peer["seconds"] / mine["seconds"]
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
    notes = sorted({f"{r['op'].split('.')[0]}: {r['note']}" for r in rows if r["note"] and r["op"].startswith("gelu")})
    lines += [""] + notes if notes else []
    lines.append(f"\n{len(rows)} timings in {result['seconds']:.1f} s")
    return "\n".join(lines)


def _num(entry: dict[str, Any], key: str, suffix: str = "") -> str:
    value = entry.get(key)
    return "-" if value is None else f"{value:.2f}{suffix}"


def main_rows_for(result: dict[str, Any], n: int | None = None) -> list[dict[str, Any]]:
    """The summary entries of the largest size (or of ``n``): the closing table."""
    sizes = [e["n"] for e in result["summary"]]
    n = max(sizes) if n is None and sizes else n
    return [e for e in result["summary"] if e["n"] == n]
