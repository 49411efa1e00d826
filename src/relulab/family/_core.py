"""The Activation object, its parameters and properties, and the registry.

A member is one :class:`Activation`: a name, a pure forward kernel, a pure derivative kernel, the formula, the
parameters with their allowed ranges, and its properties. Everything else in relulab (the PyTorch modules, the
CLI, the docs tables, the tests) is derived from or checked against these objects.

Registering a member of your own::

    >>> import numpy as np, relulab as rl
    >>> from relulab.family import Activation, Properties
    >>> shifted = Activation(
    ...     "shifted_relu_demo",
    ...     forward=lambda x, out: np.maximum(x - 1.0, 0.0, out=out),
    ...     derivative=lambda x, out: np.heaviside(x - 1.0, 0.0, out=out),
    ...     formula=r"\\max(0, x - 1)", derivative_formula=r"[x > 1]",
    ...     summary="ReLU shifted right by one.",
    ...     properties=Properties(monotonic=True, lower_bound=0.0, upper_bound=None, smooth=False, kinks=(1.0,),
    ...                           zero_for_negative=True, piecewise_linear=True),
    ... )
    >>> rl.register(shifted) is shifted
    True
    >>> rl.get("Shifted-ReLU-Demo")([0.0, 3.0])
    array([0., 2.])
    >>> rl.get("shifted_relu_demo").grad([0.0, 3.0])
    array([0., 1.])
    >>> rl.unregister("shifted_relu_demo")
"""

from __future__ import annotations

import difflib
import functools
import math
import numbers
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import _arrays, _compiled, _parallel
from ._gain import numeric_gain
from ._input import as_array, as_float, check_out, check_real, compute_dtype, describe

__all__ = [
    "Activation",
    "Param",
    "Properties",
    "Kink",
    "UnknownActivationError",
    "register",
    "unregister",
    "get",
    "names",
    "normalize_name",
]


@dataclass(frozen=True)
class Param:
    """One keyword parameter of a member: its default, its allowed values, and what it means.

    ``kind`` is ``"real"`` (a real number in ``[low, high]``, ends open where ``*_open``), ``"choice"`` (one of
    ``choices``), ``"bool"``, ``"int"`` (an int in ``[low, high]``) or ``"object"`` (checked by the member).
    ``torch=False`` marks a NumPy-only parameter that relulab.nn's modules and functions do not take (rrelu's
    ``training`` comes from the module's mode and its ``seed``/``rng`` are NumPy's; prelu's ``channel_axis`` is
    dim 1 in torch). The torch parameters keep the order they have here, which is torch's positional order.
    ``keyword_only=True`` marks a torch parameter that torch's own class and function do not take (relu's Keras
    ``max_value`` and ``threshold``): keyword-only in relulab.nn's signatures (after ``inplace``, so
    ``torch.nn.ReLU(True)`` keeps its meaning), not read from a torch.nn counterpart, and listed in a module's
    ``params`` only where it differs from its default.
    """

    name: str
    default: Any
    doc: str
    kind: str = "real"
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] = ()
    allow_none: bool = False
    torch: bool = True
    keyword_only: bool = False

    @property
    def allowed(self) -> str:
        """The allowed values, in words (used in error messages and ``relulab explain``)."""
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "bool":
            return "True or False"
        if self.kind == "object":
            return self.doc
        # An infinite end that check() accepts gets a bracket too (softplus's threshold may be inf).
        lo = "(" if self.low_open else "["
        hi = ")" if self.high_open else "]"
        what = "an integer" if self.kind == "int" else "a real number"
        text = f"{what} in {lo}{_fmt(self.low)}, {_fmt(self.high)}{hi}"
        return text + (" or None" if self.allow_none else "")

    def check(self, value: Any, owner: str) -> Any:
        """Return ``value`` normalised, or raise naming ``owner``, this parameter, the value and what is allowed."""
        if value is None and self.allow_none:
            return None
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"{owner}: {self.name} must be {self.allowed}; got {describe(value)}")
            return value
        if self.kind == "bool":
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{owner}: {self.name} must be True or False; got {describe(value)}")
            return bool(value)
        if self.kind == "object":
            return value
        if self.kind == "int":
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{owner}: {self.name} must be {self.allowed}; got {describe(value)}")
            number = as_float(value, self.name, owner)
        else:
            number = check_real(value, self.name, owner)
        below = number < self.low or (self.low_open and number == self.low)
        above = number > self.high or (self.high_open and number == self.high)
        if math.isnan(number) or below or above:
            raise ValueError(f"{owner}: {self.name} must be {self.allowed}; got {describe(value)}")
        return int(value) if self.kind == "int" else number


