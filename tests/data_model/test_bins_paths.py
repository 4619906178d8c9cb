"""The numpy bin assignment used for small inputs equals the numba kernel used for large ones."""

from __future__ import annotations

import numpy as np
import pytest

from backtape._aggregate_kernels import _assign_bins
from backtape.aggregation import _assign_bins_small
from backtape.calendars import get_calendar

MINUTE = 60_000_000_000


@pytest.mark.parametrize("name", ["XNYS", "24/7", "XHKG", "XTKS"])
@pytest.mark.parametrize("step", [0, MINUTE, 5 * MINUTE, 60 * MINUTE, 90 * MINUTE])
@pytest.mark.parametrize("include_outside", [False, True])
def test_numpy_and_numba_bins_agree(name: str, step: int, include_outside: bool) -> None:
    cal = get_calendar(name)
    rng = np.random.default_rng(step + len(name))
    lo, hi = int(cal.opens[5000]), int(cal.opens[5100])
    ts = np.sort(rng.integers(lo, hi, 20_000)) // MINUTE * MINUTE
    ts = np.concatenate([ts, ts[:7_000], [lo - 3 * MINUTE]])  # a second symbol, and time jumping back
    args = (ts, cal.opens, cal.closes, cal.break_starts, cal.break_ends, cal.opens, cal.closes, step,
            include_outside)
    for fast, small in zip(_assign_bins(*args), _assign_bins_small(*args), strict=True):
        np.testing.assert_array_equal(fast, small)
