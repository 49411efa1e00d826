"""One-pass statistics of a CPU activation, compiled by numba (the optional ``relulab[fast]`` extra).

The eager torch path in ``core.py`` needs four or five passes over an activation per batch (sign, sum, square,
sum, ...), and on the CPU each pass costs about as much as the activation itself. This kernel reads each element
once and updates every per-unit statistic the monitor keeps: the count of positive values, the count of exact
zeros, the sum and the sum of squares (in float64). It runs with the GIL released and is compiled once per machine
(``cache=True``). Without numba, or for tensors on other devices, ``core.py`` uses torch ops instead; the tests
check that both give the same statistics.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["unit_stats", "unit_stats_at", "positive_counts_at", "sum_squares_at", "bound", "LIKE"]


# reassoc/contract only: the sums may be vectorised (summation order changes within a batch), while NaN and inf
# keep their IEEE meaning (no fastmath "nnan"/"ninf"), so a NaN is neither positive nor zero.
_FLAGS = {"reassoc", "contract"}

# Speed notes (measured on one core, float32): every count is a float sum of a select, and each block is summed in
# the activation's own dtype before it is added to the float64 accumulators, so the loops vectorise at the
# dtype's full width and a pass costs about as much as copying the activation. (Integer counters of bools and
# float64 accumulation per element ran 2-5x slower.) Counts are exact: a block holds fewer than 2**24 elements
# per unit. Sums lose float32 precision only within one batch.


# The per-unit count is of ``v > 0`` for members exactly zero for x <= 0 (``positive=True``: their outputs are >= 0
# or NaN, so a column's zeros are its length less its positives unless its sum is NaN, when they are counted again),
# and of ``v == 0`` otherwise (those members count activity on their input): three accumulators per element, where
# counting both positives and zeros took four. The two loops are written out so that each vectorises without a
# branch. An (N, C, S) batch is read as N rows of C*S columns, each
# column accumulated down the rows and folded into its unit at the end: short spatial runs (S = 16 after two
# poolings) then vectorise as well as long ones; longer runs are summed run by run (``_block_stats``).


@njit(cache=True, nogil=True, fastmath=_FLAGS)
def _block_zeros(values, n, c):  # pragma: no cover - compiled
    zero = 0.0
    for k in range(values.shape[2]):
        zero += 1.0 if values[n, c, k] == 0 else 0.0
    return zero


@njit(cache=True, nogil=True, fastmath=_FLAGS)
def _block_stats(values, counts, zeros, total, total_sq, positive):  # pragma: no cover - compiled
    # values: (N, C, S) C-contiguous with long spatial runs: each (n, c) run is summed on its own.
    n_rows, units, inner = values.shape
    one = values.dtype.type(1)
    nil = values.dtype.type(0)
    zero_count = 0.0
    for n in range(n_rows):
        for c in range(units):
            count = nil
            s1 = nil
            s2 = nil
            if positive:
                for k in range(inner):
                    v = values[n, c, k]
                    count += one if v > 0 else nil
                    s1 += v
                    s2 += v * v
            else:
                for k in range(inner):
                    v = values[n, c, k]
                    count += one if v == 0 else nil
                    s1 += v
                    s2 += v * v
            total[c] += s1
            total_sq[c] += s2
            if positive:
                counts[c] += count
                zero_count += _block_zeros(values, n, c) if s1 != s1 else inner - count
            else:
                zero_count += count
    zeros[0] += zero_count


@njit(cache=True, nogil=True, fastmath=_FLAGS)
def _unit_stats(values, counts, zeros, total, total_sq, positive):  # pragma: no cover - compiled
    # values: (N, C, S) C-contiguous; counts, total, total_sq of length C; zeros of length 1.
    n_rows, units, inner = values.shape
    width = units * inner
    rows = values.reshape(n_rows, width)
    one = values.dtype.type(1)
    nil = values.dtype.type(0)
    count = np.zeros(width, values.dtype)
    s1 = np.zeros(width, values.dtype)
    s2 = np.zeros(width, values.dtype)
    # Four rows per sweep: the column accumulators are loaded and stored once per four elements (2x faster than
    # once per element on one core), then the last N % 4 rows one by one.
    full = n_rows - n_rows % 4
    for n in range(0, full, 4):
        r0, r1, r2, r3 = rows[n], rows[n + 1], rows[n + 2], rows[n + 3]
        if positive:
            for j in range(width):
                a, b, c, d = r0[j], r1[j], r2[j], r3[j]
                count[j] += ((one if a > 0 else nil) + (one if b > 0 else nil)) \
                    + ((one if c > 0 else nil) + (one if d > 0 else nil))
                s1[j] += (a + b) + (c + d)
                s2[j] += (a * a + b * b) + (c * c + d * d)
        else:
            for j in range(width):
                a, b, c, d = r0[j], r1[j], r2[j], r3[j]
                count[j] += ((one if a == 0 else nil) + (one if b == 0 else nil)) \
                    + ((one if c == 0 else nil) + (one if d == 0 else nil))
                s1[j] += (a + b) + (c + d)
                s2[j] += (a * a + b * b) + (c * c + d * d)
    for n in range(full, n_rows):
        row = rows[n]
        if positive:
            for j in range(width):
                v = row[j]
                count[j] += one if v > 0 else nil
                s1[j] += v
                s2[j] += v * v
        else:
            for j in range(width):
                v = row[j]
                count[j] += one if v == 0 else nil
                s1[j] += v
                s2[j] += v * v
    # Fold the columns into their units in local float64 sums (accumulating into the output arrays element by
    # element serialises on store-to-load forwarding: it cost more than the sweep on a small batch).
    zero_count = 0.0
    for c in range(units):
        start = c * inner
        a1 = 0.0
        a2 = 0.0
        ac = 0.0
        for j in range(start, start + inner):
            a1 += s1[j]
            a2 += s2[j]
            ac += count[j]
        total[c] += a1
        total_sq[c] += a2
        if not positive:
            zero_count += ac
            continue
        counts[c] += ac
        if a1 == a1:  # no column of the unit has a NaN sum: its zeros are the elements not positive
            zero_count += n_rows * inner - ac
            continue
        for j in range(start, start + inner):
            if s1[j] != s1[j]:  # a NaN in this column: its zeros are counted, not derived
                for n in range(n_rows):
                    zero_count += 1.0 if rows[n, j] == 0 else 0.0
            else:
                zero_count += n_rows - count[j]
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


@njit(cache=True, nogil=True)
def _column_wise(units, inner):  # pragma: no cover - compiled
    # Column-wise for dense activations and short spatial runs, run by run for long ones (measured on one core, four
    # rows per sweep: S = 16 and S = 64 ran 2x faster column-wise; from S = 196 up run by run was as fast or faster).
    return inner <= 64 and units * inner <= 16384


@njit(cache=True, nogil=True)
def unit_stats(values, counts, zeros, total, total_sq, positive):  # pragma: no cover - compiled
    """Add one batch (``values`` shaped (N, units, S), float32 or float64, C-contiguous) to the accumulators:
    ``counts`` (per unit, values > 0; only when ``positive``, for outputs that are >= 0 or NaN), ``zeros`` (length 1),
    ``total`` (per-unit sums) and ``total_sq`` (per-unit sums of squares)."""
    if _column_wise(values.shape[1], values.shape[2]):
        _unit_stats(values, counts, zeros, total, total_sq, positive)
    else:
        _block_stats(values, counts, zeros, total, total_sq, positive)


@njit(cache=True, nogil=True, fastmath=_FLAGS)
def _sum_squares(values):  # pragma: no cover - compiled
    # Blocks of 4096 summed in the values' dtype (full vector width) and added up in float64: a float32 block sum
    # loses at most ~4096 ulp-relative error, far below what a gradient norm is read for; ~2x faster than float64.
    total = 0.0
    size = values.size
    nil = values.dtype.type(0)
    full = size - size % 4096
    for start in range(0, full, 4096):
        block = nil
        for i in range(start, start + 4096):
            v = values[i]
            block += v * v
        total += block
    block = nil
    for i in range(full, size):
        v = values[i]
        block += v * v
    return total + block


# -- entry points that take a tensor's address ----------------------------------------------------------------------
# The monitor calls these from its hooks on every batch with ``tensor.data_ptr()`` (last, so that the rest can be
# bound once per batch shape). Inside a training step, where torch's own kernels have just displaced the
# interpreter's working set from the caches, making a NumPy view of a tensor (``tensor.numpy()``) cost 4-6 us a call
# against 0.75 us in a tight loop; an address costs one attribute read. ``like`` is an empty array of the tensor's
# dtype (``LIKE``): it picks the compiled specialisation. The caller guarantees a live, C-contiguous CPU tensor.

LIKE = {np.dtype(np.float32): np.empty(0, np.float32), np.dtype(np.float64): np.empty(0, np.float64)}


@intrinsic
def _pointer(typingctx, address, like):
    """The integer ``address`` as a pointer to elements of ``like``'s dtype."""
    signature = types.CPointer(like.dtype)(address, like)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return signature, codegen


