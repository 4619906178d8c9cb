"""Calendar-true timeframes above the day: Nd, Nw, 1mo, 1q, 1y built from the exchange's sessions."""

from __future__ import annotations

import polars as pl
import pytest

import backtape as bt
from backtape.aggregation import aggregate
from backtape.analytics import periods_per_year
from backtape.errors import TimeframeError
from backtape.timeframes import Timeframe


@pytest.fixture(scope="module")
def daily() -> pl.DataFrame:
    return bt.Workspace().source("sample").fetch_sync("KO", "2012-01-01", "2015-01-01", "1d")


@pytest.mark.parametrize(("text", "n", "unit"), [
    ("1mo", 1, "mo"), ("monthly", 1, "mo"), ("3months", 3, "mo"), ("1q", 1, "q"), ("quarterly", 1, "q"),
    ("1y", 1, "y"), ("annual", 1, "y"), ("2w", 2, "w"), ("5d", 5, "d"),
])
def test_parse(text: str, n: int, unit: str) -> None:
    assert Timeframe.parse(text) == Timeframe(n, unit)  # type: ignore[arg-type]


def test_minute_or_month_is_asked() -> None:
    with pytest.raises(TimeframeError, match=r"'1min' for 1 minute\(s\) or '1mo' for 1 month"):
        Timeframe.parse("1M")


@pytest.mark.parametrize(("tf", "period"), [("1mo", "1mo"), ("1q", "1q"), ("1y", "1y")])
def test_month_quarter_and_year_bars_hold_their_sessions(daily: pl.DataFrame, tf: str, period: str) -> None:
    out = aggregate(daily, tf, calendar="XNYS")
    # the same bars by hand: group the daily bars by calendar period of their session date (New York)
    day = pl.col("ts").dt.convert_time_zone("America/New_York").dt.date()
    expected = (daily.sort("ts").group_by(day.dt.truncate(period).alias("p"), maintain_order=True)
                .agg(pl.col("open").first(), pl.col("high").max(), pl.col("low").min(),
                     pl.col("close").last(), pl.col("volume").sum(), pl.col("ts").first(),
                     pl.col("ts_end").last()))
    assert out.height == expected.height == {"1mo": 36, "1q": 12, "1y": 3}[tf]
    for col in ("open", "high", "low", "close", "volume", "ts"):
        assert out[col].to_list() == expected[col].to_list(), col
    # ts_end is the period's last session close, from the calendar (2012-03-30 was a Friday)
    assert out["ts_end"].to_list() == expected["ts_end"].to_list()
    if tf == "1q":
        assert str(out["ts_end"][0]) == "2012-03-30 20:00:00+00:00"


def test_n_sessions_and_n_weeks(daily: pl.DataFrame) -> None:
    weeks = aggregate(daily, "1w", calendar="XNYS")
    two = aggregate(daily, "2w", calendar="XNYS")
    assert two["volume"].sum() == weeks["volume"].sum() == daily["volume"].sum()
    assert abs(two.height - weeks.height / 2) <= 1
    five = aggregate(daily, "5d", calendar="XNYS")
    assert five["volume"].sum() == daily["volume"].sum() and abs(five.height - daily.height / 5) <= 2


def test_month_bars_from_minutes_equal_month_bars_from_days() -> None:
    src = bt.Workspace().source("synthetic", seed=3)
    minutes = src.fetch_sync("ACME", "2024-01-01", "2024-04-01", "1min")
    from_days = aggregate(aggregate(minutes, "1d", calendar="XNYS"), "1mo", calendar="XNYS")
    from_minutes = aggregate(minutes, "1mo", calendar="XNYS")
    cols = ["ts", "ts_end", "open", "high", "low", "close"]
    assert from_days.select(cols).equals(from_minutes.select(cols))
    assert from_days["volume"].to_list() == pytest.approx(from_minutes["volume"].to_list())


def test_a_month_bar_is_invisible_until_its_last_session_closes() -> None:
    portal = bt.Workspace().portal("sample")
    need = bt.DataRequirement("bars", "1mo", 2)
    portal.load_data("2013-01-01", "2013-06-01", ["AAPL"], requirements=[need])
    portal.set_clock("2013-03-28T19:59:00Z")   # before March's last close (2013-03-28, Good Friday next)
    before = portal.get_history_window(["AAPL"], None, 1, "1mo", "close")
    portal.set_clock("2013-03-28T20:00:00Z")
    after = portal.get_history_window(["AAPL"], None, 1, "1mo", "close")
    assert before[0, 0] != after[0, 0]


def test_periods_per_year() -> None:
    assert periods_per_year(calendar="XNYS", frequency="1mo") == 12.0
    assert periods_per_year(calendar="XNYS", frequency="1q") == 4.0
    assert periods_per_year(calendar="XNYS", frequency="2w") == 26.0


def test_a_monthly_backtest_runs() -> None:
    result = bt.run_backtest("sma_crossover", "AAPL", "2012-01-01", "2015-01-01", "1mo", source="sample",
                             store=False, params={"fast": 2, "slow": 6})
    assert result.equity.height == 36
    assert str(result.equity["ts"][0]) == "2012-01-31 21:00:00+00:00"


@pytest.mark.parametrize("text", ["13mo", "1200mo", "5mo", "3q", "50y", "3y", "11y"])
def test_periods_that_do_not_divide_a_year_or_decade_are_refused(text: str) -> None:
    with pytest.raises(TimeframeError, match=f"timeframe '{text}' is not supported"):
        Timeframe.parse(text)


@pytest.mark.parametrize("text", ["2mo", "6mo", "12mo", "2q", "4q", "2y", "5y", "10y"])
def test_periods_dividing_a_year_or_decade_parse(text: str) -> None:
    assert str(Timeframe.parse(text)) == text
