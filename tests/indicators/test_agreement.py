"""The same indicator gives the same number wherever it is used: ``backtape calc`` (CLI and adapters),
a strategy in the event engine (``ctx.indicator`` and ``ctx.history``), and the vector engine's
signals and sweep lines. Real data: the sample's BTC-PERP minute bars (hourly and 5-minute views)."""

from __future__ import annotations

import re
from typing import Any, ClassVar

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from backtape import indicators as ind
from backtape._time import to_ns
from backtape.calculations import get_calculation
from backtape.calculations.builtins import ATR, RSI
from backtape.cli.calc import calc
from backtape.engine import Strategy, run_backtest
from backtape.engine.builtins import RsiMeanReversion
from backtape.portal import DataPortal
from backtape.sources.sample import SampleDataSource
from backtape.vector.sweep import _sma_rows

SYMBOL, ENTRY = "BTC-PERP", "2022-01-10T15:00Z"
DAY = 86_400 * 10**9


def _adapter_values(adapter: Any, symbol: str, entry: str) -> dict[str, float]:
    portal = DataPortal(SampleDataSource())
    t = to_ns(entry)
    portal.load_data(t - 8 * DAY, t + 60 * 10**9, [symbol], requirements=[adapter])
    adapter.initialize(symbol)
    portal.set_clock(t)
    return adapter.compute(portal, t)


def _cli(*args: str) -> dict[str, dict[str, float]]:
    app = typer.Typer()
    app.command()(calc)
    result = CliRunner().invoke(app, [*args, "--source", "sample"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    out: dict[str, dict[str, float]] = {}
    for line in result.output.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line) if c.strip()]
        if len(cells) == 3 and "=" in cells[2]:
            out[cells[1]] = {k: float(v) for k, v in re.findall(r"(\w+)=([-+\d.e]+|nan)", cells[2])}
    return out


class Probe(Strategy):
    """Records, at every bar, ATR(14) from ``ctx.history`` windows and RSI(14) / SMA(10) from
    ``ctx.indicator``."""

    params: ClassVar[dict[str, Any]] = {"window": 43}

    def initialize(self, ctx: Any) -> None:
        self.rsi = ctx.indicator(ind.rsi, 14, name="rsi")
        self.sma = ctx.indicator(ind.sma, 10, name="sma")
        self.seen: list[tuple[int, float, float, float]] = []

    def on_bar(self, ctx: Any) -> None:
        n = self.window
        h, lo, c = (ctx.history(ctx.symbols[0], n, f) for f in ("high", "low", "close"))
        self.seen.append((ctx.now, float(ind.atr(h, lo, c, 14)[-1]), self.rsi[-1], self.sma[-1]))


@pytest.fixture(scope="module")
def probe() -> Probe:
    strategy = Probe()
    strategy.warmup = 43
    run_backtest(strategy, SYMBOL, "2022-01-06", ENTRY, "1h", source=SampleDataSource())
    return strategy


def test_atr_calc_cli_and_strategy_agree(probe: Probe) -> None:
    calc_value = _adapter_values(ATR(14, "1h"), SYMBOL, ENTRY)["atr"]
    now, strategy_value, _, _ = probe.seen[-1]
    assert now == to_ns(ENTRY)
    assert strategy_value == calc_value  # bit for bit: one function over the same 43 hourly bars
    assert 50 < calc_value < 2_000  # BTC near $42,000: an hourly range of hundreds of dollars


def test_rsi_calc_strategy_and_vector_agree() -> None:
    """A strategy whose history starts where the calculation's window starts sees the same RSI."""
    t = to_ns(ENTRY)
    portal = DataPortal(SampleDataSource())
    portal.load_data(t - 8 * DAY, t + 60 * 10**9, [SYMBOL])
    portal.set_clock(t)
    window = portal.get_history_window(SYMBOL, t, 57, "5min", "close")[:, 0]
    calc_value = _adapter_values(RSI(14, "5min"), SYMBOL, ENTRY)["rsi"]
    printed = _cli("--symbol", SYMBOL, "--entry", ENTRY, "--calcs", "rsi")["rsi"]["rsi"]
    assert printed == float(f"{calc_value:.6g}")
    assert calc_value == ind.rsi(window, 14)[-1]
    # the vector engine's signal (RSI < lower) flips exactly at calc_value
    above = RsiMeanReversion(period=14, lower=np.nextafter(calc_value, np.inf), exit=99.0)
    at = RsiMeanReversion(period=14, lower=calc_value, exit=99.0)
    assert above.vector_signals({"close": window})["entries"][-1]
    assert not at.vector_signals({"close": window})["entries"][-1]

    class FromWindow(Strategy):
        def initialize(self, ctx: Any) -> None:
            self.rsi = ctx.indicator(ind.rsi, 14)
            self.values: list[float] = []

        def on_bar(self, ctx: Any) -> None:
            self.values.append(self.rsi[-1])

    strategy = FromWindow()
    first = np.datetime64(int(portal.get_bars(SYMBOL, t - DAY, t, "5min")["ts"][-57]), "ns")
    run_backtest(strategy, SYMBOL, str(first) + "Z", ENTRY, "5min", source=SampleDataSource())
    assert len(strategy.values) == 57 and strategy.values[-1] == calc_value


def test_sma_lines_agree_between_strategy_vector_sweep_and_pandas(probe: Probe) -> None:
    import pandas as pd

    bars = SampleDataSource().fetch_sync(SYMBOL, "2022-01-01", ENTRY, "1h")
    close = bars["close"].to_numpy()
    lines = _sma_rows(np.ascontiguousarray(close), np.array([10, 50], dtype=np.int64))
    np.testing.assert_array_equal(lines[0], ind.sma(close, 10))
    np.testing.assert_array_equal(lines[1], pd.Series(close).rolling(50).mean().to_numpy())
    # the strategy's SMA(10) at its last bar is the mean of the same ten hourly closes
    assert bars["ts_end"].dt.epoch("ns")[-1] == to_ns(ENTRY)
    assert probe.seen[-1][3] == ind.sma(close, 10)[-1]


def test_cli_prints_the_adapters_values() -> None:
    printed = _cli("--symbol", SYMBOL, "--entry", ENTRY, "--calcs", "ema_5m,realized_vol")
    for name, key in (("ema_5m", "ema"), ("realized_vol", "realized_vol")):
        value = _adapter_values(get_calculation(name), SYMBOL, ENTRY)[key]
        assert printed[name][key] == float(f"{value:.6g}")
