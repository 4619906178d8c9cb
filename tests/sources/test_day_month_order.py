"""Numeric dates (``02/01/2024``) in local files: the day/month order comes from the data, never a
guess. A file whose every date reads both ways used to be read day first, silently: a US export of
monthly bars on the 1st (January, February, March) became three consecutive January days."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from backtape.errors import DataFormatError
from backtape.sources.files import read_bars

HEADER = "Date,Open,High,Low,Close,Volume\n"


def _csv(tmp_path: Path, *dates: str) -> Path:
    path = tmp_path / "SPY.csv"
    path.write_text(HEADER + "".join(f"{d},1,2,0.5,1.5,100\n" for d in dates))
    return path


def _days(path: Path, **options: object) -> list[str]:
    bars = read_bars(path, calendar="XNYS", **options)
    return [str(d) for d in bars.get_column("ts").dt.convert_time_zone("America/New_York").dt.date()]


def test_every_date_reading_both_ways_is_an_error_naming_both_formats(tmp_path: Path) -> None:
    path = _csv(tmp_path, "01/02/2024", "01/03/2024", "01/04/2024")  # 2-4 January or 1 February-April?
    with pytest.raises(DataFormatError, match=r"SPY\.csv, column 'Date': dates like '01/02/2024' read as "
                       r"day/month and as month/day .* ts_format='%d/%m/%Y' .* ts_format='%m/%d/%Y'"):
        read_bars(path, calendar="XNYS")
    assert _days(path, ts_format="%m/%d/%Y") == ["2024-01-02", "2024-01-03", "2024-01-04"]
    assert _days(path, ts_format="%d/%m/%Y", frequency="1mo") == ["2024-02-01", "2024-03-01", "2024-04-01"]


@pytest.mark.parametrize(("dates", "expected"), [
    (("01/31/2024", "02/01/2024"), ["2024-01-31", "2024-02-01"]),      # month first (US)
    (("31/01/2024", "01/02/2024"), ["2024-01-31", "2024-02-01"]),      # day first
    (("31.01.2024", "1.2.2024"), ["2024-01-31", "2024-02-01"]),        # dots, no zero padding
])
def test_a_day_above_12_tells_the_order_for_the_whole_column(tmp_path: Path, dates, expected) -> None:
    assert _days(_csv(tmp_path, *dates)) == expected


def test_intraday_times_after_a_numeric_date_keep_their_clock(tmp_path: Path) -> None:
    path = _csv(tmp_path, "01/31/2024 09:30", "01/31/2024 09:31", "02/01/2024 09:30")
    ts = read_bars(path, calendar="XNYS", frequency="1min").get_column("ts")
    assert ts.to_list() == pl.Series(["2024-01-31 14:30", "2024-01-31 14:31", "2024-02-01 14:30"]) \
        .str.to_datetime(time_unit="ns", time_zone="UTC").to_list()


def test_both_orders_in_one_column_name_the_line(tmp_path: Path) -> None:
    path = _csv(tmp_path, "01/31/2024", "13/02/2024")
    with pytest.raises(DataFormatError, match=r"line 3: date '13/02/2024' has the day and month in the "
                                              r"other order than '01/31/2024'"):
        read_bars(path)


def test_an_unusual_spacing_is_said_in_days(tmp_path: Path) -> None:
    """A typo year (2099) made the median spacing '2.3671e+09 s'; it reads in days now."""
    path = _csv(tmp_path, "2024-01-02", "2099-01-05")
    message = (r"rows are 27,397\.0 days apart \(the median spacing\), not a bar size backtape infers; "
               r"pass frequency=\.\.\. \(e\.g\. 1w, 1mo\)")
    with pytest.raises(DataFormatError, match=message):
        read_bars(path)
