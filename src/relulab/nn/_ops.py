"""The PyTorch op of every member, written once, and the autograd Functions behind ``at_zero``, ``lean`` and
relulab's limits at +-inf.

One table, :data:`OPS`, maps each member's canonical name to its torch implementation. Every implementation has
the same internal signature::

    op(input, inplace, at_zero, lean, training, *params) -> Tensor

``params`` are the member's torch parameters in the order of :attr:`MemberOp.params`; ``at_zero`` is ``None`` for
the member's default derivative at the kink (PyTorch's value) or the validated subgradient to use at exactly
``x == 0``. Callers (the modules, the functional API) validate parameters once; nothing here re-checks them except
the input's dtype, which costs one tuple lookup.

Three kinds of path:

* **native**: torch's own fused kernel (``torch.relu``, ``F.elu``, ...), used whenever it already follows relulab's
  conventions. This is the common path and it is exactly as fast as torch.nn.
* **fixed**: torch's gelu, silu, mish and hardswish kernels return NaN at an infinite input (and worse for huge
  ones, see :func:`kernels_exact`). On CPU in float32/float64 one dot product x . x decides: finite, and torch's
  kernels are exact and run unchanged; otherwise (and on other devices, in float16/bfloat16, under torch.compile) a
  :class:`torch.autograd.Function` clamps the input to [-L, L] (L = 1e4, beyond which every one of these functions
  has reached its limit in every float dtype) before torch's fused forward and backward kernels; it saves only the
  input, like torch.
* **lean**: piecewise-linear members save a packed bit mask (1 bit per element, 2 when ``at_zero`` is neither end
  of the subdifferential) instead of a float tensor; the backward feeds the mask to torch's own backward kernel
  in place of x, so the gradient is bit-identical to the native path's. Smooth members already save a
  single tensor on the native path (their input, or their output for sigmoid/tanh, which the next layer usually
  keeps anyway), so ``lean`` changes nothing for them.

A member registered at run time, with no entry here, runs on the **NumPy path** (:func:`numpy_op`): a
:class:`torch.autograd.Function` that calls the member's own NumPy forward and derivative kernels. Slow (a round
trip through a CPU NumPy array each way), but exact and complete: dtype and device are kept, gradients are the
member's derivative, ``at_zero`` works, so Monitor, swap, init_ and revive all take such a member.

Maths lives in small pure functions (``*_fwd``, ``*_bwd``, :func:`pack_mask`, :func:`unpack_mask`); the
``autograd.Function`` classes are thin wrappers around them.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

import numpy as np

from relulab.family import SELU_ALPHA, SELU_SCALE, Activation, get

__all__ = ["OPS", "MemberOp", "FLOAT_DTYPES", "check_input", "pack_mask", "unpack_mask", "kernels_exact", "INF_CLAMP",
           "numpy_op", "NumPyKernelFunction"]

aten = torch.ops.aten
Tensor = torch.Tensor

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_ALLOWED = "torch.float16, torch.bfloat16, torch.float32 or torch.float64"

# Beyond |x| = 1e4 gelu (both forms), silu, mish and hardswish equal their limits (x or 0, derivative 1 or 0) to
# the last bit in float16/bfloat16/float32/float64, and 1e4 is finite in all four dtypes; clamping there changes no
# finite result and turns +-inf into a point where torch's kernels are exact.
INF_CLAMP = 1e4


def check_input(input: object, owner: str) -> None:
    """Raise TypeError naming ``input`` unless it is a floating-point tensor torch's activation kernels accept."""
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"{owner}: input must be a torch.Tensor of dtype {_ALLOWED}; got {type(input).__name__}")
    if input.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{owner}: input has dtype {input.dtype}; allowed are {_ALLOWED} (convert integers with input.float())"
        )


# -- packed bit masks ------------------------------------------------------------------------------------------
# One layout for every relulab mask, defined by relulab.family.fused.pack_mask (``numpy.packbits(...,
# bitorder="little")``: element i is bit i % 8 of byte i // 8); the family's fused kernels and this torch port
# write and read the same bytes (tests/nn checks both directions against the family's packer).
# torch has no packbits. A bool tensor is viewed as int64 words of 8 bytes (each byte 0 or 1) and one multiply by
# M = sum_k 2^(56 - 7k) gathers the 8 bytes into the top byte: byte k (bit 8k) lands on bit 56 + k. The partial
# products 8j + 56 - 7k are distinct for all j, k in 0..7, so no two share a bit and nothing carries; those above
# bit 63 wrap away. Unpacking multiplies a byte by L = 0x0101010101010101 (a copy of it in every byte, again
# without carries) and keeps bit k of byte k (mask 0x8040201008040201): byte k is then nonzero exactly where
# element k was set. This relies on int64 multiplication wrapping modulo 2^64, as it does in torch's kernels and
# inductor's generated code. Only reshapes, views and elementwise integer ops: it traces under
# torch.compile(fullgraph=True).
_GATHER = sum(1 << (56 - 7 * k) for k in range(8))  # below 2^63: a positive int64
_SPREAD = 0x0101010101010101
_DIAGONAL = 0x8040201008040201 - (1 << 64)  # as a signed int64


def pack_mask(mask: Tensor) -> Tensor:
    """A bool tensor as a 1-D uint8 tensor of ceil(numel / 8) bytes, in relulab.family.fused.pack_mask's layout."""
    if mask.numel() == 0:  # an empty view may have any strides (even 0), which no byte -> int64 view accepts
        return torch.empty(0, dtype=torch.uint8, device=mask.device)
    flat = mask.reshape(-1).contiguous().view(torch.uint8)  # bool and uint8 share a 1-byte layout: no copy
    pad = (-flat.numel()) % 8
    if pad:
        flat = F.pad(flat, (0, pad))
    gathered = flat.view(torch.int64) * _GATHER
    gathered >>= 56  # in place on our own temporary: one allocation fewer
    return gathered.to(torch.uint8)


