"""Aggregation and validation on real market data: BTC perpetual (24/7), FESX futures with gaps, and
CME trades checked against the vendor's own 1-minute bars."""

from __future__ import annotations

import polars as pl
import pytest

from backtape._time import NS_PER_MINUTE
from backtape.aggregation import aggregate, trades_to_bars
from backtape.calendars import get_calendar
from backtape.schema import TS
from backtape.validation import validate_bars, validate_trades

ONE_MINUTE = pl.duration(minutes=1)


@pytest.fixture(scope="module")
def btc(build) -> pl.DataFrame:
    """BTC-PERP 1-minute bars; the file's timestamps are bar starts in UTC."""
    raw = pl.read_csv(build.data / "BTC-PERP_1m_2021-12-31_2022-02-01.csv")
    ts = pl.col("timestamp").str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_zone="UTC").cast(TS)
    return raw.select(pl.lit("BTC-PERP").alias("symbol"), ts.alias("ts"), "open", "high", "low", "close",
                      "volume").with_columns(ts_end=pl.col("ts") + ONE_MINUTE)


@pytest.fixture(scope="module")
def fesx(build) -> pl.DataFrame:
    """FESX 1-minute bars; ``Date,Time`` in Frankfurt time label the bar's end (09:01 = 09:00-09:01)."""
    names = ["date", "time", "open", "high", "low", "close", "volume", "open_interest"]
    raw = pl.read_csv(build.data / "FESX_future_1m_2006-01-02_2006-02-27.csv", has_header=False, skip_rows=1,
                      new_columns=names)
    local_end = pl.concat_str("date", "time", separator=" ").str.to_datetime("%Y-%m-%d %H:%M:%S")
    end = local_end.dt.replace_time_zone("Europe/Berlin").dt.convert_time_zone("UTC").cast(TS)
    return raw.select(pl.lit("FESX").alias("symbol"), (end - ONE_MINUTE).alias("ts"), end.alias("ts_end"),
                      "open", "high", "low", "close", pl.col("volume").cast(pl.Float64))


def by_truncation(df: pl.DataFrame, every: str) -> pl.DataFrame:
    """Plain UTC-clock bars built with Polars: equal to session bars only on a 24/7 calendar."""
    return (
        df.group_by("symbol", pl.col("ts").dt.truncate(every), maintain_order=True)
        .agg(pl.col("open").first(), pl.col("high").max(), pl.col("low").min(), pl.col("close").last(),
             pl.col("volume").sum())
    )


def test_real_minute_files_validate(btc: pl.DataFrame, fesx: pl.DataFrame) -> None:
    assert validate_bars(btc).ok and btc.height == 45_031
    assert validate_bars(fesx).ok and fesx.height == 30_889


@pytest.mark.parametrize("every", ["5m", "1h", "1d"])
def test_btc_24_7_matches_utc_clock_bars(btc: pl.DataFrame, every: str) -> None:
    timeframe = {"5m": "5min", "1h": "1h", "1d": "1d"}[every]
    out = aggregate(btc, timeframe)  # calendar=None: 24/7, sessions midnight to midnight UTC
    expected = by_truncation(btc, every)
    assert out.select(expected.columns).drop("volume").equals(expected.drop("volume"))
    assert out.get_column("volume").to_list() == pytest.approx(expected.get_column("volume").to_list())
    assert validate_bars(out).ok


def test_btc_daily_and_weekly_bars(btc: pl.DataFrame) -> None:
    daily = aggregate(btc, "1d", "24/7")
    assert daily.height == 33  # 2021-12-31 (one hour only) .. 2022-02-01 (partial)
    assert daily.get_column("ts")[0].isoformat() == "2021-12-31T00:00:00+00:00"
    assert daily.get_column("ts_end")[0].isoformat() == "2022-01-01T00:00:00+00:00"
    assert daily.get_column("open")[0] == btc.get_column("open")[0]
    weekly = aggregate(btc, "1w", "24/7")
    # ISO weeks starting Mondays 2021-12-27 .. 2022-01-31
    mondays = [t.date().isoformat() for t in weekly.get_column("ts")]
    assert mondays == ["2021-12-27", "2022-01-03", "2022-01-10", "2022-01-17", "2022-01-24", "2022-01-31"]
    assert weekly.get_column("volume").sum() == pytest.approx(btc.get_column("volume").sum())
    again = aggregate(daily, "1w", "24/7")
    assert again.drop("vwap", "volume").equals(weekly.drop("vwap", "volume"))
    assert again.get_column("volume").to_list() == pytest.approx(weekly.get_column("volume").to_list())


