"""The relulab.nn modules: one class per member, generated from the family registry and the op table.

Each class is built by :func:`_build_class` from three sources, so nothing is written twice:

* the family member (``relulab.get(name)``): summary, formula, parameters with defaults and ranges (they become the
  constructor's signature, its validation and its docstring), conventions, kink at 0;
* the torch op table (``_ops.OPS``): the forward/backward, which parameters torch takes, whether ``inplace`` is
  offered, what ``lean`` saves;
* the short table :data:`_CLASSES` below: the class name, its torch.nn counterpart, and the docstring example.

PReLU is the one hand-written subclass, because it owns a learnable Parameter.
"""

from __future__ import annotations

import inspect
import math
import numbers
import types
from typing import Any

import torch
from torch import nn

from relulab.family import Activation, get

from ._ops import OPS, check_input
from ._params import member_op, resolve_at_zero, torch_params, validate_params

__all__ = ["ActivationModule", "MODULES", "make"]

# class name, member, torch.nn counterpart (None: torch has none), and the docstring example: the constructor call
# and the printed result for torch.tensor([-2.0, 0.0, 3.0]) (checked against the family by tests/nn).
_CLASSES = (
    ("ReLU", "relu", "ReLU", "rnn.ReLU()", "tensor([0., 0., 3.])"),
    ("LeakyReLU", "leaky_relu", "LeakyReLU", "rnn.LeakyReLU(0.1)", "tensor([-0.2000,  0.0000,  3.0000])"),
    ("RReLU", "rrelu", "RReLU", "rnn.RReLU().eval()", "tensor([-0.4583,  0.0000,  3.0000])"),
    ("ELU", "elu", "ELU", "rnn.ELU(alpha=1.0)", "tensor([-0.8647,  0.0000,  3.0000])"),
    ("SELU", "selu", "SELU", "rnn.SELU()", "tensor([-1.5202,  0.0000,  3.1521])"),
    ("CELU", "celu", "CELU", "rnn.CELU(alpha=2.0)", "tensor([-1.2642,  0.0000,  3.0000])"),
    ("ReLU6", "relu6", "ReLU6", "rnn.ReLU6()", "tensor([0., 0., 3.])"),
    ("Hardswish", "hardswish", "Hardswish", "rnn.Hardswish()", "tensor([-0.3333,  0.0000,  3.0000])"),
    ("Hardsigmoid", "hard_sigmoid", "Hardsigmoid", "rnn.Hardsigmoid()", "tensor([0.1667, 0.5000, 1.0000])"),
    ("Hardtanh", "hard_tanh", "Hardtanh", "rnn.Hardtanh(-1.0, 1.0)", "tensor([-1.,  0.,  1.])"),
    ("SquaredReLU", "squared_relu", None, "rnn.SquaredReLU()", "tensor([0., 0., 9.])"),
    ("GELU", "gelu", "GELU", "rnn.GELU()", "tensor([-0.0455,  0.0000,  2.9959])"),
    ("SiLU", "silu", "SiLU", "rnn.SiLU()", "tensor([-0.2384,  0.0000,  2.8577])"),
    ("QuickGELU", "quick_gelu", None, "rnn.QuickGELU()", "tensor([-0.0643,  0.0000,  2.9819])"),
    ("Mish", "mish", "Mish", "rnn.Mish()", "tensor([-0.2525,  0.0000,  2.9865])"),
    ("Softplus", "softplus", "Softplus", "rnn.Softplus(beta=1.0)", "tensor([0.1269, 0.6931, 3.0486])"),
    ("Sigmoid", "sigmoid", "Sigmoid", "rnn.Sigmoid()", "tensor([0.1192, 0.5000, 0.9526])"),
    ("Tanh", "tanh", "Tanh", "rnn.Tanh()", "tensor([-0.9640,  0.0000,  0.9951])"),
    ("Identity", "identity", "Identity", "rnn.Identity()", "tensor([-2.,  0.,  3.])"),
    ("Squareplus", "squareplus", None, "rnn.Squareplus(b=4.0)", "tensor([0.4142, 1.0000, 3.3028])"),
    ("SparsePlus", "sparse_plus", None, "rnn.SparsePlus()", "tensor([0.0000, 0.2500, 3.0000])"),
)
_PRELU_EXAMPLE = ("rnn.PReLU()", "tensor([-0.5000,  0.0000,  3.0000], grad_fn=<PreluKernelBackward0>)")

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
        inplace: compute in place (where offered).
        at_zero: the derivative used at exactly x == 0 (None: PyTorch's value); members with a kink at 0 only.
        lean: save a packed bit mask instead of a float tensor for the backward (piecewise-linear members).
    """

    activation: Activation
    torch_counterpart: type[nn.Module] | None = None
    _param_names: tuple[str, ...] = ()
    _signature: inspect.Signature

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
        """The member's parameters (not the module options inplace/at_zero/lean); relulab's own keyword-only ones
        (relu's max_value, threshold) only where they differ from their defaults, so a module equal to torch's has
        torch's parameters."""
        optional, defaults = OPS[self.activation.name].keyword_only, self.activation.defaults
        return {name: getattr(self, name) for name in self._param_names
                if name not in optional or getattr(self, name) != defaults[name]}

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
        args = [getattr(self, name) for name in self._param_names]
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


def _docstring(cls_name: str, activation: Activation, arg_lines: list[str], torch_name: str | None,
               example: tuple[str, str], shape: str = "any number of dimensions") -> str:
    lines = [activation.summary, "", "Math:", "", "    .. math::", "",
             f"        f(x) = {activation.formula}", "", f"        f'(x) = {activation.derivative_formula}", ""]
    lines += ["Args:"] + [f"    {line}" for line in arg_lines] + [""]
    lines += ["Shape:", f"    - Input: :math:`(*)`, {shape}.", "    - Output: :math:`(*)`, the same shape.", ""]
    lines += ["Attributes:", "    activation: the family member ``relulab.get"
              f"({activation.name!r})`` (formula, properties, NumPy reference).",
              "    params: the member's parameters as a dict.", ""]
    if activation.conventions:
        lines += [f"Conventions: {activation.conventions}", ""]
    if torch_name:
        lines += [f"Same values and gradients as ``torch.nn.{torch_name}`` except where relulab's conventions "
                  "differ (limits at +-inf, see docs/nn.md).", ""]
    lines += ["Examples::", "", "    >>> import torch, relulab.nn as rnn", f"    >>> m = {example[0]}",
              "    >>> m(torch.tensor([-2.0, 0.0, 3.0]))", f"    {example[1]}"]
    return "\n".join(lines)


def _arg_lines(activation: Activation, op_inplace: bool, lean_saves: str) -> list[str]:
    lines = [f"{p.name}: {p.doc} Default: ``{p.default!r}``; {p.allowed}." for p in torch_params(activation)]
    if op_inplace:
        lines.append("inplace: overwrite the input with the result. Default: ``False``.")
    if activation.has_kink_at_zero:
        lines.append("at_zero: the derivative used at exactly x == 0, any point of the subdifferential; "
                     "``None`` (default) is PyTorch's value.")
    lines.append("lean: " + _LEAN_DOC.format(saves=lean_saves) + " Default: ``False``.")
    return lines


def _build_class(class_name: str, member: str, torch_name: str | None, example: tuple[str, str]) -> type:
    activation, op = member_op(member)
    parameters = [inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=p.default)
                  for p in torch_params(activation) if p.name not in op.keyword_only]
    if op.inplace:
        parameters.append(inspect.Parameter("inplace", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=False))
    parameters += [inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=p.default)
                   for p in torch_params(activation) if p.name in op.keyword_only]
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
    namespace = {
        "__module__": __name__,
        "__qualname__": class_name,
        "__doc__": _docstring(class_name, activation, _arg_lines(activation, op.inplace, op.lean_saves), torch_name,
                              example),
        "__init__": __init__,
        "forward": forward,
        "activation": activation,
        "torch_counterpart": getattr(nn, torch_name) if torch_name else None,
        "_fn": staticmethod(op.fn),
        "_param_names": tuple(p.name for p in torch_params(activation)),
        "_signature": signature,
    }
    return type(class_name, (ActivationModule,), namespace)


