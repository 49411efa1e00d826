"""Every member's value and derivative against the mpmath reference, and against finite differences.

The reference (``reference.py``) is evaluated once per case and cached for the session: about 1400 float64 points
per case, so the whole module stays within a few seconds.

Tolerances, and why:

* values: relative error <= 1e-9 everywhere. Where the true value lies below the smallest normal float64
  (``TINY``, 2.2e-308) the result itself can only carry the few bits a subnormal has, so there the error is
  measured against ``TINY``: an absolute floor of 1e-9 * TINY, about 2e-317. A true value beyond the largest
  float64 must come out as inf with the right sign.
* derivatives: the same, away from kinks (the value *at* a kink is a convention, pinned in test_conventions.py).
  For f = x A(x) (gelu, silu, mish) f' = A + x A' has a root where the two terms cancel; any float64 evaluation
  of that sum carries rounding of a few ulps of |A| + |x A'| (the case's ``terms``), so the tolerance is
  ``max(1e-9 |f'|, 4 eps (|A| + |x A'|))``. Away from a root the first part is the larger by far.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
import pytest

import relulab as rl

from .reference import CASES, Case, ctx, mpf

RTOL = 1e-9
TINY = np.finfo(np.float64).tiny
EPS = np.finfo(np.float64).eps
CASE_IDS = [c.id for c in CASES]

# The float64 points every case is checked at (about 1400 with the edges).
DENSE = np.linspace(-10.0, 10.0, 801)
MAGNITUDES = np.logspace(-300.0, 300.0, 241)
NEGATIVE_TAIL = np.linspace(-40.0, -1.0, 157)  # where gelu, silu and mish decay to (and below) underflow
EDGES = np.array([
    0.0, -0.0, 5e-324, -5e-324, 1e-310, -1e-310, TINY, -TINY, 2.0**-1060, -(2.0**-1060),
    1.0, -1.0, 3.0, -3.0, 6.0, 1.5, -1.5, 20.0, -20.0, 37.5, -37.5, 38.0, -38.0,
    700.0, -700.0, 709.8, -709.8, 710.0, -710.0, 745.0, -745.0, 1e5, -1e5, 1e154, -1e154, 1.4e154,
    1e308, -1e308, np.finfo(np.float64).max, -np.finfo(np.float64).max,
])


def sweep_points(case: Case) -> np.ndarray:
    near_kinks = []
    for kink in case.kinks:
        below, above = np.nextafter(kink, -np.inf), np.nextafter(kink, np.inf)
        near_kinks += [kink, below, above, np.nextafter(below, -np.inf), np.nextafter(above, np.inf),
                       kink - 1e-9, kink + 1e-9]
    points = np.concatenate([DENSE, MAGNITUDES, -MAGNITUDES, NEGATIVE_TAIL, EDGES, near_kinks])
    return np.unique(points)  # np.unique keeps one of 0.0 / -0.0; both are in the edge table tests


class Table(NamedTuple):
    x: np.ndarray
    value: np.ndarray
    derivative: np.ndarray
    terms: np.ndarray
    at_kink: np.ndarray


def _to_float(value) -> float:
    return float(value)  # mpmath rounds to the nearest double, to +-inf beyond the largest


@functools.lru_cache(maxsize=None)
def reference_table(case_id: str) -> Table:
    """The reference at every sweep point of a case, computed once per session."""
    case = next(c for c in CASES if c.id == case_id)
    x = sweep_points(case)
    at_kink = np.isin(x, case.kinks)
    value = np.array([_to_float(case.value(mpf(v))) for v in x])
    derivative = np.full_like(x, np.nan)
    terms = np.full_like(x, np.nan)
    for i, v in enumerate(x):
        if at_kink[i]:
            continue
        d = case.derivative(mpf(v))
        derivative[i] = _to_float(d)
        terms[i] = _to_float(case.terms(mpf(v))) if case.terms is not None else abs(_to_float(d))
    return Table(x, value, derivative, terms, at_kink)


def call(case: Case, x, **extra):
    return rl.get(case.member)(x, *case.args, **case.params, **extra)


def call_grad(case: Case, x, **extra):
    return rl.get(case.member).grad(x, *case.args, **case.params, **extra)


def assert_within(got, want, allowed, x, what: str) -> None:
    """got == want exactly (this covers matching infinities), or |got - want| <= allowed, pointwise."""
    with np.errstate(invalid="ignore"):
        ok = (got == want) | (np.abs(got - want) <= allowed)
    if not ok.all():
        bad = np.flatnonzero(~ok)
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.abs(got - want) / np.maximum(np.abs(want), TINY)
        worst = bad[np.argsort(-np.nan_to_num(rel[bad], nan=np.inf))][:8]
        rows = "\n".join(f"  x={x[i]!r}: got {got[i]!r}, want {want[i]!r} (rel err {rel[i]:.3g})" for i in worst)
        raise AssertionError(f"{what}: {bad.size} of {x.size} points off\n{rows}")


# -- coverage ---------------------------------------------------------------------------------------------------
def test_every_member_has_a_reference_case():
    assert {c.member for c in CASES} == set(rl.names())


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_sweep_has_at_least_1000_points_including_kinks_and_edges(case):
    x = sweep_points(case)
    assert x.size >= 1000
    assert np.isin(list(case.kinks), x).all()
    assert x.min() == -np.finfo(np.float64).max and x.max() == np.finfo(np.float64).max


# -- float64 against mpmath --------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_value_matches_mpmath(case):
    table = reference_table(case.id)
    got = call(case, table.x)
    assert got.dtype == np.float64
    allowed = RTOL * np.maximum(np.abs(table.value), TINY)
    assert_within(got, table.value, allowed, table.x, f"{case.id} value")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_derivative_matches_mpmath_away_from_kinks(case):
    table = reference_table(case.id)
    keep = ~table.at_kink
    x, want, terms = table.x[keep], table.derivative[keep], table.terms[keep]
    got = call_grad(case, x)
    assert got.dtype == np.float64
    allowed = np.maximum(RTOL * np.maximum(np.abs(want), TINY), 4 * EPS * terms)
    assert_within(got, want, allowed, x, f"{case.id} derivative")


def _derivative_root(case: Case, guess: float) -> float:
    return float(ctx.findroot(case.derivative, mpf(guess)))


@pytest.mark.parametrize(("case_id", "guess"), [("gelu", -0.75), ("gelu-tanh", -0.75), ("silu", -1.28),
                                                 ("quick_gelu", -0.75), ("mish", -1.19), ("hardswish", -1.5)])
def test_derivative_at_its_own_root_is_within_ulps_of_the_terms(case_id, guess):
    # The hardest points for f' = A + x A': the float64 neighbours of the true root, where f' is ~1e-16.
    case = next(c for c in CASES if c.id == case_id)
    root = _derivative_root(case, guess)
    x = np.array([np.nextafter(root, -np.inf), root, np.nextafter(root, np.inf)])
    want = np.array([_to_float(case.derivative(mpf(v))) for v in x])
    terms = np.array([_to_float(case.terms(mpf(v))) for v in x])
    assert np.all(np.abs(want) < 1e-14 * terms)  # really at the root, where relative accuracy is impossible
    assert_within(call_grad(case, x), want, 4 * EPS * terms, x, f"{case_id} derivative at its root")


@pytest.mark.parametrize("case", [c for c in CASES if not c.float64_only],
                         ids=[c.id for c in CASES if not c.float64_only])
def test_reference_derivative_is_the_derivative_of_the_reference_value(case):
    # Checks reference.py against itself: the analytic derivative equals mpmath's numerical one. (Not for beta =
    # 1e-300, where f depends on x only in its 300th digit, beyond mpmath's 50; the formula is the one checked
    # at the other betas.)
    points = [-30.0, -7.25, -2.5, -1.1, -0.4, 0.3, 0.9, 2.2, 4.5, 9.0, 15.0]
    for v in points:
        if any(abs(v - k) < 1e-3 for k in case.kinks):
            continue
        x = mpf(v)
        analytic, numeric = case.derivative(x), ctx.diff(case.value, x)
        # mp.diff is good to ~1e-18 relative here, far below the 1e-9 the float64 tests need of the reference.
        assert abs(analytic - numeric) <= mpf(1e-15) * max(abs(analytic), mpf(1e-300)), (case.id, v)


@pytest.mark.parametrize(("case_id", "guess"), [("gelu", -0.75), ("gelu-tanh", -0.75), ("silu", -1.28),
                                                 ("quick_gelu", -0.75), ("mish", -1.19), ("hardswish", -1.5)])
def test_lower_bound_is_the_minimum(case_id, guess):
    case = next(c for c in CASES if c.id == case_id)
    minimum = _to_float(case.value(ctx.findroot(case.derivative, mpf(guess))))
    claimed = rl.get(case.member).properties_for(**case.params).lower_bound
    assert claimed == pytest.approx(minimum, rel=4 * EPS, abs=0)


# -- float32 and float16 --------------------------------------------------------------------------------------
def _log_derivative(fn, x):
    """|x g'(x) / g(x)|, the relative condition number of g at x (mpmath, central difference at 50 digits)."""
    h = mpf(1e-20) * max(1, abs(x))
    g = fn(x)
    if g == 0:
        return math.inf
    return _to_float(abs(x * (fn(x + h) - fn(x - h)) / (2 * h) / g))


