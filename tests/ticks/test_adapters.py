"""CumDeltaAdapter and TickFlowAdapter through a real DataPortal on the Binance sample."""

from __future__ import annotations

import polars as pl
import pytest

from backtape._time import NS_PER_MINUTE
from backtape.calculations.ticks import CumDeltaAdapter, TickFlowAdapter
from backtape.portal import DataPortal
from backtape.sources.memory import FrameDataSource
from backtape.ticks import classify_trades, time_bars


@pytest.fixture(scope="module")
def btc_portal(btc_raw):
    raw, quotes = btc_raw
    offset = int((raw["ts"].dt.epoch("ns") - raw["recv_ts"].dt.epoch("ns")).max())  # type: ignore[arg-type]
    trades = raw.drop("truth", "recv_ts")
    aligned = quotes.with_columns(pl.col("ts") + pl.duration(nanoseconds=offset)).sort("ts")
    source = FrameDataSource(bars=time_bars(trades, "1min"), trades=trades, quotes=aligned, frequency="1min",
                             calendar_name="24/7")
    first = int(trades["ts"].dt.epoch("ns").min())  # type: ignore[arg-type]
    return source, trades, first


def _loop_delta(trades: pl.DataFrame, sides: list[int]) -> tuple[float, float, float]:
    buy = sell = 0.0
    for size, side in zip(trades["size"].to_list(), sides, strict=True):
        if side > 0:
            buy += size
        elif side < 0:
            sell += size
    return buy, sell, buy - sell


def test_cum_delta_adapter_reads_only_the_window_before_entry(btc_portal, btc_raw) -> None:
    source, trades, first = btc_portal
    entry = first + 4 * NS_PER_MINUTE
    adapter = CumDeltaAdapter(lookback_minutes=2)
    assert {r.kind for r in adapter.get_data_requirements()} == {"trades", "quotes"}
    portal = DataPortal(source)
    portal.load_data(first, first + 6 * NS_PER_MINUTE, ["BTCUSDT"], [adapter])
    adapter.initialize("BTCUSDT")
    portal.set_clock(entry)
    got = adapter.compute(portal, entry)

    ts = pl.col("ts").dt.epoch("ns")
    window = trades.filter((ts >= entry - 2 * NS_PER_MINUTE) & (ts <= entry))
    assert got["trades"] == window.height > 100
    direct = portal.get_ticks("trades", "BTCUSDT", entry - 2 * NS_PER_MINUTE, entry)
    assert direct.height == window.height
    # the same numbers from the raw frames cut to the window, without the portal
    quotes = source.quotes.filter((ts >= entry - 2 * NS_PER_MINUTE) & (ts <= entry))
    sides = classify_trades(window, quotes)["side"].to_list()
    buy, sell, net = _loop_delta(window, sides)
    assert (got["buy_volume"], got["sell_volume"]) == (pytest.approx(buy), pytest.approx(sell))
    assert got["cum_delta"] == pytest.approx(net)
    # and the exchange's aggressor flag agrees with the adapter's classification trade by trade
    truth = btc_raw[0].filter((ts >= entry - 2 * NS_PER_MINUTE) & (ts <= entry))["truth"].to_list()
    assert sum(a == b for a, b in zip(sides, truth, strict=True)) / len(truth) > 0.98


def test_tick_flow_adapter_uses_trades_only_by_default(btc_portal) -> None:
    source, trades, first = btc_portal
    adapter = TickFlowAdapter(lookback_minutes=1)
    assert [r.kind for r in adapter.get_data_requirements()] == ["trades"]
    portal = DataPortal(source)
    portal.load_data(first, first + 6 * NS_PER_MINUTE, ["BTCUSDT"], [adapter])
    adapter.initialize("BTCUSDT")
    entry = first + 3 * NS_PER_MINUTE
    portal.set_clock(entry)
    got = adapter.compute(portal, entry)
    ts = pl.col("ts").dt.epoch("ns")
    window = trades.filter((ts >= entry - NS_PER_MINUTE) & (ts <= entry))
    # tick rule by hand: sign of the last price change inside the window
    sides, last, direction = [], None, 0
    for p in window["price"].to_list():
        if last is not None and p != last:
            direction = 1 if p > last else -1
        sides.append(direction)
        last = p
    buy, sell, net = _loop_delta(window, sides)
    assert got["buy_volume"] == pytest.approx(buy) and got["sell_volume"] == pytest.approx(sell)
    assert got["imbalance"] == pytest.approx(net / (buy + sell))
    with pytest.raises(ValueError):
        TickFlowAdapter(lookback_minutes=0)
