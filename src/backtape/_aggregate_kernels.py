"""Numba kernels behind ``backtape.aggregate``, in their own module so ``import backtape`` stays light."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _assign_bins(  # pragma: no cover - jitted
    ts: np.ndarray, opens: np.ndarray, closes: np.ndarray, break_starts: np.ndarray, break_ends: np.ndarray,
    period_start: np.ndarray, period_end: np.ndarray, step: int, include_outside: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One pass over the rows: find each row's session, segment and bin.

    ``ts`` is sorted within runs (one per symbol), so a pointer walks forward through the sessions
    and a binary search happens only when time jumps back (a new symbol). Intraday (``step`` > 0):
    the bin is anchored at the start of the row's segment (open..break start, break end..close, or,
    outside sessions, the gap) and cut at the segment's end. Daily and weekly (``step`` == 0): the
    bin is the session's period. Rows in a break or between sessions are kept only for intraday
    bins with ``include_outside``.
    """
    n = ts.size
    start = np.empty(n, np.int64)
    end = np.empty(n, np.int64)
    keep = np.empty(n, np.bool_)
    j = 0
    for k in range(n):
        t = ts[k]
        if t < opens[j]:
            j = max(np.searchsorted(opens, t, side="right") - 1, 0)
        else:
            while j + 1 < opens.size and opens[j + 1] <= t:
                j += 1
        if t >= closes[j]:  # between this session's close and the next open
            seg0, seg1, inside = closes[j], opens[min(j + 1, opens.size - 1)], False
        elif t < break_starts[j]:
            seg0, seg1, inside = opens[j], break_starts[j], True
        elif t >= break_ends[j]:
            seg0, seg1, inside = break_ends[j], closes[j], True
        else:  # in the intraday break
            seg0, seg1, inside = break_starts[j], break_ends[j], False
        if step == 0:
            start[k], end[k], keep[k] = period_start[j], period_end[j], inside
        else:
            b = seg0 + (t - seg0) // step * step
            start[k], end[k], keep[k] = b, min(b + step, seg1), inside or include_outside
    return start, end, keep


@numba.njit(cache=True, nogil=True)
def _reduce_runs(  # pragma: no cover - jitted
    high: np.ndarray, low: np.ndarray, volume: np.ndarray, pv: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Max of ``high``, min of ``low``, sums of ``volume`` and ``pv`` over each run of rows.

    One pass; ``np.ufunc.reduceat`` pays a call per run, which dominates with short runs.
    """
    m, n = starts.size, high.size
    out_high, out_low = np.empty(m), np.empty(m)
    out_vol, out_pv = np.empty(m), np.empty(m)
    for r in range(m):
        a = starts[r]
        b = starts[r + 1] if r + 1 < m else n
        hi, lo, vol, pvs = high[a], low[a], 0.0, 0.0
        for k in range(a, b):
            hi = max(hi, high[k])
            lo = min(lo, low[k])
            vol += volume[k]
            pvs += pv[k]
        out_high[r], out_low[r], out_vol[r], out_pv[r] = hi, lo, vol, pvs
    return out_high, out_low, out_vol, out_pv


@numba.njit(cache=True, nogil=True)
def _sum_runs(  # pragma: no cover - jitted
    values: np.ndarray, valid: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sum of ``values`` and count of ``valid`` rows over each run."""
    m, n = starts.size, values.size
    sums, counts = np.zeros(m, np.int64), np.zeros(m, np.int64)
    for r in range(m):
        b = starts[r + 1] if r + 1 < m else n
        for k in range(starts[r], b):
            sums[r] += values[k]
            counts[r] += valid[k]
    return sums, counts