def test_fesx_gaps_make_no_empty_bars(fesx: pl.DataFrame) -> None:
    # Eurex 2006: sessions 08:00-22:00 Frankfurt (07:00-21:00 UTC); the file starts trading at 09:00
    five = aggregate(fesx, "5min", "XEUR")
    bins = fesx.select(pl.col("ts").dt.truncate("5m")).unique()  # opens are on the 5-minute grid
    assert five.height == bins.height
    assert five.get_column("volume").sum() == fesx.get_column("volume").sum()
    assert (five.get_column("volume") > 0).all()
    counts = fesx.group_by(pl.col("ts").dt.truncate("5m")).len()
    assert counts.filter(pl.col("len") < 5).height > 0  # partial bins (minutes missing) still make a bar
    # windows with no minute at all make no bar: find one between the first and last bar of a day
    day = five.filter(pl.col("ts").dt.date() == pl.date(2006, 1, 2))
    steps = day.get_column("ts").diff().drop_nulls().dt.total_minutes()
    assert steps.max() > 5 and set(steps.unique()) <= set(range(5, 1000, 5))
    daily = aggregate(fesx, "1d", "XEUR")
    assert daily.height == fesx.get_column("ts").dt.date().n_unique()
    xeur = get_calendar("XEUR")
    opens = daily.get_column("ts").dt.epoch("ns").to_numpy()
    assert (xeur.session_index(opens) >= 0).all() and (opens == xeur.opens[xeur.session_index(opens)]).all()
    assert daily.get_column("ts")[0].isoformat() == "2006-01-02T07:00:00+00:00"  # session open, not 08:00


def test_cme_trades_to_bars_match_vendor_bars(build) -> None:
    """Databento's ESU4 1-minute bars vs bars built from its trades (ts_event) for the same minutes.

    The trade file covers 23:58:00-00:02:00 UTC, so four minutes overlap the vendor's bars
    (23:40-00:09); the other vendor minutes and NQU4 have no trades here. The vendor bars carry no
    vwap or trade count, so only OHLCV can be compared.
    """
    parse = pl.col("ts_event_utc").str.to_datetime(time_zone="UTC", time_unit="ns").cast(TS)
    raw = pl.read_csv(build.data / "ESU4_CME_trades_databento_2024-07-01T2358_0002.csv")
    trades = raw.select("symbol", parse.alias("ts"), pl.col("price").cast(pl.Float64),
                        pl.col("size").cast(pl.Float64), pl.col("sequence").cast(pl.String).alias("id"))
    assert validate_trades(trades).ok
    built = trades_to_bars(trades, "1min", "CMES")
    vendor = pl.read_csv(build.data / "ESU4_NQU4_CME_ohlcv-1m_databento_2024-07-01T2340_0010.csv").select(
        "symbol", parse.alias("ts"),
        "open", "high", "low", "close", pl.col("volume").cast(pl.Float64),
    )
    overlap = vendor.join(built.select("symbol", "ts"), on=["symbol", "ts"], how="semi").sort("ts")
    assert overlap.height == 4
    assert built.select(overlap.columns).equals(overlap)
    assert built.get_column("transactions").sum() == trades.height
    first = built.row(0, named=True)
    minute = trades.filter(pl.col("ts") < pl.col("ts").min().dt.truncate("1m") + ONE_MINUTE)
    assert first["vwap"] == pytest.approx((minute["price"] * minute["size"]).sum() / minute["size"].sum())
    lengths = built.get_column("ts_end").dt.epoch("ns") - built.get_column("ts").dt.epoch("ns")
    assert (lengths == NS_PER_MINUTE).all()
    daily = trades_to_bars(trades, "1d", "CMES")  # all trades belong to the session of 2024-07-02
    assert daily.get_column("ts")[0].isoformat() == "2024-07-01T22:00:00+00:00"
    assert daily.get_column("transactions")[0] == trades.height
