"""relulab.lab.stats against direct float64 computation written here (and scipy for the t quantile)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from relulab.lab import stats

VALUES = [0.5, 2.0, None, 3.5, 8.0]
WITH_NONFINITE = [1.0, float("nan"), 4.0, None, float("inf"), 7.0]


def test_mean_leaves_out_none_and_with_finite_only_nan_and_inf():
    assert stats.mean(VALUES) == pytest.approx((0.5 + 2.0 + 3.5 + 8.0) / 4, rel=1e-15)
    assert math.isnan(stats.mean(WITH_NONFINITE))  # a NaN is a value unless finite_only
    assert stats.mean(WITH_NONFINITE, finite_only=True) == pytest.approx(4.0, rel=1e-15)
    assert stats.mean([]) is None and stats.mean([None, None]) is None
    assert stats.mean([float("nan")], finite_only=True) is None


def test_spread_is_the_standard_deviation_with_the_stated_ddof():
    kept = [0.5, 2.0, 3.5, 8.0]
    centre = sum(kept) / len(kept)
    squares = sum((v - centre) ** 2 for v in kept)
    assert stats.spread(VALUES) == pytest.approx(math.sqrt(squares / (len(kept) - 1)), rel=1e-14)
    assert stats.spread(VALUES, ddof=0) == pytest.approx(math.sqrt(squares / len(kept)), rel=1e-14)
    assert stats.spread(WITH_NONFINITE, finite_only=True) == pytest.approx(3.0, rel=1e-14)  # 1, 4, 7


def test_spread_of_too_few_values_is_single_and_of_none_is_none():
    assert stats.spread([3.0]) is None
    assert stats.spread([3.0], single=0.0) == 0.0
    assert stats.spread([], single=0.0) is None and stats.spread([None], single=0.0) is None


def test_geometric_mean_takes_the_positive_values():
    assert stats.geometric_mean([1.0, 4.0, 16.0]) == pytest.approx(4.0, rel=1e-15)
    # zero, negatives, NaN and None have no logarithm and are left out
    assert stats.geometric_mean([2.0, 0.0, -3.0, float("nan"), None, 8.0]) == pytest.approx(4.0, rel=1e-15)
    assert stats.geometric_mean([2.0, float("inf")]) == float("inf")
    assert stats.geometric_mean([2.0, float("inf"), 8.0], finite_only=True) == pytest.approx(4.0, rel=1e-15)
    assert stats.geometric_mean([0.0, -1.0]) is None


def test_geometric_mean_columns():
    rows = np.array([[1.0, 0.0, 2.0], [4.0, 0.0, np.nan], [16.0, 0.0, 8.0]])
    got = stats.geometric_mean_columns(rows)
    assert got[0] == pytest.approx(4.0, rel=1e-15) and math.isnan(got[1]) and got[2] == pytest.approx(4.0)
    assert np.isnan(stats.geometric_mean_columns(np.zeros((2, 3)))).all()


def test_ratio_interval_is_a_t_interval_on_log_ratios():
    ratios = [1.5, 2.0, 3.0, 2.5]
    logs = [math.log(r) for r in ratios]
    centre = sum(logs) / 4
    sd = math.sqrt(sum((v - centre) ** 2 for v in logs) / 3)
    half = scipy_stats.t.ppf(0.975, 3) * sd / 2
    gm, low, high = stats.ratio_interval(ratios)
    assert gm == pytest.approx(math.exp(centre), rel=1e-14)
    assert (low, high) == pytest.approx((math.exp(centre - half), math.exp(centre + half)), rel=1e-12)
    gm, low, high = stats.ratio_interval([3.0])
    assert gm == pytest.approx(3.0) and math.isnan(low) and math.isnan(high)


def test_wilson_interval_against_the_formula():
    z, n, k = 1.959964, 40, 13
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert stats.wilson_interval(k, n) == pytest.approx((centre - half, centre + half), rel=1e-14)
    assert stats.wilson_interval(0, 10)[0] == 0.0 and stats.wilson_interval(10, 10)[1] == pytest.approx(1.0, abs=1e-15)
    assert all(math.isnan(v) for v in stats.wilson_interval(0, 0))
