"""Warm-up of calendar timeframes: N bars before a start load N whole periods (defect: months counted
as weeks, 5d as one session per bar, a partial first month labelled as a whole one)."""

from __future__ import annotations

import pytest

from backtape._time import to_ns
from backtape.aggregation import aggregate
from backtape.calendars import get_calendar
from backtape.portal import DataPortal, DataRequirement
from backtape.portal.requirements import lookback_start
from backtape.sources import get_source
from backtape.timeframes import Timeframe

START = to_ns("2014-06-18")  # mid-month, mid-quarter, mid-week


@pytest.mark.parametrize(("tf", "n"), [("2d", 7), ("5d", 6), ("1w", 5), ("2w", 6), ("1mo", 6), ("1q", 3),
                                       ("1y", 1)])
def test_warmup_loads_whole_periods_before_start(tf: str, n: int) -> None:
    source = get_source("sample")
    portal = DataPortal(source)
    portal.load_data(START, to_ns("2014-09-01"), ["KO"], requirements=[DataRequirement("bars", tf, n)])
    view = portal.bars("KO", tf)
    before = view.ts_end <= START
    assert before.sum() >= n
    # the first loaded bar is the same bar as in an aggregation of all the data: a whole period
    everything = aggregate(source.fetch_sync("KO", "2012-01-01", "2015-01-01", "1d"), tf, "XNYS")
    reference = everything.filter(everything["ts"].dt.epoch("ns") == int(view.ts[0]))
    assert reference.height == 1
    assert reference["ts_end"].dt.epoch("ns")[0] == int(view.ts_end[0])
    assert reference["volume"][0] == pytest.approx(float(view.fields["volume"][0]))


def test_lookback_start_lands_on_period_boundaries() -> None:
    cal = get_calendar("XNYS")
    at = to_ns("2013-06-01")
    assert lookback_start(cal, at, Timeframe.parse("1mo"), 6) == to_ns("2012-12-03 14:30")
    assert lookback_start(cal, at, Timeframe.parse("1q"), 2) == to_ns("2012-10-01 13:30")
    assert lookback_start(cal, at, Timeframe.parse("1y"), 1) == to_ns("2012-01-03 14:30")
    assert lookback_start(cal, to_ns("2013-06-17"), Timeframe.parse("2w"), 1) < to_ns("2013-06-03 14:00")


@pytest.mark.parametrize(("tf", "end", "last_end"), [("1w", "2014-09-17", "2014-09-12 20:00"),
                                                     ("1mo", "2014-09-15", "2014-08-29 20:00"),
                                                     ("1q", "2014-09-15", "2014-06-30 20:00")])
def test_a_bar_running_past_end_is_left_out(tf: str, end: str, last_end: str) -> None:
    """Fetches and both engines agree: the bar whose period runs past ``end`` is not served, not run."""
    from backtape import run_backtest

    bars = get_source("sample").fetch_sync("KO", "2014-01-01", end, tf)
    assert int(bars["ts_end"].dt.epoch("ns").max()) == to_ns(last_end)
    for engine in ("event", "vector"):
        result = run_backtest("sma_crossover", "KO", "2014-01-01", end, tf, params={"fast": 1, "slow": 2},
                              engine=engine)
        assert int(result.equity["ts"].dt.epoch("ns").max()) == to_ns(last_end), engine


def test_a_week_whose_last_session_opens_before_end_is_in_like_a_day() -> None:
    from backtape.timeframes import last_bar_end

    cal = get_calendar("XNYS")
    friday_close = to_ns("2014-09-19 20:00")
    assert last_bar_end(cal, Timeframe.parse("1w"), to_ns("2014-09-19 15:00")) == friday_close
    assert last_bar_end(cal, Timeframe.parse("1w"), to_ns("2014-09-19 13:30")) == to_ns("2014-09-18 20:00")
    assert last_bar_end(cal, Timeframe.parse("1d"), friday_close) is None
    bars = get_source("sample").fetch_sync("KO", "2014-09-01", "2014-09-19 15:00", "1w")
    assert int(bars["ts_end"].dt.epoch("ns").max()) == friday_close
