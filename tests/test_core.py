"""Core contracts: time conversion, timeframe parsing, calendars, the source registry."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from backtape._time import check_range, format_ns, to_ns
from backtape.calendars import get_calendar
from backtape.errors import InvalidRangeError, SourceNotFoundError, TimeframeError
from backtape.sources import DataSourceRegistry, registry
from backtape.timeframes import Timeframe


def test_to_ns_accepts_common_inputs() -> None:
    expected = 1704205800000000000
    assert to_ns("2024-01-02T14:30:00Z") == expected
    assert to_ns(dt.datetime(2024, 1, 2, 14, 30, tzinfo=dt.UTC)) == expected
    assert to_ns(dt.datetime(2024, 1, 2, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))) == expected
    assert to_ns(np.datetime64("2024-01-02T14:30")) == expected
    assert to_ns(dt.date(2024, 1, 2)) == to_ns("2024-01-02")
    assert format_ns(expected) == "2024-01-02T14:30:00Z"


def test_bad_ranges_are_named() -> None:
    with pytest.raises(InvalidRangeError, match="not before"):
        check_range("2024-01-02", "2024-01-01")
    with pytest.raises(InvalidRangeError, match="cannot parse 'yesterday'"):
        to_ns("yesterday", name="start")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1min", "1min"), ("5min", "5min"), ("15min", "15min"), ("30min", "30min"), ("60min", "1h"),
     ("1h", "1h"), ("4h", "4h"), ("1d", "1d"), ("daily", "1d"), ("1w", "1w"), ("90min", "90min")],
)
def test_timeframe_parse(text: str, expected: str) -> None:
    assert str(Timeframe.parse(text)) == expected


@pytest.mark.parametrize("text", ["1m", "5M", "m"])
def test_ambiguous_timeframes_say_what_to_write(text: str) -> None:
    with pytest.raises(TimeframeError, match="min"):
        Timeframe.parse(text)


@pytest.mark.parametrize("text", ["", "abc", "0min", "0mo", "-5min", "5 parsecs"])
def test_invalid_timeframes(text: str) -> None:
    with pytest.raises(TimeframeError):
        Timeframe.parse(text)


def test_nyse_calendar_knows_early_close_and_dst() -> None:
    cal = get_calendar("NYSE")
    s = cal.sessions("2024-11-28", "2024-12-01")  # Thanksgiving closed, Friday early close
    assert s["session"].cast(str).to_list() == ["2024-11-29"]
    assert s["close"][0].hour == 18
    summer = cal.sessions("2024-07-01", "2024-07-02")
    assert summer["open"][0].hour == 13  # 09:30 EDT


def test_24_7_calendar_is_midnight_to_midnight() -> None:
    cal = get_calendar("24/7")
    s = cal.sessions("2024-03-09", "2024-03-11")
    assert s.height == 2
    assert all(o.hour == 0 for o in s["open"])
    assert cal.is_24_7


def test_registry_names_unknown_sources() -> None:
    with pytest.raises(SourceNotFoundError, match="unknown data source 'nope'"):
        registry.get_source("nope")
    reg = DataSourceRegistry()
    reg.register("x", lambda **kw: None, "test")  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="already registered"):
        reg.register("x", lambda **kw: None)  # type: ignore[arg-type,return-value]
    assert ("x", "test") in reg.list()


def test_a_date_written_as_a_number_is_not_read_as_nanoseconds() -> None:
    """``start=20120101`` was 20 ms after 1970: the run silently began at the data's first bar."""
    from backtape._time import check_range
    from backtape.errors import InvalidRangeError

    with pytest.raises(InvalidRangeError, match=r"start: 20120101 reads as 20120101 ns after 1970; write "
                                                r"the date as '2012-01-01'"):
        check_range(20120101, "2013-01-01")
    with pytest.raises(InvalidRangeError, match=r"end: .* '2013-06-30'"):
        check_range("2012-01-01", 20130630)
    assert check_range(0, 10) == (0, 10)  # nanoseconds remain nanoseconds
    assert check_range(1_325_376_000_000_000_000, "2013-01-01")[0] == 1_325_376_000_000_000_000