def unpack_mask(packed: Tensor, shape: torch.Size, dtype: torch.dtype = torch.bool) -> Tensor:
    """The mask :func:`pack_mask` packed, with ``shape``, as 0/1 of ``dtype`` (bool by default)."""
    numel = 1
    for size in shape:
        numel *= size
    words = packed.to(torch.int64)
    words *= _SPREAD
    words &= _DIAGONAL
    bits = words.view(torch.uint8)[:numel].reshape(shape) != 0
    return bits if dtype == torch.bool else bits.to(dtype)


# -- piecewise-linear members: relu, leaky_relu, prelu, rrelu (eval), relu6 -------------------------------------
# The derivative takes two values, 1 and "rest" (0, the slope s, or the channel's slope w_c), plus the chosen
# subgradient at x == 0. Where each value applies is decided exactly as in torch's backward kernels, NaN included:
#   relu:  threshold_backward(g, y, 0)    -> y <= 0 ? 0 : g            (NaN -> g)
#   relu6: hardtanh_backward(g, x, 0, 6)  -> x <= 0 || x >= 6 ? 0 : g  (NaN -> g)
#   leaky: leaky_relu_backward(g, x, s)   -> x > 0 ? g : g * s          (NaN -> g * s)
#   prelu: _prelu_kernel_backward         -> x > 0 ? g : w * g          (NaN -> w * g)
#   hardtanh (a, b): hardtanh_backward(g, x, a, b) -> x <= a || x >= b ? 0 : g (NaN -> g or 0: torch's vectorised
#                    and scalar loops differ; the mask is taken by the same kernel on the same x, so it agrees)
#   hardsigmoid: relulab's own, where(-3 < x < 3, g / 6, 0)           (NaN -> 0), see hard_sigmoid_bwd
# The lean path saves the region where the derivative is 1 as bits and, in the backward, hands it to the same
# kernel as a 0/1 tensor in place of x: the kernel takes the same branch for every element, so the gradient is
# bit-identical to the native path's.


def _unit(x: Tensor) -> Tensor:
    return torch.ones((), dtype=x.dtype, device=x.device).expand(x.shape)


def region_one(kind: str, x: Tensor, slope=None) -> Tensor:
    """Where the derivative is 1, as a bool tensor, from torch's backward kernel with a unit gradient
    (relu takes it from its output instead, see the Function)."""
    if kind == "relu6":
        return aten.hardtanh_backward(_unit(x), x, 0.0, 6.0).bool()
    if kind == "hardtanh":  # slope: (min_val, max_val)
        return aten.hardtanh_backward(_unit(x), x, slope[0], slope[1]).bool()
    if kind == "hardsigmoid":
        return hard_sigmoid_region(x)
    return aten.leaky_relu_backward(_unit(x), x, 0.0, False).bool()  # leaky, prelu: x > 0


def region_one_at_zero_one(kind: str, x: Tensor) -> Tensor:
    """As :func:`region_one` but with the derivative 1 also at x == 0 (at_zero = 1)."""
    if kind == "relu":
        return (x < 0).logical_not_()
    if kind == "relu6":
        return (x < 0).logical_or_(x >= 6).logical_not_()
    return x >= 0


def piecewise_fwd(kind: str, x: Tensor, slope, inplace: bool) -> Tensor:
    """The forward value with torch's fused kernel (``slope``: float for leaky, weight view for prelu)."""
    if kind == "relu":
        return torch.relu_(x) if inplace else torch.relu(x)
    if kind == "relu6":
        return F.hardtanh(x, 0.0, 6.0, inplace=inplace)
    if kind == "hardtanh":
        return F.hardtanh(x, slope[0], slope[1], inplace=inplace)
    if kind == "hardsigmoid":
        return F.hardsigmoid(x, inplace=inplace)
    if kind == "leaky":
        return F.leaky_relu(x, slope, inplace=inplace)
    return aten._prelu_kernel(x, slope)  # prelu: never in place (torch.nn.PReLU offers no inplace either)


def piecewise_bwd(kind: str, g: Tensor, one: Tensor, slope) -> Tensor:
    """The input gradient from ``one`` (0/1 in g's dtype), through the kernel torch's own backward uses."""
    if kind == "relu":
        return aten.threshold_backward(g, one, 0)
    if kind in ("relu6", "hardtanh"):  # one is 0 or 1: inside (0, 6) exactly where it is 1
        return aten.hardtanh_backward(g, one, 0.0, 6.0)
    if kind == "hardsigmoid":
        return hard_sigmoid_grad(g, one != 0)
    if kind == "leaky":
        return aten.leaky_relu_backward(g, one, slope, False)
    return aten._prelu_kernel_backward(g, one, slope)[0]


def prelu_weight_view(x: Tensor, weight: Tensor) -> Tensor:
    """The slopes shaped to broadcast along dim 1 of x (torch's convention; one slope for inputs below 2-D)."""
    if x.dim() < 2:
        return weight.reshape(()) if x.dim() == 0 else weight.reshape(1)
    shape = [1] * x.dim()
    shape[1] = weight.numel()
    return weight.reshape(shape)


