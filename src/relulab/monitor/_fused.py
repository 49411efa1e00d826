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

__all__ = ["unit_stats"]


# reassoc/contract only: the sums may be vectorised (summation order changes within a batch), while NaN and inf
# keep their IEEE meaning (no fastmath "nnan"/"ninf"), so a NaN is neither positive nor zero.
_FLAGS = {"reassoc", "contract"}


@njit(cache=True, nogil=True, fastmath=_FLAGS)
def _unit_stats(values, positive, zeros, total, total_sq):  # pragma: no cover - compiled
    # values: (N, C, S) C-contiguous with S > 1 (conv activations); accumulators of length C, zeros of length 1.
    n_rows, units, inner = values.shape
    zero_count = 0
    for n in range(n_rows):
        for c in range(units):
            count = 0
            zero = 0
            s1 = 0.0
            s2 = 0.0
            for k in range(inner):  # branch-free, so the loop vectorises
                v = values[n, c, k]
                count += v > 0
                zero += v == 0
                s1 += v
                s2 += v * v
            positive[c] += count
            total[c] += s1
            total_sq[c] += s2
            zero_count += zero
    zeros[0] += zero_count


@njit(cache=True, nogil=True, fastmath=_FLAGS)
def _dense_stats(values, positive, zeros, total, total_sq):  # pragma: no cover - compiled
    # values: (N, F) C-contiguous (dense activations): the accumulators are updated along the contiguous axis.
    n_rows, units = values.shape
    zero_count = 0
    for n in range(n_rows):
        for c in range(units):
            v = values[n, c]
            positive[c] += v > 0
            zero_count += v == 0
            total[c] += v
            total_sq[c] += v * v
    zeros[0] += zero_count


def unit_stats(values: np.ndarray, positive: np.ndarray, zeros: np.ndarray, total: np.ndarray,
               total_sq: np.ndarray) -> None:
    """Add one batch (``values`` shaped (N, units, S), float32 or float64, C-contiguous) to the accumulators."""
    if values.shape[2] == 1:
        _dense_stats(values.reshape(values.shape[0], values.shape[1]), positive, zeros, total, total_sq)
    else:
        _unit_stats(values, positive, zeros, total, total_sq)


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
