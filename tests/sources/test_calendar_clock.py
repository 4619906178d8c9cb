"""Naive intraday times are read in the given calendar's zone, and bars outside its sessions are flagged."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from backtape.cli.app import app
from backtape.errors import DataValidationError
from backtape.sources.files import read_bars
from backtape.validation import validate_bars

HEADER = "datetime,open,high,low,close,volume\n"


def minute_file(tmp_path: Path, name: str, times: list[str]) -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(f"{t},10,11,9,10.5,100\n" for t in times))
    return path


def test_naive_minutes_are_new_york_wall_clock_with_xnys_winter_and_summer(tmp_path: Path) -> None:
    winter = minute_file(tmp_path, "W.csv", ["2024-01-02 09:30:00", "2024-01-02 09:31:00"])
    summer = minute_file(tmp_path, "S.csv", ["2024-07-02 09:30:00", "2024-07-02 09:31:00"])
    w = read_bars(winter, calendar="XNYS")
    s = read_bars(summer, calendar="XNYS")
    assert w["ts"][0] == datetime(2024, 1, 2, 14, 30, tzinfo=UTC)  # EST, UTC-5
    assert w["ts_end"][0] == datetime(2024, 1, 2, 14, 31, tzinfo=UTC)
    assert s["ts"][0] == datetime(2024, 7, 2, 13, 30, tzinfo=UTC)  # EDT, UTC-4
    assert validate_bars(s, calendar="XNYS").ok


def test_explicit_timezone_wins_and_no_calendar_keeps_utc(tmp_path: Path) -> None:
    path = minute_file(tmp_path, "S.csv", ["2024-07-02 15:30:00", "2024-07-02 15:31:00"])
    at_utc = read_bars(path, calendar="XNYS", timezone="UTC")
    assert at_utc["ts"][0] == datetime(2024, 7, 2, 15, 30, tzinfo=UTC)
    assert read_bars(path, calendar="XNYS", timezone="Europe/Berlin")["ts"][0] == \
        datetime(2024, 7, 2, 13, 30, tzinfo=UTC)
    assert read_bars(path)["ts"][0] == datetime(2024, 7, 2, 15, 30, tzinfo=UTC)  # documented default: UTC


def test_a_column_named_utc_stays_utc_under_an_exchange_calendar(tmp_path: Path) -> None:
    path = tmp_path / "6E.csv"
    path.write_text("timestamp_utc,open,high,low,close,volume\n2024-01-02 15:00:00,1,2,0.5,1.5,10\n"
                    "2024-01-02 15:01:00,1,2,0.5,1.5,10\n")
    assert read_bars(path, calendar="CMES")["ts"][0] == datetime(2024, 1, 2, 15, 0, tzinfo=UTC)


def test_daily_rows_are_unaffected_by_the_calendar_zone(tmp_path: Path) -> None:
    path = tmp_path / "D.csv"
    path.write_text("date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10\n2024-01-03,1,2,0.5,1.5,10\n")
    bars = read_bars(path, calendar="XNYS")
    assert bars["ts"][0] == datetime(2024, 1, 2, 14, 30, tzinfo=UTC)  # the session's open
    assert bars["ts_end"][0] == datetime(2024, 1, 2, 21, 0, tzinfo=UTC)


def test_a_bar_at_three_in_the_morning_new_york_is_flagged(tmp_path: Path) -> None:
    times = ["2024-01-02 03:00:00", "2024-01-02 09:30:00", "2024-01-02 09:31:00", "2024-01-06 10:00:00"]
    path = minute_file(tmp_path, "N.csv", times)
    with pytest.raises(DataValidationError, match=r"outside_session: 2") as err:
        read_bars(path, calendar="XNYS")
    found = err.value.violations
    assert [(v.rule, v.line) for v in found] == [("outside_session", 2), ("outside_session", 5)]
    assert "starts 2024-01-02 03:00 America/New_York" in found[0].detail
    with pytest.warns(UserWarning, match="dropped 2 invalid bars"):
        kept = read_bars(path, calendar="XNYS", on_invalid="drop")
    assert kept["ts"].to_list() == [datetime(2024, 1, 2, 14, m, tzinfo=UTC) for m in (30, 31)]
    assert read_bars(path).height == 4  # no calendar given: nothing to check against

    result = CliRunner().invoke(app, ["validate", str(path), "-o", "calendar=XNYS"])
    assert result.exit_code == 1
    assert "outside_session 2" in result.stdout


def test_validate_bars_checks_sessions_of_a_frame_and_its_breaks() -> None:
    def bars(*starts: str) -> pl.DataFrame:
        ts = pl.Series("ts", [datetime.fromisoformat(s) for s in starts]).dt.replace_time_zone("UTC")
        return pl.DataFrame({"symbol": "ES", "ts": ts}).with_columns(
            ts_end=pl.col("ts") + pl.duration(minutes=1), open=10.0, high=11.0, low=9.0, close=10.5,
            volume=1.0)

    # XHKG: 09:30-16:00 Hong Kong with a lunch break 12:00-13:00 (04:00-05:00 UTC)
    report = validate_bars(bars("2024-07-02 02:00", "2024-07-02 04:30", "2024-07-02 05:00"), calendar="XHKG",
                           on_invalid="warn")
    assert report.counts == {"outside_session": 1} and report.records()[0].row == 1
    assert "2024-07-02 12:30 Asia/Hong_Kong" in report.records()[0].detail
    weekend = validate_bars(bars("2024-07-05 14:00", "2024-07-06 14:00"), calendar="CMES", on_invalid="warn")
    assert [v.row for v in weekend.records()] == [1]  # CME Globex is shut on Saturday
    assert validate_bars(bars("2024-07-06 12:00"), calendar="24/7").ok
    assert validate_bars(bars("2024-07-06 12:00")).ok  # no calendar: no session rule
    daily = bars("2024-07-06 00:00").with_columns(ts_end=pl.col("ts") + pl.duration(days=1))
    assert validate_bars(daily, calendar="XNYS").ok  # daily bars are not judged by sessions
