"""The shipped sample: every symbol loads, raw prices and actions are consistent, errors are clear."""

from __future__ import annotations

import polars as pl
import pytest

from backtape.errors import SymbolNotFoundError
from backtape.sources import SampleDataSource, get_source


@pytest.fixture(scope="module")
def sample() -> SampleDataSource:
    return get_source("sample")


def test_describe_lists_every_symbol_and_kind(sample):
    table = sample.describe()
    assert set(zip(table["symbol"], table["kind"], strict=True)) == {
        *((s, "bars") for s in ("AAPL", "IBM", "KO", "MSFT", "BRK_A", "ZEN", "BTC-PERP")),
        ("BTCUSDT", "trades"), ("BTCUSDT", "quotes"),
    }
    rows = dict(zip(table["symbol"] + table["kind"], table["rows"], strict=True))
    assert rows["AAPLbars"] == 754 and rows["BTC-PERPbars"] == 45031 and rows["BTCUSDTtrades"] == 9757
    assert sample.calendar_of("BTC-PERP") == "24/7"
    assert sample.list_symbols("quotes") == ["BTCUSDT"]


def test_every_kind_is_canonical(sample, check_frame):
    bars = sample.fetch_sync(["AAPL", "IBM", "KO", "MSFT"], "2012-01-01", "2015-01-01")
    check_frame(bars, "bars")
    assert bars.height == 4 * 754
    check_frame(sample.fetch_sync("BTC-PERP", "2022-01-01", "2022-01-02", "1min"), "bars")
    trades = sample.fetch_kind_sync("trades", "BTCUSDT", "2024-08-08", "2024-08-10")
    check_frame(trades, "trades")
    assert "aggressor_side" in trades.columns
    check_frame(sample.fetch_kind_sync("quotes", "BTCUSDT", "2024-08-08", "2024-08-10"), "quotes")


def test_raw_prices_and_actions_around_the_aapl_split(sample):
    bars = sample.fetch_sync("AAPL", "2014-06-05", "2014-06-10")
    assert bars["close"].to_list() == [647.35, 645.57, 93.699997]
    actions = sample.fetch_kind_sync("actions", ["AAPL", "KO"], "2012-01-01", "2015-01-01")
    splits = actions.filter(pl.col("action") == "split")
    assert list(zip(splits["symbol"], splits["value"], strict=True)) == [("AAPL", 7.0), ("KO", 2.0)]
    # raw dividends: 2.65 per pre-split AAPL share, 0.47 after the split
    aapl = actions.filter((pl.col("symbol") == "AAPL") & (pl.col("action") == "dividend"))["value"]
    assert aapl[0] == 2.65 and aapl[-1] == 0.47


def test_unknown_symbol_names_known_ones(sample):
    with pytest.raises(SymbolNotFoundError, match=r"'TSLA'.*AAPL, BRK_A, BTC-PERP"):
        sample.fetch_sync("TSLA", "2014-01-01", "2015-01-01")
    with pytest.raises(SymbolNotFoundError, match="no trades for symbol 'AAPL'"):
        sample.fetch_kind_sync("trades", "AAPL", "2014-01-01", "2015-01-01")
    assert sample.fetch_kind_sync("actions", "BTCUSDT", "2024-01-01", "2025-01-01").height == 0


def test_metadata_is_honest(sample):
    meta = sample.get_metadata()
    assert meta.capabilities.adjusted is False and meta.capabilities.corporate_actions
    assert "split-adjusted" in meta.details["files"]["AAPL_1d_2012-2014_with_div_split.csv"]["notes"]
    assert sample.cache_identity().startswith("sample:")
