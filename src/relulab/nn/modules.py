"""The relulab.nn modules: one class per member, each a few lines on :class:`ActivationModule`.

A class names its member (``class ReLU(ActivationModule, member="relu")``) and
:meth:`ActivationModule.__init_subclass__` builds the rest from two sources, so nothing is written twice:

* the member's spec (``relulab.get(name)``, family/members.py): summary, formula, parameters with defaults and ranges
  (they become the constructor's signature, its validation and its docstring; ``Param(torch=False)`` ones are left
  out), ``inplace`` offered or not, conventions, kink at 0, the torch.nn counterpart and the docstring example;
* the torch op (``_ops.OPS``): the forward/backward and what ``lean`` saves. A member without one (registered at
  run time) runs on its NumPy kernels (``_ops.numpy_op``).

PReLU is the one hand-written subclass, because it owns a learnable Parameter. A member registered at run time gets
its class from :func:`module_for` (also ``relulab.nn.<ClassName>`` and :func:`make`).
"""

from __future__ import annotations

import inspect
import math
import numbers
import sys
import types
from typing import Any

import torch
from torch import nn

from relulab.family import Activation, get, names

from ._ops import OPS, check_input
from ._params import built_in_or_made, member_op, param_doc, resolve_at_zero, validate_params

__all__ = ["ActivationModule", "MODULES", "make", "module_for"]

_LEAN_DOC = ("Save a packed bit mask (1 bit per element) instead of a float tensor for the backward; gradients are "
             "bit-identical. For this member the lean path saves {saves}.")


def _check_bool(value: Any, name: str, owner: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be True or False; got {value!r} (type {type(value).__name__})")
    return value


class ActivationModule(nn.Module):
    """Base class of every relulab.nn activation module.

    Attributes:
        activation: the family member (``relulab.get(name)``): formula, properties, NumPy reference.
        params: the member's parameters as a dict (``make(module.activation.name, **module.params)`` rebuilds it).
        param_names: (class attribute) the names of those parameters, the constructor's, in torch's order.
        inplace: compute in place (where offered).
        at_zero: the derivative used at exactly x == 0 (None: PyTorch's value); members with a kink at 0 only.
        lean: save a packed bit mask instead of a float tensor for the backward (piecewise-linear members).
    """

    activation: Activation
    torch_counterpart: type[nn.Module] | None = None
    param_names: tuple[str, ...] = ()
    _signature: inspect.Signature

    def __init_subclass__(cls, member: str | Activation | None = None, **kwargs: Any) -> None:
        """``class X(ActivationModule, member="name")``: build X's constructor, forward and docstring from the
        member's spec (a subclass without ``member=`` inherits its parent's)."""
        super().__init_subclass__(**kwargs)
        if member is not None:
            _build_class(cls, member)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        owner = type(self).__name__
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"{owner}: {error}; the signature is {owner}{self._signature}") from None
        bound.apply_defaults()
        values = dict(bound.arguments)
        self.inplace = _check_bool(values.pop("inplace", False), "inplace", owner)
        self.lean = _check_bool(values.pop("lean"), "lean", owner)
        at_zero = values.pop("at_zero", None)
        for name, value in validate_params(self.activation, f"relulab.nn.{owner}", values).items():
            setattr(self, name, value)
        self.at_zero = at_zero

    @property
    def params(self) -> dict[str, Any]:
        """The member's parameters (not the module options inplace/at_zero/lean); keyword-only ones that torch's
        own class does not take (relu's max_value, threshold) only where they differ from their defaults, so a module
        equal to torch's has torch's parameters."""
        optional = {p.name: p.default for p in self.activation.params if p.keyword_only}
        return {name: getattr(self, name) for name in self.param_names
                if name not in optional or getattr(self, name) != optional[name]}

    @property
    def at_zero(self) -> float | None:
        return self._at_zero_given

    @at_zero.setter
    def at_zero(self, value: Any) -> None:
        # Validated by the family's own derivative (raises ValueError outside the subdifferential or without a
        # kink at 0); stored normalised: None when it equals torch's default, so the native kernel runs.
        self._at_zero = resolve_at_zero(self.activation, value, self.params, getattr(self, "init", None))
        self._at_zero_given = value

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        check_input(input, type(self).__name__)
        args = [getattr(self, name) for name in self.param_names]
        return self._fn(input, self.inplace, self._at_zero, self.lean, self.training, *args)

    def extra_repr(self) -> str:
        parts = [f"{name}={value!r}" for name, value in self.params.items()]
        if self.inplace:
            parts.append("inplace=True")
        if self._at_zero_given is not None:
            parts.append(f"at_zero={self._at_zero_given!r}")
        if self.lean:
            parts.append("lean=True")
        return ", ".join(parts)