@functools.lru_cache(maxsize=None)
def low_precision_table(case_id: str, dtype_name: str):
    case = next(c for c in CASES if c.id == case_id)
    dtype = np.dtype(dtype_name)
    x = np.unique(np.concatenate([DENSE, -np.logspace(-3, 1.3, 60)]).astype(dtype))
    x = x[~np.isin(x.astype(np.float64), case.kinks)]
    x64 = x.astype(np.float64)  # exact
    value = np.array([_to_float(case.value(mpf(v))) for v in x64])
    derivative = np.array([_to_float(case.derivative(mpf(v))) for v in x64])
    terms = np.array([_to_float(case.terms(mpf(v))) if case.terms else abs(d) for v, d in zip(x64, derivative)])
    if dtype == np.float32:
        value_cond = np.array([_log_derivative(case.value, mpf(v)) for v in x64])
        derivative_cond = np.array([_log_derivative(case.derivative, mpf(v)) for v in x64])
    else:
        value_cond = derivative_cond = None
    return x, value, derivative, terms, value_cond, derivative_cond


LOW_PRECISION_CASES = [c for c in CASES if not c.float64_only]


@pytest.mark.parametrize("case", LOW_PRECISION_CASES, ids=[c.id for c in LOW_PRECISION_CASES])
def test_float32_is_accurate_to_its_condition_number(case):
    # float32 kernels compute in float32, so intermediate rounding (e.g. in x^2 / 2 inside exp) is amplified by the
    # function's condition number |x f'/f|; allow 4 ulps times (1 + that), computed from the reference.
    x, value, derivative, terms, value_cond, derivative_cond = low_precision_table(case.id, "float32")
    eps32, tiny32 = float(np.finfo(np.float32).eps), float(np.finfo(np.float32).tiny)
    got = call(case, x)
    assert got.dtype == np.float32
    allowed = 4 * eps32 * (1 + np.nan_to_num(value_cond, posinf=0.0)) * np.maximum(np.abs(value), tiny32)
    assert_within(got.astype(np.float64), value, allowed, x, f"{case.id} float32 value")
    got = call_grad(case, x)
    assert got.dtype == np.float32
    scale = np.maximum(np.maximum(np.abs(derivative), terms), tiny32)
    allowed = 4 * eps32 * (1 + np.nan_to_num(derivative_cond, posinf=0.0)) * scale
    assert_within(got.astype(np.float64), derivative, allowed, x, f"{case.id} float32 derivative")


