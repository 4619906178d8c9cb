"""The optimization table's ``trades`` counts the trades still open at the end (issue 13)."""

from __future__ import annotations

import polars as pl

from backtape.engine import run_backtest
from backtape.optimization import optimize


def test_trades_include_the_open_ones_on_both_engines() -> None:
    grid = {"fast": [5, 10, 20], "slow": [30, 60]}
    args = ("sma_crossover", grid, "SYN", "2020-01-01", "2022-01-01")
    vec = optimize(*args, source="synthetic", engine="vector").table
    assert (vec["trades"] == vec["closed_trades"] + vec["open_trades"]).all()
    assert vec["open_trades"].is_in([0, 1]).all() and vec["open_trades"].sum() > 0
    assert vec.schema["trades"] == pl.Int64 and vec.schema["open_trades"] == pl.Int64
    ended_open = vec.filter(pl.col("open_trades") == 1).row(0, named=True)
    params = {"fast": ended_open["fast"], "slow": ended_open["slow"]}
    event = run_backtest("sma_crossover", "SYN", "2020-01-01", "2022-01-01", source="synthetic",
                         params=params)
    assert event.metrics["trades"] == ended_open["trades"] == event.trades.height + event.open_trades.height
    assert event.metrics["open_pnl"] == event.open_trades["pnl"].sum()
    ev = optimize(*args, source="synthetic", engine="event").table
    joined = vec.join(ev, on=["fast", "slow"], suffix="_event")
    assert (joined["trades"] == joined["trades_event"]).all()
    assert (joined["open_trades"] == joined["open_trades_event"]).all()
