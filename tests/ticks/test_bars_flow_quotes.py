"""Bars from trades, tick flow and quote statistics, each against plain loops or vendor figures."""

from __future__ import annotations

import statistics

import polars as pl
import pytest

from backtape.errors import DataValidationError, TimeframeError
from backtape.schema import BAR_SCHEMA, conform
from backtape.ticks import classify_trades, quote_stats, tick_bars, tick_flow, time_bars, volume_bars

NS_MIN = 60_000_000_000


def _trades(rows):
    df = pl.DataFrame(rows, schema={"symbol": pl.String, "ts": pl.Int64, "price": pl.Float64,
                                    "size": pl.Float64}, orient="row")
    return conform(df, "trades")


def _bars_from_groups(groups: list[list[tuple[str, int, float, float]]]) -> list[tuple]:
    """(symbol, open, high, low, close, volume, vwap, n) of each group of trade rows, by loops."""
    out = []
    for g in groups:
        prices = [r[2] for r in g]
        vol = sum(r[3] for r in g)
        out.append((g[0][0], prices[0], max(prices), min(prices), prices[-1], vol,
                    sum(r[2] * r[3] for r in g) / vol, len(g)))
    return out


_ROWS = [("A", 1, 10.0, 2.0), ("A", 2, 11.0, 1.0), ("A", 3, 9.0, 4.0), ("A", 4, 10.5, 3.0),
         ("A", 5, 10.0, 1.0), ("B", 1, 5.0, 6.0), ("B", 2, 6.0, 1.0)]
_COLS = ["symbol", "open", "high", "low", "close", "volume", "vwap", "transactions"]


def test_tick_bars_group_n_trades_per_symbol_and_drop_the_unfinished_one() -> None:
    bars = tick_bars(_trades(_ROWS), 2)
    assert bars.schema == BAR_SCHEMA
    assert bars.select(_COLS).rows() == _bars_from_groups([_ROWS[0:2], _ROWS[2:4], _ROWS[5:7]])
    assert bars.select(pl.col("ts").dt.epoch("ns"), pl.col("ts_end").dt.epoch("ns")).rows() == [
        (1, 3), (3, 5), (1, 3)]  # ts_end: one ns after the last trade, when the bar is complete
    partial = tick_bars(_trades(_ROWS), 2, include_partial=True)
    assert partial.height == 4


def test_volume_bars_close_on_the_trade_reaching_the_threshold() -> None:
    bars = volume_bars(_trades(_ROWS), 5.0, include_partial=True)
    # A: 2+1+4 = 7 >= 5 closes; 3+1 = 4 left open; B: 6 >= 5 closes; 1 left open
    expected = _bars_from_groups([_ROWS[0:3], _ROWS[3:5], _ROWS[5:6], _ROWS[6:7]])
    assert bars.select(_COLS).rows() == expected
    assert volume_bars(_trades(_ROWS), 5.0).select(_COLS).rows() == [expected[0], expected[2]]
    with pytest.raises(DataValidationError):
        volume_bars(_trades(_ROWS), 0.0)


def test_time_bars_equal_databento_vendor_minute_bars(es_raw, es_vendor_bars) -> None:
    trades, _ = es_raw
    ours = time_bars(conform(trades.drop("truth"), "trades"), "1min")
    vendor = es_vendor_bars
    # the trade file covers 23:58:01 .. 00:01:52, so minutes 23:58 .. 00:01 are complete
    joined = ours.join(vendor, on=["symbol", "ts"], suffix="_v")
    assert joined.height == 4
    for c in ("open", "high", "low", "close", "volume"):
        assert joined[c].to_list() == joined[f"{c}_v"].to_list(), c
    assert (joined["ts_end"] - joined["ts"]).dt.total_seconds().to_list() == [60] * 4


def test_time_bars_reject_weekly_windows() -> None:
    with pytest.raises(TimeframeError):
        time_bars(_trades(_ROWS), "1w")


