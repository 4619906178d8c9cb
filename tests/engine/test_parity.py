"""Parity: the event engine's sma_crossover against backtesting.py (GOOG) and the vector engine.

Same conventions everywhere: next-open (or signal-close) fills, all-in whole shares, percent
commission. Tolerance: relative 1e-9 on prices, P&L, commissions and equity; sizes and bar
indices exactly.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import polars as pl
import pytest

from _peers import GOOG_CASES, goog_source
from backtape.analytics import periods_per_year
from backtape.engine import run_backtest, sma_crossover
from backtape.sources import get_source
from backtape.sources.memory import FrameDataSource
from backtape.vector import crossed_above, crossed_below, simulate, sma

REL = 1e-9


def _goog_source() -> tuple[FrameDataSource, np.ndarray]:
    """backtesting.py's own GOOG frame as a backtape source (``_peers.goog_source``)."""
    from backtesting.test import GOOG

    return goog_source(GOOG)


@pytest.mark.parametrize(("fast", "slow", "commission", "allow_short", "on_close"), GOOG_CASES)
def test_event_engine_matches_backtesting_py_on_goog(fast: int, slow: int, commission: float,
                                                    allow_short: bool, on_close: bool) -> None:
    pytest.importorskip("backtesting")
    from backtesting import Backtest
    from backtesting.test import GOOG

    from _peers import backtesting_sma_cross

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = backtesting_sma_cross(fast, slow, allow_short)
        stats = Backtest(GOOG, peer, cash=10_000, commission=commission, trade_on_close=on_close).run()
    source, opens = _goog_source()
    res = run_backtest(sma_crossover(fast, slow, allow_short), "GOOG", int(opens[0]), int(opens[-1]) + 1,
                       source=source, cash=10_000, commission=commission,
                       fill="close" if on_close else "next_open")
    ours, theirs = res.trades, stats._trades
    assert len(theirs) > 10 and ours.height == len(theirs)
    bar_of = {int(t): i for i, t in enumerate(opens)}
    entry_bars = [bar_of.get(t) for t in ours["entry_time"].cast(pl.Int64)]
    if not on_close:
        np.testing.assert_array_equal(entry_bars, theirs.EntryBar.to_numpy())
    np.testing.assert_array_equal(ours["size"].to_numpy() * ours["side"].to_numpy(), theirs.Size.to_numpy())
    np.testing.assert_allclose(ours["entry_price"].to_numpy(), theirs.EntryPrice.to_numpy(), rtol=REL)
    np.testing.assert_allclose(ours["exit_price"].to_numpy(), theirs.ExitPrice.to_numpy(), rtol=REL)
    np.testing.assert_allclose(ours["pnl"].to_numpy(), theirs.PnL.to_numpy(), rtol=REL)
    np.testing.assert_allclose(ours["commission"].to_numpy(), theirs.Commission.to_numpy(), rtol=REL)
    assert res.metrics["final_equity"] == pytest.approx(stats["Equity Final [$]"], rel=REL)
    assert res.metrics["closed_trades"] == stats["# Trades"]
    assert res.metrics["sqn"] == pytest.approx(stats["SQN"], rel=REL)
    if not on_close:
        np.testing.assert_allclose(res.equity["equity"].to_numpy(), stats._equity_curve.Equity.to_numpy(),
                                   rtol=REL)


def _frame_source(source_name: str, symbol: str, start: str, end: str, frequency: str,
                  **opts: int) -> FrameDataSource:
    """The source's bars for [start, end), held in memory without corporate actions."""
    src = get_source(source_name, **opts)
    bars = src.fetch_sync([symbol], start, end, frequency)
    return FrameDataSource(bars, frequency=frequency, calendar_name=src.calendar)


def _vector(bars: pl.DataFrame, fast: int, slow: int, allow_short: bool, commission: float, fill: str,
            ppy: float):
    close = bars["close"].to_numpy()
    f, s = sma(close, fast), sma(close, slow)
    up, down = crossed_above(f, s), crossed_below(f, s)
    shorts: dict[str, Any] = {"short_entries": down, "short_exits": up} if allow_short else {}
    return simulate(close, open=bars["open"].to_numpy(), high=bars["high"].to_numpy(),
                    low=bars["low"].to_numpy(), entries=up, exits=down, cash=10_000, commission=commission,
                    fill=fill, periods_per_year=ppy, **shorts)


VECTOR_CASES = [
    # source, symbol, start, end, frequency, fast, slow, allow_short, commission, fill
    ("sample", "AAPL", "2012-01-01", "2015-01-01", "1d", 10, 50, False, 0.001, "next_open"),
    ("sample", "MSFT", "2012-01-01", "2015-01-01", "1d", 5, 20, True, 0.002, "next_open"),
    ("sample", "KO", "2012-01-01", "2015-01-01", "1d", 10, 30, True, 0.0, "close"),
    ("synthetic", "SYN", "2020-01-01", "2023-01-01", "1d", 10, 50, True, 0.001, "next_open"),
    ("synthetic", "SYN", "2024-03-04", "2024-03-16", "1min", 10, 50, True, 0.0005, "next_open"),
    ("synthetic", "SYN", "2024-03-04", "2024-03-09", "1min", 5, 20, False, 0.001, "close"),
]


@pytest.mark.parametrize(("source", "symbol", "start", "end", "frequency", "fast", "slow", "allow_short",
                          "commission", "fill"), VECTOR_CASES)
def test_event_engine_matches_vector_engine(source: str, symbol: str, start: str, end: str, frequency: str,
                                            fast: int, slow: int, allow_short: bool, commission: float,
                                            fill: str) -> None:
    opts = {"seed": 3} if source == "synthetic" else {}
    mem = _frame_source(source, symbol, start, end, frequency, **opts)
    res = run_backtest(sma_crossover(fast, slow, allow_short), symbol, start, end, frequency, source=mem,
                       cash=10_000, commission=commission, fill=fill)
    ppy = periods_per_year(calendar=mem.calendar, frequency=frequency)
    vec = _vector(mem.bars, fast, slow, allow_short, commission, fill, ppy)
    closed = vec.trades.filter(~pl.col("is_open"))
    ours = res.trades
    assert ours.height == closed.height and ours.height > 3
    ts = mem.bars["ts"].cast(pl.Int64).to_numpy()
    ts_end = mem.bars["ts_end"].cast(pl.Int64).to_numpy()
    at = ts if fill == "next_open" else ts_end
    np.testing.assert_array_equal(np.searchsorted(at, ours["entry_time"].cast(pl.Int64).to_numpy()),
                                  closed["entry_idx"].to_numpy())
    np.testing.assert_array_equal(np.searchsorted(at, ours["exit_time"].cast(pl.Int64).to_numpy()),
                                  closed["exit_idx"].to_numpy())
    signed = ours["size"].to_numpy() * ours["side"].to_numpy()
    np.testing.assert_array_equal(signed, closed["size"].to_numpy())
    for ours_col, vec_col in (("entry_price", "entry_price"), ("exit_price", "exit_price"), ("pnl", "pnl"),
                              ("commission", "commission")):
        np.testing.assert_allclose(ours[ours_col].to_numpy(), closed[vec_col].to_numpy(), rtol=REL)
    np.testing.assert_allclose(res.equity["equity"].to_numpy(), vec.equity[:, 0], rtol=REL)
    m = vec.column_metrics()
    for name in ("final_equity", "total_return", "sharpe", "max_drawdown", "trades"):
        assert res.metrics[name] == pytest.approx(m[name], rel=1e-9, abs=1e-12), name