@pytest.mark.parametrize("case", LOW_PRECISION_CASES, ids=[c.id for c in LOW_PRECISION_CASES])
def test_float16_is_correctly_rounded_within_one_ulp(case):
    # float16 is computed in float32 and rounded once, so every result is within an ulp of the true value.
    x, value, derivative, terms, _, _ = low_precision_table(case.id, "float16")
    # Near a root of f' the float32 sum may be off by a few float32 ulps of the terms (see the module docstring).
    cancellation = 4 * float(np.finfo(np.float32).eps) * terms
    for got, want, slack, what in [(call(case, x), value, 0.0, "value"),
                                   (call_grad(case, x), derivative, cancellation, "derivative")]:
        assert got.dtype == np.float16
        with np.errstate(over="ignore"):  # a true value beyond 65504 rounds to inf, as it should
            want16 = want.astype(np.float16)
        allowed = np.maximum(np.spacing(np.abs(want16)).astype(np.float64), slack)
        assert_within(got.astype(np.float64), want16.astype(np.float64), allowed, x, f"{case.id} float16 {what}")


# -- finite differences in float64 ------------------------------------------------------------------------------
def _central_difference(f, x, h):
    return (f(x + h) - f(x - h)) / (2 * h)


def _one_sided_difference(f, x, h):
    """Second-order one-sided difference using x, x + h, x + 2h only (h < 0 looks to the left)."""
    return (-3 * f(x) + 4 * f(x + h) - f(x + 2 * h)) / (2 * h)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_derivative_matches_central_differences_at_random_points(case):
    rng = np.random.default_rng(20240611)
    x = np.concatenate([rng.uniform(-8, 8, 300), rng.uniform(-40, 40, 100)])
    kinks = np.array(case.kinks or [np.inf])
    x = x[np.min(np.abs(x[:, None] - kinks[None, :]), axis=1) > 1e-3]  # the stencil must not straddle a kink
    h = 2e-6 * np.maximum(1.0, np.abs(x))  # ~ eps^(1/3): truncation and rounding errors balance
    numeric = _central_difference(lambda v: call(case, v), x, h)
    # Truncation adds ~h^2 |f'''| (the relative part); rounding in f(x +- h) adds ~eps |f| / h (the last term).
    allowed = 1e-6 * np.abs(numeric) + 1e-9 + 1e-9 * np.abs(call(case, x)) / np.maximum(1.0, np.abs(x))
    assert_within(call_grad(case, x), numeric, allowed, x, f"{case.id} derivative vs central differences")