@njit(cache=True, nogil=True)
def unit_stats_at(like, rows, units, inner, counts, zeros, total, total_sq, positive, address):  # pragma: no cover
    """:func:`unit_stats` on the (rows, units, inner) C-contiguous tensor at ``address``."""
    unit_stats(numba.carray(_pointer(address, like), (rows, units, inner)), counts, zeros, total, total_sq, positive)


@njit(cache=True, nogil=True)
def positive_counts_at(like, rows, units, inner, positive, address):  # pragma: no cover - compiled
    """Add each unit's count of values > 0 in the (rows, units, inner) C-contiguous tensor at ``address`` to
    ``positive``."""
    _positive_counts(numba.carray(_pointer(address, like), (rows, units, inner)), positive)


@njit(cache=True, nogil=True)
def sum_squares_at(like, out, size, address):  # pragma: no cover - compiled
    """Add ||values||^2 of the ``size`` contiguous elements at ``address`` to ``out[0]`` (float64), in one pass."""
    out[0] += _sum_squares(numba.carray(_pointer(address, like), (size,)))


def bound(kernel, *args):
    """``kernel`` with its leading ``args`` bound, calling its compiled specialisation for their types directly.

    numba's dispatcher types every argument on every call: inside a training step that cost about 1 us of a
    2.5-3.5 us call. The specialisation is compiled here (or loaded from numba's cache) and called as a plain
    callable that checks nothing; the arguments left to the call are ints (an address, a size), as the monitor
    passes them. (family/_parallel.py's ``specialisation`` does the same for the family's kernels; each room keeps
    its own.)"""
    signature = tuple(numba.typeof(a) for a in args) + (types.int64,) * _TRAILING[kernel]
    kernel.compile(signature)
    return functools.partial(kernel.overloads[signature].entry_point, *args)


_TRAILING = {unit_stats_at: 1, positive_counts_at: 1, sum_squares_at: 2}  # int arguments left to the call
