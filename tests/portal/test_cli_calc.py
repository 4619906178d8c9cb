"""``backtape calc --source sample`` on real data: BTC-PERP minute bars (24/7) and BTCUSDT ticks, the
printed numbers checked against plain computations on the sample's raw frames."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from backtape._time import NS_PER_MINUTE, to_ns
from backtape.cli.calc import calc
from backtape.sources.sample import SampleDataSource
from backtape.ticks import classify_trades


def _run(*args: str) -> dict[str, dict[str, float]]:
    """Invoke the ``calc`` command; return {calculation: {name: value}} parsed from the table."""
    app = typer.Typer()
    app.command()(calc)
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    out: dict[str, dict[str, float]] = {}
    for line in result.output.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line) if c.strip()]
        if len(cells) == 3 and "=" in cells[2]:
            out[cells[1]] = {k: float(v) for k, v in re.findall(r"(\w+)=([-+\d.e]+|nan)", cells[2])}
    assert "upstream calls: 2" in result.output
    return out


def _rel(value: float, reference: float) -> bool:
    return value == pytest.approx(reference, rel=1e-5)  # the CLI prints 6 significant digits


@pytest.fixture(scope="module")
def btc_perp() -> tuple[dict[str, dict[str, float]], pl.DataFrame]:
    got = _run("--symbol", "BTC-PERP", "--entry", "2022-01-10T15:00Z", "--calcs", "ema_1m,vwap,rsi",
               "--source", "sample")
    bars = SampleDataSource().fetch_sync("BTC-PERP", "2022-01-09", "2022-01-11", "1min")
    return got, bars


ENTRY = to_ns("2022-01-10T15:00Z")


def _closes_before(bars: pl.DataFrame, n: int) -> list[float]:
    done = bars.filter(pl.col("ts_end").dt.epoch("ns") <= ENTRY)
    return done["close"].to_list()[-n:]


def test_calc_ema_and_rsi_on_btc_perp_minute_bars(btc_perp) -> None:
    got, bars = btc_perp
    # EMA(20) of the last 80 one-minute closes, seeded with the mean of the first 20
    closes = _closes_before(bars, 80)
    ema = sum(closes[:20]) / 20
    for c in closes[20:]:
        ema += 2 / 21 * (c - ema)
    assert _rel(got["ema_1m"]["ema"], ema)
    # Wilder RSI(14) of 57 five-minute closes: on 24/7 a 5-minute bar closes on every 5th minute
    five = [c for c, e in zip(bars["close"].to_list(), bars["ts_end"].dt.epoch("ns").to_list(), strict=True)
            if e <= ENTRY and (e // NS_PER_MINUTE) % 5 == 0][-57:]
    diff = np.diff(five)
    gain, loss = np.clip(diff, 0, None), np.clip(-diff, 0, None)
    g, lo = gain[:14].mean(), loss[:14].mean()
    for a, b in zip(gain[14:], loss[14:], strict=True):
        g, lo = (g * 13 + a) / 14, (lo * 13 + b) / 14
    assert _rel(got["rsi"]["rsi"], 100 - 100 / (1 + g / lo))


def test_calc_session_vwap_on_btc_perp_covers_the_whole_utc_day(btc_perp) -> None:
    got, bars = btc_perp
    day = bars.filter((pl.col("ts").dt.epoch("ns") >= to_ns("2022-01-10")) &
                      (pl.col("ts_end").dt.epoch("ns") <= ENTRY))
    assert day.height == 900
    typical = (day["high"] + day["low"] + day["close"]) / 3
    assert _rel(got["vwap"]["vwap"], float((typical * day["volume"]).sum() / day["volume"].sum()))


def test_calc_cum_delta_and_tick_flow_on_btcusdt_ticks() -> None:
    entry = to_ns("2024-08-08T23:59:30Z")
    got = _run("--symbol", "BTCUSDT", "--entry", "2024-08-08T23:59:30Z", "--calcs", "cum_delta,tick_flow",
               "--source", "sample")
    source = SampleDataSource()
    ts = pl.col("ts").dt.epoch("ns")
    trades = source.fetch_kind_sync("trades", "BTCUSDT", "2024-08-08", "2024-08-10")
    quotes = source.fetch_kind_sync("quotes", "BTCUSDT", "2024-08-08", "2024-08-10")
    # cum_delta: Lee-Ready on the last 30 minutes (the whole sample before the entry), events at the
    # entry itself included, quotes cut to the same window
    window = trades.filter((ts >= entry - 30 * NS_PER_MINUTE) & (ts <= entry))
    sides = classify_trades(window, quotes.filter((ts >= entry - 30 * NS_PER_MINUTE) & (ts <= entry)))
    side, size = sides["side"].to_numpy(), sides["size"].to_numpy()
    delta = got["cum_delta"]
    assert delta["trades"] == window.height > 5_000
    assert _rel(delta["buy_volume"], size[side > 0].sum())
    assert _rel(delta["sell_volume"], size[side < 0].sum())
    assert _rel(delta["cum_delta"], size[side > 0].sum() - size[side < 0].sum())
    # tick_flow: tick rule by hand over the last 5 minutes
    recent = trades.filter((ts >= entry - 5 * NS_PER_MINUTE) & (ts <= entry))
    buy = sell = 0.0
    last, direction = None, 0
    for p, s in zip(recent["price"].to_list(), recent["size"].to_list(), strict=True):
        if last is not None and p != last:
            direction = 1 if p > last else -1
        last = p
        buy += s if direction > 0 else 0.0
        sell += s if direction < 0 else 0.0
    flow = got["tick_flow"]
    assert flow["trades"] == recent.height
    assert _rel(flow["buy_volume"], buy) and _rel(flow["sell_volume"], sell)
    assert _rel(flow["imbalance"], (buy - sell) / (buy + sell))
