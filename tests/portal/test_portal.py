"""DataPortal: visibility, look-ahead protection, windows, alignment, requirements, calendars."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from backtape._time import NS_PER_MINUTE, to_ns
from backtape.errors import HistoryWindowStartsBeforeData, LookAheadError, NoDataError
from backtape.portal import DataPortal, DataRequirement


@pytest.fixture
def loaded(memory_source, make_minute_bars):
    bars = make_minute_bars(["A", "B"], "2024-01-02", "2024-01-10")
    source = memory_source(bars)
    portal = DataPortal(source)
    need = [DataRequirement("bars", "5min", 100)]
    portal.load_data("2024-01-05", "2024-01-10", ["A", "B"], requirements=need)
    return portal, bars, source


def test_bar_is_visible_only_once_complete(loaded) -> None:
    portal, bars, _ = loaded
    portal.set_clock("2024-01-08T15:03Z")
    a = bars.filter(pl.col("symbol") == "A")
    expected = a.filter(pl.col("ts_end") <= pl.lit("2024-01-08T15:03:00Z").str.to_datetime(time_zone="UTC"))
    assert portal.get_spot_value("A", "close") == expected["close"][-1]
    assert portal.get_spot_value("A", "close", to_ns("2024-01-08T15:02:59Z")) == expected["close"][-2]
    sl = portal.get_slice()
    assert sl["symbol"].to_list() == ["A", "B"]
    assert sl["ts_end"].cast(pl.Int64).to_list() == [to_ns("2024-01-08T15:03Z")] * 2
    assert str(portal.get_last_traded_dt("A")) == "2024-01-08 15:03:00+00:00"


def test_anything_after_the_clock_raises(loaded) -> None:
    portal, _, _ = loaded
    portal.set_clock("2024-01-08T15:03Z")
    later = "2024-01-08T15:03:00.000001Z"
    with pytest.raises(LookAheadError, match="clock is 2024-01-08T15:03:00Z"):
        portal.get_spot_value("A", "close", later)
    with pytest.raises(LookAheadError):
        portal.get_slice(later)
    with pytest.raises(LookAheadError):
        portal.get_history_window("A", later, 5, "1min", "close")
    with pytest.raises(LookAheadError):
        portal.get_last_traded_dt("A", later)


def test_unknown_asset_and_field_are_named(loaded) -> None:
    portal, _, _ = loaded
    with pytest.raises(NoDataError, match="'ZZZ'; loaded symbols: A, B"):
        portal.get_spot_value("ZZZ", "close")
    with pytest.raises(NoDataError, match="unknown field 'price' for A; available: open, high"):
        portal.get_history_window("A", None, 5, "1min", "price")


def test_window_before_data_names_first_valid_end(loaded) -> None:
    portal, _, source = loaded
    fetched_from = source.calls[0][2]
    portal.set_clock("2024-01-05T15:00Z")
    portal.get_history_window("A", None, 100, "5min", "close")
    with pytest.raises(HistoryWindowStartsBeforeData) as err:
        portal.get_history_window(["A", "B"], None, 200, "5min", "close")
    assert err.value.first_valid_end is not None
    # loaded: 22 bars on 01-03 (from 19:10), 78 on 01-04 and 01-05; the 200th ends 22 bars into 01-08
    assert fetched_from == to_ns("2024-01-03T19:10Z")
    assert to_ns(err.value.first_valid_end) == to_ns("2024-01-08T16:20Z")


def test_five_minute_bars_match_a_plain_aggregation(loaded) -> None:
    portal, bars, _ = loaded
    portal.set_clock("2024-01-09T21:00Z")
    day = bars.filter((pl.col("symbol") == "B") & (pl.col("ts").dt.date() == pl.date(2024, 1, 9)))
    ref = day.group_by_dynamic("ts", every="5m", closed="left", label="left").agg(
        pl.col("open").first(), pl.col("high").max(), pl.col("low").min(), pl.col("close").last(),
        pl.col("volume").sum())
    for field in ("open", "high", "low", "close", "volume"):
        got = portal.get_history_window("B", None, 78, "5min", field)[:, 0]
        np.testing.assert_array_equal(got, ref[field].to_numpy())


def test_partial_bar_is_built_from_visible_minutes_only(loaded) -> None:
    portal, bars, _ = loaded
    portal.set_clock("2024-01-08T15:03Z")
    ts = pl.col("ts").cast(pl.Int64)
    minutes = bars.filter((pl.col("symbol") == "A") & (ts >= to_ns("2024-01-08T15:00Z"))
                          & (ts < to_ns("2024-01-08T15:03Z")))
    hist = portal.get_history_window("A", None, 2, "5min", "high", partial=True, as_polars=True)
    assert hist["A"][-1] == minutes["high"].max()
    assert hist["ts_end"].cast(pl.Int64)[-1] == to_ns("2024-01-08T15:05Z")
    volume = portal.get_history_window("A", None, 1, "5min", "volume", partial=True)
    assert volume[0, 0] == minutes["volume"].sum()
    assert portal.get_history_window("A", None, 1, "5min", "open", partial=True)[0, 0] == minutes["open"][0]
    complete = portal.get_history_window("A", None, 2, "5min", "close")
    assert complete[-1, 0] == bars.filter((pl.col("symbol") == "A") & (
        pl.col("ts_end").cast(pl.Int64) == to_ns("2024-01-08T15:00Z")))["close"][0]


def test_gaps_are_nan_after_alignment(memory_source, make_minute_bars) -> None:
    bars = make_minute_bars(["A", "B"], "2024-01-02", "2024-01-04", drop=0.3, seed=7)
    portal = DataPortal(memory_source(bars))
    portal.load_data("2024-01-02", "2024-01-04", ["A", "B"])
    portal.set_clock("2024-01-03T21:00Z")
    win = portal.get_history_window(["A", "B"], None, 60, "1min", "close", as_polars=True)
    ends = win["ts_end"].cast(pl.Int64).to_numpy()
    assert np.all(np.diff(ends) > 0)
    for sym in ("A", "B"):
        have = bars.filter(pl.col("symbol") == sym)
        have = dict(zip(have["ts_end"].cast(pl.Int64).to_list(), have["close"].to_list(), strict=True))
        for e, v in zip(ends, win[sym].to_list(), strict=True):
            assert (np.isnan(v) and int(e) not in have) or have[int(e)] == v
    assert win["A"].is_nan().sum() > 0 and win["B"].is_nan().sum() > 0
    # a single asset is never padded: its window is its own last 60 bars
    single = portal.get_history_window("A", None, 60, "1min", "close")[:, 0]
    assert not np.isnan(single).any()


def test_halt_leaves_no_bars_and_spot_holds_the_last_value(memory_source, make_minute_bars) -> None:
    bars = make_minute_bars(["A"], "2024-01-02", "2024-01-03")
    halted = bars.filter(~pl.col("ts").cast(pl.Int64).is_between(to_ns("2024-01-02T16:00Z"),
                                                                  to_ns("2024-01-02T17:00Z"), closed="left"))
    portal = DataPortal(memory_source(halted))
    portal.load_data("2024-01-02", "2024-01-03", ["A"])
    portal.set_clock("2024-01-02T16:45Z")
    before = halted.filter(pl.col("ts_end").cast(pl.Int64) == to_ns("2024-01-02T16:00Z"))
    assert portal.get_spot_value("A", "close") == before["close"][0]
    assert portal.get_last_traded_dt("A").isoformat() == "2024-01-02T16:00:00+00:00"
    portal.set_clock("2024-01-02T18:00Z")
    h = portal.get_history_window("A", None, 3, "30min", "volume", as_polars=True)
    assert h["ts_end"].cast(pl.Int64).to_list() == [to_ns("2024-01-02T16:00Z"), to_ns("2024-01-02T17:30Z"),
                                                    to_ns("2024-01-02T18:00Z")]


def test_requirements_merge_into_one_call_per_kind(memory_source, make_minute_bars) -> None:
    bars = make_minute_bars(["A", "B", "C"], "2024-01-02", "2024-01-10")
    trades = bars.select("symbol", "ts", price="close", size="volume")
    source = memory_source(bars, trades=trades)

    class Calc:
        def __init__(self, name: str, reqs: list[DataRequirement]) -> None:
            self.name, self._reqs = name, reqs

        def get_data_requirements(self) -> list[DataRequirement]:
            return self._reqs

    consumers = [
        Calc("ema5", [DataRequirement("bars", "5min", 30)]),
        Calc("ema1", [DataRequirement("bars", "1min", 20)]),
        Calc("daily", [DataRequirement("bars", "1d", 2)]),
        Calc("flow", [DataRequirement("trades", "1min", 30)]),
    ]
    portal = DataPortal(source)
    portal.load_data("2024-01-08T15:00Z", "2024-01-09", ["A", "B", "C"], requirements=consumers)
    kinds = [c[0] for c in source.calls]
    assert sorted(kinds) == ["actions", "bars", "trades"]
    assert all(c[1] == ("A", "B", "C") for c in source.calls)
    bar_call = next(c for c in source.calls if c[0] == "bars")
    assert bar_call[2] == to_ns("2024-01-04T14:30Z")  # two sessions back for the daily need
    trade_call = next(c for c in source.calls if c[0] == "trades")
    assert trade_call[2] == to_ns("2024-01-08T14:30Z")
    report = portal.requirements_report()
    assert report["requested_by"].to_list() == ["ema5", "ema1", "daily", "flow"]
    assert set(report.filter(pl.col("kind") == "bars")["fetched_frequency"]) == {"1min"}
    portal.set_clock("2024-01-08T15:10Z")
    ticks = portal.get_ticks("trades", "B", "2024-01-08T15:00Z")
    assert ticks["ts"].cast(pl.Int64).to_list() == [to_ns("2024-01-08T15:00Z") + i * NS_PER_MINUTE
                                                    for i in range(11)]


def test_daily_only_needs_fetch_daily_bars(memory_source) -> None:
    from backtape.calendars import get_calendar

    cal = get_calendar("XNYS")
    lo, hi = np.searchsorted(cal.opens, [to_ns("2024-01-02"), to_ns("2024-03-01")])
    daily = pl.DataFrame({"symbol": "A", "ts": cal.opens[lo:hi], "ts_end": cal.closes[lo:hi],
                          "open": 1.0, "high": 2.0, "low": 0.5, "close": np.arange(hi - lo, dtype=float),
                          "volume": 10.0})
    from backtape.schema import conform

    source = memory_source(conform(daily, "bars"), frequencies=("1d",))
    portal = DataPortal(source)
    portal.load_data("2024-02-01", "2024-03-01", ["A"], requirements=[DataRequirement("bars", "1w", 2)])
    portal.set_clock("2024-02-12T12:00Z")
    weekly = portal.get_history_window("A", None, 3, "1w", "close", as_polars=True)
    # a weekly bar runs from Monday's open to Friday's close
    fridays = ["2024-01-26T21:00Z", "2024-02-02T21:00Z", "2024-02-09T21:00Z"]
    assert weekly["ts_end"].cast(pl.Int64).to_list() == [to_ns(f) for f in fridays]
    with pytest.raises(Exception, match="cannot make 5min bars from 1d bars"):
        portal.load_data("2024-02-01", "2024-03-01", ["A"], requirements=[DataRequirement("bars", "5min", 2)])
