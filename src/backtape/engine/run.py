"""``run_backtest``: the one-call helper for notebooks and scripts."""

from __future__ import annotations

from typing import Any

from .._time import TimeLike
from ..costs import Commission, TransactionCostEngine
from ..risk import RiskManager
from ..sources.base import DataSource
from .builtins import StrategyFactory
from .engine import BacktestEngine, build_costs
from .result import BacktestResult
from .strategy import Strategy


def run_backtest(
    strategy: Strategy | type[Strategy] | str,
    symbols: list[str] | str,
    start: TimeLike,
    end: TimeLike,
    frequency: str = "1d",
    source: DataSource | str = "sample",
    cash: float = 10_000.0,
    commission: float | Commission = 0.0,
    fill: str = "next_open",
    *,
    slippage_bps: float = 0.0,
    costs: TransactionCostEngine | None = None,
    risk: RiskManager | None = None,
    params: dict[str, Any] | None = None,
    store: Any = None,
    **options: Any,
) -> BacktestResult:
    """Backtest ``strategy`` (an instance, a class, or a registered name such as ``"sma_crossover"``).

    ``commission`` is a fraction of notional (or a ``Commission``); ``store`` (a ``ResultsStore`` or a
    database path/URL) saves the run and sets ``result.run_id``.

    >>> r = run_backtest("sma_crossover", "AAPL", "2012-01-01", "2015-01-01",
    ...                  params={"fast": 10, "slow": 50})                         # doctest: +SKIP
    >>> r.metrics["final_equity"], r.trades.height                                # doctest: +SKIP
    """
    if isinstance(strategy, str):
        strategy = StrategyFactory.create(strategy, **(params or {}))
    elif isinstance(strategy, type):
        strategy = strategy(**(params or {}))
    elif params:
        raise TypeError("params= applies to a strategy name or class, not to an instance")
    engine = BacktestEngine(source=source, cash=cash, fill=fill, risk=risk,
                            costs=build_costs(commission, slippage_bps, costs))
    result = engine.run(strategy, symbols, start, end, frequency, **options)
    if store is not None:
        from ..results import ResultsStore

        result.save(store if isinstance(store, ResultsStore) else ResultsStore(store))
    return result