@pytest.mark.parametrize("case", [c for c in CASES if c.kinks], ids=[c.id for c in CASES if c.kinks])
def test_derivative_matches_one_sided_differences_next_to_each_kink(case):
    for kink in case.kinks:
        for side in (-1.0, 1.0):
            for distance in (1e-3, 1e-6, 1e-9):
                x = np.array([kink + side * distance * max(1.0, abs(kink))])
                h = side * 1e-5 * max(1.0, abs(kink))  # step away from the kink, never across it
                numeric = _one_sided_difference(lambda v: call(case, v), x, h)
                np.testing.assert_allclose(call_grad(case, x), numeric, rtol=1e-6, atol=1e-9,
                                           err_msg=f"{case.id} at {kink} {'+' if side > 0 else '-'} {distance}")


def _continuous_at(case: Case, kink: float) -> bool:
    k = mpf(kink)
    step = mpf(10) ** -40 * max(1, abs(k))
    return abs(case.value(k + step) - case.value(k - step)) < mpf(10) ** -30


CONTINUOUS_KINKS = [(c, k) for c in CASES for k in c.kinks if _continuous_at(c, k)]  # softplus jumps at its threshold


@pytest.mark.parametrize(("case", "kink"), CONTINUOUS_KINKS, ids=[f"{c.id}@{k:g}" for c, k in CONTINUOUS_KINKS])
def test_default_derivative_at_each_kink_lies_between_the_one_sided_derivatives(case, kink):
    # The default is a subgradient (for the convex kinks) or a Clarke generalised gradient (the others).
    x = np.array([kink])
    h = 1e-5 * max(1.0, abs(kink))
    left = _one_sided_difference(lambda v: call(case, v), x, -h)[0]
    right = _one_sided_difference(lambda v: call(case, v), x, h)[0]
    assert abs(left - right) > 1e-3, f"{case.id}: no jump in f' at {kink}"
    low, high = min(left, right), max(left, right)
    default = float(call_grad(case, x)[0])
    assert low - 1e-6 <= default <= high + 1e-6, (case.id, kink, left, right, default)


KINKS_AT_ZERO = [c for c in CASES if 0.0 in c.kinks and rl.get(c.member).has_kink_at_zero]


@pytest.mark.parametrize("case", KINKS_AT_ZERO, ids=[c.id for c in KINKS_AT_ZERO])
def test_at_zero_accepts_exactly_the_interval_between_the_one_sided_derivatives(case):
    step = mpf(10) ** -40
    left = _to_float(case.derivative(-step))  # the one-sided limits of f' at 0, from the reference
    right = _to_float(case.derivative(step))
    low, high = min(left, right), max(left, right)
    x = np.array([0.0, -0.0])
    # The endpoints themselves are products of rounded constants (selu's lambda * alpha is 1 ulp below the
    # correctly rounded product, as in PyTorch), so the points checked inside are 4 ulps in from them.
    for inside in (low + 4 * np.spacing(low), high - 4 * np.spacing(high), 0.5 * (low + high)):
        np.testing.assert_array_equal(call_grad(case, x, at_zero=inside), [inside, inside])
    for outside in (low - 1e-9 * max(1.0, abs(low)), high + 1e-9 * max(1.0, abs(high))):
        with pytest.raises(ValueError, match="at_zero must lie in the subdifferential"):
            call_grad(case, x, at_zero=outside)
