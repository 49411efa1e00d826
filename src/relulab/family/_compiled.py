"""When a call runs a compiled kernel, and the short way there for small arrays.

The compiled kernels (``_stream.py`` for relu and leaky_relu, ``_vector.py`` for the smooth members; numba, the
``fast`` extra) are each member's kernel whenever numba is available, at every size from :data:`MIN_ELEMENTS` on:

* large C-contiguous arrays go through ``_parallel.run``, which runs them on every core in chunks;
* smaller ones (and views, which are copied to a contiguous array first) run here, on the calling thread
  (:func:`run`, called from ``Activation._run``);
* :func:`quick` is the short way for the commonest call -- a C-contiguous float32/float64 ndarray, ``out`` absent
  or a matching C-contiguous buffer, parameters seen before: it checks just that (about a microsecond) and calls
  the kernel (below the parallel path's threshold) or ``_parallel.run`` with the kernel already chosen, where the
  general validation costs several.

The rules are the same on every path, so a call gives the same bits whichever path takes it: a compiled kernel is
used only where the input already has the dtype the kernel computes in (float32, float64; float16 and integer
inputs run the NumPy kernels), and only while NumPy's error state ignores underflow (the default; the compiled
kernels raise no floating-point warnings, so ``np.errstate(under="raise")`` gets the NumPy kernels, which do).
Below :data:`MIN_ELEMENTS` elements the NumPy kernels run, so small calls never load numba.

``RELULAB_NUMBA=0`` or a missing numba leaves every call on the NumPy kernels (``_parallel.stream_kernels``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import numpy as np

from . import _parallel

__all__ = ["MIN_ELEMENTS", "vector", "run", "quick"]

#: Arrays smaller than this run the NumPy kernels (a call this small is dominated by its overhead either way).
MIN_ELEMENTS = 2048

_errstate_seen: list[Any] = [object(), False]  # (the error state object last checked, whether it ignores underflow)
_errstate_get = _parallel._errstate_var.get if _parallel._errstate_var is not None else None


def underflow_ignored() -> bool:
    """Whether NumPy's current error state ignores underflow (its default)."""
    state = _parallel.errstate()  # the same object until the state changes (NumPy >= 2; ~0.1 us, np.geterr ~0.6 us)
    if state is _errstate_seen[0]:  # (without the context variable: a new dict every call, never the same)
        return _errstate_seen[1]
    _errstate_seen[:] = [state, np.geterr()["under"] == "ignore"]
    return _errstate_seen[1]


def vector(choose: Callable[[Mapping[str, Any], np.dtype], tuple[str, tuple] | None]):
    """A member's ``stream=``/``stream_derivative=`` selector for a kernel that may underflow (those of
    ``_vector.py``, and ``_stream.py``'s clamp, which divides for hard_sigmoid): ``choose(params, dtype) -> (name,
    scalars)`` (None: none for these parameters), and none while the error state does not ignore underflow (see
    the module docstring)."""
    return lambda params, dtype: choose(params, dtype) if underflow_ignored() else None


def _overlap_ok(x: np.ndarray, out: np.ndarray) -> bool:
    """out is x's memory exactly (in place) or shares none of it: a partial overlap is left to NumPy's kernels."""
    if out is x or (out.base is None and x.base is None):  # two arrays owning their memory: distinct memory
        return True
    if not np.may_share_memory(x, out):
        return True
    return out.__array_interface__["data"][0] == x.__array_interface__["data"][0] and out.strides == x.strides


def run(kernel: Callable[..., Any], work: np.ndarray, direct: np.ndarray | None, bound: Mapping[str, Any],
        source_dtype: np.dtype) -> np.ndarray:
    """``kernel(work, direct, **bound)``, by its compiled twin where there is one (see the module docstring).

    ``work`` is the input in the compute dtype (at least 1-D); ``direct`` a buffer of its shape and dtype or None.
    """
    if work.size >= MIN_ELEMENTS and work.dtype == source_dtype:
        function = _parallel.stream_function(kernel, bound, work.dtype)
        if function is not None and (direct is None or _overlap_ok(work, direct)):
            source = np.require(work, requirements="CA")  # (the kernels' vector loads and stores need aligned data)
            contiguous = direct is not None and direct.flags.c_contiguous and direct.flags.aligned
            target = direct if contiguous else np.empty(work.shape, work.dtype)
            function(source.reshape(-1), target.reshape(-1), 0, work.size, False)
            return target
    return kernel(work, direct, **bound)


_MISSING = object()
_quick: dict[Any, Any] = {}  # (kernel, dtype, parameters) -> the compiled function, or None


