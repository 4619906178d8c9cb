"""Parity: every built-in with a vectorized form gives the event engine's trades and equity (rel 1e-9).

The vector side goes through the optimizer's own path (``best_vector_run``: indicators started at
each strategy's warm-up row, trading from ``start``), the event side through ``run_backtest`` on
the same bars. Sources: the shipped sample (its bars, corporate actions left out, since the vector
engine trades adjusted prices) with a warm-up year before ``start``, and the synthetic source
(daily and one-minute bars).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from backtape.engine import StrategyFactory, run_backtest
from backtape.optimization.data import load_market_data
from backtape.optimization.evaluate import EvalSpec, best_vector_run
from backtape.options import TradingOptions
from backtape.sources import get_source
from backtape.sources.memory import FrameDataSource

REL = 1e-9


def _sample_bars(symbol: str) -> FrameDataSource:
    bars = get_source("sample").fetch_sync([symbol], "2012-01-01", "2015-01-01", "1d")
    return FrameDataSource(bars, name="sample-bars")


def _source(kind: str, symbol: str) -> object:
    return _sample_bars(symbol) if kind == "sample" else get_source("synthetic", seed=3)


CASES = [
    # strategy, params, source, symbol, start, end, frequency, commission, fill
    (
        "sma_crossover",
        {"fast": 10, "slow": 40},
        "sample",
        "AAPL",
        "2013-01-01",
        "2015-01-01",
        "1d",
        0.001,
        "next_open",
    ),
    (
        "sma_crossover",
        {"fast": 5, "slow": 20, "allow_short": True},
        "sample",
        "MSFT",
        "2012-06-01",
        "2015-01-01",
        "1d",
        0.002,
        "close",
    ),
    (
        "rsi_mean_reversion",
        {"period": 14, "lower": 35.0, "exit": 55.0},
        "sample",
        "KO",
        "2013-01-01",
        "2015-01-01",
        "1d",
        0.001,
        "next_open",
    ),
    (
        "rsi_mean_reversion",
        {"period": 7, "lower": 30.0, "exit": 50.0},
        "synthetic",
        "SYN",
        "2020-01-01",
        "2023-01-01",
        "1d",
        0.0005,
        "close",
    ),
    (
        "rsi_mean_reversion",
        {"period": 14, "lower": 30.0, "exit": 60.0},
        "synthetic",
        "SYN",
        "2024-03-04",
        "2024-03-09",
        "1min",
        0.0002,
        "next_open",
    ),
    (
        "donchian_breakout",
        {"entry": 20, "exit": 10},
        "sample",
        "IBM",
        "2013-01-01",
        "2015-01-01",
        "1d",
        0.001,
        "next_open",
    ),
    (
        "donchian_breakout",
        {"entry": 30, "exit": 15},
        "synthetic",
        "SYN",
        "2019-01-01",
        "2023-01-01",
        "1d",
        0.0,
        "close",
    ),
    (
        "donchian_breakout",
        {"entry": 60, "exit": 30},
        "synthetic",
        "SYN",
        "2024-03-04",
        "2024-03-09",
        "1min",
        0.0005,
        "next_open",
    ),
    (
        "momentum",
        {"lookback": 30, "threshold": 0.0},
        "synthetic",
        "SYN",
        "2019-01-01",
        "2023-01-01",
        "1d",
        0.001,
        "next_open",
    ),
    (
        "momentum",
        {"lookback": 20, "threshold": 0.02},
        "sample",
        "AAPL",
        "2013-01-01",
        "2015-01-01",
        "1d",
        0.0,
        "close",
    ),
]


@pytest.mark.parametrize(
    ("name", "params", "kind", "symbol", "start", "end", "frequency", "commission", "fill"), CASES
)
def test_vector_form_matches_event_engine(
    name: str,
    params: dict,
    kind: str,
    symbol: str,
    start: str,
    end: str,
    frequency: str,
    commission: float,
    fill: str,
) -> None:
    source = _source(kind, symbol)
    options = {"cash": 10_000.0, "commission": commission, "fill": fill}
    event = run_backtest(
        StrategyFactory.create(name, **params), symbol, start, end, frequency, source=source, **options
    )
    warmup = StrategyFactory.create(name, **params).warmup
    data = load_market_data(symbol, start, end, frequency, source, warmup=warmup)
    vec = best_vector_run(data, EvalSpec(name, "vector", TradingOptions(**options)), params)
    first, last = data.span(symbol)
    assert first > 0  # indicators warm up on bars before start, as in the event engine

    closed = vec.trades.filter(~pl.col("is_open"))
    ours = event.trades
    assert ours.height == closed.height and ours.height >= 3, (ours.height, closed.height)
    at = np.asarray(data.bars[symbol]["ts" if fill == "next_open" else "ts_end"][first:last])
    np.testing.assert_array_equal(
        np.searchsorted(at, ours["entry_time"].cast(pl.Int64).to_numpy()), closed["entry_idx"].to_numpy()
    )
    np.testing.assert_array_equal(
        np.searchsorted(at, ours["exit_time"].cast(pl.Int64).to_numpy()), closed["exit_idx"].to_numpy()
    )
    np.testing.assert_array_equal(
        ours["size"].to_numpy() * ours["side"].to_numpy(), closed["size"].to_numpy()
    )
    for col in ("entry_price", "exit_price", "pnl", "commission"):
        np.testing.assert_allclose(ours[col].to_numpy(), closed[col].to_numpy(), rtol=REL, err_msg=col)
    np.testing.assert_allclose(event.equity["equity"].to_numpy(), vec.equity[:, 0], rtol=REL)
    m = vec.column_metrics()
    for key in ("final_equity", "total_return", "sharpe", "max_drawdown", "exposure", "turnover", "trades"):
        assert event.metrics[key] == pytest.approx(m[key], rel=REL, abs=1e-12), key


def test_every_single_symbol_builtin_has_a_vector_form() -> None:
    """Signal built-ins have a per-symbol form; the portfolio ones (target_weights) are checked in
    tests/vector/test_portfolio_parity.py."""
    signal_rules = {n for n in StrategyFactory.list_available()
                    if not hasattr(StrategyFactory.get(n), "target_weights")}
    for name in signal_rules:
        assert hasattr(StrategyFactory.get(name), "vector_signals"), name
    tested = {case[0] for case in CASES}
    assert tested == signal_rules
