"""``run_backtest`` on explicit parts, and the engine protocol both engines sit behind.

This is the engine layer's entry point: it takes a ``DataSource`` (or a registered name built from
explicit options) and ``TradingOptions``. ``backtape.run_backtest`` and ``Workspace.run_backtest``
resolve names through the workspace (provider keys, the cache) and then call this.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .._time import TimeLike
from ..errors import ConfigError
from ..options import TradingOptions, trading_options
from ..sources.base import DataSource
from .builtins import StrategyFactory
from .engine import BacktestEngine, resolve_source
from .result import BacktestResult
from .strategy import Strategy

Progress = Callable[[int, int], None]


class Engine(Protocol):
    """What ``run_backtest(..., engine=NAME)`` needs of an engine: one run, one result."""

    name: str

    def run(self, strategy: Strategy, symbols: Sequence[str] | str, start: TimeLike, end: TimeLike,
            frequency: str = "1d", *, source: DataSource | str | None = None,
            options: TradingOptions | None = None, progress: Progress | None = None) -> BacktestResult:
        """Backtest ``strategy`` over ``[start, end)``."""
        ...


def _vector_engine() -> Engine:
    """The vectorized engine (imported on first use: it compiles numba kernels)."""
    from ..vector.backtest import VectorEngine

    return VectorEngine()


#: engine name -> factory: ``"event"`` runs any strategy, ``"vector"`` any with a vector form
#: (``backtape.vector.form``)
ENGINES: dict[str, Callable[[], Engine]] = {"event": BacktestEngine, "vector": _vector_engine}


def get_engine(name: str) -> Engine:
    """The engine called ``name`` (``"event"``, ``"vector"``)."""
    factory = ENGINES.get(name)
    if factory is None:
        raise ConfigError(f"unknown engine {name!r}; use one of {', '.join(sorted(ENGINES))}")
    return factory()


def build_strategy(strategy: Strategy | type[Strategy] | str, params: dict[str, Any] | None) -> Strategy:
    """A strategy instance from an instance, a class or a registered name (``"sma_crossover"``)."""
    if isinstance(strategy, str):
        return StrategyFactory.create(strategy, **(params or {}))
    if isinstance(strategy, type):
        return strategy(**(params or {}))
    if params:
        raise ConfigError("params= applies to a strategy name or class, not to an instance")
    return strategy


def run_backtest(
    strategy: Strategy | type[Strategy] | str,
    symbols: Sequence[str] | str,
    start: TimeLike,
    end: TimeLike,
    frequency: str = "1d",
    source: DataSource | str = "sample",
    options: TradingOptions | None = None,
    *,
    params: dict[str, Any] | None = None,
    engine: str = "event",
    store: Any = None,
    progress: Progress | None = None,
    conventions: str | None = None,
    **overrides: Any,
) -> BacktestResult:
    """Backtest ``strategy`` (an instance, a class, or a registered name such as ``"sma_crossover"``).

    ``options`` are the ``TradingOptions`` (default ``TradingOptions()``); keyword ``overrides``
    (``cash=``, ``commission=``, ``fill=``...) change single ones. ``conventions`` (``"backtape"``,
    ``"backtesting.py"``, ``"vectorbt"``, ``"backtrader"``) applies a peer's preset
    (``options.CONVENTIONS``) before the overrides. ``store`` (a ``ResultsStore`` or a
    database path/URL) saves the run and sets ``result.run_id``.

    >>> r = run_backtest("sma_crossover", "AAPL", "2012-01-01", "2015-01-01",
    ...                  params={"fast": 10, "slow": 50}, cash=100_000)           # doctest: +SKIP
    >>> r.metrics["final_equity"], r.trades.height                                # doctest: +SKIP
    """
    opts = trading_options(options, conventions=conventions, **overrides)
    strat = build_strategy(strategy, params)
    result = get_engine(engine).run(strat, symbols, start, end, frequency, source=resolve_source(source),
                                    options=opts, progress=progress)
    if store is not None:
        from ..results import ResultsStore

        result.save(store if isinstance(store, ResultsStore) else ResultsStore(store))
    return result