def quick(kernel: Callable[..., Any], x: Any, out: Any, params: Mapping[str, Any], grad: bool,
          bound_for: Callable[[Mapping[str, Any], np.dtype, bool], dict[str, Any] | None]):
    """The result of a member's call (``grad``: its derivative's) on ``x`` with ``out`` and ``params`` by the
    compiled kernel, or None when the call is not the simple kind this handles (then the caller validates it in
    full). ``bound_for(params, dtype, grad)`` gives the parameters as ``kernel`` takes them, or None where the
    compiled kernel does not apply (the member's ``Activation._compiled_bound``). Arrays from the parallel
    path's threshold on go to ``_parallel.run`` with the kernel already chosen."""
    if type(x) is not np.ndarray:
        return None
    n = x.size
    if n < MIN_ELEMENTS:  # (small calls never load numba)
        return None
    dtype = x.dtype
    try:  # the cache is keyed by the dtype object: a byte-swapped float32 is another key (and has no kernel here)
        # (-0.0 == 0.0 with one hash: the sign of a zero is part of the key, a zero slope's sign shows in results)
        if not params:
            key = (kernel, dtype)
        elif len(params) == 1:  # (the same key as below, built without a generator: 0.26 us instead of 0.62)
            (k, v), = params.items()
            key = (kernel, dtype, ((k, type(v), v, v == 0 and math.copysign(1.0, v)),))
        else:
            key = (kernel, dtype, tuple((k, type(v), v, v == 0 and math.copysign(1.0, v)) for k, v in params.items()))
        function = _quick.get(key, _MISSING)
    except (TypeError, ValueError):  # an unhashable parameter value (or an array, whose == 0 has no truth value)
        return None
    if function is _MISSING:
        if not _parallel.has_twin(kernel):  # a kernel without a twin never loads numba
            return None
        if _parallel.stream_kernels() is None or not underflow_ignored():
            return None  # nothing to remember: either may change
        if len(_quick) >= 1024:  # a sweep over many parameter values: start afresh rather than grow without end
            _quick.clear()
        function = _quick[key] = _choose(kernel, dtype, params, grad, bound_for)
    if function is None:
        return None
    flags = x.flags
    if not (flags.c_contiguous and flags.aligned):  # (a misaligned buffer: the long way)
        return None
    if out is x:  # in place: x's checks hold for out, but for writing
        if not flags.writeable:
            return None
    elif out is not None:
        if type(out) is not np.ndarray or out.dtype is not dtype and out.dtype != dtype or out.shape != x.shape:
            return None
        flags = out.flags
        if not (flags.c_contiguous and flags.aligned and flags.writeable):
            return None
        if (out.base is not None or x.base is not None) and not _overlap_ok(x, out):
            return None
    # underflow_ignored(), its common case inline: the error state seen last, which ignores underflow. (Whether the
    # compiled kernels are loaded is not asked again: a function was chosen, so they were, and they stay loaded.)
    if not (_errstate_seen[1] and _errstate_get is not None and _errstate_get() is _errstate_seen[0]) \
            and not underflow_ignored():
        return None
    if n >= function.threshold:
        # The parallel path; off (fast_path(False)), the plain path as the caller asked (the tests' reference).
        return _parallel.run(kernel, x, None, out, dtype, dtype, function) if _parallel.fast_path_enabled() else None
    target = np.empty_like(x) if out is None else out
    if x.ndim == 1:
        function.direct(x, target, 0, n, False, *function.scalars)
    else:
        function.direct(x.reshape(-1), target.reshape(-1), 0, n, False, *function.scalars)
    return target


def _choose(kernel: Callable[..., Any], dtype: np.dtype, params: Mapping[str, Any], grad: bool,
            bound_for: Callable[[Mapping[str, Any], np.dtype, bool], dict[str, Any] | None]):
    """The compiled function for these parameters, or None (also for dtypes other than native float32/64)."""
    if dtype.char not in "fd" or not dtype.isnative:
        return None
    bound = bound_for(params, dtype, grad)
    function = None if bound is None else _parallel.stream_function(kernel, bound, dtype)
    if function is not None:
        function.direct = _entry_point(function.kernel, dtype, function.scalars)
        function.threshold = _parallel.twin_threshold(kernel)
    return function


def _entry_point(kernel: Any, dtype: np.dtype, scalars: tuple) -> Callable[..., Any]:
    """``kernel``'s compiled specialisation for 1-D C-contiguous arrays of ``dtype`` (read-only ones included: it
    only reads its input) and these scalars (``_parallel.specialisation``): numba's dispatcher types every argument
    on every call, 0.2-0.4 us of a 2-3 us call on an array that fits the cache. The callable checks nothing:
    :func:`quick` passes exactly these types (an array of another dtype would be misread)."""
    import numba

    return _parallel.specialisation(kernel, dtype, tuple(numba.typeof(s) for s in scalars))
