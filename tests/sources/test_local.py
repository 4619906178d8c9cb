"""CSV/Parquet sources: every real file parses into canonical frames; bad input fails clearly."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import polars as pl
import pytest

from backtape.errors import (
    ConfigError,
    DataFormatError,
    InvalidRangeError,
    SymbolNotFoundError,
    UnsupportedDataError,
)
from backtape.sources import CSVDataSource, ParquetDataSource, get_source
from backtape.sources.files import read_bars, read_ticks
from backtape.sources.sample import sample_data_dir

SAMPLE = sample_data_dir()
HAS_AGGREGATE = importlib.util.find_spec("backtape.aggregation") is not None


def utc(text: str) -> pl.Expr:
    return pl.lit(text).str.to_datetime(time_unit="ns", time_zone="UTC")


# file, kind, options, rows, first ts (UTC), frequency
REAL_FILES = [
    ("GOOG_1d_2004-08-19_2013-03-01.csv", "bars", {}, 2148, "2004-08-19 13:30", "1d"),
    ("FESX_future_1m_2006-01-02_2006-02-27.csv", "bars", {"timezone": "Europe/Berlin"}, 30889,
     "2006-01-02 08:01", "1min"),
    ("6EH4_CME_EURfut_1m_2024-01.csv.gz", "bars", {}, 29996, "2024-01-01 23:01", "1min"),
    ("EURUSD_1h_2017-04-19_2018-02-07.csv", "bars", {}, 5000, "2017-04-19 09:00", "1h"),
    ("ESU4_NQU4_CME_ohlcv-1m_databento_2024-07-01T2340_0010.csv", "bars", {}, 60, "2024-07-01 23:40",
     "1min"),
    ("ESU4_CME_trades_databento_2024-07-01T2358_0002.csv", "trades", {"keep_extra": True}, 120,
     "2024-07-01 23:58:01.218218853", None),
    ("ESU4_CME_mbp1_top_of_book_databento_2024-07-01T2358_0002.csv", "quotes", {"keep_extra": True},
     2288, "2024-07-01 23:58:01.218218853", None),
    ("EURUSD_ticks_quotes_HistData_2020-01-01.csv", "quotes", {}, 9500, "2020-01-01 22:00:00.065", None),
]
SHIPPED = [
    ("AAPL_1d_2012-2014_with_div_split.csv", "bars", {}, 754, "2012-01-03 14:30", "1d"),
    ("QUANDL_WIKI_sample_1d_2014_multi_ticker_adj.csv", "bars", {}, 916, "2014-01-02 14:30", "1d"),
    ("BTC-PERP_1m_2021-12-31_2022-02-01.parquet", "bars", {}, 45031, "2021-12-31 23:01", "1min"),
    ("BTCUSDT_binance_spot_trades_2024-08-08.parquet", "trades", {"keep_extra": True}, 9757,
     "2024-08-08 23:54:15.342", None),
    ("BTCUSDT_binance_spot_bookticker_quotes_2024-08-08.parquet", "quotes", {}, 28040,
     "2024-08-08 23:54:14.087891268", None),
]


@pytest.mark.parametrize(("name", "kind", "options", "rows", "first", "freq"), REAL_FILES + SHIPPED)
def test_real_files_parse(data_dir, check_frame, name, kind, options, rows, first, freq):
    folder = data_dir if (data_dir / name).exists() else SAMPLE
    cls = ParquetDataSource if name.endswith(".parquet") else CSVDataSource
    src = cls(folder / name, **options)
    df = src.frame(kind)
    check_frame(df, kind)
    assert df.height == rows
    assert df.select(pl.col("ts").min() == utc(first)).item()
    if freq:
        assert {str(src.frequency_of(s)) for s in src.symbols()} == {freq}


def test_daily_rows_are_sessions_with_actions():
    src = CSVDataSource(SAMPLE / "AAPL_1d_2012-2014_with_div_split.csv")
    bars = src.fetch_sync("AAPL", "2012-11-23", "2012-11-27")
    # 2012-11-23 is an early close (13:00 New York = 18:00 UTC)
    assert bars["ts"].to_list()[0].isoformat() == "2012-11-23T14:30:00+00:00"
    assert bars["ts_end"].to_list()[0].isoformat() == "2012-11-23T18:00:00+00:00"
    actions = src.fetch_kind_sync("actions", "AAPL", "2014-01-01", "2015-01-01")
    split = actions.filter(pl.col("action") == "split")
    assert split["value"].to_list() == [7.0]
    assert split["ts"].to_list()[0].isoformat() == "2014-06-09T13:30:00+00:00"
    assert actions.filter(pl.col("action") == "dividend").height == 4


def test_restored_raw_prices_match_quandl_raw():
    restored = CSVDataSource(SAMPLE / "AAPL_1d_2012-2014_with_div_split.csv", adjusted="splits")
    quandl = read_bars(SAMPLE / "QUANDL_WIKI_sample_1d_2014_multi_ticker_adj.csv")
    raw = restored.fetch_sync("AAPL", "2014-01-01", "2015-01-01")
    joined = raw.join(quandl.filter(pl.col("symbol") == "AAPL"), on=["symbol", "ts"])
    assert joined.height == 252
    assert joined.select(((pl.col("close") / pl.col("close_right") - 1).abs() < 1e-4).all()).item()
    dividends = restored.fetch_kind_sync("actions", "AAPL", "2012-08-01", "2012-09-01")
    assert dividends["value"].to_list() == [2.65]


def test_quandl_long_format_gives_symbols_and_actions():
    src = CSVDataSource(SAMPLE / "QUANDL_WIKI_sample_1d_2014_multi_ticker_adj.csv")
    assert src.symbols() == ["AAPL", "BRK_A", "MSFT", "ZEN"]
    around = src.fetch_sync(["AAPL"], "2014-06-05", "2014-06-10")
    assert around["close"].to_list() == [647.35, 645.57, 93.7]
    actions = src.fetch_kind_sync("actions", ["AAPL", "MSFT"], "2014-01-01", "2015-01-01")
    assert actions.filter(pl.col("action") == "split")["value"].to_list() == [7.0]
    assert set(actions["symbol"]) == {"AAPL", "MSFT"}


def test_tick_extras_and_timezones(data_dir):
    trades = read_ticks(SAMPLE / "BTCUSDT_binance_spot_trades_2024-08-08.parquet", "trades",
                        symbol="BTCUSDT", keep_extra=True)
    assert trades.columns[:7] == ["symbol", "ts", "price", "size", "exchange", "conditions", "id"]
    assert set(trades["aggressor_side"].unique()) == {"BUY", "SELL"}
    assert trades["buyer_is_maker"].dtype == pl.Boolean
    assert trades["id"][0] == "3735683259"
    quotes = read_ticks(data_dir / "EURUSD_ticks_quotes_HistData_2020-01-01.csv", "quotes")
    # 17:00:00.065 New York standard time (UTC-5) is 22:00:00.065 UTC
    assert quotes["ts"][0].isoformat() == "2020-01-01T22:00:00.065000+00:00"
    assert quotes["bid_size"].null_count() == quotes.height


def test_layouts_yahoo_backtrader_epoch_and_stamp(tmp_path: Path, check_frame):
    yahoo = tmp_path / "SPY.csv"
    yahoo.write_text("Date,Open,High,Low,Close,Adj Close,Volume\n"
                     "2024-01-02,472.16,473.67,470.49,472.65,465.2,123623700\n"
                     "2024-01-03,470.43,471.19,468.17,468.79,461.4,103585900\n")
    bars = read_bars(yahoo, keep_extra=True)
    check_frame(bars, "bars")
    assert bars["symbol"].to_list() == ["SPY", "SPY"]
    assert bars["adj_close"].to_list() == [465.2, 461.4]
    backtrader = tmp_path / "bt.txt"
    backtrader.write_text("Date,Open,High,Low,Close,Volume,OpenInterest\n"
                          "2024-01-02,10,11,9,10.5,100,0\n2024-01-03,10.5,12,10,11,200,0\n")
    assert read_bars(backtrader, symbol="BT")["close"].to_list() == [10.5, 11.0]
    epoch = tmp_path / "X_epoch.csv"
    epoch.write_text("timestamp,open,high,low,close,volume\n"
                     "1704205800000,1,2,0.5,1.5,10\n1704205860000,1.5,2,1,1.8,5\n")
    start = read_bars(epoch)
    assert start["ts"][0].isoformat() == "2024-01-02T14:30:00+00:00"
    end = read_bars(epoch, stamp="end")
    assert end["ts_end"][0].isoformat() == "2024-01-02T14:30:00+00:00"
    assert end["ts"][0].isoformat() == "2024-01-02T14:29:00+00:00"
    naive_ny = tmp_path / "Y.csv"
    naive_ny.write_text("datetime,open,high,low,close,volume\n07/01/2024 09:30,1,2,0.5,1.5,10\n"
                        "07/01/2024 09:35,1,2,0.5,1.5,10\n")
    ny = read_bars(naive_ny, timezone="America/New_York", ts_format="%m/%d/%Y %H:%M")
    assert ny["ts"][0].isoformat() == "2024-07-01T13:30:00+00:00"
    assert str(ny["ts_end"][0] - ny["ts"][0]) == "0:05:00"


def test_non_session_dates_raise_or_drop(tmp_path: Path):
    path = tmp_path / "W.csv"
    path.write_text("date,open,high,low,close,volume\n2024-01-05,1,2,0.5,1.5,10\n"
                    "2024-01-06,1,2,0.5,1.5,10\n2024-01-08,1,2,0.5,1.5,10\n")
    with pytest.raises(DataFormatError, match=r"line 3.*XNYS.*2024-01-06"):
        read_bars(path)
    with pytest.warns(UserWarning, match="dropped"):
        assert read_bars(path, on_non_session="drop").height == 2
    assert read_bars(path, calendar="24/7").height == 3


def test_fetch_filters_range_symbols_and_frequency(data_dir):
    src = CSVDataSource(data_dir / "ESU4_NQU4_CME_ohlcv-1m_databento_2024-07-01T2340_0010.csv",
                        calendar="CMES")
    got = src.fetch_sync(["NQU4"], "2024-07-01T23:45:00Z", "2024-07-01T23:50:00Z", "1min")
    assert got.height == 5 and set(got["symbol"]) == {"NQU4"}
    with pytest.raises(SymbolNotFoundError, match=r"ZZZ.*known: ESU4, NQU4"):
        src.fetch_sync(["ZZZ"], "2024-07-01", "2024-07-03", "1min")
    with pytest.raises(InvalidRangeError):
        src.fetch_sync(["ESU4"], "2024-07-02", "2024-07-01", "1min")
    with pytest.raises(UnsupportedDataError, match="finer"):
        CSVDataSource(data_dir / "EURUSD_1h_2017-04-19_2018-02-07.csv").fetch_sync(
            "EURUSD", "2017-05-01", "2017-05-02", "5min")
    if HAS_AGGREGATE:
        five = src.fetch_sync(["ESU4"], "2024-07-01", "2024-07-03", "5min")
        assert five["volume"].sum() == src.frame("bars").filter(pl.col("symbol") == "ESU4")["volume"].sum()
    else:
        with pytest.raises(UnsupportedDataError, match="aggregate"):
            src.fetch_sync(["ESU4"], "2024-07-01", "2024-07-03", "5min")


def test_folder_with_overlapping_files_is_refused(tmp_path: Path):
    for name in ("AAPL_a.csv", "AAPL_b.csv"):
        (tmp_path / name).write_text("date,open,high,low,close,volume\n2024-01-05,1,2,0.5,1.5,10\n")
    with pytest.raises(DataFormatError, match="overlap"):
        CSVDataSource(tmp_path).frame("bars")


def test_parquet_roundtrip_and_identity(tmp_path: Path):
    bars = read_bars(SAMPLE / "MSFT_1d_2012-2014_with_div_split.csv")
    out = tmp_path / "MSFT.parquet"
    bars.write_parquet(out)
    src = ParquetDataSource(tmp_path)
    assert src.frame("bars").equals(bars)
    assert get_source("parquet", path=out).frame("bars").equals(bars)
    before = src.cache_identity()
    bars.head(10).write_parquet(out)
    assert ParquetDataSource(tmp_path).cache_identity() != before


# ---------------------------------------------------------------------------------------------
# bad input


GOOD = "date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10\n2024-01-03,1,2,0.5,1.5,10\n"


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (GOOD + "2024-01-04,1,2,0.5", r"X\.csv, column 'close', line 4: missing value"),
        (GOOD.replace("2024-01-03", "2024-13-03"),
         r"column 'date', line 3: cannot parse timestamp '2024-13-03'"),
        (GOOD.replace(",10\n2024-01-03", ",ten\n2024-01-03"),
         r"column 'volume', line 2: 'ten' is not a number"),
        (GOOD.replace("close,", "last_px,"), r"missing column\(s\) close"),
        ("", "file is empty"),
        ("date,open,high,low,close,volume\n", "no data rows"),
        (GOOD + "2024-01-04,1,2,0.5,1.5,10,7,8\n", "malformed CSV"),
    ],
    ids=["truncated", "bad-timestamp", "bad-number", "missing-column", "empty", "header-only", "ragged"],
)
def test_bad_input_names_file_column_and_line(tmp_path: Path, content: str, match: str):
    path = tmp_path / "X.csv"
    path.write_text(content)
    with pytest.raises(DataFormatError, match=match):
        read_bars(path)


def test_truncated_gzip_and_bad_options(tmp_path: Path):
    path = tmp_path / "Z.csv.gz"
    path.write_bytes(gzip.compress(GOOD.encode() * 50)[:-20])
    with pytest.raises(DataFormatError, match="truncated or corrupt"):
        read_bars(path)
    with pytest.raises(ConfigError, match="unknown option"):
        CSVDataSource(tmp_path, colums={})
    with pytest.raises(ConfigError, match="stamp"):
        CSVDataSource(tmp_path, stamp="middle")
    with pytest.raises(DataFormatError, match="no such file"):
        CSVDataSource(tmp_path / "missing.csv")