def _docstring(activation: Activation, arg_lines: list[str], example: tuple[str, str],
               shape: str = "any number of dimensions") -> str:
    lines = [activation.summary, "", "Math:", "", "    .. math::", "",
             f"        f(x) = {activation.formula}", "", f"        f'(x) = {activation.derivative_formula}", ""]
    lines += ["Args:"] + [f"    {line}" for line in arg_lines] + [""]
    lines += ["Shape:", f"    - Input: :math:`(*)`, {shape}.", "    - Output: :math:`(*)`, the same shape.", ""]
    lines += ["Attributes:", "    activation: the family member ``relulab.get"
              f"({activation.name!r})`` (formula, properties, NumPy reference).",
              "    params: the member's parameters as a dict.", ""]
    if activation.conventions:
        lines += [f"Conventions: {activation.conventions}", ""]
    if activation.torch_class:
        lines += [f"Same values and gradients as ``torch.nn.{activation.torch_class}`` except where relulab's "
                  "conventions differ (limits at +-inf, see docs/nn.md).", ""]
    if activation.name not in OPS:
        lines += ["Computed by the member's NumPy kernels (a CPU round trip each way: a slow path, for members "
                  "relulab.nn has no torch implementation of); dtype, device and gradients are kept.", ""]
    lines += ["Examples::", "", "    >>> import torch, relulab.nn as rnn", f"    >>> m = {example[0]}",
              "    >>> m(torch.tensor([-2.0, 0.0, 3.0]))", f"    {example[1]}"]
    return "\n".join(lines)


def _arg_lines(activation: Activation, op_inplace: bool, lean_saves: str) -> list[str]:
    lines = [param_doc(p) for p in activation.torch_params]
    if op_inplace:
        lines.append("inplace: overwrite the input with the result. Default: ``False``.")
    if activation.has_kink_at_zero:
        lines.append("at_zero: the derivative used at exactly x == 0, any point of the subdifferential; "
                     "``None`` (default) is PyTorch's value.")
    lines.append("lean: " + _LEAN_DOC.format(saves=lean_saves) + " Default: ``False``.")
    return lines


def _example(cls: type, activation: Activation) -> tuple[str, str]:
    """The spec's docstring example, or one computed now for a member that declares none."""
    if activation.nn_example is not None:
        return activation.nn_example
    with torch.no_grad():
        output = cls()(torch.tensor([-2.0, 0.0, 3.0]))
    return f"rnn.make({activation.name!r})", repr(output)


def _build_class(cls: type, member: str | Activation) -> None:
    activation, op = member_op(member)
    class_name = cls.__name__
    parameters = [inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=p.default)
                  for p in activation.torch_params if not p.keyword_only]
    if op.inplace:
        parameters.append(inspect.Parameter("inplace", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=False))
    parameters += [inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=p.default)
                   for p in activation.torch_params if p.keyword_only]
    if activation.has_kink_at_zero:
        parameters.append(inspect.Parameter("at_zero", inspect.Parameter.KEYWORD_ONLY, default=None))
    parameters.append(inspect.Parameter("lean", inspect.Parameter.KEYWORD_ONLY, default=False))
    signature = inspect.Signature(parameters)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        ActivationModule.__init__(self, *args, **kwargs)

    __init__.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)] + parameters)
    __init__.__qualname__ = f"{class_name}.__init__"
    # Each class gets its own code object for forward, as torch.nn's hand-written classes have: torch.compile keys
    # its cache and recompile limit on the code object, so sharing one would make 9 member types compiled
    # separately hit the limit.
    base = ActivationModule.forward
    forward = types.FunctionType(base.__code__.replace(co_qualname=f"{class_name}.forward"), base.__globals__,
                                 "forward", base.__defaults__, base.__closure__)
    forward.__qualname__ = f"{class_name}.forward"
    forward.__doc__ = base.__doc__
    cls.__init__ = __init__
    cls.forward = forward
    cls.activation = activation
    cls.torch_counterpart = getattr(nn, activation.torch_class) if activation.torch_class else None
    cls._fn = staticmethod(op.fn)
    cls.param_names = tuple(p.name for p in activation.torch_params)
    cls._signature = signature
    cls.__doc__ = _docstring(activation, _arg_lines(activation, op.inplace, op.lean_saves), _example(cls, activation))


