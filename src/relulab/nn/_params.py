"""Parameter validation for the modules and the functional API, delegated to the family definitions.

Every range, default and error message comes from the member's :class:`relulab.family.Param` objects and its
NumPy derivative (for ``at_zero``), so relulab.nn accepts exactly what the family accepts and says so in the
same words.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from relulab.family import Activation, Param, get, names

from ._ops import OPS, MemberOp

__all__ = ["member_op", "torch_params", "validate_params", "resolve_at_zero", "no_torch_op"]


def no_torch_op(activation: Activation) -> ValueError:
    known = ", ".join(n for n in names() if n in OPS)
    return ValueError(
        f"relulab.nn has no PyTorch implementation of the registered member {activation.name!r}; "
        f"members with one: {known}"
    )


def member_op(name: str | Activation) -> tuple[Activation, MemberOp]:
    """The family member called ``name`` (any alias) and its torch op; UnknownActivationError for unknown names."""
    activation = get(name)
    if activation.name not in OPS:
        raise no_torch_op(activation)
    return activation, OPS[activation.name]


def torch_params(activation: Activation) -> tuple[Param, ...]:
    """The member's family Params that its torch op takes, in torch's order."""
    index = {p.name: p for p in activation.params}
    return tuple(index[name] for name in OPS[activation.name].params)


def validate_params(activation: Activation, owner: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Check each value against the member's Param (range, type) and the member's cross-parameter rules.

    Returns the normalised values (ints become floats where the parameter is real). Raises ValueError/TypeError
    naming ``owner``, the parameter, the value and the allowed range.
    """
    checked = {p.name: p.check(values[p.name], owner) for p in torch_params(activation)}
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

