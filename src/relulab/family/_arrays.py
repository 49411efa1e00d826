"""Arrays of other libraries as inputs to the members: what each kind gets, in one place.

The members compute with NumPy kernels on the CPU. An input of another library is recognised by the module its
type comes from (``type(x).__module__``), so recognising one never imports that library, and ``import relulab``
imports none of them. What each kind gets:

* **Dask arrays**: computed blockwise and lazily (``dask.array.map_blocks`` with the member's own kernel on each
  block, the result's dtype and ``meta`` given), so an array larger than memory streams through in chunks; the
  result is a Dask array. Parameters are checked when the graph is built, not when it is computed.
* **JAX arrays** and any other array with the array API standard's ``__array_namespace__`` (array-api-strict, ...)
  that lives on the CPU: copied to the host (``numpy.from_dlpack``, a copy at most), computed, and returned as an
  array of the same library on the same device (``xp.asarray(result, device=device(x))``, array-api-compat). The
  cost is one conversion each way, at most a memory copy of the input and one of the result (4 Mi float32 on one
  machine: relu 1.4 ms from NumPy, 1.4 ms from array-api-strict, DLPack without copies; 3.2 ms from JAX, whose
  arrays are copied back with ``jax.device_put``; gelu 65 ms from all three). Values
  and dtypes are exactly the NumPy ones (JAX without ``jax_enable_x64`` stores float64 results as float32, as
  every float64 array in JAX).
* **JAX tracers** (inside ``jax.jit``, ``jax.grad``, ...) have no values to copy: TypeError pointing to
  ``jax.nn`` (or calling outside the transformation).
* **torch tensors**: TypeError pointing to ``relulab.nn.functional`` (same members, same conventions, tensors in
  and out on any device, with autograd); a host copy would silently detach the tensor from its graph. (Raised by
  ``_input.as_array``.)
* **CuPy arrays** and any array-API array on a GPU or other accelerator: TypeError. A round trip through host
  memory would move every element twice over the bus for one elementwise pass, 10-100x the cost of the pass on
  the device; the message says how to copy explicitly or to use a torch tensor on the device with
  ``relulab.nn.functional`` (``torch.from_dlpack(x)`` shares the memory).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

__all__ = ["library_of", "apply_foreign"]

_DASK_ROOTS = ("dask",)
_JAX_ROOTS = ("jax", "jaxlib")


def library_of(x: Any) -> str | None:
    """The library of a non-NumPy array input: "dask", "jax", "cupy", "array_api" (any other array with
    ``__array_namespace__``), or None (NumPy arrays, scalars, lists, torch tensors: the usual path)."""
    if isinstance(x, (np.ndarray, np.generic, list, tuple, int, float)):
        return None
    root = type(x).__module__.partition(".")[0]
    if root in _DASK_ROOTS and hasattr(x, "map_blocks"):
        return "dask"
    if root in _JAX_ROOTS:
        return "jax"
    if root == "cupy":
        return "cupy"
    if root == "torch":
        return None  # _input.as_array refuses it with a pointer to relulab.nn.functional
    if hasattr(x, "__array_namespace__"):
        return "array_api"
    return None


def apply_foreign(member: Any, library: str, x: Any, args: tuple, params: dict[str, Any], out: Any,
                  grad: bool, at_zero: Any) -> Any:
    """``member(x, *args, **params)`` (or ``member.grad``) for an input of ``library`` (see the module doc)."""
    if out is not None:
        raise TypeError(f"{member.name}: out= takes a NumPy array; with a {_LABEL[library]} input x the result is "
                        "returned as a new array of x's library (omit out=)")
    if library == "dask":
        return _dask(member, x, args, params, grad, at_zero)
    if library == "cupy":
        raise TypeError(_accelerator_message(member, "a CuPy array", "cupy.asnumpy(x)"))
    if library == "jax" and _is_jax_tracer(x):
        raise TypeError(
            f"{member.name}: x is a JAX tracer (inside jax.jit, jax.grad or jax.vmap); relulab computes with NumPy "
            f"and needs values: call relulab outside the transformation, or use jax.nn there"
        )
    import array_api_compat as compat

    device = compat.device(x)
    if not _on_cpu(device):
        raise TypeError(_accelerator_message(member, f"an array on {device}", "np.asarray(x) (a device-to-host copy)"))
    host = _to_host(x)
    fn = member.grad if grad else member
    kwargs = dict(params) if at_zero is None else dict(params, at_zero=at_zero)
    result = fn(host, *(_to_host(a) if library_of(a) is not None else a for a in args), **kwargs)
    if library == "jax":  # device_put takes the host buffer as it is: 2 ms for 16 MiB, jnp.asarray 20 ms
        import jax

        return jax.device_put(np.asarray(result), device)
    return compat.array_namespace(x).asarray(np.asarray(result), device=device)


_LABEL = {"dask": "Dask", "jax": "JAX", "cupy": "CuPy", "array_api": "non-NumPy"}


def _accelerator_message(member: Any, what: str, copy: str) -> str:
    return (f"{member.name}: x is {what}; relulab.family computes on the CPU, and a round trip through host memory "
            f"costs more than the function itself. Copy explicitly with {copy} (the result is then a NumPy array), "
            f"or use relulab.nn.functional.{member.name} on a torch tensor on the device "
            f"(torch.from_dlpack(x) shares its memory)")


def _on_cpu(device: Any) -> bool:
    text = str(device).lower()
    return "cpu" in text


def _is_jax_tracer(x: Any) -> bool:
    return any(cls.__name__.endswith("Tracer") for cls in type(x).__mro__)


def _to_host(x: Any) -> np.ndarray:
    """x as a NumPy array on the host: DLPack (no copy where the memory allows), else the buffer protocol."""
    try:
        return np.from_dlpack(x)
    except (TypeError, RuntimeError, BufferError, AttributeError):
        return np.asarray(x)


def _dask(member: Any, x: Any, args: tuple, params: dict[str, Any], grad: bool, at_zero: Any) -> Any:
    import dask.array as da

    fn: Callable[..., Any] = member.grad if grad else member
    kwargs = dict(params) if at_zero is None else dict(params, at_zero=at_zero)
    if member.name == "rrelu" and kwargs.get("training"):
        raise ValueError(f"{member.name}: training=True draws one slope per element from one seed, which blocks "
                         "computed apart would repeat; over a Dask array use training=False, or rrelu(x.compute())")
    if args and library_of(args[0]) is not None:
        args = (_to_host(args[0]),)
    # Validate the parameters and learn the result's dtype now, on an empty block of x's dtype (and shape, for
    # members with a channel axis): errors surface when the graph is built, not in the middle of a compute.
    axis = None
    if member.takes_weight and np.size(args[0]) > 1 and x.ndim:
        axis = kwargs.get("channel_axis", 1)
        if -x.ndim <= axis < x.ndim:
            axis %= x.ndim
            x = x.rechunk({axis: -1})  # per-channel slopes: every block holds the whole channel axis
    shape = tuple(n if i == axis else 0 for i, n in enumerate(x.shape)) or (0,)
    dtype = np.asarray(fn(np.empty(shape, dtype=x.dtype), *args, **kwargs)).dtype

    def block(chunk: np.ndarray) -> np.ndarray:
        return np.asarray(fn(chunk, *args, **kwargs))

    return da.map_blocks(block, x, dtype=dtype, meta=np.empty((0,) * x.ndim, dtype=dtype),
                         token=f"relulab-{member.name}{'-grad' if grad else ''}")