def test_tick_flow_matches_loop_on_binance(btc_raw) -> None:
    raw, quotes = btc_raw
    offset = int((raw["ts"].dt.epoch("ns") - raw["recv_ts"].dt.epoch("ns")).max())  # type: ignore[arg-type]
    aligned = quotes.with_columns(pl.col("ts") + pl.duration(nanoseconds=offset))
    classified = classify_trades(conform(raw.drop("truth", "recv_ts"), "trades"), aligned)
    flow = tick_flow(classified, "1min")
    expected: dict[int, list[float]] = {}
    for ts, size, side in classified.select(pl.col("ts").dt.epoch("ns"), "size", "side").rows():
        acc = expected.setdefault(ts - ts % NS_MIN, [0.0, 0.0, 0.0, 0])
        acc[0 if side > 0 else 1 if side < 0 else 2] += size
        acc[3] += 1
    got = flow.select(pl.col("ts").dt.epoch("ns"), "buy_volume", "sell_volume", "unknown_volume",
                      "trades").rows()
    want = [(k, *v) for k, v in sorted(expected.items())]
    assert [(r[0], r[4]) for r in got] == [(r[0], r[4]) for r in want]
    # Polars sums pairwise, the loop left to right: equal up to rounding
    assert [r[1:4] for r in got] == [pytest.approx(r[1:4], rel=1e-12) for r in want]
    imb = flow.select(((pl.col("buy_volume") - pl.col("sell_volume")) /
                       (pl.col("buy_volume") + pl.col("sell_volume")) - pl.col("imbalance")).abs().max())
    assert imb.item() < 1e-12
    assert (flow["ts_end"] - flow["ts"]).dt.total_seconds().unique().to_list() == [60]


def test_quote_stats_on_histdata_eurusd_match_loops(eurusd_quotes) -> None:
    stats = quote_stats(eurusd_quotes)
    rows = eurusd_quotes.select(pl.col("ts").dt.epoch("ns"), "bid", "ask").rows()
    spreads = [a - b for _, b, a in rows if b > 0 and a >= b]
    crossed = sum(1 for _, b, a in rows if b > a)
    lives = [(rows[i + 1][0] - rows[i][0], rows[i][2] - rows[i][1]) for i in range(len(rows) - 1)
             if rows[i][1] > 0 and rows[i][2] >= rows[i][1]]
    twa = sum(life * sp for life, sp in lives) / sum(life for life, _ in lives)
    s = stats.row(0, named=True)
    assert s["quotes"] == len(rows) == 9500
    assert s["valid"] == len(spreads)
    assert s["crossed"] == crossed
    assert s["spread_mean"] == pytest.approx(statistics.fmean(spreads), rel=1e-12)
    assert s["spread_median"] == pytest.approx(statistics.median(spreads), rel=1e-12)
    assert s["spread_min"] == min(spreads) and s["spread_max"] == max(spreads)
    assert s["spread_twa"] == pytest.approx(twa, rel=1e-9)
    # HistData's EURUSD is quoted with a spread of well under 10 pips at the 2020 new-year open
    assert 0 < s["spread_median"] < 0.001


def test_quote_stats_per_window_cap_lifetimes_at_the_window_end() -> None:
    quotes = conform(pl.DataFrame({
        "symbol": ["X"] * 3, "ts": [0, NS_MIN // 2, NS_MIN + 1],
        "bid": [1.0, 1.0, 1.0], "ask": [1.2, 1.4, 1.1], "bid_size": [1.0] * 3, "ask_size": [1.0] * 3,
    }), "quotes")
    per_min = quote_stats(quotes, "1min")
    # minute 0: 0.2 for 30 s then 0.4 for 30 s (capped at the minute end); minute 1: last quote only
    assert per_min["spread_twa"][0] == pytest.approx(0.3)
    assert per_min["spread_twa"][1] is None
    assert per_min["quotes"].to_list() == [2, 1]