def _fmt(value: float) -> str:
    if isinstance(value, int):  # an exact integer bound (rrelu's seed < 2**63) prints in full, not as 9.2e+18
        return str(value)
    if value == math.inf:
        return "inf"
    if value == -math.inf:
        return "-inf"
    return repr(float(value)).rstrip("0").rstrip(".") if float(value).is_integer() else repr(float(value))


@dataclass(frozen=True)
class Properties:
    """What a member is, as facts tests can check.

    ``lower_bound``/``upper_bound`` are the infimum/supremum of the range (``None`` when unbounded).
    ``smooth`` means infinitely differentiable everywhere; ``kinks`` lists the points where the derivative jumps.
    ``zero_for_negative``: the output is exactly 0 for every x < 0, so a unit can *die* (gradient exactly zero);
    for other members the same event is reported as *inactive*. ``piecewise_linear``: the derivative is piecewise
    constant, so a backward pass needs only a mask of the input (see ``relulab.nn``'s lean backward).

    These are properties of the mathematical function. Where a member's default computation departs from it on
    purpose (softplus switches to x above ``threshold``, as PyTorch does, a 2.1e-9 drop at the defaults), its
    ``conventions`` say so; ``threshold=float("inf")`` gives the function these properties describe.
    """

    monotonic: bool
    lower_bound: float | None
    upper_bound: float | None
    smooth: bool
    kinks: tuple[float, ...]
    zero_for_negative: bool
    piecewise_linear: bool

    @property
    def bounded_below(self) -> bool:
        return self.lower_bound is not None

    @property
    def bounded_above(self) -> bool:
        return self.upper_bound is not None


@dataclass(frozen=True)
class Kink:
    """The subdifferential at x = 0 for a member with a kink there: the default derivative and the interval.

    Values may be arrays (prelu: one per channel). ``at_zero=`` must lie in ``[low, high]``.
    """

    default: Any
    low: Any
    high: Any