# The built-in members' classes. Each is complete: ActivationModule.__init_subclass__ builds its constructor
# (signature, validation), forward and PyTorch-style docstring from the member's spec.
class ReLU(ActivationModule, member="relu"):
    pass


class LeakyReLU(ActivationModule, member="leaky_relu"):
    pass


class RReLU(ActivationModule, member="rrelu"):
    pass


class ELU(ActivationModule, member="elu"):
    pass


class SELU(ActivationModule, member="selu"):
    pass


class CELU(ActivationModule, member="celu"):
    pass


class ReLU6(ActivationModule, member="relu6"):
    pass


class Hardswish(ActivationModule, member="hardswish"):
    pass


class Hardsigmoid(ActivationModule, member="hard_sigmoid"):
    pass


class Hardtanh(ActivationModule, member="hard_tanh"):
    pass


class SquaredReLU(ActivationModule, member="squared_relu"):
    pass


class GELU(ActivationModule, member="gelu"):
    pass


class SiLU(ActivationModule, member="silu"):
    pass


class QuickGELU(ActivationModule, member="quick_gelu"):
    pass


class Mish(ActivationModule, member="mish"):
    pass


class Softplus(ActivationModule, member="softplus"):
    pass


class Squareplus(ActivationModule, member="squareplus"):
    pass


class SparsePlus(ActivationModule, member="sparse_plus"):
    pass


class Sigmoid(ActivationModule, member="sigmoid"):
    pass


class Tanh(ActivationModule, member="tanh"):
    pass


class Identity(ActivationModule, member="identity"):
    pass


class PReLU(ActivationModule):
    activation = get("prelu")
    torch_counterpart = nn.PReLU
    param_names = ("num_parameters", "init")

    def __init__(self, num_parameters: int = 1, init: float = 0.25, *, at_zero: float | None = None,
                 lean: bool = False, device: Any = None, dtype: torch.dtype | None = None) -> None:
        nn.Module.__init__(self)
        if isinstance(num_parameters, bool) or not isinstance(num_parameters, numbers.Integral):
            raise TypeError(f"PReLU: num_parameters must be a positive integer (1, or the number of channels on "
                            f"dim 1 of the input); got {num_parameters!r} (type {type(num_parameters).__name__})")
        if num_parameters < 1:
            raise ValueError(f"PReLU: num_parameters must be a positive integer (1, or the number of channels on "
                             f"dim 1 of the input); got {num_parameters}")
        if isinstance(init, bool) or not isinstance(init, numbers.Real) or not math.isfinite(init):
            raise ValueError(f"PReLU: init must be a finite real number (the initial slope); got {init!r}")
        self.num_parameters = int(num_parameters)
        self.init = float(init)
        self.weight = nn.Parameter(torch.empty(self.num_parameters, device=device, dtype=dtype))
        self.reset_parameters()
        self.inplace = False
        self.lean = _check_bool(lean, "lean", "PReLU")
        self.at_zero = at_zero

    def reset_parameters(self) -> None:
        nn.init.constant_(self.weight, self.init)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        check_input(input, "PReLU")
        if self.num_parameters != 1:
            channels = input.shape[1] if input.dim() >= 2 else 1
            if channels != self.num_parameters:
                raise ValueError(
                    f"PReLU: num_parameters={self.num_parameters} does not match the input's {channels} channels "
                    f"(dim 1 of an input of shape {tuple(input.shape)}); use num_parameters=1 (one slope for all) "
                    f"or num_parameters={channels}"
                )
        return OPS["prelu"].fn(input, False, self._at_zero, self.lean, self.training, self.weight)

    def extra_repr(self) -> str:
        parts = [f"num_parameters={self.num_parameters}"]
        if self._at_zero_given is not None:
            parts.append(f"at_zero={self._at_zero_given!r}")
        if self.lean:
            parts.append("lean=True")
        return ", ".join(parts)


