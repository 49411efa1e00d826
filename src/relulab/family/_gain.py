"""Variance-preserving gains, computed from a member's own NumPy forward kernel (NumPy only).

The gain of f is ``1 / sqrt(E[f(z)^2])`` with z ~ N(0, 1) (He et al. 2015, eq. 10, for any f). A member declares
a closed form with ``Activation(gain=...)`` where one exists; every other member, a member registered at run time
included, gets this Gauss-Legendre quadrature of its forward kernel.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping

import numpy as np

__all__ = ["second_moment", "numeric_gain", "leaky_gain"]

# Gauss-Legendre panels on [-40, 40]: beyond |z| = 40 the Gaussian weight is below 1e-347, zero in float64.
_RANGE = 40.0
_PANEL = 0.5
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(20)


def second_moment(f: Callable[[np.ndarray], Any], kinks: Iterable[float] = ()) -> float:
    """E[f(z)^2] for z ~ N(0, 1) by Gauss-Legendre quadrature on panels of width <= 0.5 that break at the kinks
    (the integrand is smooth on each panel, so 20 nodes per panel reach full double precision)."""
    scale, moment = _scaled_second_moment(f, kinks)
    return scale * scale * moment


def _scaled_second_moment(f: Callable[[np.ndarray], Any], kinks: Iterable[float] = ()) -> tuple[float, float]:
    """(s, E[(f(z) / s)^2]) with s = max |f| on the nodes: no overflow for parameters up to float64's range (elu
    with alpha = 1e300 has E[f^2] ~ 1e600 but a gain of ~1e-300)."""
    edges = set(np.linspace(-_RANGE, _RANGE, int(2 * _RANGE / _PANEL) + 1).tolist())
    edges |= {float(k) for k in kinks if -_RANGE < k < _RANGE}
    edges = np.array(sorted(edges))
    left, right = edges[:-1, None], edges[1:, None]
    z = 0.5 * (right - left) * _NODES + 0.5 * (right + left)
    w = 0.5 * (right - left) * _WEIGHTS
    values = np.asarray(f(z.ravel()), dtype=np.float64).reshape(z.shape)
    scale = float(np.max(np.abs(values))) or 1.0
    if not math.isfinite(scale):
        return scale, math.nan  # f itself overflows (or is NaN) on the nodes: the caller says so
    values = values / scale
    density = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return scale, float(np.sum(w * values * values * density))


def numeric_gain(f: Callable[[np.ndarray], Any], breaks: Iterable[float], name: str,
                 params: Mapping[str, Any]) -> float:
    """``1 / sqrt(E[f(z)^2])`` by :func:`second_moment`'s quadrature, panels broken at ``breaks`` (the kinks and
    any jump of f). Raises ValueError naming the member and its ``params`` when f leaves float64's range on N(0, 1)
    or is 0 wherever N(0, 1) has mass."""
    with np.errstate(over="ignore"):
        scale, moment = _scaled_second_moment(f, breaks)
    shown = f" with {', '.join(f'{k}={v!r}' for k, v in params.items())}" if params else ""
    if not math.isfinite(scale):
        raise ValueError(f"gain: {name}{shown} takes values beyond float64's range on N(0, 1); no gain can be "
                         "computed")
    if moment == 0:  # relu with max_value=0 (or a threshold far out): f is 0 wherever N(0, 1) has mass
        raise ValueError(f"gain: {name}{shown} is 0 on N(0, 1); no gain can make its output variance 1")
    return 1.0 / (scale * math.sqrt(moment))


def leaky_gain(root_mean_square_slope: float) -> float:
    """The closed form for x above 0 and a x below: E[f(z)^2] = 1/2 + E[a^2] / 2 (hypot: no overflow at 1e300)."""
    return math.sqrt(2.0) / math.hypot(1.0, root_mean_square_slope)
