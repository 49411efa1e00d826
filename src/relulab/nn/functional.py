"""relulab.nn.functional: every member as a function of a tensor, with torch.nn.functional's signatures.

The functions are generated from each member's spec (parameters in torch's order, ``inplace`` where the member
offers it, ``at_zero`` where it has a kink at 0, ``lean``); each is one line that hands its arguments to the
member's op in ``_ops.OPS``. prelu (a weight tensor) and rrelu (``training``) are written out below. Parameters are
validated against the family definition on the first call with a given combination (the result is cached, so
repeated calls cost a dictionary lookup; validation is skipped while torch.compile traces). The docstrings are
generated from the family too. A member registered at run time is :func:`activation` ``(input, name, **params)``
or ``relulab.nn.functional.<its name>`` (computed by its NumPy kernels: a slow path).

>>> import torch, relulab.nn.functional as RF
>>> RF.leaky_relu(torch.tensor([-2.0, 0.0, 3.0]), 0.1)
tensor([-0.2000,  0.0000,  3.0000])
>>> x = torch.tensor([0.0], requires_grad=True)
>>> RF.relu(x, at_zero=1.0).backward(); x.grad
tensor([1.])
"""

from __future__ import annotations

import __future__
import functools
import inspect
import keyword
from typing import Any, Callable

import torch

from relulab.family import Activation, get

from ._ops import OPS, check_input
from ._params import built_in_or_made, member_op, param_doc, resolve_at_zero, validate_params


Tensor = torch.Tensor


@functools.lru_cache(maxsize=512)
def _validated(name: str, args: tuple, at_zero: Any) -> tuple[tuple, float | None]:
    activation = get(name)
    names = [p.name for p in activation.torch_params]
    checked = validate_params(activation, name, dict(zip(names, args)))
    return tuple(checked.values()), resolve_at_zero(activation, at_zero, checked)


def _check_flags(name: str, inplace: Any, lean: Any) -> None:
    for flag, value in (("inplace", inplace), ("lean", lean)):
        if not isinstance(value, bool):
            raise TypeError(f"{name}: {flag} must be True or False; got {value!r} (type {type(value).__name__})")


def _apply(name: str, input: Tensor, args: tuple, inplace: bool, at_zero: Any, lean: bool,
           training: bool = False) -> Tensor:
    check_input(input, name)
    op = OPS.get(name)
    if not torch.compiler.is_compiling():  # validated in eager; a compiled graph was traced from valid arguments
        _check_flags(name, inplace, lean)
        try:
            # a member registered at run time may be re-registered under its name: validated afresh each call
            args, at_zero = (_validated if op is not None else _validated.__wrapped__)(name, args, at_zero)
        except TypeError as error:
            if "unhashable" not in str(error):
                raise
            args, at_zero = _validated.__wrapped__(name, args, at_zero)
    if op is None:
        op = member_op(name)[1]
    return op.fn(input, inplace, at_zero, lean, training, *args)


_ANNOTATIONS = {"real": "float", "choice": "str", "bool": "bool", "int": "int"}


def _generate(activation: Activation) -> Callable[..., Tensor]:
    """The function of a member, with torch.nn.functional's signature built from its spec: ``input``, its torch
    parameters in order, ``inplace`` where offered, then keyword-only ``at_zero`` (kink at 0) and ``lean``.
    Written as source and compiled, so it is one plain call to :func:`_apply`, as fast as a hand-written one."""
    name = activation.name
    function_name = name if name.isidentifier() and not keyword.iskeyword(name) else "activation_function"
    inplace = member_op(activation)[1].inplace
    params = activation.torch_params
    declared = [f"{p.name}: {_ANNOTATIONS.get(p.kind, 'Any')}{' | None' if p.allow_none else ''} = _default_{p.name}"
                for p in params]
    head = ["input: Tensor"] + [d for d, p in zip(declared, params) if not p.keyword_only]
    if inplace:
        head.append("inplace: bool = False")
    head.append("*")
    head += [d for d, p in zip(declared, params) if p.keyword_only]  # after inplace: torch's positions kept
    if activation.has_kink_at_zero:
        head.append("at_zero: float | None = None")
    head.append("lean: bool = False")
    values = "".join(f"{p.name}, " for p in params)
    source = (f"def {function_name}({', '.join(head)}) -> Tensor:\n"
              f"    return _apply({name!r}, input, ({values}), {'inplace' if inplace else 'False'}, "
              f"{'at_zero' if activation.has_kink_at_zero else 'None'}, lean)\n")
    namespace: dict[str, Any] = {"_apply": _apply, **{f"_default_{p.name}": p.default for p in params}}
    flags = __future__.annotations.compiler_flag  # annotations stay strings, as in this module
    exec(compile(source, f"<relulab.nn.functional.{name}>", "exec", flags=flags, dont_inherit=True), namespace)
    function = namespace[function_name]
    function.__module__ = __name__
    return function