class PiecewiseLinearFunction(torch.autograd.Function):
    """relu / relu6 / leaky_relu / prelu / rrelu (eval) / hard_tanh / hard_sigmoid saving packed bits instead of a
    float tensor.

    Also the path for a non-default ``at_zero``: 1 bit when at_zero is 1 (x == 0 joins the region of slope 1),
    else a second bit marks x == 0. For prelu with slopes that need a gradient, dL/dw = sum g * min(x, 0) needs x
    itself, so x is saved (as torch does) and only the input gradient's at_zero is handled here.
    """

    @staticmethod
    def forward(ctx, x, weight, kind, slope, at_zero, inplace):
        ctx.kind, ctx.at_zero, ctx.shape, ctx.slope = kind, at_zero, x.shape, slope
        ctx.weight_grad = kind == "prelu" and weight is not None and weight.requires_grad
        # The slopes in x's dtype: under torch.autocast x arrives in bfloat16/float16 while the weight stays
        # float32, and torch's prelu kernels take one dtype (the native F.prelu is cast by autocast itself).
        slope_arg = prelu_weight_view(x, weight).to(x.dtype) if kind == "prelu" else slope
        if ctx.weight_grad:
            ctx.save_for_backward(x, weight)
            return piecewise_fwd(kind, x, slope_arg, False)
        zero = None
        if at_zero is None and kind == "relu":
            one = None  # relu's region is where its output is nonzero (NaN included): read after the forward
        elif at_zero is None:
            one = region_one(kind, x, slope)
        elif at_zero == 1.0:
            one = region_one_at_zero_one(kind, x)
        else:
            one = region_one(kind, x) if kind != "relu" else (x <= 0).logical_not_()
            zero = x == 0
        out = piecewise_fwd(kind, x, slope_arg, inplace)
        if one is None:
            one = out.bool()
        tensors = (pack_mask(one),) if zero is None else (pack_mask(one), pack_mask(zero))
        ctx.zero_bit = zero is not None
        if kind == "prelu":
            tensors += (weight,)
        ctx.save_for_backward(*tensors)
        if inplace:
            ctx.mark_dirty(x)
        return out

    @staticmethod
    def backward(ctx, g):
        if ctx.weight_grad:
            x, weight = ctx.saved_tensors
            w_view = prelu_weight_view(x, weight)
            grad_x, grad_w = aten._prelu_kernel_backward(g.to(x.dtype), x, w_view.to(x.dtype))
            grad_w = grad_w.to(weight.dtype)
            if ctx.at_zero is not None:
                grad_x = torch.where(x == 0, g * ctx.at_zero, grad_x)
            return grad_x, grad_w.sum_to_size(w_view.shape).reshape(weight.shape), None, None, None, None
        saved = ctx.saved_tensors
        one = unpack_mask(saved[0], ctx.shape, g.dtype)
        slope = prelu_weight_view(g, saved[-1]).to(g.dtype) if ctx.kind == "prelu" else ctx.slope
        grad = piecewise_bwd(ctx.kind, g, one, slope)
        if ctx.zero_bit:
            grad = torch.where(unpack_mask(saved[1], ctx.shape), g * ctx.at_zero, grad)
        return grad, None, None, None, None, None


class RReLUNoiseFunction(torch.autograd.Function):
    """rrelu in training: slopes a ~ U(lower, upper) for x <= 0; saves only the slopes ("noise"), not the input.

    ``at_zero`` (when given) replaces the random slope at x == 0. The gradient is ``g * noise``, torch's formula.
    """

    @staticmethod
    def forward(ctx, x, lower, upper, at_zero, inplace):
        # torch's own kernel draws the slopes (one draw per element x <= 0, from the same generator), so the lean
        # path draws exactly what F.rrelu draws for the same seed; it fills noise (1 where x > 0 or NaN).
        noise = torch.empty_like(x)
        if inplace:
            out = aten.rrelu_with_noise_(x, noise, lower, upper, True)
            ctx.mark_dirty(x)
        else:
            out = aten.rrelu_with_noise(x, noise, lower, upper, True)
        if at_zero is not None:
            noise = torch.where(x == 0, at_zero, noise)  # x == 0 gives 0 (of its sign) either way
        ctx.save_for_backward(noise)
        return out

    @staticmethod
    def backward(ctx, g):
        (noise,) = ctx.saved_tensors
        return g * noise, None, None, None, None


# -- members whose torch kernel misses relulab's limits at +-inf: gelu, silu, mish, hardswish ---------------------
# torch gives NaN for gelu(-inf), silu(-inf), mish(-inf), hardswish(-inf) (an inf * 0 product), NaN for the
# derivatives of gelu/silu/mish at +-inf, NaN for the tanh-gelu derivative once x^2 overflows, and inf for
# hardswish(x > max / 6). Every one of these needs |x| >= sqrt(max of the dtype), so when x . x is finite torch's
# fused kernels are exact and run unchanged (one extra read of x, a dot product: ~3% of the activation's own
# forward + backward time). Otherwise, on other devices, in float16/bfloat16 (whose dot products overflow
# early) and under torch.compile (where the clamp fuses into the kernel), the Function below clamps x to [-L, L]
# first: beyond L = 1e4 every one of these functions has reached its limit in every float dtype.


def kernels_exact(x: Tensor) -> bool:
    """True when torch's kernels for gelu/silu/mish/hardswish are exact on x (every x^2 finite; float32/64, CPU)."""
    if torch.compiler.is_compiling() or x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        return False
    flat = x.detach().reshape(-1)
    return math.isfinite(torch.dot(flat, flat).item())


_HALF = (torch.float16, torch.bfloat16)
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


