"""Fused operations: what a network layer does around relu, in one pass over memory instead of two or three.

* :func:`relu_mask` -- relu(x) and the packed 1-bit mask a lean backward needs, from one read of x.
* :func:`relu_backward_mask` -- dL/dx from dL/dy and that mask (no copy of x kept for the backward).
* :func:`bias_activation` -- activation(x + bias) with no temporary for the sum (for relu, the sum only ever in a
  register).

Each equals its unfused composition exactly (tests/family/test_fused.py):

>>> import numpy as np, relulab as rl
>>> from relulab.family.fused import relu_mask, relu_backward_mask, unpack_mask, bias_activation
>>> x = np.array([-1.0, 0.0, 2.0, np.nan])
>>> y, mask = relu_mask(x)
>>> y, unpack_mask(mask, x.shape)
(array([ 0.,  0.,  2., nan]), array([False, False,  True,  True]))
>>> relu_backward_mask(np.array([5.0, 5.0, 5.0, 5.0]), mask)
array([0., 0., 5., 5.])
>>> bias_activation(np.array([[-1.0, 1.0]]), np.array([0.5, 0.5]), "relu")
array([[0. , 1.5]])

The mask has relulab's one layout, defined by :func:`pack_mask` here (element i in bit i % 8 of byte i // 8 of the
flattened array: ``np.packbits(..., bitorder="little")``); ``relulab.nn``'s lean backward packs the same bytes with
a torch port of this packer (tests/nn checks the two against each other). It marks the same regions as torch's
``threshold_backward``: bit i is ``not (x_i <= 0)``, so a NaN input passes its gradient through (the forward value
is already NaN). One bit cannot carry "NaN": use ``relu.grad`` where the derivative itself must be NaN at NaN.

Large float32/float64 arrays run on every core; past the last-level cache the numba streaming kernels write
the outputs with non-temporal stores (family/_parallel.py).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _parallel
from ._core import get
from ._input import as_array, check_out, describe
from .members import relu

__all__ = ["relu_mask", "relu_backward_mask", "bias_activation", "pack_mask", "unpack_mask"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
MIN_COMPILED = 2048  # the compiled kernels run from this many elements (on every core from larger sizes)


def pack_mask(mask: Any) -> np.ndarray:
    """A boolean array as a 1-D uint8 array of ceil(size / 8) bytes, element i in bit i % 8 of byte i // 8."""
    return np.packbits(np.asarray(mask, dtype=bool).reshape(-1), bitorder="little")


