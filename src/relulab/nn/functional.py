"""relulab.nn.functional: every member as a function of a tensor, with torch.nn.functional's signatures.

Each function is one line that hands its arguments to the member's op in ``_ops.OPS``; parameters are validated
against the family definition on the first call with a given combination (the result is cached, so repeated calls
cost a dictionary lookup; validation is skipped while torch.compile traces). The docstrings are generated from the
family. Extra keyword-only options: ``at_zero`` (members with a kink at 0) and ``lean``.

>>> import torch, relulab.nn.functional as RF
>>> RF.leaky_relu(torch.tensor([-2.0, 0.0, 3.0]), 0.1)
tensor([-0.2000,  0.0000,  3.0000])
>>> x = torch.tensor([0.0], requires_grad=True)
>>> RF.relu(x, at_zero=1.0).backward(); x.grad
tensor([1.])
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import torch

from relulab.family import get

from ._ops import OPS, check_input
from ._params import resolve_at_zero, torch_params, validate_params

__all__ = [
    "relu", "leaky_relu", "prelu", "rrelu", "elu", "selu", "celu", "relu6", "hardswish", "hard_sigmoid",
    "hardsigmoid", "hard_tanh", "hardtanh", "squared_relu", "gelu", "silu", "swish", "quick_gelu", "mish",
    "softplus", "sigmoid", "tanh", "identity", "squareplus", "sparse_plus",
]

Tensor = torch.Tensor


@functools.lru_cache(maxsize=512)
def _validated(name: str, args: tuple, at_zero: Any) -> tuple[tuple, float | None]:
    activation = get(name)
    names = [p.name for p in torch_params(activation)]
    checked = validate_params(activation, name, dict(zip(names, args)))
    return tuple(checked.values()), resolve_at_zero(activation, at_zero, checked)


def _check_flags(name: str, inplace: Any, lean: Any) -> None:
    for flag, value in (("inplace", inplace), ("lean", lean)):
        if not isinstance(value, bool):
            raise TypeError(f"{name}: {flag} must be True or False; got {value!r} (type {type(value).__name__})")


def _apply(name: str, input: Tensor, args: tuple, inplace: bool, at_zero: Any, lean: bool,
           training: bool = False) -> Tensor:
    check_input(input, name)
    if not torch.compiler.is_compiling():  # validated in eager; a compiled graph was traced from valid arguments
        _check_flags(name, inplace, lean)
        try:
            args, at_zero = _validated(name, args, at_zero)
        except TypeError as error:
            if "unhashable" not in str(error):
                raise
            args, at_zero = _validated.__wrapped__(name, args, at_zero)
    return OPS[name].fn(input, inplace, at_zero, lean, training, *args)


def relu(input: Tensor, inplace: bool = False, *, max_value: float | None = None, threshold: float = 0.0,
         at_zero: float | None = None, lean: bool = False) -> Tensor:
    return _apply("relu", input, (max_value, threshold), inplace, at_zero, lean)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False, *,
               at_zero: float | None = None, lean: bool = False) -> Tensor:
    return _apply("leaky_relu", input, (negative_slope,), inplace, at_zero, lean)


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


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False, *, at_zero: float | None = None,
        lean: bool = False) -> Tensor:
    return _apply("elu", input, (alpha,), inplace, at_zero, lean)


def selu(input: Tensor, inplace: bool = False, *, at_zero: float | None = None, lean: bool = False) -> Tensor:
    return _apply("selu", input, (), inplace, at_zero, lean)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False, *, lean: bool = False) -> Tensor:
    return _apply("celu", input, (alpha,), inplace, None, lean)


def relu6(input: Tensor, inplace: bool = False, *, at_zero: float | None = None, lean: bool = False) -> Tensor:
    return _apply("relu6", input, (), inplace, at_zero, lean)


def hardswish(input: Tensor, inplace: bool = False, *, lean: bool = False) -> Tensor:
    return _apply("hardswish", input, (), inplace, None, lean)


def hard_sigmoid(input: Tensor, inplace: bool = False, *, lean: bool = False) -> Tensor:
    return _apply("hard_sigmoid", input, (), inplace, None, lean)


def hard_tanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False, *,
              lean: bool = False) -> Tensor:
    return _apply("hard_tanh", input, (min_val, max_val), inplace, None, lean)


def squared_relu(input: Tensor, *, lean: bool = False) -> Tensor:
    return _apply("squared_relu", input, (), False, None, lean)


def gelu(input: Tensor, approximate: str = "none", *, lean: bool = False) -> Tensor:
    return _apply("gelu", input, (approximate,), False, None, lean)


def silu(input: Tensor, inplace: bool = False, *, lean: bool = False) -> Tensor:
    return _apply("silu", input, (), inplace, None, lean)


def quick_gelu(input: Tensor, *, lean: bool = False) -> Tensor:
    return _apply("quick_gelu", input, (), False, None, lean)


def squareplus(input: Tensor, b: float = 4.0, *, lean: bool = False) -> Tensor:
    return _apply("squareplus", input, (b,), False, None, lean)


def sparse_plus(input: Tensor, *, lean: bool = False) -> Tensor:
    return _apply("sparse_plus", input, (), False, None, lean)


def mish(input: Tensor, inplace: bool = False, *, lean: bool = False) -> Tensor:
    return _apply("mish", input, (), inplace, None, lean)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0, *, lean: bool = False) -> Tensor:
    return _apply("softplus", input, (beta, threshold), False, None, lean)


def sigmoid(input: Tensor, *, lean: bool = False) -> Tensor:
    return _apply("sigmoid", input, (), False, None, lean)


def tanh(input: Tensor, *, lean: bool = False) -> Tensor:
    return _apply("tanh", input, (), False, None, lean)


def identity(input: Tensor, *, lean: bool = False) -> Tensor:
    return _apply("identity", input, (), False, None, lean)


swish = silu  # alias, as in the family
hardsigmoid = hard_sigmoid  # torch.nn.functional's spellings
hardtanh = hard_tanh

FUNCTIONS = {name: globals()[name] for name in OPS}


def _function_doc(name: str) -> str:
    activation = get(name)
    signature = inspect.signature(FUNCTIONS[name])
    lines = [activation.summary, "", ".. math::", "", f"    f(x) = {activation.formula}", "",
             f"    f'(x) = {activation.derivative_formula}", "", "Args:",
             "    input: a float16/bfloat16/float32/float64 tensor."]
    lines += [f"    {p.name}: {p.doc} Default: ``{p.default!r}``; {p.allowed}." for p in torch_params(activation)]
    if name == "prelu":
        lines.append("    weight: the slopes, 1 or one per channel (dim 1 of input).")
    if name == "rrelu":
        lines.append("    training: draw random slopes (True) or use the mean slope (False).")
    if "inplace" in signature.parameters:
        lines.append("    inplace: overwrite input with the result.")
    if "at_zero" in signature.parameters:
        lines.append("    at_zero: the derivative used at exactly x == 0 (None: PyTorch's value).")
    lines.append(f"    lean: save {OPS[name].lean_saves} for the backward instead of a float tensor where possible.")
    if activation.conventions:
        lines += ["", f"Conventions: {activation.conventions}"]
    return "\n".join(lines)


for _name, _function in FUNCTIONS.items():
    _function.__doc__ = _function_doc(_name)