def gelu_fwd(x: Tensor, approximate: str) -> Tensor:
    if x.dtype in _HALF:
        # torch's half-precision gelu and ndtr kernels lose the tail (bfloat16 gelu(-3) was 44 % off): computed in
        # float32 with the forms below, then rounded once.
        return gelu_fwd(x.float(), approximate).to(x.dtype)
    clamped = x.clamp_min(-INF_CLAMP)
    if approximate == "none":
        # torch's float32 kernel forms x (1 + erf(x / sqrt 2)) / 2: NaN at +inf, inf above max / 2, and 1 + erf
        # cancels in the negative tail. Phi(x) = erfc(-x / sqrt 2) / 2 never cancels (float32's ndtr does: 100 %
        # off at x = -5.3), and Phi(x) * x never exceeds |x|.
        if x.dtype == torch.float64:
            return torch.special.ndtr(clamped).mul_(clamped)
        return torch.special.erfc(clamped * -_SQRT_HALF).mul_(0.5).mul_(clamped)
    if x.dtype == torch.float64:
        return aten.gelu_(clamped, approximate=approximate)
    # 0.5 x (1 + tanh(u)) = x sigmoid(2u): no cancellation for x << 0 (the family's form).
    c = x.clamp(-INF_CLAMP, INF_CLAMP)
    return torch.sigmoid(2.0 * _SQRT_2_OVER_PI * (c + _GELU_CUBIC * c * c * c)).mul_(clamped)


def gelu_bwd(g: Tensor, x: Tensor, approximate: str) -> Tensor:
    if x.dtype == torch.float64:
        return aten.gelu_backward(g, x.clamp(-INF_CLAMP, INF_CLAMP), approximate=approximate)
    # float32 (and half precision widened to it): the derivative in plain ops, so it is accurate in the tails and
    # differentiable again (create_graph=True).
    c = x.float().clamp(-INF_CLAMP, INF_CLAMP)
    if approximate == "none":
        grad = 0.5 * torch.special.erfc(c * -_SQRT_HALF) + c * torch.exp(-0.5 * c * c) * _INV_SQRT_2PI
    else:
        s = torch.sigmoid(2.0 * _SQRT_2_OVER_PI * (c + _GELU_CUBIC * c * c * c))
        du = 2.0 * _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_CUBIC * c * c)
        grad = s + c * du * s * (1.0 - s)
    return (g.float() * grad).to(g.dtype)


def silu_fwd(x: Tensor, approximate: str) -> Tensor:
    return aten.silu_(x.clamp_min(-INF_CLAMP))


def silu_bwd(g: Tensor, x: Tensor, approximate: str) -> Tensor:
    clamped = x.clamp(-INF_CLAMP, INF_CLAMP)
    if torch.is_grad_enabled():
        # A backward that is itself differentiated (create_graph=True): aten.silu_backward has no derivative, so the
        # same formula in plain ops, as torch's own silu does (infinitely_differentiable_silu_backward).
        s = torch.sigmoid(clamped)
        return g * s * (1 + clamped * (1 - s))
    return aten.silu_backward(g, clamped)


def mish_fwd(x: Tensor, approximate: str) -> Tensor:
    return aten.mish_(x.clamp_min(-INF_CLAMP))


def mish_bwd(g: Tensor, x: Tensor, approximate: str) -> Tensor:
    clamped = x.clamp(-INF_CLAMP, INF_CLAMP)
    if torch.is_grad_enabled():  # differentiable twice, as torch's infinitely_differentiable_mish_backward
        s = torch.sigmoid(clamped)
        t = torch.tanh(F.softplus(clamped))
        return g * (t + clamped * s * (1 - t * t))
    return aten.mish_backward(g, clamped)


def hardswish_fwd(x: Tensor, approximate: str) -> Tensor:
    # x * hardsigmoid(x) never forms a product above |x| (torch's x * relu6(x + 3) / 6 overflows for x > max / 6)
    clamped = x.clamp_min(-INF_CLAMP)
    return F.hardsigmoid(clamped).mul_(clamped)


def hardswish_bwd(g: Tensor, x: Tensor, approximate: str) -> Tensor:
    return aten.hardswish_backward(g, x)  # exact at +-inf already (0 and g)


def _fixed_function(label: str, fwd: Callable, bwd: Callable) -> type:
    """A thin autograd.Function around ``fwd``/``bwd`` that saves only the input (a copy of it when in place)."""

    def forward(ctx, x, approximate, inplace):
        ctx.approximate = approximate
        if inplace:
            ctx.save_for_backward(x.clone())
            ctx.mark_dirty(x)
            return x.copy_(fwd(x, approximate))
        ctx.save_for_backward(x)
        return fwd(x, approximate)

    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return bwd(g, x, ctx.approximate), None, None

    doc = f"{label} with relulab's limits at +-inf; saves only the input."
    return type(f"{label}Function", (torch.autograd.Function,), {
        "__doc__": doc, "__module__": __name__, "forward": staticmethod(forward), "backward": staticmethod(backward),
    })


QUICK_GELU_SCALE = 1.702


def quick_gelu_fwd(x: Tensor, approximate: str) -> Tensor:
    if x.dtype in _HALF:  # as gelu: 1.702 x rounded to half precision shifts the tail; float32, rounded once
        return quick_gelu_fwd(x.float(), approximate).to(x.dtype)
    # x * sigmoid(1.702 x) with x clamped below: -inf * sigmoid(-inf) would be NaN, the limit is 0.
    clamped = x.clamp_min(-INF_CLAMP)
    return torch.sigmoid(clamped * QUICK_GELU_SCALE).mul_(clamped)


def quick_gelu_bwd(g: Tensor, x: Tensor, approximate: str) -> Tensor:
    if x.dtype in _HALF:
        return quick_gelu_bwd(g.float(), x.float(), approximate).to(g.dtype)
    # s(u) + u s(u) s(-u), u = 1.702 x: s(-u) instead of 1 - s(u), which cancels for u >> 0. Clamped so that
    # u * s(u) s(-u) is never inf * 0 (beyond 1e4 the derivative is 0 or 1 exactly).
    u = x.clamp(-INF_CLAMP, INF_CLAMP) * QUICK_GELU_SCALE
    s = torch.sigmoid(u)
    return g * (s + u * s * torch.sigmoid(-u))