class PReLU(ActivationModule):
    activation = get("prelu")
    torch_counterpart = nn.PReLU
    _param_names = ("num_parameters", "init")

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
    "PReLU", PReLU.activation,
    ["num_parameters: number of slopes: 1 (shared) or the number of channels C on dim 1 of the input. "
     "Default: ``1``.",
     "init: initial value of every slope. Default: ``0.25``.",
     "at_zero: the derivative used at exactly x == 0, in [min(w, 1), max(w, 1)] for the initial slope w; "
     "``None`` (default) is PyTorch's value, the channel's slope.",
     "lean: " + _LEAN_DOC.format(saves=OPS["prelu"].lean_saves) + " Default: ``False``.",
     "device, dtype: of the slopes, as in torch.nn.PReLU."],
    "PReLU", _PRELU_EXAMPLE, shape="channels on dim 1 when num_parameters > 1",
) + ("\n\nThe slopes are learnable parameters: exclude them from weight decay with "
     ":func:`relulab.nn.param_groups`.")

MODULES: dict[str, type[ActivationModule]] = {"prelu": PReLU}
for _name, _member, _torch_name, _call, _output in _CLASSES:
    _cls = _build_class(_name, _member, _torch_name, (_call, _output))
    globals()[_name] = _cls
    MODULES[_member] = _cls
    __all__.append(_name)
__all__.append("PReLU")
MODULES = {name: MODULES[name] for name in OPS}  # registry order of the op table

def make(name: str | Activation, **params: Any) -> ActivationModule:
    """The relulab.nn module for a member, by name or alias, resolved by the same registry as ``relulab.get``.

    ``params`` are the class's keyword arguments (the member's parameters and ``inplace``/``at_zero``/``lean``).

    >>> import relulab.nn as rnn
    >>> rnn.make("LeakyReLU", negative_slope=0.2)
    LeakyReLU(negative_slope=0.2)
    >>> rnn.make("swish", lean=True)
    SiLU(lean=True)
    """
    activation, _ = member_op(name)
    return MODULES[activation.name](**params)


def __getattr__(name: str) -> Any:
    # identify, activation_name and activation_params live in counterparts.py, which imports this module; they stay
    # importable from here (``from relulab.nn.modules import activation_name``), resolved on first use.
    if name in ("identify", "activation_name", "activation_params", "Identification"):
        from . import counterparts

        return getattr(counterparts, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
