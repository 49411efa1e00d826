"""One-pass statistics of a CPU activation, compiled by numba (the optional ``relulab[fast]`` extra).

The eager torch path in ``core.py`` needs four or five passes over an activation per batch (sign, sum, square,
sum, ...), and on the CPU each pass costs about as much as the activation itself. This kernel reads each element
once and updates every per-unit statistic the monitor keeps: the count of positive values, the count of exact
zeros, the sum and the sum of squares (in float64). It runs with the GIL released and is compiled once per machine
(``cache=True``). Without numba, or for tensors on other devices, ``core.py`` uses torch ops instead; the tests
check that both give the same statistics.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["unit_stats", "positive_counts", "sum_squares"]


# reassoc/contract only: the sums may be vectorised (summation order changes within a batch), while NaN and inf
# keep their IEEE meaning (no fastmath "nnan"/"ninf"), so a NaN is neither positive nor zero.
_FLAGS = {"reassoc", "contract"}

# Speed notes (measured on one core, float32): every count is a float sum of a select, and each block is summed in
# the activation's own dtype before it is added to the float64 accumulators, so the loops vectorise at the
# dtype's full width and a pass costs about as much as copying the activation. (Integer counters of bools and
# float64 accumulation per element ran 2-5x slower.) Counts are exact: a block holds fewer than 2**24 elements
# per unit. Sums lose float32 precision only within one batch.


@njit(cache=True, nogil=True, fastmath=_FLAGS)
def _unit_stats(values, positive, zeros, total, total_sq):  # pragma: no cover - compiled
    # values: (N, C, S) C-contiguous with S > 1 (conv activations); accumulators of length C, zeros of length 1.
    n_rows, units, inner = values.shape
    one = values.dtype.type(1)
    nil = values.dtype.type(0)
    zero_count = 0.0
    for n in range(n_rows):
        for c in range(units):
            count = nil
            zero = nil
            s1 = nil
            s2 = nil
            for k in range(inner):  # branch-free, so the loop vectorises
                v = values[n, c, k]
                count += one if v > 0 else nil
                zero += one if v == 0 else nil
                s1 += v
                s2 += v * v
            positive[c] += count
            total[c] += s1
            total_sq[c] += s2
            zero_count += zero
    zeros[0] += zero_count


@njit(cache=True, nogil=True, fastmath=_FLAGS)
def _dense_stats(values, positive, zeros, total, total_sq):  # pragma: no cover - compiled
    # values: (R, U) C-contiguous (dense and (N, T, F) activations): per-unit block accumulators in the input's
    # dtype are updated along the contiguous axis, then added to the float64 totals once.
    n_rows, units = values.shape
    one = values.dtype.type(1)
    nil = values.dtype.type(0)
    count = np.zeros(units, values.dtype)
    zero = np.zeros(units, values.dtype)
    s1 = np.zeros(units, values.dtype)
    s2 = np.zeros(units, values.dtype)
    for n in range(n_rows):
        row = values[n]
        for c in range(units):
            v = row[c]
            count[c] += one if v > 0 else nil
            zero[c] += one if v == 0 else nil
            s1[c] += v
            s2[c] += v * v
    zero_count = 0.0
    for c in range(units):
        positive[c] += count[c]
        total[c] += s1[c]
        total_sq[c] += s2[c]
        zero_count += zero[c]
    zeros[0] += zero_count


@njit(cache=True, nogil=True, fastmath=_FLAGS)
def _positive_counts(values, positive):  # pragma: no cover - compiled
    # values: (N, C, S) C-contiguous: per-unit count of x > 0 (members not zero for x <= 0 count on the input).
    n_rows, units, inner = values.shape
    one = values.dtype.type(1)
    nil = values.dtype.type(0)
    if inner == 1:
        count = np.zeros(units, values.dtype)
        for n in range(n_rows):
            for c in range(units):
                count[c] += one if values[n, c, 0] > 0 else nil
        for c in range(units):
            positive[c] += count[c]
        return
    for n in range(n_rows):
        for c in range(units):
            acc = nil
            for k in range(inner):
                acc += one if values[n, c, k] > 0 else nil
            positive[c] += acc


def unit_stats(values: np.ndarray, positive: np.ndarray, zeros: np.ndarray, total: np.ndarray,
               total_sq: np.ndarray) -> None:
    """Add one batch (``values`` shaped (N, units, S), float32 or float64, C-contiguous) to the accumulators."""
    if values.shape[2] == 1:
        _dense_stats(values.reshape(values.shape[0], values.shape[1]), positive, zeros, total, total_sq)
    else:
        _unit_stats(values, positive, zeros, total, total_sq)


def positive_counts(values: np.ndarray, positive: np.ndarray) -> None:
    """Add each unit's count of values > 0 (``values`` shaped (N, units, S)) to ``positive``."""
    _positive_counts(values, positive)


@njit(cache=True, nogil=True, fastmath=_FLAGS)
def _sum_squares(values):  # pragma: no cover - compiled
    total = 0.0
    for i in range(values.size):
        v = values[i]
        total += v * v
    return total


def sum_squares(values: np.ndarray) -> float:
    """||values||^2 in float64 for a C-contiguous float32/float64 array, in one pass."""
    return _sum_squares(values.reshape(-1))
