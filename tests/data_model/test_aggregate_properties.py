"""Property tests of session-aware aggregation on random minute data over real calendars.

Generated data: 1-2 symbols, 1-3 sessions of 2024 (early closes, DST days, CME sessions that open
the previous UTC day, Hong Kong's lunch break, 24/7), a random share of the minutes from 30 minutes
before the open to 30 after the close, integer volumes (so sums are exact).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtape._time import NS_PER_MINUTE, to_ns
from backtape.aggregation import aggregate
from backtape.calendars import get_calendar
from backtape.schema import TS

CALENDARS = ["XNYS", "CMES", "XHKG", "24/7"]
SPECIAL_DAYS = ["2024-03-08", "2024-03-11", "2024-07-03", "2024-11-01", "2024-11-04", "2024-11-29"]


@st.composite
def minute_data(draw: st.DrawFn) -> tuple[str, pl.DataFrame]:
    name = draw(st.sampled_from(CALENDARS))
    cal = get_calendar(name)
    lo, hi = np.searchsorted(cal.labels, [to_ns("2024-01-01"), to_ns("2025-01-01")])
    special = [cal.session_for_label(to_ns(d)) for d in SPECIAL_DAYS]
    pool = st.one_of(st.integers(int(lo), int(hi) - 1), st.sampled_from([i for i in special if i >= 0]))
    sessions = sorted(set(draw(st.lists(pool, min_size=1, max_size=3))))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    share = draw(st.floats(0.05, 1.0))
    pad = 30 * NS_PER_MINUTE
    minutes = np.unique(np.concatenate(
        [np.arange(cal.opens[i] - pad, cal.closes[i] + pad, NS_PER_MINUTE) for i in sessions]))
    frames = []
    for symbol in ["AAA", "BBB"][: draw(st.integers(1, 2))]:
        ts = minutes[rng.random(minutes.size) < share]
        if ts.size == 0:
            ts = minutes[:1]
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, ts.size)))
        open_ = close * np.exp(rng.normal(0, 0.001, ts.size))
        frames.append(pl.DataFrame({
            "symbol": symbol, "ts": ts, "ts_end": ts + NS_PER_MINUTE, "open": open_,
            "high": np.maximum(open_, close) * (1 + rng.random(ts.size) / 1000),
            "low": np.minimum(open_, close) * (1 - rng.random(ts.size) / 1000), "close": close,
            "volume": rng.integers(0, 100, ts.size).astype(np.float64),
        }))
    return name, pl.concat(frames).with_columns(pl.col("ts", "ts_end").cast(TS))


def inside_sessions(name: str, df: pl.DataFrame) -> pl.DataFrame:
    """Rows inside a session and outside its break: what session-anchored bars are made of."""
    cal = get_calendar(name)
    ts = df.get_column("ts").dt.epoch("ns").to_numpy()
    idx = cal.session_index(ts)
    i = np.clip(idx, 0, None)
    ok = (idx >= 0) & ~((ts >= cal.break_starts[i]) & (ts < cal.break_ends[i]))
    return df.filter(pl.Series(ok))


def assert_bars_equal(left: pl.DataFrame, right: pl.DataFrame) -> None:
    """Equal bars; vwap compared to a relative 1e-12 since sums of sums round differently."""
    assert left.drop("vwap").equals(right.drop("vwap"))
    assert left.get_column("vwap").is_null().equals(right.get_column("vwap").is_null())
    lv, rv = (f.get_column("vwap").drop_nulls().to_list() for f in (left, right))
    assert lv == pytest.approx(rv, rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(minute_data())
def test_aggregation_composes(data: tuple[str, pl.DataFrame]) -> None:
    name, df = data
    direct = aggregate(df, "15min", name)
    assert_bars_equal(aggregate(aggregate(df, "5min", name), "15min", name), direct)
    assert_bars_equal(aggregate(aggregate(df, "1h", name), "1d", name), aggregate(df, "1d", name))
    assert_bars_equal(aggregate(direct, "1w", name), aggregate(df, "1w", name))


@settings(max_examples=40, deadline=None)
@given(minute_data(), st.sampled_from(["5min", "15min", "1h", "4h", "1d", "1w"]))
def test_values_and_session_bounds(data: tuple[str, pl.DataFrame], timeframe: str) -> None:
    name, df = data
    inside = inside_sessions(name, df)
    out = aggregate(df, timeframe, name)
    assert out.get_column("volume").sum() == inside.get_column("volume").sum()
    # each input row belongs to the output bar of its symbol that starts at or before it
    joined = inside.sort("ts").join_asof(
        out.sort("ts").select("symbol", "ts", pl.col("ts").alias("bar_ts"), "ts_end"),
        on="ts", by="symbol", strategy="backward", suffix="_bar",
    ).sort("symbol", "ts")
    assert (joined.get_column("ts") < joined.get_column("ts_end_bar")).all()  # it really is inside
    expected = joined.group_by("symbol", "bar_ts", maintain_order=True).agg(
        pl.col("open").first(), pl.col("high").max(), pl.col("low").min(), pl.col("close").last(),
        pl.col("volume").sum())
    actual = out.select("symbol", pl.col("ts").alias("bar_ts"), "open", "high", "low", "close", "volume")
    assert actual.equals(expected)  # also: no empty bar was produced
    cal = get_calendar(name)
    start = out.get_column("ts").dt.epoch("ns").to_numpy()
    end = out.get_column("ts_end").dt.epoch("ns").to_numpy()
    idx = cal.session_index(start)
    assert (idx >= 0).all() and (end > start).all()
    if timeframe == "1w":
        return
    assert (cal.session_index(end - 1) == idx).all()  # never crosses a session boundary
    assert (end <= cal.closes[idx]).all()
    if timeframe != "1d":  # intraday bars never span a break
        before = start < cal.break_starts[idx]
        assert (end[before] <= cal.break_starts[idx][before]).all()
        assert (start[~before] >= cal.break_ends[idx][~before]).all()
