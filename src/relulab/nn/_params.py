"""Parameter validation for the modules and the functional API, delegated to the family definitions.

Every range, default and error message comes from the member's :class:`relulab.family.Param` objects and its
NumPy derivative (for ``at_zero``), so relulab.nn accepts exactly what the family accepts and says so in the
same words.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, TypeVar

import numpy as np

from relulab.family import Activation, Param, get

from ._ops import OPS, MemberOp, numpy_op

T = TypeVar("T")

__all__ = ["member_op", "param_doc", "validate_params", "resolve_at_zero", "per_member",
           "built_in_or_made"]

_NUMPY_OPS: dict[str, tuple[Activation, MemberOp]] = {}  # members without a torch op: their NumPy path


def per_member(store: dict[str, tuple[Activation, T]], activation: Activation, build: Callable[[Activation], T]) -> T:
    """``build(activation)``, kept in ``store`` under the member's name for as long as that same object is the one
    registered (a member unregistered and registered again under its name is built afresh)."""
    cached = store.get(activation.name)
    if cached is None or cached[0] is not activation:
        cached = store[activation.name] = (activation, build(activation))
    return cached[1]


def built_in_or_made(built_in: Mapping[str, T], store: dict[str, tuple[Activation, T]], name: str | Activation,
                     build: Callable[[Activation], T]) -> T:
    """The member's entry in ``built_in`` (by canonical name, any alias resolved), else :func:`per_member`'s
    ``build`` for a member registered at run time. UnknownActivationError for unknown names."""
    activation = get(name)
    if activation.name in built_in:
        return built_in[activation.name]
    return per_member(store, activation, build)


def member_op(name: str | Activation) -> tuple[Activation, MemberOp]:
    """The family member called ``name`` (any alias) and its torch op: its own in ``OPS``, else the NumPy path
    (:func:`relulab.nn._ops.numpy_op`). UnknownActivationError for unknown names."""
    activation = get(name)
    if activation.name in OPS:
        return activation, OPS[activation.name]
    return activation, per_member(_NUMPY_OPS, activation, numpy_op)


def param_doc(param: Param) -> str:
    """The docstring line of a torch parameter, for a module's and a function's Args alike."""
    return f"{param.name}: {param.doc} Default: ``{param.default!r}``; {param.allowed}."


def validate_params(activation: Activation, owner: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Check each value against the member's Param (range, type) and the member's cross-parameter rules.

    Returns the normalised values (ints become floats where the parameter is real). Raises ValueError/TypeError
    naming ``owner``, the parameter, the value and the allowed range.
    """
    checked = {p.name: p.check(values[p.name], owner) for p in activation.torch_params}
    activation.properties_for(**checked)  # cross-parameter rules, e.g. rrelu's lower <= upper
    return checked


def resolve_at_zero(activation: Activation, at_zero: Any, params: Mapping[str, Any],
                    prelu_slopes: Any = None) -> float | None:
    """Validate ``at_zero`` with the family's own derivative and normalise it.

    Returns None when at_zero is None or equals the member's default derivative at 0 (then torch's native kernel
    already gives it), else the float to use at exactly x == 0. The family raises ValueError if at_zero lies
    outside the subdifferential, or if the member has no kink at 0.
    """
    if at_zero is None:
        return None
    zero = np.zeros(1)
    if activation.name == "prelu":
        slopes = np.atleast_1d(np.asarray(prelu_slopes, dtype=np.float64))
        value = activation.grad(np.zeros((1, slopes.size)), slopes, at_zero=at_zero)[0, 0]
        return float(value)
    family_params = dict(params)
    if activation.name == "rrelu":
        # Valid in training too: at least the largest slope that can be drawn (the family's rule for training).
        family_params.update(training=True, seed=0)
        return float(activation.grad(zero, at_zero=at_zero, **family_params)[0])
    value = float(activation.grad(zero, at_zero=at_zero, **family_params)[0])
    default = float(activation.grad(zero, **family_params)[0])
    return None if value == default else value