def squareplus_fwd(x: Tensor, b: float) -> Tensor:
    if x.dtype in _HALF:  # computed in float32 and rounded once, as the family does
        return squareplus_fwd(x.float(), b).to(x.dtype)
    if b == 0:  # relu with the family's signs: +0.0 at -0.0 (torch.relu keeps -0.0), NaN at NaN
        return torch.where(x <= 0, torch.zeros((), dtype=x.dtype, device=x.device), x)
    # (x + h) / 2 = d for x >= 0, (b / 4) / d for x < 0 (the same value without cancellation), with
    # h = hypot(x, sqrt(b)) and d = h/2 + |x|/2: no overflow for finite x, the limits 0 and +inf at -inf and +inf.
    h = torch.hypot(x, torch.full((), math.sqrt(b), dtype=x.dtype, device=x.device))
    d = 0.5 * h + 0.5 * x.abs()
    return torch.where(x < 0, (0.25 * b) / d, d)


def squareplus_bwd(g: Tensor, x: Tensor, b: float) -> Tensor:
    if x.dtype in _HALF:
        return squareplus_bwd(g.float(), x.float(), b).to(g.dtype)
    if b == 0:  # relu's derivative with f'(0) = 1/2, the value for every b > 0 (the family's); NaN at NaN
        return g * torch.where(x.isnan(), x, 0.5 * x.sign() + 0.5)
    # (1 + x/h) / 2; for x < 0 the same as (b/4) / (h d) without cancellation; 1 at +inf (x/h is inf/inf there).
    h = torch.hypot(x, torch.full((), math.sqrt(b), dtype=x.dtype, device=x.device))
    d = 0.5 * h + 0.5 * x.abs()
    positive = torch.where(x == math.inf, 1.0, 0.5 + 0.5 * (x / h))
    return g * torch.where(x < 0, ((0.25 * b) / h) / d, positive)


def sparse_plus_fwd(x: Tensor, approximate: str) -> Tensor:
    if x.dtype in _HALF:  # three roundings in bfloat16 would cost an ulp: float32, rounded once
        return sparse_plus_fwd(x.float(), approximate).to(x.dtype)
    # 0 for x <= -1, (x + 1)^2 / 4 on (-1, 1), x from 1 on; the quadratic sees only [-1, 1]; NaN stays NaN.
    c = x.clamp(-1.0, 1.0)
    quadratic = (c + 1.0).square_().mul_(0.25)
    return torch.where(x <= -1.0, torch.zeros((), dtype=x.dtype, device=x.device), torch.where(x >= 1.0, x, quadratic))


def sparse_plus_bwd(g: Tensor, x: Tensor, approximate: str) -> Tensor:
    return g * (x.clamp(-1.0, 1.0) + 1.0).mul_(0.5)  # 0 up to -1, (x + 1)/2, 1 from 1 on: continuous


def hard_sigmoid_fwd(x: Tensor, approximate: str) -> Tensor:
    return F.hardsigmoid(x)


def hard_sigmoid_region(x: Tensor) -> Tensor:
    return (x > -3.0) & (x < 3.0)


def hard_sigmoid_grad(g: Tensor, inside: Tensor) -> Tensor:
    # torch's hardsigmoid_backward multiplies by float32's 1/6 even in float64 (0.16666667163); the family's
    # derivative is 1/6 in x's dtype, 0 at the kinks and outside (and at NaN, as torch's kernel: see the table
    # above; one bit per element on the lean path could not hold a third value).
    return torch.where(inside, g / 6.0, torch.zeros((), dtype=g.dtype, device=g.device))


def hard_sigmoid_bwd(g: Tensor, x: Tensor, approximate: str) -> Tensor:
    return hard_sigmoid_grad(g, hard_sigmoid_region(x))


GELUFunction = _fixed_function("GELU", gelu_fwd, gelu_bwd)
QuickGELUFunction = _fixed_function("QuickGELU", quick_gelu_fwd, quick_gelu_bwd)
HardSigmoidFunction = _fixed_function("HardSigmoid", hard_sigmoid_fwd, hard_sigmoid_bwd)
SiLUFunction = _fixed_function("SiLU", silu_fwd, silu_bwd)
MishFunction = _fixed_function("Mish", mish_fwd, mish_bwd)
HardswishFunction = _fixed_function("Hardswish", hardswish_fwd, hardswish_bwd)
SquareplusFunction = _fixed_function("Squareplus", squareplus_fwd, squareplus_bwd)  # its b in approximate's place
SparsePlusFunction = _fixed_function("SparsePlus", sparse_plus_fwd, sparse_plus_bwd)


_BITS_FORMAT = {torch.float32: ("f", "I"), torch.float16: ("e", "H")}


@torch.compiler.assume_constant_result
def _rounded_bound(value: float, dtype: torch.dtype, up: bool) -> float:
    """A parameter ``value`` >= 0 rounded to ``dtype`` toward +inf (``up``) or -inf, as a Python float:
    comparisons of x with it decide exactly what comparisons with the real value decide (torch would round it to
    nearest). Plain Python (a constant under torch.compile); the parameter fits the dtype (see _wider_dtype)."""
    if dtype == torch.float64:
        return value
    if dtype == torch.bfloat16:  # float32's upper 16 bits: truncation rounds a value >= 0 down
        bits = struct.unpack("I", struct.pack("f", _rounded_bound(value, torch.float32, up)))[0] & 0xFFFF0000
        down = struct.unpack("f", struct.pack("I", bits))[0]
        return down if not up or down == value else struct.unpack("f", struct.pack("I", bits + 0x10000))[0]
    real, integer = _BITS_FORMAT[dtype]
    nearest = struct.unpack(real, struct.pack(real, value))[0]
    if (nearest < value) if up else (nearest > value):  # one step along the bits (value >= 0: bits are monotonic)
        bits = struct.unpack(integer, struct.pack(real, nearest))[0]
        nearest = struct.unpack(real, struct.pack(integer, bits + (1 if up else -1)))[0]
    return nearest


