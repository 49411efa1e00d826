"""Input handling for every member, in one place.

Validation happens here, at the boundary, once: the kernels in ``members.py`` receive clean floating-point (or,
for integer-exact members, integer) arrays and never check anything themselves. Each error names the argument,
what was given and what is allowed.
"""

from __future__ import annotations

import math
import numbers
import sys
from typing import Any

import numpy as np

__all__ = ["as_array", "check_out", "compute_dtype", "describe"]

_FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
ALLOWED_INPUT = "a real number, a list of them or a NumPy array of dtype float16, float32, float64 or integer"


def describe(value: Any) -> str:
    """A short description of ``value`` for error messages: its repr when short, else its type."""
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's str-conversion limit (4300 digits), maybe inside a list
        if isinstance(value, int):
            return f"an int of {value.bit_length()} bits (type {type(value).__name__})"
        return f"a {type(value).__name__} holding an integer too large to print"
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} (type {type(value).__name__})"


def as_array(x: Any, name: str = "x") -> tuple[np.ndarray, bool]:
    """Convert ``x`` to an ndarray accepted by the members and say whether it was a scalar.

    Returns ``(array, is_scalar)``. Arrays are not copied: views (including non-contiguous ones) stay views.

    One rule for NumPy's subclasses: their data are used as a plain ndarray (``np.matrix``'s ``*`` is a matrix
    product, which no kernel may see), and the result is a plain ndarray -- except masked arrays, which are refused:
    a mask cannot be honoured elementwise by every member, and dropping it silently would compute on hidden values.
    A torch tensor is refused with a pointer to ``relulab.nn.functional`` (NumPy would move it to the CPU and drop
    its autograd graph, and relulab's NumPy room never imports torch).
    """
    _refuse_foreign(x, name)
    if x is None or isinstance(x, (str, bytes, bool, np.bool_, complex, np.complexfloating)):
        raise TypeError(f"{name} must be {ALLOWED_INPUT}; got {describe(x)}")
    if isinstance(x, np.ndarray):
        array = x if type(x) is np.ndarray else x.view(np.ndarray)
    else:
        try:
            array = np.asarray(x)
        except (ValueError, TypeError) as error:  # ragged nested lists, unconvertible objects
            raise TypeError(f"{name} must be {ALLOWED_INPUT}; got {describe(x)} ({error})") from None
    kind = array.dtype.kind
    if kind == "f":
        if array.dtype not in _FLOAT_DTYPES:
            raise TypeError(
                f"{name} has dtype {array.dtype}; allowed are float16, float32, float64 and the integer dtypes"
            )
    elif kind not in "iu":
        what = {"b": "bool", "c": "complex", "O": "object", "U": "str", "S": "bytes"}.get(kind, str(array.dtype))
        raise TypeError(f"{name} must be {ALLOWED_INPUT}; got {describe(x)} with {what} elements")
    return array, array.ndim == 0


def _refuse_foreign(x: Any, name: str) -> None:
    """TypeError for inputs NumPy would convert into something other than what the caller holds."""
    if isinstance(x, np.ma.MaskedArray):
        raise TypeError(
            f"{name} is a numpy.ma.MaskedArray; relulab does not honour masks. Pass {name}.filled(value) to choose "
            f"what masked elements hold, or np.asarray({name}) to ignore the mask"
        )
    torch = sys.modules.get("torch")  # never imported here: a tensor can only exist if the caller imported torch
    if torch is not None and isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} is a torch.Tensor; the relulab.family functions take NumPy arrays. Use "
            f"relulab.nn.functional (same names, tensors in and out, autograd and any device), or pass "
            f"{name}.detach().cpu().numpy() explicitly"
        )


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a float kernel computes in: float16 is widened to float32 so no intermediate overflows."""
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def check_out(out: Any, shape: tuple[int, ...], dtype: np.dtype, name: str = "out") -> np.ndarray:
    """Check a caller-supplied output buffer: a writeable ndarray of exactly the result's shape and dtype.

    Returns the buffer as a plain ndarray (a view of the same memory for a subclass such as ``np.matrix``)."""
    if isinstance(out, np.ma.MaskedArray):
        raise TypeError(
            f"{name} is a numpy.ma.MaskedArray; pass a plain NumPy array of shape {shape} and dtype {dtype}")
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array of shape {shape} and dtype {dtype}; got {describe(out)}")
    if out.shape != shape:
        raise ValueError(f"{name} has shape {out.shape}; the result has shape {shape}, and {name} must match it")
    if out.dtype != dtype:
        raise ValueError(f"{name} has dtype {out.dtype}; the result has dtype {dtype}, and {name} must match it")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only; pass a writeable array")
    return out if type(out) is np.ndarray else out.view(np.ndarray)


def check_real(value: Any, name: str, owner: str) -> float:
    """A real scalar parameter as a Python float (NaN is passed through for the caller's range check)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number; got {describe(value)}")
    return as_float(value, name, owner)


def as_float(value: Any, name: str, owner: str) -> float:
    """``float(value)``, or ValueError naming the parameter when it is beyond float64 (``10**400``)."""
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{owner}: {name} is too large for a float64 (above 1.8e308); got "
                         f"{describe(value)}") from None


def is_whole(value: float) -> bool:
    return math.isfinite(value) and float(value).is_integer()
