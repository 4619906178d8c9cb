"""Display decimation of long series: the minimum and maximum of each bucket of points, plus the
points that must stay (trade bars), so a line of 525,600 bars draws like the full series in a few
thousand points."""

from __future__ import annotations

import numpy as np

#: buckets per series: about one per horizontal pixel of a wide screen
BUCKETS = 1500


def minmax_indices(values: np.ndarray, buckets: int = BUCKETS, keep: np.ndarray | None = None) -> np.ndarray:
    """Sorted row indices to draw: first, last, each bucket's argmin and argmax, and ``keep``.

    Series of at most ``2 * buckets`` points are kept whole. NaN never wins a bucket.
    """
    v = np.asarray(values, dtype=np.float64)
    n = v.size
    extra = np.asarray(keep if keep is not None else [], dtype=np.int64)
    extra = extra[(extra >= 0) & (extra < n)]
    if n <= 2 * buckets:
        return np.arange(n, dtype=np.int64)
    size = -(-n // buckets)
    rows = -(-n // size)
    pad = rows * size - n
    nan = np.isnan(v)
    lo = np.concatenate([np.where(nan, np.inf, v), np.full(pad, np.inf)]).reshape(rows, size)
    hi = np.concatenate([np.where(nan, -np.inf, v), np.full(pad, -np.inf)]).reshape(rows, size)
    base = np.arange(rows, dtype=np.int64) * size
    picks = [base + lo.argmin(axis=1), base + hi.argmax(axis=1), np.array([0, n - 1]), extra]
    out = np.unique(np.concatenate(picks))
    return out[out < n]
