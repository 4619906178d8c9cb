"""Real tick files loaded through ``backtape.sources.files.read_ticks`` (CSV/Parquet sources).

The Binance files are the shipped sample (Parquet, ``backtape/sample_data``); the Databento and
HistData files are the test copies in ``tests/data``. ``truth`` is the exchange's aggressor flag
(+1 buyer, -1 seller); ``recv_ts`` the capture clock of a Binance trade.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from backtape.schema import TS
from backtape.sources.files import read_bars, read_ticks
from backtape.sources.sample import sample_data_dir

DATA = Path(__file__).parents[1] / "data"
SAMPLE = sample_data_dir()


def _truth(col: str, buy: str, sell: str) -> pl.Expr:
    return (pl.when(pl.col(col) == buy).then(1).when(pl.col(col) == sell).then(-1).otherwise(0)
            .cast(pl.Int8).alias("truth"))


def load_btc() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Binance BTCUSDT trades (exchange time; receive time; aggressor) and book-ticker quotes."""
    trades = read_ticks(SAMPLE / "BTCUSDT_binance_spot_trades_2024-08-08.parquet", "trades",
                        symbol="BTCUSDT", keep_extra=True)
    trades = trades.select(
        "symbol", "ts", "price", "size", "exchange", "conditions", "id",
        pl.col("local_recv_ts_ns").cast(TS).alias("recv_ts"),
        _truth("aggressor_side", "BUY", "SELL"),
    )
    quotes = read_ticks(SAMPLE / "BTCUSDT_binance_spot_bookticker_quotes_2024-08-08.parquet", "quotes",
                        symbol="BTCUSDT")
    return trades, quotes


def load_es() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Databento ESU4 trades (with aggressor side) and MBP-1 top-of-book events, on ts_event."""
    trades = read_ticks(DATA / "ESU4_CME_trades_databento_2024-07-01T2358_0002.csv", "trades",
                        keep_extra=True)
    trades = trades.select("symbol", "ts", "price", "size", "exchange", "conditions", "id",
                           _truth("aggressor_side", "B", "A"))
    quotes = read_ticks(DATA / "ESU4_CME_mbp1_top_of_book_databento_2024-07-01T2358_0002.csv", "quotes")
    return trades, quotes


def load_es_vendor_bars() -> pl.DataFrame:
    """Databento's own 1-minute ESU4 bars."""
    bars = read_bars(DATA / "ESU4_NQU4_CME_ohlcv-1m_databento_2024-07-01T2340_0010.csv")
    return bars.filter(pl.col("symbol") == "ESU4")


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
    """HistData EURUSD quote ticks (New York standard time in the file, UTC here)."""
    return read_ticks(DATA / "EURUSD_ticks_quotes_HistData_2020-01-01.csv", "quotes")


@pytest.fixture(scope="session")
def es_vendor_bars() -> pl.DataFrame:
    """Session-cached ``load_es_vendor_bars``."""
    return load_es_vendor_bars()
