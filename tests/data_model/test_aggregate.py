"""Session-aware aggregation with hand-checked values: NYSE, early closes, DST, CME, breaks, errors."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from backtape._time import NS_PER_MINUTE
from backtape.aggregation import aggregate, trades_to_bars
from backtape.calendars import get_calendar
from backtape.errors import (
    DataFormatError,
    DataValidationError,
    InvalidRangeError,
    NoDataError,
    TimeframeError,
)
from backtape.schema import BAR_SCHEMA, TS
from backtape.timeframes import Timeframe


def ts_list(df: pl.DataFrame, column: str = "ts") -> list[int]:
    return df.get_column(column).dt.epoch("ns").to_list()


def expected_vwap(ks: range, base: float = 100.0) -> float:
    """vwap of minute bars ``ks`` built by ``minute_bars``: close (base+k+1) weighted by volume k+1."""
    return sum((base + k + 1) * (k + 1) for k in ks) / sum(k + 1 for k in ks)


def test_nyse_5min_anchored_at_open_and_outside_bars_dropped(build) -> None:
    # 30 pre-market + 390 session + 30 post-market minutes; session minutes are k = 30..419
    df = build.minute_bars(build.session_minutes("XNYS", "2024-11-27", "2024-11-28", pad_minutes=30))
    out = aggregate(df, "5min", "XNYS")
    assert out.schema == BAR_SCHEMA
    assert out.height == 78
    first = out.row(0, named=True)
    assert ts_list(out)[0] == build.utc("2024-11-27T14:30Z")
    assert ts_list(out, "ts_end")[0] == build.utc("2024-11-27T14:35Z")
    assert (first["open"], first["high"], first["low"], first["close"]) == (130.0, 136.0, 129.0, 135.0)
    assert first["volume"] == sum(k + 1 for k in range(30, 35))
    assert first["vwap"] == pytest.approx(expected_vwap(range(30, 35)))
    assert first["transactions"] is None
    assert ts_list(out)[-1] == build.utc("2024-11-27T20:55Z")
    assert out.get_column("close")[-1] == 101.0 + 419
    assert out.get_column("volume").sum() == sum(k + 1 for k in range(30, 420))
    assert all((t - ts_list(out)[0]) % (5 * NS_PER_MINUTE) == 0 for t in ts_list(out))


def test_nyse_1h_last_bar_cut_at_close(build) -> None:
    df = build.minute_bars(build.session_minutes("XNYS", "2024-11-27", "2024-11-28"))
    out = aggregate(df, "1h", "XNYS")
    hours = [f"2024-11-27T{h}:30Z" for h in range(14, 21)]
    assert ts_list(out) == [build.utc(h) for h in hours]
    assert ts_list(out, "ts_end") == [build.utc(h) + 60 * NS_PER_MINUTE for h in hours[:-1]] + [
        build.utc("2024-11-27T21:00Z")
    ]
    last = out.row(-1, named=True)
    assert last["volume"] == sum(k + 1 for k in range(360, 390))  # the 30 minutes 15:30-16:00 ET
    assert (last["open"], last["close"]) == (460.0, 490.0)


def test_early_close_day_after_thanksgiving(build) -> None:
    # 2024-11-29 closes 13:00 ET = 18:00 UTC; minutes are given until 16:00 ET as if the feed ran on
    minutes = np.arange(build.utc("2024-11-29T14:30Z"), build.utc("2024-11-29T21:00Z"), NS_PER_MINUTE)
    df = build.minute_bars(minutes)
    hourly = aggregate(df, "1h", "XNYS")
    assert ts_list(hourly) == [build.utc(f"2024-11-29T{h}:30Z") for h in (14, 15, 16, 17)]
    assert ts_list(hourly, "ts_end")[-1] == build.utc("2024-11-29T18:00Z")
    daily = aggregate(df, "1d", "XNYS")
    assert ts_list(daily) == [build.utc("2024-11-29T14:30Z")]
    assert ts_list(daily, "ts_end") == [build.utc("2024-11-29T18:00Z")]
    assert daily.get_column("volume")[0] == sum(k + 1 for k in range(210))
    assert daily.get_column("close")[0] == 101.0 + 209


def test_include_outside_bins_gaps_on_their_own(build) -> None:
    df = build.minute_bars(build.session_minutes("XNYS", "2024-11-27", "2024-11-28", pad_minutes=30))
    out = aggregate(df, "5min", "XNYS", include_outside=True)
    assert out.height == 6 + 78 + 6
    assert ts_list(out)[:1] == [build.utc("2024-11-27T14:00Z")]
    assert out.get_column("volume").sum() == df.get_column("volume").sum()
    hourly = aggregate(df, "1h", "XNYS", include_outside=True)
    # the pre-market hour is cut at the open, the post-market one starts at the close
    assert ts_list(hourly)[0] == build.utc("2024-11-27T14:00Z")
    assert ts_list(hourly, "ts_end")[0] == build.utc("2024-11-27T14:30Z")
    assert ts_list(hourly)[-1] == build.utc("2024-11-27T21:00Z")
    with pytest.raises(TimeframeError, match="intraday timeframes only"):
        aggregate(df, "1d", "XNYS", include_outside=True)


@pytest.mark.parametrize(
    ("before", "after", "open_before", "open_after"),
    [("2024-03-08", "2024-03-11", "2024-03-08T14:30Z", "2024-03-11T13:30Z"),  # US DST starts 03-10
     ("2024-11-01", "2024-11-04", "2024-11-01T13:30Z", "2024-11-04T14:30Z")],  # and ends 11-03
)
def test_dst_weeks_follow_the_local_open(build, before: str, after: str, open_before: str,
                                         open_after: str) -> None:
    df = build.minute_bars(build.session_minutes("XNYS", before, after + "T23:00"))
    five = aggregate(df, "5min", "XNYS")
    by_day = five.group_by(pl.col("ts").dt.date().alias("day"), maintain_order=True)
    days = by_day.agg(pl.col("ts").min(), pl.len())
    assert days.get_column("len").to_list() == [78, 78]
    assert days.get_column("ts").dt.epoch("ns").to_list() == [build.utc(open_before), build.utc(open_after)]
    daily = aggregate(df, "1d", "XNYS")
    assert ts_list(daily) == [build.utc(open_before), build.utc(open_after)]
    assert [e - s for s, e in zip(ts_list(daily), ts_list(daily, "ts_end"), strict=True)] == [
        390 * NS_PER_MINUTE
    ] * 2


def test_weekly_bars_span_iso_weeks_across_dst(build) -> None:
    df = build.minute_bars(build.session_minutes("XNYS", "2024-03-04", "2024-03-16"))
    weekly = aggregate(df, "1w", "XNYS")
    assert ts_list(weekly) == [build.utc("2024-03-04T14:30Z"), build.utc("2024-03-11T13:30Z")]
    assert ts_list(weekly, "ts_end") == [build.utc("2024-03-08T21:00Z"), build.utc("2024-03-15T20:00Z")]
    assert weekly.get_column("volume").sum() == df.get_column("volume").sum()
    # a week with missing days still spans the exchange's week
    part = aggregate(df.filter(pl.col("ts") >= pl.datetime(2024, 3, 13, time_zone="UTC")), "1w", "XNYS")
    assert ts_list(part) == [build.utc("2024-03-11T13:30Z")]


def test_cme_session_starts_the_previous_utc_day(build) -> None:
    df = build.minute_bars(build.session_minutes("CMES", "2024-07-01T23:00", "2024-07-05T12:00"))
    daily = aggregate(df, "1d", "CMES")
    # sessions of 07-02, 07-03, 07-04 (closes 12:00 CT = 17:00 UTC for Independence Day), 07-05
    assert ts_list(daily) == [build.utc(f"2024-07-0{d}T22:00Z") for d in (1, 2, 3, 4)]
    assert ts_list(daily, "ts_end") == [build.utc(t) for t in (
        "2024-07-02T22:00Z", "2024-07-03T22:00Z", "2024-07-04T17:00Z", "2024-07-05T22:00Z")]
    # one daily bar spans UTC midnight: every minute of [07-01 22:00, 07-02 22:00) is in it
    first_day = df.filter(pl.col("ts") < pl.datetime(2024, 7, 2, 22, time_zone="UTC"))
    assert daily.get_column("volume")[0] == first_day.get_column("volume").sum()
    four = aggregate(df, "4h", "CMES")
    assert ts_list(four)[:7] == [build.utc(t) for t in (
        "2024-07-01T22:00Z", "2024-07-02T02:00Z", "2024-07-02T06:00Z", "2024-07-02T10:00Z",
        "2024-07-02T14:00Z", "2024-07-02T18:00Z", "2024-07-02T22:00Z")]
    weekly = aggregate(df, "1w", "CMES")
    assert ts_list(weekly) == [build.utc("2024-06-30T22:00Z")]  # Monday's session opens Sunday evening
    assert ts_list(weekly, "ts_end") == [build.utc("2024-07-05T22:00Z")]


def test_intraday_break_is_never_spanned(build) -> None:
    # Hong Kong 2024-07-02: 09:30-12:00 and 13:00-16:00 local = 01:30-04:00 and 05:00-08:00 UTC
    minutes = np.arange(build.utc("2024-07-02T01:30Z"), build.utc("2024-07-02T08:00Z"), NS_PER_MINUTE)
    df = build.minute_bars(minutes)
    out = aggregate(df, "1h", "XHKG")
    starts = ["01:30", "02:30", "03:30", "05:00", "06:00", "07:00"]
    ends = ["02:30", "03:30", "04:00", "06:00", "07:00", "08:00"]
    assert ts_list(out) == [build.utc(f"2024-07-02T{t}Z") for t in starts]
    assert ts_list(out, "ts_end") == [build.utc(f"2024-07-02T{t}Z") for t in ends]
    lunch = df.filter(pl.col("ts").dt.hour() == 4)
    assert out.get_column("volume").sum() == df.get_column("volume").sum() - lunch.get_column("volume").sum()
    daily = aggregate(df, "1d", "XHKG")  # the daily bar spans the break but, like the hours, skips it
    assert daily.get_column("volume").to_list() == [out.get_column("volume").sum()]
    assert ts_list(daily) == [build.utc("2024-07-02T01:30Z")]
    assert ts_list(daily, "ts_end") == [build.utc("2024-07-02T08:00Z")]


def test_many_symbols_unsorted_input_vwap_and_transactions(build) -> None:
    t0 = build.utc("2024-01-02T14:30Z")
    a = build.minute_bars([t0 + i * NS_PER_MINUTE for i in range(10)], "AAA").with_columns(
        vwap=pl.when(pl.int_range(pl.len()) < 5).then(pl.col("low")),
        transactions=pl.when(pl.int_range(pl.len()) < 5).then(pl.int_range(pl.len()) + 10),
    )
    b = build.minute_bars([t0 + i * NS_PER_MINUTE for i in (0, 1, 7)], "BBB", base=50.0).with_columns(
        volume=pl.lit(0.0)
    )
    df = pl.concat([b, a], how="diagonal").sample(fraction=1.0, shuffle=True, seed=3)
    out = aggregate(df, "5min", "XNYS")
    assert out.select("symbol", pl.col("ts").dt.epoch("ns")).rows() == [
        ("AAA", t0), ("AAA", t0 + 5 * NS_PER_MINUTE), ("BBB", t0), ("BBB", t0 + 5 * NS_PER_MINUTE)]
    aaa = out.filter(pl.col("symbol") == "AAA")
    # first bin: vwap taken from the given vwap (= low 99+k); second bin: from the close (101+k)
    assert aaa.get_column("vwap").to_list() == pytest.approx(
        [sum((99 + k) * (k + 1) for k in range(5)) / 15, expected_vwap(range(5, 10))])
    assert aaa.get_column("transactions").to_list() == [10 + 11 + 12 + 13 + 14, None]
    bbb = out.filter(pl.col("symbol") == "BBB")
    assert bbb.get_column("vwap").to_list() == [None, None]  # no volume, no vwap
    assert bbb.get_column("open").to_list() == [50.0, 52.0]
    assert bbb.get_column("close").to_list() == [52.0, 53.0]


def test_daily_and_hourly_bars_reaggregate(build) -> None:
    df = build.minute_bars(build.session_minutes("XNYS", "2024-11-25", "2024-12-03"))
    daily = aggregate(df, "1d", "XNYS")
    assert aggregate(aggregate(df, "1h", "XNYS"), "1d", "XNYS").equals(daily)
    weekly = aggregate(df, "1w", "XNYS")
    assert aggregate(daily, "1w", "XNYS").equals(weekly)
    assert aggregate(daily, "1d", "XNYS").equals(daily)  # a bar fits in its own bin


def test_default_calendar_is_24_7(build) -> None:
    minutes = np.arange(build.utc("2024-01-06T22:00Z"), build.utc("2024-01-07T02:00Z"), NS_PER_MINUTE)
    out = aggregate(build.minute_bars(minutes), "1d")
    assert ts_list(out) == [build.utc("2024-01-06"), build.utc("2024-01-07")]
    assert ts_list(out, "ts_end") == [build.utc("2024-01-07"), build.utc("2024-01-08")]
    assert out.get_column("volume").to_list() == [sum(range(1, 121)), sum(range(121, 241))]
    assert aggregate(build.minute_bars(minutes), Timeframe.parse("2h"), get_calendar("24/7")).height == 2


def test_input_must_be_finer_and_aligned(build) -> None:
    t0 = build.utc("2024-01-02T14:30Z")
    two = build.minute_bars([t0 + 2 * i * NS_PER_MINUTE for i in range(5)]).with_columns(
        ts_end=pl.col("ts") + pl.duration(minutes=2))
    with pytest.raises(TimeframeError, match=r"X \[2024-01-02T14:34:00Z, 2024-01-02T14:36:00Z\)"):
        aggregate(two, "5min", "XNYS")
    day = build.minute_bars(build.session_minutes("XNYS", "2024-01-02", "2024-01-03"))
    hourly = aggregate(day, "1h", "XNYS")
    with pytest.raises(TimeframeError, match="finer than 5min"):
        aggregate(hourly, "5min", "XNYS")
    with pytest.raises(TimeframeError, match="ambiguous"):
        aggregate(two, "5m", "XNYS")


def test_bad_inputs_are_named(build) -> None:
    weekend = build.minute_bars(np.arange(build.utc("2024-01-06T15:00Z"), build.utc("2024-01-06T16:00Z"),
                                          NS_PER_MINUTE))
    with pytest.raises(NoDataError, match="none of the 60 input rows falls inside a XNYS session"):
        aggregate(weekend, "5min", "XNYS")
    future = build.minute_bars([build.utc("2040-01-02T15:00Z")])
    with pytest.raises(InvalidRangeError, match="outside the XNYS calendar"):
        aggregate(future, "5min", "XNYS")
    with pytest.raises(DataFormatError, match="missing required column"):
        aggregate(weekend.drop("close"), "5min")
    with pytest.raises(DataValidationError, match="null or NaN volume \\(first at row 3, symbol X\\)"):
        aggregate(weekend.with_columns(pl.col("volume").replace(4.0, None)), "5min")  # row 3 has volume 4
    with pytest.raises(DataFormatError, match="naive"):
        aggregate(weekend.with_columns(pl.col("ts").dt.replace_time_zone(None)), "5min")
    empty = aggregate(weekend.head(0), "1h", "XNYS")
    assert empty.height == 0 and empty.schema == BAR_SCHEMA


def test_trades_keep_exchange_order_and_count(build) -> None:
    t0 = build.utc("2024-01-02T14:30:00Z")
    sec = 1_000_000_000
    trades = pl.DataFrame({
        "symbol": ["B", "A", "A", "A", "A", "B"],
        "ts": [t0 + 5 * sec, t0, t0, t0 + 61 * sec, t0 + 61 * sec, t0 + 7 * sec],
        "price": [50.0, 10.0, 12.0, 11.0, 9.0, 51.0],
        "size": [1.0, 1.0, 3.0, 2.0, 2.0, 3.0],
    }).with_columns(pl.col("ts").cast(TS))
    out = trades_to_bars(trades, "1min", "XNYS")
    assert out.select("symbol", "open", "high", "low", "close", "volume", "transactions").rows() == [
        ("A", 10.0, 12.0, 10.0, 12.0, 4.0, 2),   # same-ts trades keep their file order
        ("A", 11.0, 11.0, 9.0, 9.0, 4.0, 2),
        ("B", 50.0, 51.0, 50.0, 51.0, 4.0, 2),
    ]
    assert out.get_column("vwap").to_list() == pytest.approx([11.5, 10.0, 50.75])
    assert ts_list(out) == [t0, t0 + 60 * sec, t0]
    premarket = trades.with_columns(pl.col("ts") - pl.duration(hours=1))
    with pytest.raises(NoDataError):
        trades_to_bars(premarket, "5min", "XNYS")
    outside = trades_to_bars(premarket, "5min", "XNYS", include_outside=True)
    assert outside.get_column("transactions").sum() == 6
    assert trades_to_bars(trades.head(0), "1d", "XNYS").height == 0