PReLU.__doc__ = _docstring(
    PReLU.activation,
    ["num_parameters: number of slopes: 1 (shared) or the number of channels C on dim 1 of the input. "
     "Default: ``1``.",
     "init: initial value of every slope. Default: ``0.25``.",
     "at_zero: the derivative used at exactly x == 0, in [min(w, 1), max(w, 1)] for the initial slope w; "
     "``None`` (default) is PyTorch's value, the channel's slope.",
     "lean: " + _LEAN_DOC.format(saves=OPS["prelu"].lean_saves) + " Default: ``False``.",
     "device, dtype: of the slopes, as in torch.nn.PReLU."],
    PReLU.activation.nn_example, shape="channels on dim 1 when num_parameters > 1",
) + ("\n\nThe slopes are learnable parameters: exclude them from weight decay with "
     ":func:`relulab.nn.param_groups`.")

# The built-in classes by member, in the op table's order.
MODULES: dict[str, type[ActivationModule]] = {
    cls.activation.name: cls for cls in ActivationModule.__subclasses__() if cls.__module__ == __name__
}
MODULES = {name: MODULES[name] for name in OPS}
__all__ += [cls.__name__ for cls in MODULES.values()]
_RUNTIME: dict[str, tuple[Activation, type[ActivationModule]]] = {}  # classes made for members registered at run time


def module_for(name: str | Activation) -> type[ActivationModule]:
    """The relulab.nn class of a member, by name or alias: a built-in class, or for a member registered at run
    time one made on first use from its spec (named by ``Activation.nn_class``; computed by its NumPy kernels).

    >>> import relulab.nn as rnn
    >>> rnn.module_for("swish") is rnn.SiLU
    True
    """
    return built_in_or_made(MODULES, _RUNTIME, name, _new_class)


def _new_class(activation: Activation) -> type[ActivationModule]:
    # The class is found again by its name (relulab.nn.<nn_class>, pickling): a name relulab.nn already uses, or
    # one another member declares, would leave it unreachable, so it is refused.
    taken = activation.nn_class in globals() or activation.nn_class in vars(sys.modules[__package__])
    others = [n for n in names() if n != activation.name and get(n).nn_class == activation.nn_class]
    if taken or others:
        also = f" (also {others[0]!r}'s)" if others else ""
        raise ValueError(f"{activation.name}: nn_class must be a name relulab.nn does not use already; got "
                         f"{activation.nn_class!r}{also}; declare another with Activation(..., nn_class=...)")
    cls = types.new_class(activation.nn_class, (ActivationModule,), {"member": activation})
    cls.__module__ = __name__
    return cls


def class_for(class_name: str) -> type[ActivationModule] | None:
    """The class called ``class_name`` of a member registered at run time (its spec's ``nn_class``), else None."""
    for name in names():
        if name not in MODULES and get(name).nn_class == class_name:
            return module_for(name)
    return None


def make(name: str | Activation, **params: Any) -> ActivationModule:
    """The relulab.nn module for a member, by name or alias, resolved by the same registry as ``relulab.get``.

    ``params`` are the class's keyword arguments (the member's parameters and ``inplace``/``at_zero``/``lean``).

    >>> import relulab.nn as rnn
    >>> rnn.make("LeakyReLU", negative_slope=0.2)
    LeakyReLU(negative_slope=0.2)
    >>> rnn.make("swish", lean=True)
    SiLU(lean=True)
    """
    return module_for(name)(**params)


def __getattr__(name: str) -> Any:
    cls = class_for(name)  # a member registered at run time: rnn.modules.ShiftedRelu (and pickling) find it
    if cls is not None:
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
