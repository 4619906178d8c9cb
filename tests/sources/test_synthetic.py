"""Synthetic source: range-independent, seeded, market-like, consistent across frequencies and ticks."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtape.calendars import get_calendar
from backtape.errors import ConfigError, InvalidRangeError
from backtape.sources import SyntheticDataSource

XNYS = SyntheticDataSource(seed=3)
CRYPTO = SyntheticDataSource(seed=3, calendar="24/7")
BASE = dt.datetime(2024, 3, 4, tzinfo=dt.UTC)


@settings(max_examples=25, deadline=None)
@given(
    a=st.integers(0, 20 * 24 * 60), b=st.integers(1, 5 * 24 * 60),
    c=st.integers(0, 20 * 24 * 60), d=st.integers(1, 5 * 24 * 60),
    freq=st.sampled_from(["1min", "5min", "1h", "1d"]),
    crypto=st.booleans(),
)
def test_overlapping_requests_agree(a, b, c, d, freq, crypto):
    src = CRYPTO if crypto else XNYS
    r1 = (BASE + dt.timedelta(minutes=a), BASE + dt.timedelta(minutes=a + b))
    r2 = (BASE + dt.timedelta(minutes=c), BASE + dt.timedelta(minutes=c + d))
    one, two = src.fetch_sync("ACME", *r1, freq), src.fetch_sync("ACME", *r2, freq)
    lo, hi = max(r1[0], r2[0]), min(r1[1], r2[1])
    if lo < hi:
        in_both = (pl.col("ts") >= lo) & (pl.col("ts") < hi)
        assert one.filter(in_both).equals(two.filter(in_both))


def test_seed_and_symbol_change_the_data_and_nothing_else_does():
    args = ("ACME", "2024-03-04", "2024-03-09", "5min")
    assert SyntheticDataSource(seed=3).fetch_sync(*args).equals(XNYS.fetch_sync(*args))
    assert not SyntheticDataSource(seed=4).fetch_sync(*args).equals(XNYS.fetch_sync(*args))
    other = XNYS.fetch_sync("ZETA", *args[1:])
    assert not other.drop("symbol").equals(XNYS.fetch_sync(*args).drop("symbol"))


def test_bars_are_market_like_and_on_sessions(check_frame):
    bars = XNYS.fetch_sync(["A", "B"], "2023-01-01", "2024-01-01", "1d")
    check_frame(bars, "bars")
    assert bars.height == 2 * 250
    cal = get_calendar("XNYS")
    opens = bars["ts"].dt.epoch("ns").to_numpy()
    assert np.isin(opens, cal.opens).all()
    vol = bars.filter(pl.col("symbol") == "A").select(pl.col("close").log().diff().std() * 252**0.5).item()
    assert 0.1 < vol < 0.6
    minutes = XNYS.fetch_sync("A", "2023-07-03", "2023-07-04", "1min")  # early close at 13:00
    assert minutes.height == 210
    assert (cal.session_index(minutes["ts"].dt.epoch("ns").to_numpy()) >= 0).all()


@pytest.mark.parametrize(("freq", "src"), [("5min", XNYS), ("1h", XNYS), ("1d", XNYS), ("1w", XNYS),
                                           ("4h", CRYPTO), ("1d", CRYPTO)])
def test_coarser_bars_are_exact_aggregates_of_minutes(freq, src):
    coarse = src.fetch_sync("ACME", "2024-03-04", "2024-03-16", freq)
    minutes = src.fetch_sync("ACME", coarse["ts"].min(), coarse["ts_end"].max(), "1min")
    joined = coarse.join_where(minutes, pl.col("ts_right") >= pl.col("ts"),
                               pl.col("ts_right") < pl.col("ts_end"))
    rebuilt = joined.sort("ts_right").group_by("ts", maintain_order=True).agg(
        pl.col("open_right").first().alias("open"), pl.col("high_right").max().alias("high"),
        pl.col("low_right").min().alias("low"), pl.col("close_right").last().alias("close"),
        pl.col("volume_right").sum().alias("volume"),
    ).sort("ts")
    assert coarse.select(rebuilt.columns).equals(rebuilt)


def test_trades_rebuild_minute_bars_and_quotes_bracket_them(check_frame):
    start, end = "2024-03-04T14:30:00Z", "2024-03-04T15:30:00Z"
    bars = XNYS.fetch_sync("ACME", start, end, "1min")
    trades = XNYS.fetch_kind_sync("trades", "ACME", start, end)
    check_frame(trades, "trades")
    assert trades.height == 60 * XNYS.trades_per_minute
    rebuilt = trades.group_by(pl.col("ts").dt.truncate("1m"), maintain_order=True).agg(
        pl.col("price").first().alias("open"), pl.col("price").max().alias("high"),
        pl.col("price").min().alias("low"), pl.col("price").last().alias("close"),
        pl.col("size").sum().alias("volume"))
    assert rebuilt.select("open", "high", "low", "close").equals(bars.select("open", "high", "low", "close"))
    assert np.allclose(rebuilt["volume"].to_numpy(), bars["volume"].to_numpy())
    quotes = XNYS.fetch_kind_sync("quotes", "ACME", start, end)
    check_frame(quotes, "quotes")
    q = quotes.join(bars.select(pl.col("ts").alias("m"), "low", "high"),
                    left_on=pl.col("ts").dt.truncate("1m"), right_on="m")
    mid = (q["bid"] + q["ask"]) / 2
    assert ((q["bid"] < q["ask"]) & (mid >= q["low"] - 0.02) & (mid <= q["high"] + 0.02)).all()
    inner = XNYS.fetch_kind_sync("trades", "ACME", "2024-03-04T14:40:10Z", "2024-03-04T14:41:20Z")
    window = pl.col("ts").is_between(inner["ts"].min(), inner["ts"].max())
    assert inner.equals(trades.filter(window))


def test_bad_arguments():
    with pytest.raises(InvalidRangeError):
        XNYS.fetch_sync("A", "2024-01-02", "2024-01-01")
    with pytest.raises(ConfigError):
        SyntheticDataSource(base_price=-1)
    assert XNYS.fetch_sync("A", "2024-01-06", "2024-01-07", "1d").height == 0  # a Saturday
    assert XNYS.cache_identity() != SyntheticDataSource(seed=4).cache_identity()