def prelu(input: Tensor, weight: Tensor, *, at_zero: float | None = None, lean: bool = False) -> Tensor:
    check_input(input, "prelu")
    if not isinstance(weight, torch.Tensor) or weight.dim() > 1:
        raise ValueError(f"prelu: weight must be a 0-D or 1-D tensor of slopes; got {weight!r}")
    channels = input.shape[1] if input.dim() >= 2 else 1
    if weight.numel() not in (1, channels):
        raise ValueError(f"prelu: weight has {weight.numel()} slopes but the input has {channels} channels on dim 1 "
                         f"(shape {tuple(input.shape)}); give one slope or one per channel")
    _check_flags("prelu", False, lean)
    if at_zero is not None and not torch.compiler.is_compiling():
        at_zero = resolve_at_zero(get("prelu"), at_zero, {}, weight.detach().cpu().double().numpy())
    return OPS["prelu"].fn(input, False, at_zero, lean, False, weight)


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False, *, at_zero: float | None = None, lean: bool = False) -> Tensor:
    if not isinstance(training, bool):  # bool("False") is True: a string must not switch training on
        raise TypeError(f"rrelu: training must be True or False; got {training!r} (type {type(training).__name__})")
    return _apply("rrelu", input, (lower, upper), inplace, at_zero, lean, training=training)


for _name in OPS:
    if _name not in ("prelu", "rrelu"):  # written out above
        globals()[_name] = _generate(get(_name))

swish = silu  # alias, as in the family  # noqa: F821 (generated above)
hardsigmoid = hard_sigmoid  # torch.nn.functional's spellings  # noqa: F821
hardtanh = hard_tanh  # noqa: F821

FUNCTIONS = {name: globals()[name] for name in OPS}
# Every built-in member's function (read from OPS, so a new built-in member needs no line here), the spellings above,
# and the two entry points for members registered at run time.
__all__ = [*FUNCTIONS, "swish", "hardsigmoid", "hardtanh", "activation", "function_for"]
_RUNTIME: dict[str, tuple[Activation, Callable[..., Tensor]]] = {}  # functions of members registered at run time


def function_for(name: str | Activation) -> Callable[..., Tensor]:
    """The function of a member by name or alias: a built-in one, or for a member registered at run time one
    generated on first use from its spec (computed by its NumPy kernels).

    >>> import relulab.nn.functional as RF
    >>> RF.function_for("swish") is RF.silu
    True
    """
    return built_in_or_made(FUNCTIONS, _RUNTIME, name, _documented)


def _documented(act: Activation) -> Callable[..., Tensor]:
    function = _generate(act)
    function.__doc__ = _function_doc(act.name, function)
    return function


def activation(input: Tensor, name: str | Activation, **params: Any) -> Tensor:
    """Any registered member applied to ``input`` by name or alias, ``params`` as its function takes them.

    >>> import torch, relulab.nn.functional as RF
    >>> RF.activation(torch.tensor([-2.0, 3.0]), "leaky_relu", negative_slope=0.5)
    tensor([-1.,  3.])
    """
    function = function_for(name)
    try:
        return function(input, **params)
    except TypeError:  # the keywords are looked at only here, off the fast path
        allowed = [p for p in inspect.signature(function).parameters if p != "input"]
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise TypeError(f"activation: {get(name).name} takes {', '.join(allowed)}; "
                            f"got unexpected {unknown[0]!r}") from None
        raise


def __getattr__(name: str) -> Any:
    # relulab.nn.functional.shifted_relu: the function of a member registered at run time, by its canonical name
    from relulab.family import names

    if name in names():
        return function_for(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _function_doc(name: str, function: Callable[..., Tensor]) -> str:
    activation = get(name)
    signature = inspect.signature(function)
    lines = [activation.summary, "", ".. math::", "", f"    f(x) = {activation.formula}", "",
             f"    f'(x) = {activation.derivative_formula}", "", "Args:",
             "    input: a float16/bfloat16/float32/float64 tensor."]
    lines += ["    " + param_doc(p) for p in activation.torch_params]
    if name == "prelu":
        lines.append("    weight: the slopes, 1 or one per channel (dim 1 of input).")
    if name == "rrelu":
        lines.append("    training: draw random slopes (True) or use the mean slope (False).")
    if "inplace" in signature.parameters:
        lines.append("    inplace: overwrite input with the result.")
    if "at_zero" in signature.parameters:
        lines.append("    at_zero: the derivative used at exactly x == 0 (None: PyTorch's value).")
    saves = member_op(activation)[1].lean_saves
    lines.append(f"    lean: save {saves} for the backward instead of a float tensor where possible.")
    if name not in OPS:
        lines += ["", "Computed by the member's NumPy kernels (a CPU round trip each way: a slow path)."]
    if activation.conventions:
        lines += ["", f"Conventions: {activation.conventions}"]
    return "\n".join(lines)


for _name, _function in FUNCTIONS.items():
    _function.__doc__ = _function_doc(_name, _function)
