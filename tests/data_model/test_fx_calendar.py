"""The FX calendar: weekday sessions from 17:00 New York to 17:00 New York, DST-aware."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from backtape import read_bars
from backtape._time import format_ns
from backtape.aggregation import aggregate
from backtape.calendars import get_calendar

DATA = Path(__file__).parents[1] / "data"


def _session(label: str) -> tuple[str, str]:
    cal = get_calendar("FX")
    i = cal.session_for_label(int(pl.Series([label]).str.to_datetime().dt.epoch("ns")[0]))
    return format_ns(int(cal.opens[i])), format_ns(int(cal.closes[i]))


def test_sessions_follow_new_york_five_pm_through_daylight_saving() -> None:
    assert _session("2017-07-10") == ("2017-07-09T21:00:00Z", "2017-07-10T21:00:00Z")   # Monday, EDT
    assert _session("2018-01-08") == ("2018-01-07T22:00:00Z", "2018-01-08T22:00:00Z")   # Monday, EST
    cal = get_calendar("FOREX")
    weekdays = pl.Series(cal.labels).cast(pl.Datetime("ns")).dt.weekday()
    assert weekdays.max() == 5 and cal.name == "FX"


def test_hourly_eurusd_aggregates_to_new_york_days() -> None:
    hours = read_bars(DATA / "EURUSD_1h_2017-04-19_2018-02-07.csv", symbol="EURUSD", timezone="UTC")
    days = aggregate(hours, "1d", calendar="FX")
    # every hour in 17:00-17:00 New York of a weekday belongs to that day; weekend hours to none
    ny = hours.with_columns(pl.col("ts").dt.convert_time_zone("America/New_York").alias("ny"))
    label = (pl.col("ny") + pl.duration(hours=7)).dt.date()
    by_hand = (ny.filter(label.dt.weekday() <= 5).sort("ts")
               .group_by(label.alias("day"), maintain_order=True)
               .agg(pl.col("open").first(), pl.col("high").max(), pl.col("low").min(),
                    pl.col("close").last()))
    assert days.height == by_hand.height
    for col in ("open", "high", "low", "close"):
        assert days[col].to_list() == by_hand[col].to_list()
    first_winter = days.filter(pl.col("ts") >= pl.datetime(2018, 1, 7, time_zone="UTC"))
    assert str(first_winter["ts"][0]) == "2018-01-07 22:00:00+00:00"


def test_cme_futures_minutes_aggregate_to_globex_sessions() -> None:
    minutes = read_bars(DATA / "6EH4_CME_EURfut_1m_2024-01.csv.gz", symbol="6EH4")
    days = aggregate(minutes, "1d", calendar="us_futures")
    # exchange-calendars' us_futures: sessions from 18:00 New York the evening before to 18:00
    assert str(days["ts"][0]) == "2024-01-01 23:00:00+00:00"
    assert str(days["ts_end"][0]) == "2024-01-02 23:00:00+00:00"
    assert 20 <= days.height <= 23 and days["volume"].sum() <= minutes["volume"].sum()