class UnknownActivationError(KeyError, ValueError):
    """Raised by :func:`get` for a name that is not registered; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


Kernel = Callable[..., np.ndarray]


class Activation:
    """A member of the ReLU family: call it for f(x), ``.grad`` for f'(x).

    Instances are created once per member in ``relulab/family/members.py`` (or by users, then passed to
    :func:`register`). Calling validates the input and parameters once, then runs a pure kernel.

    An Activation is the member's whole specification; every room reads it and nothing about a member is written
    anywhere else. Besides the maths (kernels, formulas, parameters, properties, kink at 0) it holds:

    * ``gain``: the variance-preserving gain ``1 / sqrt(E[f(z)^2])``, z ~ N(0, 1): a number, a function of the
      parameters (closed forms), or None for a quadrature of the forward kernel (:meth:`gain`);
    * ``single_pass``, ``stream``, ``stream_derivative``: the speed paths of the forward/derivative kernels (a
      single-pass kernel is chunked coarsely; ``stream(params, dtype) -> (name, scalars)`` names a compiled twin
      in ``family/_stream.py``, or in ``family/_vector.py`` through ``_compiled.vector``, run by
      ``family/_parallel.py`` on large arrays and by ``family/_compiled.py`` on smaller ones);
    * for relulab.nn (the family never imports torch, so by name): ``nn_class``, the module's class name (derived
      from the name: ``shifted_relu`` -> ``ShiftedRelu``), ``torch_class`` and ``torch_function``, the torch.nn
      class and torch.nn.functional function that compute the same member (None where torch has none),
      ``inplace`` (the module and function offer ``inplace=True``) and ``nn_example``, the docstring example
      ``(constructor call, printed output for torch.tensor([-2.0, 0.0, 3.0]))``. Parameters marked
      ``Param(torch=False)`` are NumPy-only.

    A member registered at run time with none of these still gets a relulab.nn module and function (computed by
    its NumPy kernels), a gain (by quadrature) and its place in the monitor, the CLI and the docs table.
    """

    def __init__(
        self,
        name: str,
        *,
        forward: Kernel,
        derivative: Kernel,
        formula: str,
        derivative_formula: str,
        summary: str,
        properties: Properties | Callable[[Mapping[str, Any]], Properties],
        params: Sequence[Param] = (),
        aliases: Sequence[str] = (),
        kink_at_zero: Callable[[Mapping[str, Any]], Kink] | None = None,
        integer_exact: bool | Callable[[Mapping[str, Any]], bool] = False,
        weight: Callable[..., Any] | None = None,
        elementwise: bool | Callable[[Mapping[str, Any]], bool] = False,
        check: Callable[[Mapping[str, Any], str], None] | None = None,
        conventions: str = "",
        use: str = "",
        failure_mode: str = "",
        paper: str = "",
        example: str = "",
        gain: float | Callable[[Mapping[str, Any]], float] | None = None,
        single_pass: bool = False,
        stream: Callable[[Mapping[str, Any], np.dtype], tuple[str, tuple] | None] | None = None,
        stream_derivative: Callable[[Mapping[str, Any], np.dtype], tuple[str, tuple] | None] | None = None,
        nn_class: str | None = None,
        torch_class: str | None = None,
        torch_function: str | None = None,
        inplace: bool = False,
        nn_example: tuple[str, str] | None = None,
    ) -> None:
        if not isinstance(name, str) or not normalize_name(name):
            error = TypeError if not isinstance(name, str) else ValueError
            raise error(f"name must be a non-empty str (the member's name); got {describe(name)}")
        for argument, kernel in (("forward", forward), ("derivative", derivative)):
            if not callable(kernel):
                raise TypeError(f"{name}: {argument} must be a kernel function kernel(x, out, **params); "
                                f"got {describe(kernel)}")
        for param in params:
            if not isinstance(param, Param):
                raise TypeError(f"{name}: params must be relulab.family.Param objects; got {describe(param)}")
        if gain is not None and not callable(gain) and (isinstance(gain, bool) or not isinstance(gain, numbers.Real)):
            raise TypeError(f"{name}: gain must be a number, a function of the parameters or None; "
                            f"got {describe(gain)}")
        self.name = name
        self.aliases = tuple(aliases)
        self.summary = summary
        self.formula = formula
        self.derivative_formula = derivative_formula
        self.params = tuple(params)
        self.conventions = conventions
        self.use = use
        self.failure_mode = failure_mode
        self.paper = paper
        self.example = example
        if nn_class is not None and not (isinstance(nn_class, str) and nn_class.isidentifier()):
            raise ValueError(f"{name}: nn_class must be a Python identifier (a class name); got {describe(nn_class)}")
        self.nn_class = nn_class or class_name(name)
        self.torch_class = torch_class
        self.torch_function = torch_function
        self.inplace = bool(inplace)
        self.nn_example = nn_example
        self._forward = forward
        self._derivative = derivative
        self._properties = properties
        self._kink_at_zero = kink_at_zero
        self._integer_exact = integer_exact
        self._weight = weight
        self._elementwise = elementwise
        self._check = check
        self._gain = gain
        self._param_index = {p.name: p for p in self.params}
        # The speed paths are the kernels' own attributes, looked up by the parallel runner (family/_parallel.py).
        if single_pass:
            _parallel.single_pass(forward)
        if stream is not None:
            _parallel.streamable(forward, stream)
        if stream_derivative is not None:
            _parallel.streamable(derivative, stream_derivative)
        self.__doc__ = self._docstring()

    # -- description -------------------------------------------------------------------------------------------
    @property
    def defaults(self) -> dict[str, Any]:
        """The default value of every parameter."""
        return {p.name: p.default for p in self.params}

    @property
    def properties(self) -> Properties:
        """The member's properties at its default parameters (see :meth:`properties_for`)."""
        return self.properties_for()

    def properties_for(self, **params: Any) -> Properties:
        """The member's properties at the given parameters (e.g. elu's lower bound is -alpha)."""
        bound = self.bind(params)
        return self._properties(bound) if callable(self._properties) else self._properties

    @property
    def has_kink_at_zero(self) -> bool:
        return self._kink_at_zero is not None

    @property
    def forward_kernel(self) -> Kernel:
        """The pure forward kernel ``kernel(x, out, **bound) -> ndarray`` (for the family's fused kernels)."""
        return self._forward

    @property
    def derivative_kernel(self) -> Kernel:
        """The pure derivative kernel ``kernel(x, out, **bound[, at_zero]) -> ndarray``."""
        return self._derivative

    @property
    def torch_params(self) -> tuple[Param, ...]:
        """The parameters relulab.nn's module and function take, in torch's positional order."""
        return tuple(p for p in self.params if p.torch)

    def kink(self, **params: Any) -> Kink | None:
        """The subdifferential at 0 at these parameters, or None for a member without a kink at 0."""
        return None if self._kink_at_zero is None else self._kink_at_zero(self.bind(params))

    def gain(self, **params: Any) -> float:
        """The variance-preserving gain ``1 / sqrt(E[f(z)^2])``, z ~ N(0, 1), at these (already checked) parameters.

        The member's declared closed form where it has one (``Activation(gain=...)``, which may also read
        relulab.nn's own parameters, e.g. prelu's ``init``), else Gauss-Legendre quadrature of the forward kernel on
        panels broken at the kinks and at 0 (:func:`relulab.family.second_moment`).
        """
        if self._gain is not None:
            return float(self._gain(params)) if callable(self._gain) else float(self._gain)
        kinks = self.properties_for(**params).kinks
        return numeric_gain(lambda z: self(z, **params), kinks + (0.0,), self.name, params)

    @property
    def takes_weight(self) -> bool:
        """True for members with a positional weight array after x (prelu)."""
        return self._weight is not None

    def __repr__(self) -> str:
        params = ", ".join(f"{p.name}={p.default!r}" for p in self.params)
        return f"<Activation {self.name}({params})>"

    def __reduce__(self) -> tuple[Callable[[str], Activation], tuple[str]]:
        # Pickle by name so worker processes get the registered member, not a copy of its closures.
        return get, (self.name,)

    def _docstring(self) -> str:
        lines = [self.summary, "", ".. math::", "", f"    f(x) = {self.formula}", "",
                 f"    f'(x) = {self.derivative_formula}", ""]
        if self.params:
            lines += ["Args:", "    x: input, " + "a scalar, list or NumPy array."]
            lines += [f"    {p.name}: {p.doc} Default {p.default!r}; {p.allowed}." for p in self.params]
            lines.append("")
        if self.conventions:
            lines += ["Conventions: " + self.conventions, ""]
        if self.example:
            lines += ["Example:", ""] + ["    " + line for line in self.example.strip().splitlines()] + [""]
        if self.paper:
            lines += ["Reference: " + self.paper]
        return "\n".join(lines)

    # -- evaluation --------------------------------------------------------------------------------------------
    def bind(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters checked and completed with defaults, as the kernels take them (raises naming them)."""
        unknown = [k for k in params if k not in self._param_index]
        if unknown:
            allowed = ", ".join(self._param_index) or "no parameters"
            raise TypeError(f"{self.name}: unexpected keyword argument {unknown[0]!r}; {self.name} takes {allowed}")
        defaults = self._checked_defaults
        bound = {p.name: p.check(params[p.name], self.name) if p.name in params else defaults[p.name]
                 for p in self.params}
        if self._check is not None and params:  # the defaults together were checked once, in _checked_defaults
            self._check(bound, self.name)
        return bound

    @functools.cached_property
    def _checked_defaults(self) -> dict[str, Any]:
        """Every parameter's default as check() normalises it, checked once (per call only the given ones are)."""
        defaults = {p.name: p.check(p.default, self.name) for p in self.params}
        if self._check is not None:
            self._check(defaults, self.name)
        return defaults

    def _validate(self, x: Any, args: tuple[Any, ...], params: Mapping[str, Any], out: Any, grad: bool):
        """Check everything once: returns the input array (not yet converted), whether it was a scalar, the bound
        parameters, the result's dtype, the dtype the kernel computes in and ``out`` as a plain ndarray."""
        expected = 1 if self._weight is not None else 0
        if len(args) != expected:
            what = "x and weight" if expected else "x"
            raise TypeError(f"{self.name} takes {what} as positional arguments; got {1 + len(args)}")
        array, scalar = as_array(x, "x")
        bound = self.bind(params)
        if self._weight is not None:
            bound["weight"] = self._weight(args[0], array, bound)
        result_dtype = array.dtype
        if array.dtype.kind in "iu":
            exact = self._integer_exact(bound) if callable(self._integer_exact) else self._integer_exact
            if grad or not exact:
                result_dtype = np.dtype(np.float64)  # integers promote to the default float (float64)
        if out is not None:
            out = check_out(out, array.shape, result_dtype)
        return array, scalar, bound, result_dtype, _widened(compute_dtype(result_dtype), bound), out

    def prepare(self, x: Any, args: tuple[Any, ...], params: Mapping[str, Any], out: Any, grad: bool):
        """Internal API for companions of a member (prelu.grad_weight): (input array, whether it was a scalar,
        bound parameters, result dtype), validated as :meth:`__call__` does, the input converted to the compute dtype
        and at least 1-D (as kernels see it)."""
        array, scalar, bound, result_dtype, compute, _ = self._validate(x, args, params, out, grad)
        # Kernels always see at least 1-D arrays (NumPy turns 0-d results into scalars, which have no out=).
        return np.atleast_1d(array.astype(compute, copy=False)), scalar, bound, result_dtype

    def _is_elementwise(self, bound: Mapping[str, Any]) -> bool:
        return bool(self._elementwise(bound) if callable(self._elementwise) else self._elementwise)

    def _compiled_bound(self, params: Mapping[str, Any], dtype: np.dtype, grad: bool) -> dict[str, Any] | None:
        """The parameters as the kernels take them, for the short way of family/_compiled.py on a ``dtype`` array;
        None where it does not apply (a weight, not elementwise, parameters that widen ``dtype``, invalid ones:
        the full path reports those)."""
        weight = params.get(_SLOPE)
        if weight is not None:
            # One slope given positionally as a Python float (``__call__`` passes it under _SLOPE): elementwise, and
            # checked here as the weight validator would (a finite real); anything else takes the full path.
            if self._weight is None or not math.isfinite(weight):
                return None
            params = {k: v for k, v in params.items() if k != _SLOPE}
        elif self._weight is not None:
            return None
        try:
            bound = self.bind(params)
            if self._weight is not None:
                bound["weight"] = np.asarray(weight, dtype=np.float64).reshape(())
            if grad and self._kink_at_zero is not None:
                bound["at_zero"] = self._check_at_zero(None, bound)
        except (TypeError, ValueError):
            return None
        if not self._is_elementwise(bound) or _widened(dtype, bound) != dtype:
            return None
        return bound

    def _run(self, kernel: Kernel, array: np.ndarray, bound: Mapping[str, Any], out: np.ndarray | None,
             scalar: bool, dtype: np.dtype, compute: np.dtype):
        # Large contiguous arrays: the same kernel on every core, in cache-sized chunks (family/_parallel.py).
        if self._is_elementwise(bound) and _parallel.eligible(array, out, compute, kernel):
            return _parallel.run(kernel, array, bound, out, dtype, compute)
        work = np.atleast_1d(array.astype(compute, copy=False))
        direct = out.reshape(work.shape) if out is not None and out.dtype == work.dtype else None
        # Overflow in a kernel only ever rounds a true value beyond the dtype's range to inf (x^2 for x > 1.3e154,
        # a float16 result beyond 65504), which is the correct result; invalid operations stay loud.
        with np.errstate(over="ignore"):
            # The compiled twin where there is one (family/_compiled.py), else the NumPy kernel.
            value = _compiled.run(kernel, work, direct, bound, array.dtype) if self._is_elementwise(bound) \
                else kernel(work, direct, **bound)
            if out is not None:
                if value is not direct:
                    np.copyto(out, value.reshape(out.shape), casting="unsafe")  # float32 -> float16 rounding
                return out
            if value.dtype != dtype:
                value = value.astype(dtype)
        return value[0] if scalar else value

    def __call__(self, x: Any, *args: Any, out: np.ndarray | None = None, **params: Any):
        """f(x), elementwise. ``out=`` receives the result (same shape and dtype as the result) and is returned.

        Dask, JAX and other array-API inputs come back as their own kind (family/_arrays.py says how)."""
        library = None if type(x) is np.ndarray else _arrays.library_of(x)
        if library is not None:
            return _arrays.apply_foreign(self, library, x, args, params, out, grad=False, at_zero=None)
        if not args or (type(args[0]) is float and len(args) == 1):
            # the short way for a plain float array (family/_compiled.py), one slope as a float included (prelu);
            # None: validate in full
            value = _compiled.quick(self._forward, x, out, {**params, _SLOPE: args[0]} if args else params,
                                    False, self._compiled_bound)
            if value is not None:
                return value
        array, scalar, bound, dtype, compute, plain_out = self._validate(x, args, params, out, grad=False)
        value = self._run(self._forward, array, bound, plain_out, scalar, dtype, compute)
        return out if out is not None else value

    def grad(self, x: Any, *args: Any, at_zero: Any = None, out: np.ndarray | None = None, **params: Any):
        """f'(x), elementwise. At a kink at 0 the default follows PyTorch; ``at_zero=`` picks any subgradient.

        Integer inputs give float64 derivatives; float inputs keep their dtype.
        """
        library = None if type(x) is np.ndarray else _arrays.library_of(x)
        if library is not None:
            return _arrays.apply_foreign(self, library, x, args, params, out, grad=True, at_zero=at_zero)
        if at_zero is None and (not args or (type(args[0]) is float and len(args) == 1)):
            # the short way for a plain float array (family/_compiled.py), as in __call__
            value = _compiled.quick(self._derivative, x, out, {**params, _SLOPE: args[0]} if args else params,
                                    True, self._compiled_bound)
            if value is not None:
                return value
        array, scalar, bound, dtype, compute, plain_out = self._validate(x, args, params, out, grad=True)
        if self._kink_at_zero is not None:
            bound["at_zero"] = self._check_at_zero(at_zero, bound)
            compute = _widened(compute, bound)
        elif at_zero is not None:
            raise ValueError(
                f"{self.name}: at_zero={at_zero!r} does not apply, {self.name} is differentiable at 0; "
                f"at_zero applies to members with a kink at 0: {', '.join(n for n in names() if get(n).has_kink_at_zero)}"
            )
        value = self._run(self._derivative, array, bound, plain_out, scalar, dtype, compute)
        return out if out is not None else value

    def _check_at_zero(self, at_zero: Any, bound: Mapping[str, Any]):
        kink = self._kink_at_zero(bound)
        if at_zero is None:
            return kink.default
        value = check_real(at_zero, "at_zero", self.name)
        low, high = np.minimum(kink.low, kink.high), np.maximum(kink.low, kink.high)
        if math.isnan(value) or np.any(value < low) or np.any(value > high):
            interval = f"[{np.max(low):g}, {np.min(high):g}]"
            raise ValueError(
                f"{self.name}: at_zero must lie in the subdifferential at 0, {interval}; got {describe(at_zero)}"
            )
        return value


_SLOPE = "(weight)"  # the short way's key for a weight given positionally (no keyword can spell it)


def class_name(name: str) -> str:
    """The relulab.nn class name a member gets unless it declares one: ``shifted_relu`` -> ``ShiftedRelu``."""
    camel = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", name) if part)
    return camel if camel.isidentifier() and camel not in ("None", "True", "False") else "Member" + camel


def _widened(compute: np.dtype, bound: Mapping[str, Any]) -> np.dtype:
    """float64 when a real parameter is beyond what ``compute`` (float32 for float16/float32 input) represents.

    A documented range is one of real numbers (celu's alpha may be 1e39); rounded to float32 such a parameter
    becomes inf or 0 and turns exact products into NaN (0 * inf). Computing in float64 and rounding the result to
    the input's dtype gives the correctly rounded value instead (the result may well be representable: celu(-1,
    alpha=1e39) is about -1). Parameters that float32 holds leave the fast float32 path unchanged.
    """
    if compute.kind != "f" or compute == np.float64:  # integer-exact kernels take no real parameter into account
        return compute
    info = np.finfo(compute)
    largest, tiny = float(info.max), float(info.tiny)
    for value in bound.values():
        if isinstance(value, (bool, np.bool_, str)) or value is None:
            continue
        if type(value) is float:  # the common case, in plain Python (NumPy's calls below cost microseconds)
            magnitude = abs(value)
            if magnitude != 0 and magnitude != math.inf and (magnitude > largest or magnitude < tiny):
                return np.dtype(np.float64)
            continue
        if isinstance(value, (float, np.floating)) or (isinstance(value, np.ndarray) and value.dtype.kind == "f"):
            magnitude = np.abs(np.asarray(value, dtype=np.float64))
            finite = magnitude[np.isfinite(magnitude) & (magnitude != 0)]
            if finite.size and (finite.max() > info.max or finite.min() < info.tiny):
                return np.dtype(np.float64)
    return compute


# -- registry --------------------------------------------------------------------------------------------------
_REGISTRY: dict[str, Activation] = {}
_ALIASES: dict[str, str] = {}


def normalize_name(name: str) -> str:
    """The key a name is looked up by: case-insensitive, ignoring ``_``, ``-`` and spaces (``LeakyReLU``)."""
    return "".join(ch for ch in name.lower() if ch not in "_- ")


def register(activation: Activation, *, replace: bool = False) -> Activation:
    """Add ``activation`` (and its aliases) to the registry so :func:`get`, the CLI and ``relulab.nn`` see it.

    Raises ValueError if the name or an alias is taken, unless ``replace=True``.
    """
    if not isinstance(activation, Activation):
        raise TypeError(f"activation must be an Activation; got {describe(activation)}")
    keys = [normalize_name(activation.name)] + [normalize_name(a) for a in activation.aliases]
    if not replace:
        for key in keys:
            if key in _ALIASES:
                raise ValueError(
                    f"name {key!r} of {activation.name!r} is already registered to {_ALIASES[key]!r}; "
                    "pass replace=True to replace it"
                )
    _REGISTRY[activation.name] = activation
    for key in keys:
        _ALIASES[key] = activation.name
    return activation


def unregister(name: str) -> None:
    """Remove a member and its aliases from the registry."""
    canonical = get(name).name
    del _REGISTRY[canonical]
    for key in [k for k, v in _ALIASES.items() if v == canonical]:
        del _ALIASES[key]


def get(name: str | Activation) -> Activation:
    """The registered member called ``name`` (case-insensitive; aliases such as ``"swish"`` resolve).

    >>> import relulab as rl
    >>> rl.get("LeakyReLU").name, rl.get("swish").name, rl.get("hard_swish").name
    ('leaky_relu', 'silu', 'hardswish')
    """
    if isinstance(name, Activation):
        return name
    if not isinstance(name, str):
        raise TypeError(f"name must be a str naming an activation; got {describe(name)}")
    key = normalize_name(name)
    if key in _ALIASES:
        return _REGISTRY[_ALIASES[key]]
    close = difflib.get_close_matches(key, list(_ALIASES), n=3, cutoff=0.6)
    close_names = list(dict.fromkeys(_ALIASES[c] for c in close))
    hint = f"; did you mean {', '.join(repr(c) for c in close_names)}?" if close_names else ""
    raise UnknownActivationError(f"unknown activation {name!r}{hint} Known: {', '.join(names())}")


def names() -> list[str]:
    """The canonical name of every registered member, in registration order."""
    return list(_REGISTRY)

