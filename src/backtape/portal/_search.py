"""Compiled position lookup for the portal's hot paths (one call instead of numpy's scalar overhead).

``numpy.searchsorted`` on a scalar costs about a microsecond of argument handling before it searches;
this kernel checks the caller's previous answer and its successor (an engine stepping forward) and
otherwise binary-searches, all in one compiled call.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def last_at_or_before(ends: np.ndarray, t: int, hint: int) -> int:
    """Index of the last ``ends[i] <= t`` (-1 if none) in sorted ``ends``; ``hint`` = a likely answer.

    Example: ends [60, 120, 180], t 150 -> 1; t 59 -> -1; t 180 -> 2.
    """
    n = ends.shape[0]
    for i in (hint, hint + 1):
        if 0 <= i < n and ends[i] <= t and (i + 1 == n or ends[i + 1] > t):
            return i
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        if ends[mid] <= t:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1
