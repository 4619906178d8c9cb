"""Real tick files (gzip copies of ../shared/data/ticks) loaded into canonical frames for the tests."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from backtape.schema import TS, conform

DATA = Path(__file__).parent / "data"


def _iso(col: str) -> pl.Expr:
    """An ISO-8601 'Z' string column as UTC nanoseconds."""
    return pl.col(col).str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="ns", time_zone="UTC")


def load_btc() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Binance BTCUSDT trades (exchange time, receive time, aggressor) and book-ticker quotes."""
    trades = pl.read_csv(DATA / "BTCUSDT_binance_spot_trades_2024-08-08.csv.gz").select(
        pl.lit("BTCUSDT").alias("symbol"),
        _iso("trade_time_utc").alias("ts"),
        pl.col("local_recv_ts_ns").cast(TS).alias("recv_ts"),
        pl.col("price").cast(pl.Float64),
        pl.col("qty").cast(pl.Float64).alias("size"),
        pl.col("trade_id").cast(pl.String).alias("id"),
        pl.when(pl.col("aggressor_side") == "BUY").then(1).otherwise(-1).cast(pl.Int8).alias("truth"),
    )
    quotes = pl.read_csv(DATA / "BTCUSDT_binance_spot_bookticker_quotes_2024-08-08.csv.gz").select(
        pl.lit("BTCUSDT").alias("symbol"),
        pl.col("local_recv_ts_ns").cast(TS).alias("ts"),
        pl.col("bid").cast(pl.Float64),
        pl.col("ask").cast(pl.Float64),
        pl.col("bid_qty").cast(pl.Float64).alias("bid_size"),
        pl.col("ask_qty").cast(pl.Float64).alias("ask_size"),
    )
    return trades, conform(quotes, "quotes")


def load_es() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Databento ESU4 trades (with aggressor side) and MBP-1 top-of-book events, on ts_event."""
    trades = pl.read_csv(DATA / "ESU4_CME_trades_databento_2024-07-01T2358_0002.csv.gz").select(
        "symbol",
        _iso("ts_event_utc").alias("ts"),
        pl.col("price").cast(pl.Float64),
        pl.col("size").cast(pl.Float64),
        pl.col("sequence").cast(pl.String).alias("id"),
        pl.when(pl.col("aggressor_side") == "B").then(1)
        .when(pl.col("aggressor_side") == "A").then(-1).otherwise(0).cast(pl.Int8).alias("truth"),
    )
    quotes = pl.read_csv(DATA / "ESU4_CME_mbp1_top_of_book_databento_2024-07-01T2358_0002.csv.gz").select(
        "symbol",
        _iso("ts_event_utc").alias("ts"),
        pl.col("bid_px").cast(pl.Float64).alias("bid"),
        pl.col("ask_px").cast(pl.Float64).alias("ask"),
        pl.col("bid_sz").cast(pl.Float64).alias("bid_size"),
        pl.col("ask_sz").cast(pl.Float64).alias("ask_size"),
    )
    return trades, conform(quotes, "quotes")


def load_eurusd() -> pl.DataFrame:
    """HistData EURUSD quote ticks; their clock is New York standard time (UTC-5 all year)."""
    raw = pl.read_csv(DATA / "EURUSD_ticks_quotes_HistData_2020-01-01.csv.gz", has_header=False,
                      new_columns=["stamp", "bid", "ask", "volume"])
    quotes = raw.select(
        pl.lit("EURUSD").alias("symbol"),
        (pl.col("stamp").str.to_datetime("%Y%m%d %H%M%S%3f", time_unit="ns", time_zone="UTC")
         + pl.duration(hours=5)).alias("ts"),
        pl.col("bid").cast(pl.Float64),
        pl.col("ask").cast(pl.Float64),
        pl.lit(None, dtype=pl.Float64).alias("bid_size"),
        pl.lit(None, dtype=pl.Float64).alias("ask_size"),
    )
    return conform(quotes, "quotes")


@pytest.fixture(scope="session")
def btc_raw() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Session-cached ``load_btc``."""
    return load_btc()


@pytest.fixture(scope="session")
def es_raw() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Session-cached ``load_es``."""
    return load_es()


@pytest.fixture(scope="session")
def eurusd_quotes() -> pl.DataFrame:
    """Session-cached ``load_eurusd``."""
    return load_eurusd()
