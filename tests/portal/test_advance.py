"""``load_data(..., until=)`` then ``advance``: a portal rolled forward answers as one loaded whole."""

from __future__ import annotations

import numpy as np
import pytest

from backtape.errors import BacktapeError, UnsupportedDataError
from backtape.portal import DataPortal, DataRequirement
from backtape.sources.synthetic import SyntheticDataSource

SRC = SyntheticDataSource(seed=9)
REQ = [DataRequirement("bars", "5min", 30)]


def test_rolled_portal_matches_the_whole_one() -> None:
    whole = DataPortal(SRC)
    whole.load_data("2024-03-04", "2024-03-09", ["A", "B"], requirements=REQ)
    rolled = DataPortal(SRC)
    rolled.load_data("2024-03-04", "2024-03-09", ["A", "B"], requirements=REQ, until="2024-03-06")
    assert rolled.store.series("A").ts_end.max() < whole.store.series("A").ts_end.max()
    before = len(rolled.store.series("A"))
    rolled.advance("2024-03-08", {"A": 100, "B": 0})
    assert len(rolled.store.series("A")) < len(whole.store.series("A"))
    assert rolled.store.series("A").ts[0] == whole.store.series("A").ts[100]
    assert len(rolled.store.series("B")) > before
    rolled.advance("2024-03-09", {})
    for clock in ("2024-03-07T15:00:00Z", "2024-03-08T20:55:00Z"):
        whole.set_clock(clock)
        rolled.set_clock(clock)
        for freq in ("1min", "5min"):
            a = whole.get_history_window(["A", "B"], None, 60, freq, "close")
            b = rolled.get_history_window(["A", "B"], None, 60, freq, "close")
            np.testing.assert_array_equal(a, b)
        assert whole.get_spot_value("B", "volume") == rolled.get_spot_value("B", "volume")
    assert rolled.fetch_log.height == 3
    rolled.advance("2024-03-08", {"A": 5})  # not forward: nothing happens
    assert rolled.fetch_log.height == 3


def test_advance_needs_a_streamed_load_of_bars_only() -> None:
    with pytest.raises(BacktapeError, match="load_data"):
        DataPortal(SRC).advance("2024-03-08", {})
    with pytest.raises(UnsupportedDataError, match="bars only"):
        DataPortal(SRC).load_data("2024-03-04", "2024-03-09", ["A"], until="2024-03-06",
                                  requirements=[DataRequirement("trades", "1min", 0)])
