"""Portal views are ``backtape.aggregate``'s bars (one binning implementation), and split-adjusted
views reduce adjusted base bars, so a week spanning a split is on one price basis."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from backtape._time import to_ns
from backtape.aggregation import aggregate
from backtape.calendars import get_calendar
from backtape.errors import BacktapeError
from backtape.portal import DataPortal, DataRequirement
from backtape.schema import conform

FIELDS = ("open", "high", "low", "close", "volume")


@pytest.mark.parametrize(("calendar", "frequency"), [("XHKG", "1h"), ("XHKG", "15min"), ("XNYS", "1h"),
                                                     ("XNYS", "1d"), ("XNYS", "1w"), ("CMES", "4h")])
def test_views_equal_aggregate(memory_source, make_minute_bars, calendar, frequency) -> None:
    # XHKG has a lunch break, CMES sessions open the evening before, XNYS has 2024-07-03's early close
    bars = make_minute_bars(["A"], "2024-06-24", "2024-07-13", calendar=calendar, drop=0.02)
    portal = DataPortal(memory_source(bars, calendar=calendar), adjustment="raw")
    portal.load_data("2024-06-24", "2024-07-13", ["A"], [DataRequirement("bars", "1min", 0)])
    portal.set_clock("2024-07-13")
    got = portal.get_bars("A", "2024-06-01", None, frequency)
    expected = aggregate(bars, frequency, calendar)
    assert len(got["ts"]) == expected.height >= 3
    np.testing.assert_array_equal(got["ts"], expected["ts"].dt.epoch("ns").to_numpy())
    np.testing.assert_array_equal(got["ts_end"], expected["ts_end"].dt.epoch("ns").to_numpy())
    for f in FIELDS:
        np.testing.assert_allclose(got[f], expected[f].to_numpy(), rtol=1e-12)


def test_get_bars_copies_only_the_fields_asked_for(memory_source, make_minute_bars) -> None:
    bars = make_minute_bars(["A"], "2024-06-24", "2024-06-29", calendar="XNYS")
    portal = DataPortal(memory_source(bars), adjustment="raw")
    portal.load_data("2024-06-24", "2024-06-29", ["A"], [DataRequirement("bars", "1min", 0)])
    portal.set_clock("2024-06-29")
    whole = portal.get_bars("A", "2024-06-24", None, "15min")
    some = portal.get_bars("A", "2024-06-24", None, "15min", fields=("close",))
    assert set(some) == {"ts", "ts_end", "close"}
    np.testing.assert_array_equal(some["close"], whole["close"])
    some["close"][:] = -1.0  # a copy: the portal's arrays are untouched
    np.testing.assert_array_equal(portal.get_bars("A", "2024-06-24", None, "15min")["close"], whole["close"])
    with pytest.raises(BacktapeError, match="no field vwapp"):
        portal.get_bars("A", "2024-06-24", None, "15min", fields=("close", "vwapp"))


def _daily(symbol: str, dates: list[str], closes: list[float]) -> pl.DataFrame:
    cal = get_calendar("XNYS")
    labels = np.array([np.datetime64(d, "ns").astype(np.int64) for d in dates])
    idx = np.searchsorted(cal.labels, labels)
    c = np.array(closes)
    return conform(pl.DataFrame({
        "symbol": symbol, "ts": cal.opens[idx], "ts_end": cal.closes[idx], "open": c * 0.99,
        "high": c * 1.02, "low": c * 0.97, "close": c, "volume": np.arange(1, len(c) + 1) * 1000.0,
    }).with_columns(pl.col("ts", "ts_end").cast(pl.Datetime("ns", "UTC"))), "bars")


def test_weekly_bar_across_a_split_reduces_adjusted_days(memory_source) -> None:
    # a 2:1 split effective Wednesday 2024-03-13: Monday and Tuesday trade near 200, the rest near 100
    dates = ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07", "2024-03-08",
             "2024-03-11", "2024-03-12", "2024-03-13", "2024-03-14", "2024-03-15", "2024-03-18"]
    closes = [190.0, 192.0, 194.0, 196.0, 198.0, 200.0, 204.0, 101.0, 99.0, 103.0, 104.0]
    bars = _daily("S", dates, closes)
    ex = to_ns("2024-03-13T13:30Z")
    actions = conform(pl.DataFrame({"symbol": "S", "ts": [ex], "action": "split", "value": 2.0})
                      .with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC"))), "actions")
    portal = DataPortal(memory_source(bars, actions=actions, frequencies=("1d",)))
    portal.load_data("2024-03-04", "2024-03-19", ["S"], [DataRequirement("bars", "1w", 0)])

    # seen from Tuesday's close the split is unknown: the partial week is raw
    portal.set_clock("2024-03-12T20:00Z")
    assert portal.get_history_window("S", None, 1, "1w", "high", partial=True)[-1, 0] == 204.0 * 1.02

    # after the week: every day of it on the post-split basis, then reduced
    portal.set_clock("2024-03-18T12:00Z")
    week = {f: portal.get_history_window("S", None, 2, "1w", f)[:, 0] for f in FIELDS}
    adj_close = np.array(closes[5:10]) / np.array([2, 2, 1, 1, 1])
    assert week["open"][1] == pytest.approx(200.0 * 0.99 / 2)
    assert week["high"][1] == pytest.approx(adj_close.max() * 1.02)  # 102 * 1.02, not 204 * 1.02
    assert week["low"][1] == pytest.approx(adj_close.min() * 0.97)
    assert week["close"][1] == 103.0
    assert week["volume"][1] == (6 + 7) * 1000.0 * 2 + (8 + 9 + 10) * 1000.0
    # the week before the split is all adjusted; it equals aggregate() of hand-adjusted days
    adjusted = bars.with_columns(
        [pl.when(pl.col("ts").dt.epoch("ns") < ex).then(pl.col(c) / 2).otherwise(pl.col(c)).alias(c)
         for c in ("open", "high", "low", "close")]
        + [pl.when(pl.col("ts").dt.epoch("ns") < ex).then(pl.col("volume") * 2)
           .otherwise(pl.col("volume")).alias("volume")])
    two_weeks = adjusted.filter(pl.col("ts").dt.epoch("ns") < to_ns("2024-03-16"))
    expected = aggregate(two_weeks, "1w", "XNYS")
    for f in FIELDS:
        np.testing.assert_allclose(week[f], expected[f].to_numpy(), rtol=1e-12)
    # the daily spot value and the daily view agree with the same factors, from the ex-date open on
    portal.set_clock(ex - 1)
    assert portal.get_spot_value("S", "close") == 204.0
    assert portal.get_history_window("S", None, 1, "1d", "close")[0, 0] == 204.0
    portal.set_clock(ex)
    assert portal.get_spot_value("S", "close") == 102.0
    assert portal.get_history_window("S", None, 1, "1d", "close")[0, 0] == 102.0


def test_bars_for_the_engine_stay_raw_while_reads_are_adjusted(memory_source) -> None:
    bars = _daily("S", ["2024-03-11", "2024-03-12", "2024-03-13", "2024-03-14"], [200.0, 204.0, 101.0, 99.0])
    ex = to_ns("2024-03-13T13:30Z")
    actions = conform(pl.DataFrame({"symbol": "S", "ts": [ex], "action": "split", "value": 2.0})
                      .with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC"))), "actions")
    portal = DataPortal(memory_source(bars, actions=actions, frequencies=("1d",)))
    portal.load_data("2024-03-11", "2024-03-15", ["S"])
    portal.set_clock("2024-03-15")
    assert portal.bars("S", "1d").fields["close"].tolist() == [200.0, 204.0, 101.0, 99.0]
    adjusted = portal.get_history_window("S", None, 4, "1d", "close")[:, 0]
    assert adjusted.tolist() == [100.0, 102.0, 101.0, 99.0]
    assert portal.bars("S").fields["close"].tolist() == [200.0, 204.0, 101.0, 99.0]
