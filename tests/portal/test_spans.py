"""Bars that cover less than the requested range say so once, naming the symbols and dates."""

from __future__ import annotations

import warnings

import polars as pl
import pytest

from backtape import run_backtest
from backtape._time import to_ns
from backtape.calendars import get_calendar
from backtape.errors import BacktapeWarning
from backtape.portal.spans import short_spans
from backtape.sources.memory import FrameDataSource
from backtape.sources.sample import SampleDataSource

XNYS = get_calendar("XNYS")


def _day(date: str, hour: int) -> int:
    return to_ns(f"{date}T{hour:02d}:{30 if hour == 14 else 0:02d}:00Z")


@pytest.mark.parametrize(("first", "last", "start", "end", "said"), [
    ("2014-01-02", "2014-12-31", "2014-01-01", "2015-01-01", []),          # holidays at both ends
    ("2014-01-06", "2014-12-26", "2014-01-04", "2014-12-29", []),          # weekends at both ends
    ("2014-01-02", "2014-12-31", "2013-12-27", "2015-01-01", ["X from 2014-01-02"]),  # a Friday missing
    ("2014-01-02", "2014-12-30", "2014-01-01", "2015-01-01", ["X until 2014-12-30"]),
    ("2014-01-02", "2014-12-31", "2014-01-01", "2015-01-03", ["X until 2014-12-31"]),  # Jan 2 missing
])
def test_whole_missing_sessions_at_either_end_are_named(first: str, last: str, start: str, end: str,
                                                       said: list[str]) -> None:
    spans = [("X", _day(first, 14), _day(last, 21))]
    assert short_spans(XNYS, spans, to_ns(start), to_ns(end)) == said


def test_symbols_are_grouped_and_a_symbol_without_bars_is_named() -> None:
    spans = [("A", _day("2014-01-02", 14), _day("2014-06-30", 20)),
             ("B", _day("2014-01-02", 14), _day("2014-06-30", 20)), ("C", -1, -1)]
    assert short_spans(XNYS, spans, to_ns("2014-01-01"), to_ns("2015-01-01")) == [
        "A, B until 2014-06-30", "C: no bars"]


def test_a_run_past_the_data_warns_once_and_a_run_inside_it_does_not() -> None:
    with pytest.warns(BacktapeWarning, match=r"requested 2013-01-01 to 2020-01-01: AAPL, KO until "
                                             r"2014-12-31; the run is shorter"):
        run_backtest("equal_weight", ["AAPL", "KO"], "2013-01-01", "2020-01-01", engine="vector")
    with warnings.catch_warnings():
        warnings.simplefilter("error", BacktapeWarning)
        run_backtest("equal_weight", ["AAPL", "KO"], "2013-01-01", "2015-01-01", engine="vector")


def test_a_symbol_that_starts_late_is_named_by_the_event_engine() -> None:
    bars = SampleDataSource().fetch_sync(["AAPL", "MSFT"], "2012-01-01", "2015-01-01", "1d")
    cut = pl.datetime(2013, 3, 1, time_zone="UTC")
    late = bars.filter((pl.col("symbol") == "AAPL") | (pl.col("ts") >= cut))
    with pytest.warns(BacktapeWarning, match=r"MSFT from 2013-03-01; the run is shorter"):
        run_backtest("sma_crossover", ["AAPL", "MSFT"], "2012-06-01", "2014-06-01",
                     source=FrameDataSource(late, name="cut"))
