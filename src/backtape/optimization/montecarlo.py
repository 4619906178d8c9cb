"""Monte Carlo analysis of one run: how much of its result is the order of its trades or its path.

* ``method="reshuffle"``: the closed trades' returns on equity (``pnl / equity before entry``)
  in random orders, compounded from the starting cash. The final equity does not depend on the
  order; the drawdown and the per-trade Sharpe spread do.
* ``method="bootstrap"``: block bootstrap of the per-bar returns of the equity curve (blocks of
  ``block`` bars keep short-range autocorrelation); final equity, max drawdown and annualized Sharpe.

Both are seeded (same seed, same table) and report percentiles (5, 25, 50, 75, 95 by default).
The run may be an event ``BacktestResult``, a ``VectorResult`` (column 0), an
``OptimizationResult`` (its winner), a ``WalkForwardResult`` (its stitched curve, bootstrap only)
or the id of a run stored in the results database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import polars as pl

from ..errors import ConfigError
from .stats import bootstrap_returns, path_statistics, reshuffle_trades

if TYPE_CHECKING:
    from pathlib import Path

    from ..engine.result import BacktestResult
    from ..results import ResultsStore
    from ..vector.engine import VectorResult
    from .search import OptimizationResult
    from .walkforward import WalkForwardResult

#: what ``monte_carlo`` resamples: a result (an optimization's best run) or a stored run id
_Result: TypeAlias = "BacktestResult | VectorResult | OptimizationResult | WalkForwardResult"
RunLike: TypeAlias = "_Result | int | np.integer"

METHODS = ("reshuffle", "bootstrap")
_PCTS = (5.0, 25.0, 50.0, 75.0, 95.0)


@dataclass
class MonteCarloResult:
    """``table``: one row per percentile with final_equity, max_drawdown and sharpe; ``observed``:
    the same three figures of the run itself."""

    table: pl.DataFrame
    observed: dict[str, float]
    method: str
    n_simulations: int
    seed: int


@dataclass(frozen=True)
class _Run:
    """What Monte Carlo needs of a run: equity curve, closed trades' returns on equity, cash, P."""

    equity: np.ndarray
    trade_returns: np.ndarray
    cash: float
    periods_per_year: float


def _periods_per_year(equity: np.ndarray, metrics: dict[str, Any]) -> float:
    """The run's own annualization, recovered exactly from its volatility (``std(r) * sqrt(P)``)."""
    r = _returns(equity)
    vol = metrics.get("volatility")
    sd = r.std(ddof=1) if r.size > 1 else 0.0
    if vol is None or not math.isfinite(vol) or sd <= 0:
        return 252.0
    return float((vol / sd) ** 2)


def _returns(equity: np.ndarray) -> np.ndarray:
    prev = equity[:-1]
    return np.where(prev > 0, equity[1:] / np.where(prev > 0, prev, 1.0) - 1.0, 0.0)


def _equity_before(
    equity_ts: np.ndarray, equity: np.ndarray, entry_ts: np.ndarray, cash: float
) -> np.ndarray:
    """Equity at the last bar end at or before each entry (the cash before the first bar)."""
    i = np.searchsorted(equity_ts, entry_ts, "right") - 1
    return np.where(i >= 0, equity[np.maximum(i, 0)], cash)


def _from_event(equity: pl.DataFrame, trades: pl.DataFrame, cash: float, metrics: dict[str, Any]) -> _Run:
    eq = equity["equity"].to_numpy().astype(np.float64)
    ts = equity["ts"].cast(pl.Int64).to_numpy()
    closed = trades.filter(~pl.col("is_open")) if "is_open" in trades.columns else trades
    if closed.height:
        base = _equity_before(ts, eq, closed["entry_time"].cast(pl.Int64).to_numpy(), cash)
        r = closed["pnl"].to_numpy() / base
    else:
        r = np.zeros(0)
    return _Run(eq, r, cash, _periods_per_year(eq, metrics))


def _resolve(run: RunLike, store: ResultsStore | str | Path | None, cash: float | None) -> _Run:
    from ..engine.result import BacktestResult
    from ..vector.engine import VectorResult
    from .search import OptimizationResult
    from .walkforward import WalkForwardResult

    if isinstance(run, OptimizationResult):
        if run.best_run is None:
            raise ConfigError("the optimization kept no winning run to resample")
        run = run.best_run
    if isinstance(run, BacktestResult):
        return _from_event(run.equity, run.trades, float(cash or run.cash), run.metrics)
    if isinstance(run, VectorResult):
        eq = run.equity[:, 0]
        start = float(cash or 10_000.0)
        tr = run.trades.filter((pl.col("column") == 0) & ~pl.col("is_open"))
        idx = tr["entry_idx"].to_numpy() - 1
        base = np.where(idx >= 0, eq[np.maximum(idx, 0)], start)
        return _Run(eq, tr["pnl"].to_numpy() / base, start, _periods_per_year(eq, run.column_metrics()))
    if isinstance(run, WalkForwardResult):
        eq = run.equity["equity"].to_numpy()
        return _Run(eq, np.zeros(0), float(cash or eq[0]), _periods_per_year(eq, run.metrics))
    if isinstance(run, int | np.integer):
        from ..results import ResultsStore

        db = store if isinstance(store, ResultsStore) else ResultsStore(store)
        rec = db.get_run(int(run))
        trades = rec.trades.rename({"quantity": "size"})
        start = float(cash or rec.header.get("cash") or 10_000.0)
        return _from_event(rec.equity, trades, start, rec.metrics)
    raise ConfigError(f"monte_carlo takes a run result or a stored run id, got {type(run).__name__}")


def monte_carlo(
    run: RunLike,
    n_simulations: int = 1000,
    method: str = "reshuffle",
    *,
    block: int = 20,
    seed: int = 0,
    store: ResultsStore | str | Path | None = None,
    cash: float | None = None,
    percentiles: tuple[float, ...] = _PCTS,
) -> MonteCarloResult:
    """Percentiles of final equity, max drawdown and Sharpe over ``n_simulations`` resampled paths.

    ``store`` (a ``ResultsStore`` or a database path/URL, default ``~/.backtape/results.db``) is
    where a run id is looked up; ``cash`` overrides the starting capital.
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if n_simulations < 1:
        raise ConfigError(f"n_simulations must be >= 1, got {n_simulations}")
    r = _resolve(run, store, cash)
    if method == "reshuffle":
        if r.trade_returns.size == 0:
            raise ConfigError("the run has no closed trades to reshuffle; use method='bootstrap'")
        table = reshuffle_trades(
            r.trade_returns, cash=r.cash, n_simulations=n_simulations, seed=seed, percentiles=percentiles
        )
        path = r.trade_returns
        ppy = 1.0
    else:
        path = _returns(r.equity)
        table = bootstrap_returns(
            path,
            cash=r.cash,
            n_simulations=n_simulations,
            block_size=block,
            periods_per_year=r.periods_per_year,
            seed=seed,
            percentiles=percentiles,
        )
        ppy = r.periods_per_year
    observed = _observed(path, r.cash, ppy)
    return MonteCarloResult(table, observed, method, n_simulations, seed)


def _observed(returns: np.ndarray, cash: float, periods_per_year: float) -> dict[str, float]:
    """The run's own figures on the same definitions as the simulated paths."""
    final, mdd, sharpe = path_statistics(returns, cash)
    return {"final_equity": final, "max_drawdown": mdd, "sharpe": sharpe * math.sqrt(periods_per_year)}
