"""The lab's statistics, one meaning each: mean, spread, geometric mean and the confidence intervals.

Every function takes a sequence that may hold ``None`` (a run that did not produce the number) and returns
``None`` (or NaN for an interval) when nothing is left to summarise. What else is left out is stated by each
function and, where the lab needs both behaviours, chosen by an argument rather than by a second function:

* ``finite_only=False`` (the default): only ``None`` is left out; a NaN or an infinity is a value and shows in the
  result (a diverged run's loss should not quietly vanish from a table that reports losses).
* ``finite_only=True``: NaN and +/-inf are left out too (the experiments' and the doctor's summaries: a diverged
  run is reported separately, by count).
"""

from __future__ import annotations

import math
import warnings
from typing import Iterable, Sequence

import numpy as np

__all__ = ["present", "mean", "spread", "geometric_mean", "geometric_mean_columns", "ratio_interval",
           "wilson_interval", "t_quantile"]

Values = Iterable["float | None"]


def present(values: Values, *, finite_only: bool = False, positive: bool = False) -> list[float]:
    """The values that count: never ``None``; with ``finite_only`` no NaN or inf; with ``positive`` only v > 0."""
    kept = [float(v) for v in values if v is not None]
    if finite_only:
        kept = [v for v in kept if math.isfinite(v)]
    if positive:
        kept = [v for v in kept if v > 0]  # NaN is not > 0, so it never passes
    return kept


def mean(values: Values, *, finite_only: bool = False) -> float | None:
    """Arithmetic mean of the values that count (see :func:`present`); None when none do."""
    kept = present(values, finite_only=finite_only)
    return float(np.mean(kept)) if kept else None


def spread(values: Values, *, ddof: int = 1, finite_only: bool = False,
           single: float | None = None) -> float | None:
    """Standard deviation with ``ddof`` (1: the sample standard deviation) of the values that count.

    None when none count; ``single`` when exactly one does (one seed has no spread: compare and the doctor report
    None, the experiments 0).
    """
    kept = present(values, finite_only=finite_only)
    if not kept:
        return None
    if len(kept) <= ddof:
        return single
    return float(np.std(kept, ddof=ddof))


def geometric_mean(values: Values, *, finite_only: bool = False) -> float | None:
    """exp(mean(log v)) over the values v > 0 (no other value has a logarithm); ``finite_only`` also drops +inf."""
    kept = present(values, finite_only=finite_only, positive=True)
    return float(np.exp(np.mean(np.log(kept)))) if kept else None


def geometric_mean_columns(rows: np.ndarray) -> np.ndarray:
    """The geometric mean of each column of a 2-D array over its entries > 0; NaN for a column without any."""
    rows = np.asarray(rows, dtype=float)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)  # a column without any: NaN
        logs = np.log(np.where(rows > 0, rows, np.nan))
        return np.exp(np.nanmean(logs, axis=0)) if np.isfinite(logs).any() else np.full(rows.shape[1:], np.nan)


def t_quantile(level: float, dof: int) -> float:
    """The two-sided Student-t quantile for a ``level`` confidence interval with ``dof`` degrees of freedom."""
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 2, dof))


def ratio_interval(ratios: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Geometric mean of positive ratios and its t confidence interval (computed on log ratios).

    With one ratio the interval is (NaN, NaN): one value has no spread.
    """
    logs = np.log(np.asarray(ratios, dtype=float))
    centre = float(logs.mean())
    if len(logs) < 2:
        return math.exp(centre), math.nan, math.nan
    half = t_quantile(level, len(logs) - 1) * float(logs.std(ddof=1)) / math.sqrt(len(logs))
    return math.exp(centre), math.exp(centre - half), math.exp(centre + half)


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (z = 1.959964: 95 %); (NaN, NaN) for no trials."""
    if trials == 0:
        return math.nan, math.nan
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)