class ClippedReLUFunction(torch.autograd.Function):
    """relu with Keras's max_value and threshold (the family's relu): x on (threshold, max_value), 0 up to the
    threshold (f(t) = 0), max_value from max_value on; f' = 1 strictly inside, 0 at both ends and outside,
    ``at_zero`` at x == 0 where 0 is a kink. Saves packed bits only (1 per element, 2 with at_zero)."""

    @staticmethod
    def forward(ctx, x, max_value, threshold, at_zero, inplace):
        # The region of slope 1 as torch's threshold_backward/hardtanh_backward decide it: NaN is inside (f' = 1
        # at NaN, as relulab.nn's relu and relu6).
        low = _rounded_bound(threshold, x.dtype, False)
        one = (x <= low).logical_not_()
        if max_value is not None:
            one &= (x >= _rounded_bound(max_value, x.dtype, True)).logical_not_()
        zero = (x == 0) if at_zero is not None else None
        value = torch.where(x <= low, torch.zeros((), dtype=x.dtype, device=x.device), x)  # NaN stays NaN
        if max_value is not None:
            value = value.clamp_max(max_value)
        ctx.shape, ctx.at_zero = x.shape, at_zero
        ctx.save_for_backward(pack_mask(one), *(() if zero is None else (pack_mask(zero),)))
        if inplace:
            ctx.mark_dirty(x)
            return x.copy_(value)
        return value

    @staticmethod
    def backward(ctx, g):
        saved = ctx.saved_tensors
        grad = g * unpack_mask(saved[0], ctx.shape, g.dtype)
        if ctx.at_zero is not None:
            grad = torch.where(unpack_mask(saved[1], ctx.shape), g * ctx.at_zero, grad)
        return grad, None, None, None, None


