"""The hinted, block-indexed lookups behind get_spot_value and history windows agree with a plain
searchsorted at every kind of clock: random, stepping forward or back, on bar ends, block edges."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from backtape.portal import DataPortal, DataRequirement
from backtape.portal._search import last_at_or_before


def _reference(ends: np.ndarray, values: np.ndarray, t: int) -> float:
    i = int(ends.searchsorted(t, "right")) - 1
    return float(values[i]) if i >= 0 else float("nan")


def test_spot_value_matches_searchsorted_at_any_clock(memory_source, make_minute_bars) -> None:
    bars = make_minute_bars(["A", "B"], "2024-01-02", "2024-01-06", drop=0.1)
    portal = DataPortal(memory_source(bars))
    portal.load_data("2024-01-02", "2024-01-06", ["A", "B"], [DataRequirement("bars", "5min", 0)])
    a = portal.store.series("A")
    ends, close = a.ts_end, a.fields["close"]
    edges = np.r_[ends[::128], ends[127::128], ends[:3], ends[-3:]]
    rng = np.random.default_rng(7)
    clocks = np.r_[edges, edges - 1, edges + 1, rng.integers(ends[0] - 10**11, ends[-1] + 10**11, 500),
                   np.sort(rng.choice(ends, 300)), ends[::-7]]
    portal.set_clock(int(ends[-1]) + 10**12)
    for t in clocks.tolist():
        got = portal.get_spot_value("A", "close", t)
        np.testing.assert_equal(got, _reference(ends, close, t))
    # the engine pattern: the clock itself steps minute by minute, dt omitted
    for t in ends[200:400].tolist():
        portal.set_clock(t)
        assert portal.get_spot_value("A", "close") == _reference(ends, close, t)
        window = portal.get_history_window(["A", "B"], None, 3, "5min", "close")
        assert window.shape == (3, 2)


@settings(max_examples=60, deadline=None)
@given(ends=st.lists(st.integers(-50, 50), max_size=40, unique=True), t=st.integers(-60, 60),
       hint=st.integers(-3, 45))
def test_compiled_search_equals_searchsorted(ends, t, hint) -> None:
    arr = np.array(sorted(ends), dtype=np.int64)
    assert last_at_or_before(arr, t, hint) == int(arr.searchsorted(t, "right")) - 1