def unpack_mask(packed: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The boolean array of ``shape`` that :func:`pack_mask` packed."""
    count = math.prod(shape)
    return np.unpackbits(packed, count=count, bitorder="little").view(bool).reshape(shape)


def _sum_errors_do_not_raise() -> bool:
    """Whether NumPy's error state lets an overflowing or invalid sum through (ignore, warn or print; not raise or
    call): the fused ways write ``out`` before such a sum is seen (the compiled relu pass redoes it with NumPy
    after), which must not raise then."""
    state = np.geterr()
    return state["over"] in _NOT_RAISING and state["invalid"] in _NOT_RAISING


_NOT_RAISING = ("ignore", "warn", "print")


def _bias_row(bias: np.ndarray, trailing: int, row_shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """The bias over one row of x (its last ``trailing`` axes, of ``row_shape``), flat, contiguous, of ``dtype``."""
    flat = bias.reshape(-1)
    if flat.size == math.prod(row_shape) and flat.flags.c_contiguous and flat.dtype == dtype:
        return flat  # (already one row: no broadcast)
    return np.ascontiguousarray(np.broadcast_to(bias.reshape(bias.shape[bias.ndim - trailing:]), row_shape),
                                dtype=dtype).reshape(-1)


def _chunk_elements(itemsize: int) -> int:
    return _parallel.chunk_elements(_parallel.LIGHT_CHUNK_BYTES, itemsize)


def _compiled(source: np.ndarray, target: np.ndarray):
    """The numba kernels module when this call is worth them (large float32/float64 arrays), else None."""
    if source.dtype not in _FLOATS or target.dtype != source.dtype or source.size < MIN_COMPILED:
        return None
    if not (source.flags.aligned and target.flags.aligned):  # the kernels' vector loads and stores need alignment
        return None
    return _parallel.stream_kernels()


def relu_mask(x: Any, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """relu(x) and ``pack_mask(~(x <= 0))``, from one pass over x.

    Returns ``(y, mask)``: y as ``relu(x, out=out)`` returns it (an array of x's shape), mask a uint8 array of
    ceil(x.size / 8) bytes. Equal to ``(relu(x), pack_mask(~(x <= 0)))``.
    """
    array, _ = as_array(x, "x")
    flat = np.ascontiguousarray(array).reshape(-1)
    if out is None:
        out = np.empty(array.shape, array.dtype)
    out = check_out(out, array.shape, array.dtype)
    target = out.reshape(-1) if out.flags.c_contiguous else None
    n = flat.size
    mask = np.empty((n + 7) // 8, np.uint8)
    if target is None or (np.may_share_memory(flat, target) and flat.ctypes.data != target.ctypes.data):
        y = relu(array)  # non-contiguous or partly overlapping out: the composition itself
        mask[:] = pack_mask(np.logical_not(array <= 0))
        out[...] = y
        return out, mask
    kernels = _compiled(flat, target)
    if kernels is not None:
        streaming = flat.nbytes + target.nbytes >= _parallel.streaming_threshold_bytes()
        kernels.relu_forward_mask(flat, target, mask, 0, 0, streaming)  # compile or load here, not in the workers
        _parallel.parallel_for(lambda a, b: kernels.relu_forward_mask(flat, target, mask, a, b, streaming), n,
                               _chunk_elements(flat.itemsize))
        return out, mask

    def task(start: int, stop: int) -> None:
        part = flat[start:stop]
        # The mask first: with out=x, relu overwrites this part of x.
        mask[start // 8:(stop + 7) // 8] = np.packbits(np.logical_not(part <= 0), bitorder="little")
        relu(part, out=target[start:stop])

    _parallel.parallel_for(task, n, _chunk_elements(flat.itemsize))
    return out, mask


def relu_backward_mask(grad_output: Any, mask: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """dL/dx of relu from dL/dy and the mask of :func:`relu_mask`: ``np.where(unpack_mask(mask), g, 0)``.

    The result has grad_output's shape and float dtype; elements whose bit is clear are +0.0.
    """
    g, _ = as_array(grad_output, "grad_output")
    if g.dtype.kind != "f":
        raise TypeError(f"grad_output must be a float16, float32 or float64 array; got {describe(grad_output)}")
    n = g.size
    if not isinstance(mask, np.ndarray) or mask.dtype != np.uint8 or mask.ndim != 1 or mask.size != (n + 7) // 8:
        raise ValueError(f"mask must be the 1-D uint8 array of {(n + 7) // 8} bytes that relu_mask returns for "
                         f"{n} elements; got {describe(mask)}")
    if out is None:
        out = np.empty(g.shape, g.dtype)
    out = check_out(out, g.shape, g.dtype)
    flat = np.ascontiguousarray(g).reshape(-1)
    target = out.reshape(-1) if out.flags.c_contiguous else None
    if target is None or (np.may_share_memory(flat, target) and flat.ctypes.data != target.ctypes.data):
        out[...] = np.where(unpack_mask(mask, g.shape), g, 0)  # the composition itself
        return out
    kernels = _compiled(flat, target)
    if kernels is not None:
        streaming = flat.nbytes + target.nbytes >= _parallel.streaming_threshold_bytes()
        kernels.mask_backward(flat, mask, target, 0, 0, streaming)
        _parallel.parallel_for(lambda a, b: kernels.mask_backward(flat, mask, target, a, b, streaming), n,
                               _chunk_elements(flat.itemsize))
        return out

    def task(start: int, stop: int) -> None:
        bits = np.unpackbits(mask[start // 8:(stop + 7) // 8], count=stop - start, bitorder="little").view(bool)
        np.copyto(target[start:stop], np.where(bits, flat[start:stop], 0))

    _parallel.parallel_for(task, n, _chunk_elements(flat.itemsize))
    return out


def bias_activation(x: Any, bias: Any, activation: str = "relu", *, out: np.ndarray | None = None,
                    **params: Any) -> np.ndarray:
    """``activation(x + bias, **params)`` without a temporary for x + bias: relu at its defaults on float32/float64
    forms each sum in a register (one compiled pass, on every core for large arrays); other members sum into
    ``out`` and apply the activation in place while both arrays fit the cache, and past it form the sum a
    cache-sized block at a time (so do relu calls of other dtypes). Under an ``np.errstate`` that raises on overflow
    or invalid values, the sum is formed first, whole, so that ``out`` is untouched when it raises.

    ``bias`` broadcasts onto x's trailing axes (a dense layer's (features,) bias for x of shape (batch, features),
    or (channels, 1, 1) for (batch, channels, height, width)) and must not change x's shape. Equal to
    ``get(activation)(x + bias, **params)``, dtype included.
    """
    act = get(activation)
    if act.takes_weight:
        raise TypeError(f"bias_activation: {act.name} takes a weight array; use an elementwise member")
    array, _ = as_array(x, "x")
    bias_array, _ = as_array(bias, "bias")
    try:
        shape = np.broadcast_shapes(array.shape, bias_array.shape)
    except ValueError:
        shape = None
    if shape != array.shape:
        raise ValueError(f"bias of shape {bias_array.shape} must broadcast onto x of shape {array.shape} "
                         "without changing it")
    python_scalar = type(bias) in (int, float)
    # A Python number takes x's dtype, as in x + bias (NumPy 2's rules: float32 x + 0.5 is float32).
    summed = np.result_type(array, bias) if python_scalar else np.result_type(array, bias_array)
    if python_scalar and summed != bias_array.dtype:
        with np.errstate(over="ignore"):  # (a value beyond float32 becomes inf, as it does in x + bias)
            bias_array = bias_array.astype(summed)
    # relu at its defaults on floats of one dtype: the compiled pass below, whose result has that dtype
    compiled = act.name == "relu" and not params and array.dtype in _FLOATS and bias_array.dtype == array.dtype
    dtype = summed if compiled else np.asarray(act(np.zeros(1, summed), **params)).dtype  # (validates params)
    if out is None:
        out = np.empty(array.shape, dtype)
    out = check_out(out, array.shape, dtype)
    # Rows of x: the leading axes the bias does not cover; within a row the bias is one fixed block.
    trailing = bias_array.ndim
    while trailing and bias_array.shape[bias_array.ndim - trailing] == 1:
        trailing -= 1  # leading size-1 axes of the bias cover nothing
    row_shape = array.shape[array.ndim - trailing:] if trailing else ()
    row = math.prod(row_shape)
    rows = array.size // row if row else 0
    fused = array.flags.c_contiguous and out.flags.c_contiguous and not np.may_share_memory(array, out)
    if fused and np.may_share_memory(bias_array, out):  # a bias inside out: rows written would be read as bias
        bias_array = bias_array.copy()
    if not fused or rows == 0 or not _sum_errors_do_not_raise():
        # (an error state that raises on the sum: the sum first, so that out is untouched when it raises)
        return act(np.add(array, bias_array), out=out, **params)
    if compiled and array.size >= MIN_COMPILED and array.flags.aligned and out.flags.aligned:
        # relu at its defaults: one compiled pass, x + b formed in a register, on every core for large arrays
        # (the chunked NumPy way below paid a Python task and a temporary per chunk: 3-5x slower than unfused)
        block = _bias_row(bias_array, trailing, row_shape, summed)
        flagged = np.zeros(1, np.int64)
        if _parallel.run_compiled("bias_relu_forward", (block, flagged), array.reshape(-1), out.reshape(-1)):
            if not flagged[0]:
                return out
            # A sum came out NaN or infinite (inf - inf, an overflow, or such inputs): NumPy's sum warns or raises
            # as its error state says.
            return act(np.add(array, bias_array), out=out, **params)
    if out.dtype == summed and array.nbytes + out.nbytes < _parallel.streaming_threshold_bytes():
        # In cache, two passes (the sum into out, then the activation in place) cost less than the chunked way's
        # Python task and temporary per chunk.
        return act(np.add(array, bias_array, out=out), out=out, **params)
    block = _bias_row(bias_array, trailing, row_shape, summed).reshape(1, row)
    source, target = array.reshape(rows, row), out.reshape(rows, row)
    stream, streaming = None, array.nbytes + out.nbytes >= _parallel.streaming_threshold_bytes()
    if summed == dtype and array.size >= _parallel.MIN_ELEMENTS:
        stream = _parallel.stream_function(act.forward_kernel, act.bind(params), np.dtype(dtype))
    # The block of sums stays in L2: a quarter MiB for a single-pass member, 64 KiB for a multi-pass one.
    chunk_bytes = _parallel.LIGHT_CHUNK_BYTES // 4 if _parallel.is_light(act.forward_kernel) else _parallel.CHUNK_BYTES
    rows_per_chunk = max(1, _parallel.chunk_elements(chunk_bytes, max(np.dtype(summed).itemsize, 4)) // row)

    def task(start: int, stop: int) -> None:
        part = np.add(source[start:stop], block)
        if stream is not None:
            stream(part.reshape(-1), target[start:stop].reshape(-1), 0, part.size, streaming)
        else:
            act(part, out=target[start:stop], **params)

    if stream is not None:
        stream(block[0], np.empty_like(block[0]), 0, 0, streaming)  # compile or load here, not in the workers
    _parallel.parallel_for(task, rows, rows_per_chunk)
    return out