class ELUAtZeroFunction(torch.autograd.Function):
    """elu / selu with a non-default subgradient at x == 0 (torch's kernel gives scale * alpha there)."""

    @staticmethod
    def forward(ctx, x, alpha, scale, at_zero, inplace):
        ctx.alpha, ctx.scale, ctx.at_zero = alpha, scale, at_zero
        if inplace:
            ctx.save_for_backward(x.clone())
            ctx.mark_dirty(x)
            return x.copy_(aten.elu(x, alpha, scale, 1.0))
        ctx.save_for_backward(x)
        return aten.elu(x, alpha, scale, 1.0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        grad = aten.elu_backward(g, ctx.alpha, ctx.scale, 1.0, False, x)
        return torch.where(x == 0, g * ctx.at_zero, grad), None, None, None, None


# -- the table ---------------------------------------------------------------------------------------------------
def _tracked(*tensors) -> bool:
    """True when autograd will need a backward for these tensors (no mask to pack in inference otherwise)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _relu(x, inplace, at_zero, lean, training, max_value=None, threshold=0.0):
    if max_value is not None or threshold != 0:  # Keras's capped / thresholded relu
        return ClippedReLUFunction.apply(x, max_value, threshold, at_zero, inplace)
    if (lean or at_zero is not None) and _tracked(x):
        return PiecewiseLinearFunction.apply(x, None, "relu", 0.0, at_zero, inplace)
    return torch.relu_(x) if inplace else torch.relu(x)


def _leaky_relu(x, inplace, at_zero, lean, training, negative_slope):
    # torch's in-place backward recovers the region from the output, which needs negative_slope >= 0 (a negative
    # slope flips signs); the mask path computes the region before overwriting, so it takes any slope.
    if (lean or at_zero is not None or (inplace and negative_slope < 0)) and _tracked(x):
        return PiecewiseLinearFunction.apply(x, None, "leaky", negative_slope, at_zero, inplace)
    if negative_slope == 0.0:  # relu itself: torch's leaky kernel forms 0 * -inf = NaN, the limit is 0
        return torch.relu_(x) if inplace else torch.relu(x)
    return F.leaky_relu(x, negative_slope, inplace=inplace)


def _prelu(x, inplace, at_zero, lean, training, weight):
    if (lean or at_zero is not None) and _tracked(x, weight):
        return PiecewiseLinearFunction.apply(x, weight, "prelu", None, at_zero, False)
    return F.prelu(x, weight)


def _rrelu(x, inplace, at_zero, lean, training, lower, upper):
    if training:
        if (lean or at_zero is not None) and _tracked(x):
            return RReLUNoiseFunction.apply(x, lower, upper, at_zero, inplace)
        return F.rrelu(x, lower, upper, training=True, inplace=inplace)
    # Evaluation: the deterministic mean slope. torch's rrelu kernel saves input and noise here; leaky_relu gives
    # the same values and gradients and saves only the input.
    return _leaky_relu(x, inplace, at_zero, lean, False, (lower + upper) / 2)


def _elu(x, inplace, at_zero, lean, training, alpha):
    if at_zero is not None:
        return ELUAtZeroFunction.apply(x, alpha, 1.0, at_zero, inplace)
    return F.elu(x, alpha, inplace=inplace)


def _selu(x, inplace, at_zero, lean, training):
    if at_zero is not None:
        return ELUAtZeroFunction.apply(x, SELU_ALPHA, SELU_SCALE, at_zero, inplace)
    return F.selu(x, inplace=inplace)


class CELUFunction(torch.autograd.Function):
    """celu with torch's forward and a float64-exact backward: torch's celu backward forms 1 / alpha from alpha
    rounded to float32 (``alpha.toFloat()``), so in float64 f'(0) is 0.99999996 for alpha = 1.176, NaN for a
    tiny alpha and 0 for x < 0 with a huge one. The backward is plain ops (differentiable again); NaN takes the
    x > 0 branch, as torch's kernel."""

    @staticmethod
    def forward(ctx, x, alpha, inplace):
        ctx.alpha = alpha
        if inplace:
            ctx.save_for_backward(x.clone())
            ctx.mark_dirty(x)
            return F.celu(x, alpha, inplace=True)
        ctx.save_for_backward(x)
        return F.celu(x, alpha)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        slope = torch.where(x <= 0, torch.exp(x.clamp(max=0) / ctx.alpha), 1.0)
        return g * slope, None, None


def _float32_exact(value: float) -> bool:
    try:
        return struct.unpack("f", struct.pack("f", value))[0] == value
    except OverflowError:  # beyond float32
        return False


def _celu(x, inplace, at_zero, lean, training, alpha):
    # (eager only: a compiled graph takes torch's decomposition of celu, whose backward is traced, not this kernel)
    if (x.dtype == torch.float64 and not torch.compiler.is_compiling() and not _float32_exact(alpha)
            and _tracked(x)):
        return CELUFunction.apply(x, alpha, inplace)
    return F.celu(x, alpha, inplace=inplace)


def _relu6(x, inplace, at_zero, lean, training):
    if (lean or at_zero is not None) and _tracked(x):
        return PiecewiseLinearFunction.apply(x, None, "relu6", 0.0, at_zero, inplace)
    return F.hardtanh(x, 0.0, 6.0, inplace=inplace)


def _hardswish(x, inplace, at_zero, lean, training):
    if kernels_exact(x):
        return F.hardswish(x, inplace=inplace)
    return HardswishFunction.apply(x, "none", inplace)


def _hard_sigmoid(x, inplace, at_zero, lean, training):
    if not _tracked(x):
        return F.hardsigmoid(x, inplace=inplace)  # inference: torch's fused kernel, nothing saved
    if lean:
        return PiecewiseLinearFunction.apply(x, None, "hardsigmoid", None, None, inplace)
    return HardSigmoidFunction.apply(x, "none", inplace)


def _hard_tanh(x, inplace, at_zero, lean, training, min_val, max_val):
    if lean and _tracked(x):
        return PiecewiseLinearFunction.apply(x, None, "hardtanh", (min_val, max_val), None, inplace)
    return F.hardtanh(x, min_val, max_val, inplace=inplace)


def _squared_relu(x, inplace, at_zero, lean, training):
    # relu saves its output r and square saves its input r: one tensor, shared.
    return torch.relu(x).square()


def _gelu(x, inplace, at_zero, lean, training, approximate):
    if kernels_exact(x):
        return F.gelu(x, approximate=approximate)
    return GELUFunction.apply(x, approximate, False)


def _silu(x, inplace, at_zero, lean, training):
    if kernels_exact(x):
        return F.silu(x, inplace=inplace)
    return SiLUFunction.apply(x, "none", inplace)


def _quick_gelu(x, inplace, at_zero, lean, training):
    return QuickGELUFunction.apply(x, "none", False)


def _squareplus(x, inplace, at_zero, lean, training, b):
    return SquareplusFunction.apply(x, b, False)


def _sparse_plus(x, inplace, at_zero, lean, training):
    return SparsePlusFunction.apply(x, "none", False)


def _mish(x, inplace, at_zero, lean, training):
    if kernels_exact(x):
        return F.mish(x, inplace=inplace)
    return MishFunction.apply(x, "none", inplace)


def _softplus(x, inplace, at_zero, lean, training, beta, threshold):
    if threshold <= 20.0:  # torch's kernel forms exp(beta x) below the threshold: finite up to 20 in every dtype
        return F.softplus(x, beta, threshold)
    # A larger threshold (inf: the function itself) lets exp(beta x) overflow in torch's kernel (inf for x > 89 in
    # float32). logaddexp(beta x, 0) is the same log(1 + exp(beta x)) without overflow, with derivative
    # sigmoid(beta x); the linear branch's points are zeroed in the other branch so no NaN reaches its gradient.
    linear = (x * beta > threshold) | (x == math.inf)
    safe = torch.where(linear, 0.0, x)
    smooth = torch.logaddexp(safe * beta, torch.zeros((), dtype=x.dtype, device=x.device)) / beta
    return torch.where(linear, x, smooth)


def _sigmoid(x, inplace, at_zero, lean, training):
    return torch.sigmoid(x)


def _tanh(x, inplace, at_zero, lean, training):
    return torch.tanh(x)


def _identity(x, inplace, at_zero, lean, training):
    return x  # as torch.nn.Identity: the input itself, no copy, nothing saved


# -- the NumPy path: members without a torch implementation ------------------------------------------------------
def _through_numpy(compute: Callable[..., np.ndarray], x: Tensor, params: dict, **extra) -> Tensor:
    """``compute(array, **params, **extra)`` on x as a CPU NumPy array, back as a tensor of x's dtype and device
    (bfloat16, which NumPy lacks, goes through float32 and is rounded once)."""
    work = x.detach()
    dtype = torch.float32 if work.dtype == torch.bfloat16 else work.dtype
    array = work.to(device="cpu", dtype=dtype).numpy()
    value = np.asarray(compute(array, **params, **extra))
    return torch.from_numpy(value).to(device=x.device, dtype=x.dtype)


class NumPyKernelFunction(torch.autograd.Function):
    """f(x) by the member's NumPy forward kernel; the backward is g * f'(x) by its NumPy derivative kernel (at
    exactly x == 0 the subgradient ``at_zero`` where given). Saves the input."""

    @staticmethod
    def forward(ctx, x, activation, params, at_zero, inplace):
        ctx.activation, ctx.params, ctx.at_zero = activation, params, at_zero
        value = _through_numpy(activation, x, params)
        if inplace:
            ctx.save_for_backward(x.clone())
            ctx.mark_dirty(x)
            return x.copy_(value)
        ctx.save_for_backward(x)
        return value

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        extra = {} if ctx.at_zero is None else {"at_zero": ctx.at_zero}
        return g * _through_numpy(ctx.activation.grad, x, ctx.params, **extra), None, None, None, None


def numpy_op(activation: Activation) -> "MemberOp":
    """The op of a member relulab.nn has no torch implementation of: its NumPy kernels through
    :class:`NumPyKernelFunction` (the slow path; see the module docstring)."""
    if activation.takes_weight:
        raise ValueError(f"relulab.nn: {activation.name} takes a weight array; a member with a weight needs a torch "
                         "implementation of its own in relulab/nn/_ops.py")
    names = tuple(p.name for p in activation.torch_params)

    def run(x, inplace, at_zero, lean, training, *params):
        return NumPyKernelFunction.apply(x, activation, dict(zip(names, params)), at_zero, inplace)

    run.__name__ = f"numpy_{activation.name}"
    return MemberOp(run, names, activation.inplace)


@dataclass(frozen=True)
class MemberOp:
    """How one member runs on torch.

    ``params``: the family parameters the torch op takes, in torch's positional order, and ``inplace``: whether an
    ``inplace=True`` option is offered; both read from the member's spec (``Param(torch=False)``,
    ``Activation(inplace=...)``) by :func:`_op`. ``lean_saves``: what the lean path keeps for the backward, in
    words (for the docs and the memory benchmark).
    """

    fn: Callable[..., Tensor]
    params: tuple[str, ...] = ()
    inplace: bool = False
    lean_saves: str = "its input (as the native path)"

    def __post_init__(self) -> None:
        if not getattr(self.fn, "_widening", False):
            object.__setattr__(self, "fn", _widening(self.fn))


def _wider_dtype(dtype: torch.dtype, params: tuple) -> torch.dtype | None:
    """The float dtype to compute in when a real parameter lies beyond what ``dtype`` represents, else None.

    torch converts scalar parameters to the input's dtype: softplus(threshold=1e39) on float16 raises "value
    cannot be converted to type float without overflow", and leaky_relu(negative_slope=1e39) on float32 gives
    NaN at 0. The family's ranges are ranges of real numbers, so such a call computes in the narrowest float dtype
    that holds every parameter and rounds the result once (the family does the same in NumPy).
    """
    info = torch.finfo(dtype)
    needs = None
    for value in params:
        if isinstance(value, float) and math.isfinite(value) and value != 0:
            magnitude = abs(value)
            if magnitude > info.max or magnitude < info.tiny:
                fits32 = torch.finfo(torch.float32).tiny <= magnitude <= torch.finfo(torch.float32).max
                wanted = torch.float32 if fits32 and dtype in (torch.float16, torch.bfloat16) else torch.float64
                if needs is None or wanted == torch.float64:
                    needs = wanted
    return needs


def _widening(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """``fn`` run in a wider dtype when a parameter does not fit the input's (see :func:`_wider_dtype`)."""

    def run(x, inplace, at_zero, lean, training, *params):
        wide = _wider_dtype(x.dtype, params) if isinstance(x, torch.Tensor) else None
        if wide is None:
            return fn(x, inplace, at_zero, lean, training, *params)
        result = fn(x.to(wide), False, at_zero, lean, training, *params).to(x.dtype)
        return x.copy_(result) if inplace else result

    run._widening = True
    run.__name__, run.__doc__, run.__wrapped__ = fn.__name__, fn.__doc__, fn
    return run


def _op(name: str, fn: Callable[..., Tensor], lean_saves: str = "its input (as the native path)") -> MemberOp:
    """A built-in member's torch implementation; its parameters and ``inplace`` come from the member's spec."""
    spec = get(name)
    return MemberOp(fn, tuple(p.name for p in spec.torch_params), spec.inplace, lean_saves)


# The members with a torch implementation of their own (the others take :func:`numpy_op`), in registry order.
OPS: dict[str, MemberOp] = {
    "relu": _op("relu", _relu, "1 bit per element"),
    "leaky_relu": _op("leaky_relu", _leaky_relu, "1 bit per element"),
    "prelu": _op("prelu", _prelu, "1 bit per element (the input too when the slopes need a gradient)"),
    "rrelu": _op("rrelu", _rrelu, "eval: 1 bit per element; training: the random slopes only (not the input)"),
    "elu": _op("elu", _elu),
    "selu": _op("selu", _selu),
    "celu": _op("celu", _celu),
    "relu6": _op("relu6", _relu6, "1 bit per element"),
    "hardswish": _op("hardswish", _hardswish),
    "hard_sigmoid": _op("hard_sigmoid", _hard_sigmoid, "1 bit per element"),
    "hard_tanh": _op("hard_tanh", _hard_tanh, "1 bit per element"),
    "squared_relu": _op("squared_relu", _squared_relu, "relu(x) (one tensor, as the native path)"),
    "gelu": _op("gelu", _gelu),
    "silu": _op("silu", _silu),
    "quick_gelu": _op("quick_gelu", _quick_gelu),
    "mish": _op("mish", _mish),
    "softplus": _op("softplus", _softplus),
    "squareplus": _op("squareplus", _squareplus),
    "sparse_plus": _op("sparse_plus", _sparse_plus),
    "sigmoid": _op("sigmoid", _sigmoid, "its output (as the native path)"),
    "tanh": _op("tanh", _tanh, "its output (as the native path)"),
    "identity": _op("identity", _identity, "nothing"),
}
