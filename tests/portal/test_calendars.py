"""Session-anchored timeframes across DST changes, early closes and a 24/7 market."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from backtape._time import NS_PER_MINUTE, to_ns
from backtape.portal import DataPortal, DataRequirement


def _ends(frame: pl.DataFrame) -> list[int]:
    return frame["ts_end"].cast(pl.Int64).to_list()


def test_hourly_bars_follow_the_open_across_dst(memory_source, make_minute_bars) -> None:
    bars = make_minute_bars(["A"], "2024-03-08", "2024-03-12")
    portal = DataPortal(memory_source(bars))
    portal.load_data("2024-03-08", "2024-03-12", ["A"])
    portal.set_clock("2024-03-11T21:00Z")
    hourly = portal.get_history_window("A", None, 14, "1h", "close", as_polars=True)
    hour = 60 * NS_PER_MINUTE
    friday = [to_ns("2024-03-08T15:30Z") + i * hour for i in range(6)] + [to_ns("2024-03-08T21:00Z")]
    monday = [to_ns("2024-03-11T14:30Z") + i * hour for i in range(6)] + [to_ns("2024-03-11T20:00Z")]
    assert _ends(hourly) == friday + monday  # the last bar of each session is 30 minutes, cut at the close
    last = bars.filter(pl.col("ts").cast(pl.Int64) >= to_ns("2024-03-11T19:30Z"))
    assert hourly["A"][-1] == last["close"][-1]
    daily = portal.get_history_window("A", None, 2, "1d", "volume", as_polars=True)
    assert _ends(daily) == [to_ns("2024-03-08T21:00Z"), to_ns("2024-03-11T20:00Z")]
    day = bars.filter(pl.col("ts").dt.date() == pl.date(2024, 3, 11))
    assert daily["A"][-1] == day["volume"].sum()


def test_early_close_truncates_the_session(memory_source, make_minute_bars) -> None:
    bars = make_minute_bars(["A"], "2024-11-27", "2024-12-03")  # 2024-11-29 closes at 13:00 ET
    portal = DataPortal(memory_source(bars))
    portal.load_data("2024-11-27", "2024-12-03", ["A"])
    portal.set_clock("2024-11-29T18:00Z")
    daily = portal.get_history_window("A", None, 2, "1d", "close", as_polars=True)
    assert _ends(daily) == [to_ns("2024-11-27T21:00Z"), to_ns("2024-11-29T18:00Z")]
    thirty = portal.get_history_window("A", None, 3, "30min", "close", as_polars=True)
    assert _ends(thirty) == [to_ns(f"2024-11-29T{t}Z") for t in ("17:00", "17:30", "18:00")]
    # on the next Monday a 1h window reaches back over the weekend into the short Friday
    portal.set_clock("2024-12-02T15:30Z")
    h = portal.get_history_window("A", None, 6, "1h", "close", as_polars=True)
    assert _ends(h)[-2:] == [to_ns("2024-11-29T18:00Z"), to_ns("2024-12-02T15:30Z")]


def test_a_24_7_market_has_midnight_sessions_and_weekend_bars(memory_source, make_minute_bars) -> None:
    bars = make_minute_bars(["BTC"], "2024-03-08", "2024-03-12", calendar="24/7", drop=0.01)
    source = memory_source(bars, calendar="24/7")
    portal = DataPortal(source)
    portal.load_data("2024-03-10", "2024-03-12", ["BTC"], requirements=[DataRequirement("bars", "4h", 6)])
    assert source.calls[0][2] == to_ns("2024-03-09")  # six 4h bars back: all of Saturday
    portal.set_clock("2024-03-10T02:30Z")
    four = portal.get_history_window("BTC", None, 7, "4h", "high", partial=True, as_polars=True)
    assert _ends(four)[0] == to_ns("2024-03-09T04:00Z") and _ends(four)[-1] == to_ns("2024-03-10T04:00Z")
    sunday = bars.filter(pl.col("ts_end").cast(pl.Int64).is_between(to_ns("2024-03-10T00:01Z"),
                                                                     to_ns("2024-03-10T02:30Z")))
    assert four["BTC"][-1] == sunday["high"].max()
    portal.set_clock("2024-03-11T00:00Z")
    day = portal.get_history_window("BTC", None, 1, "1d", "volume", as_polars=True)
    assert _ends(day) == [to_ns("2024-03-11")]
    sunday_all = bars.filter(pl.col("ts").dt.date() == pl.date(2024, 3, 10))
    assert day["BTC"][0] == sunday_all["volume"].sum()
    assert np.isfinite(portal.get_spot_value("BTC", "close"))


def test_sample_symbols_bring_their_own_calendar() -> None:
    from backtape.sources.sample import SampleDataSource

    source = SampleDataSource()
    crypto = DataPortal(source)
    crypto.load_data("2022-01-10", "2022-01-11", ["BTC-PERP"])
    assert crypto.calendar.is_24_7
    # a Sunday minute exists and counts on 24/7
    crypto.set_clock("2022-01-11")
    assert crypto.get_history_window("BTC-PERP", None, 1, "1d", "volume").shape == (1, 1)
    equities = DataPortal(source)
    equities.load_data("2014-06-02", "2014-06-10", ["AAPL"])
    assert equities.calendar.name == "XNYS"
    pinned = DataPortal(source, calendar="XNYS")
    pinned.load_data("2022-01-10", "2022-01-11", ["BTC-PERP"])
    assert pinned.calendar.name == "XNYS"  # an explicit calendar is never replaced


@pytest.mark.parametrize(("spelling", "name"), [
    ("fx", "FX"), ("Forex", "FX"), ("xnys", "XNYS"), ("nyse", "XNYS"), ("cmes", "CMES"), ("Crypto", "24/7"),
    ("US_FUTURES", "us_futures")])
def test_calendar_names_are_case_insensitive(spelling: str, name: str) -> None:
    from backtape.calendars import get_calendar

    assert get_calendar(spelling) is get_calendar(name)
    assert get_calendar(spelling).name == name
