"""Monte Carlo analysis of one run: how much of its result is the order of its trades or its path.

* ``method="reshuffle"``: the run's trades in random orders. Every trade counts, the positions
  still open at the end too (their P&L marked at the last prices, as the run's equity counts them);
  what the trades do not explain (dividends, financing) is spread evenly over them, so every
  path ends at the run's own final equity and only the path differs: drawdown (measured at trade
  closes) and the Sharpe of the trade returns (annualized by trades per year). A run needs at
  least ``MIN_TRADES`` trades (``TooFewTradesError`` otherwise).
* ``method="bootstrap"``: block bootstrap of the per-bar returns of the equity curve (blocks of
  ``block`` bars keep short-range autocorrelation); final equity, max drawdown and annualized Sharpe.

``observed`` is always the run's own final equity, max drawdown and Sharpe. Both methods are seeded
(same seed, same table) and report percentiles (5, 25, 50, 75, 95 by default), the figures of each
simulation (``simulations``) and a fan of equity percentiles along the paths of the first batch
(``fan``). Simulations run in batches of ``BATCH``, each with its own seed derived from ``seed``,
so ``executor="ray"`` spreads them over a cluster and returns exactly the local table.
The run may be an event ``BacktestResult``, a ``VectorResult`` (column 0), an
``OptimizationResult`` (its winner), a ``WalkForwardResult`` (its stitched curve, bootstrap only)
or the id of a run stored in the results database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl

from ..errors import ConfigError, TooFewTradesError
from .cluster import Progress
from .stats import bootstrap_index, percentile_table, simulate_paths

METHODS = ("reshuffle", "bootstrap")
MIN_TRADES = 5
_PCTS = (5.0, 25.0, 50.0, 75.0, 95.0)
_FAN_STEPS = 400
_FAN_PATHS = 200
#: simulations per seeded batch: batch k draws from its own ``SeedSequence(seed, spawn_key=(k,))``,
#: so the result is the same whether the batches run here or in any chunks on a cluster
BATCH = 1000


@dataclass
class MonteCarloResult:
    """``table``: one row per percentile with final_equity, max_drawdown and sharpe; ``observed``:
    the run's own three figures; ``simulations``: the three figures of every simulated path;
    ``fan``: equity percentiles (p5 .. p95) along the paths by ``step`` (trades or bars) and the
    run's own path (``observed``)."""

    table: pl.DataFrame
    observed: dict[str, float]
    method: str
    n_simulations: int
    seed: int
    simulations: pl.DataFrame = field(default_factory=pl.DataFrame)
    fan: pl.DataFrame = field(default_factory=pl.DataFrame)
    #: reshuffle: the run's own trades in the order they closed, measured as every path is (drawdown
    #: at trade closes, Sharpe of trade returns): the figures to place among the simulations
    observed_trades: dict[str, float] = field(default_factory=dict)

    def report(self, path: Any) -> Any:
        """Write a self-contained interactive HTML report to ``path``; returns the path."""
        from ..reports import write_report

        return write_report(self, path)

    def plot(self) -> Any:
        """The fan chart as a plotly ``Figure`` (for further styling)."""
        from ..reports.research import monte_carlo_figure

        return monte_carlo_figure(self)

    def _repr_html_(self) -> str:
        from ..reports.notebook import monte_carlo_html

        return monte_carlo_html(self)


@dataclass(frozen=True)
class _Run:
    """What Monte Carlo needs of a run: equity curve, every trade's P&L (open ones marked), cash,
    annualization and the run's own figures."""

    equity: np.ndarray
    trade_pnl: np.ndarray
    cash: float
    periods_per_year: float
    years: float
    observed: dict[str, float]
    closed_order: np.ndarray | None = None  # trade_pnl's indices in the order the trades closed


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


def _make_run(equity: np.ndarray, pnl: np.ndarray, cash: float, metrics: dict[str, Any]) -> _Run:
    """The run with its own figures: last equity, max drawdown and Sharpe of its curve."""
    eq = np.asarray(equity, dtype=np.float64)
    ppy = _periods_per_year(eq, metrics)
    peak = np.maximum.accumulate(eq) if eq.size else eq
    mdd = float(np.max(1.0 - eq / np.where(peak > 0, peak, np.nan), initial=0.0)) if eq.size else math.nan
    r = _returns(eq)
    sd = r.std(ddof=1) if r.size > 1 else 0.0
    own_sharpe = float(r.mean() / sd * math.sqrt(ppy)) if sd > 0 else math.nan
    observed = {
        "final_equity": float(eq[-1]) if eq.size else cash,
        "max_drawdown": float(metrics.get("max_drawdown", mdd)),
        "sharpe": float(metrics.get("sharpe", own_sharpe)),
    }
    years = max(eq.size - 1, 1) / ppy  # in the run's own annualization
    return _Run(eq, np.asarray(pnl, dtype=np.float64), cash, ppy, years, observed)


def _from_result(res: Any, cash: float | None) -> _Run:
    """An event ``BacktestResult``: closed trades plus the open positions marked at the end."""
    pnl = [res.trades["pnl"].to_numpy()] if res.trades.height else []
    if res.open_trades.height and "pnl" in res.open_trades.columns:
        pnl.append(res.open_trades["pnl"].to_numpy())
    eq = res.equity["equity"].to_numpy()
    run = _make_run(eq, np.concatenate(pnl) if pnl else np.zeros(0), float(cash or res.cash), res.metrics)
    if res.trades.height and "exit_time" in res.trades.columns:  # open trades close last, at the end
        exits = res.trades["exit_time"].to_physical().to_numpy()
        run = replace(run, closed_order=np.concatenate([np.argsort(exits, kind="stable"),
                                                       np.arange(exits.size, run.trade_pnl.size)]))
    return run


def _resolve(run: Any, store: Any, cash: float | None) -> _Run:
    from ..engine.result import BacktestResult
    from ..vector.engine import VectorResult
    from .search import OptimizationResult
    from .walkforward import WalkForwardResult

    if isinstance(run, OptimizationResult):
        run = run.best_run
    if isinstance(run, BacktestResult):
        return _from_result(run, cash)
    if isinstance(run, VectorResult):
        tr = run.trades.filter(pl.col("column") == 0)
        start = float(cash or 10_000.0)
        return _make_run(run.equity[:, 0], tr["pnl"].to_numpy(), start, run.column_metrics())
    if isinstance(run, WalkForwardResult):
        eq = run.equity["equity"].to_numpy()
        return _make_run(eq, np.zeros(0), float(cash or eq[0]), run.metrics)
    if isinstance(run, int | np.integer):
        from ..results import ResultsStore

        db = store if isinstance(store, ResultsStore) else ResultsStore(store)
        return _from_result(db.load_result(int(run)), cash)
    raise ConfigError(f"monte_carlo takes a run result or a stored run id, got {type(run).__name__}")


def monte_carlo(
    run: Any,
    n_simulations: int = 1000,
    method: str = "reshuffle",
    *,
    block: int = 20,
    seed: int = 0,
    store: Any = None,
    cash: float | None = None,
    percentiles: tuple[float, ...] = _PCTS,
    executor: str = "local",
    address: str | None = None,
    progress: Progress | None = None,
) -> MonteCarloResult:
    """Percentiles of final equity, max drawdown and Sharpe over ``n_simulations`` resampled paths.

    ``store`` (a ``ResultsStore`` or a database path/URL, default ``~/.backtape/results.db``) is
    where a run id is looked up; ``cash`` overrides the starting capital. ``executor="ray"`` runs
    the seeded batches as tasks on the Ray cluster at ``address`` (a local one without it); the
    table is the same as here, bit for bit. ``progress(batches done, batches)`` follows them.
    """
    from .executor import EXECUTORS

    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if n_simulations < 1:
        raise ConfigError(f"n_simulations must be >= 1, got {n_simulations}")
    if executor not in EXECUTORS:
        raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if method == "bootstrap" and (isinstance(block, bool) or not isinstance(block, int | np.integer)
                                  or block < 1):
        raise ConfigError(f"block must be a whole number of bars >= 1, got {block!r}")
    r = _resolve(run, store, cash)
    _check(r, method, block)
    batches = [(k, min(BATCH, n_simulations - lo)) for k, lo in enumerate(range(0, n_simulations, BATCH))]
    if executor == "ray":
        from .cluster import chunks_for, map_chunks

        parts = map_chunks(_simulate_batches, r, chunks_for(address, batches), method, block, seed,
                           address=address, progress=progress)  # fmt: skip
        done = [b for part in parts for b in part]
    else:
        done = _simulate_batches(r, batches, method, block, seed)
        if progress is not None:
            progress(len(batches), len(batches))
    sims = np.concatenate([s for s, _ in done])
    fan = _fan(done[0][1], r, method)
    table = percentile_table(sims, percentiles, 1.0)
    simulations = pl.DataFrame({"final_equity": sims[:, 0], "max_drawdown": sims[:, 1], "sharpe": sims[:, 2]})
    as_simulated: dict[str, float] = {}
    if method == "reshuffle":
        order = r.closed_order if r.closed_order is not None else np.arange(r.trade_pnl.size)
        own = _trade_paths(r, order[None, :])[0][0]
        as_simulated = dict(zip(("final_equity", "max_drawdown", "sharpe"), map(float, own), strict=True))
    return MonteCarloResult(table, dict(r.observed), method, n_simulations, seed, simulations, fan,
                            as_simulated)


def _check(r: _Run, method: str, block: int = 1) -> None:
    """Raise when ``r`` cannot be resampled by ``method`` (too few trades or bars, bad equity)."""
    if method == "reshuffle":
        n = r.trade_pnl.size
        if n < MIN_TRADES:
            raise TooFewTradesError(
                f"the run has {n} trade(s), open ones included; reshuffling needs at least {MIN_TRADES} "
                "(use method='bootstrap', a longer range or more symbols)")
        return
    rets = _returns(r.equity)
    if rets.size < 2:
        raise TooFewTradesError("the run has fewer than 3 bars of equity; there is nothing to bootstrap")
    if block >= rets.size:
        raise ConfigError(f"block {block} is not shorter than the run's {rets.size:,} bar returns: every "
                          "path would be the run itself; use a block well below it (default 20)")
    if not np.isfinite(rets).all():
        bad = int(np.flatnonzero(~np.isfinite(rets))[0])
        raise ConfigError(f"the equity curve has a non-finite value at bar {bad}")


def _simulate_batches(r: _Run, batches: list[tuple[int, int]], method: str, block: int,
                      seed: int) -> list[tuple[np.ndarray, np.ndarray | None]]:  # fmt: skip
    """Figures of each ``(k, size)`` batch (its own generator: ``SeedSequence(seed, spawn_key=(k,))``),
    and for batch 0 the equity paths the fan is drawn from (sampled at the fan's steps)."""
    out = []
    for k, size in batches:
        ss = np.random.SeedSequence(seed, spawn_key=(k,))
        sims, paths = _reshuffle(r, size, ss) if method == "reshuffle" else _bootstrap(r, size, block, ss)
        out.append((sims, paths if k == 0 else None))
    return out


def _fan_steps(n_steps: int) -> np.ndarray:
    """At most ``_FAN_STEPS`` step indices out of ``n_steps``, first and last included."""
    return np.unique(np.linspace(0, n_steps - 1, min(_FAN_STEPS, n_steps)).astype(np.int64))


def _reshuffle(r: _Run, size: int, seed: np.random.SeedSequence) -> tuple[np.ndarray, np.ndarray]:
    """(final equity, max drawdown, annualized trade Sharpe) of ``size`` random trade orders, and
    their equity paths at the fan's steps."""
    rng = np.random.default_rng(seed)
    return _trade_paths(r, np.argsort(rng.random((size, r.trade_pnl.size)), axis=1))


def _trade_paths(r: _Run, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(final equity, max drawdown, annualized trade Sharpe) of the run's trades taken in each row's
    order of ``index`` (paths x trades), and the equity paths at the fan's steps."""
    size, n = index.shape
    pnl = r.trade_pnl + (r.observed["final_equity"] - r.cash - r.trade_pnl.sum()) / n
    steps = np.empty((size, n + 1))
    steps[:, 0] = r.cash
    np.cumsum(pnl[index], axis=1, out=steps[:, 1:])
    steps[:, 1:] += r.cash
    peak = np.maximum.accumulate(steps, axis=1)
    mdd = np.max(1.0 - steps / np.where(peak > 0, peak, np.nan), axis=1)
    rets = pnl[index] / np.where(steps[:, :-1] > 0, steps[:, :-1], np.nan)
    sd = np.nanstd(rets, axis=1, ddof=1)
    sharpe = np.where(sd > 0, np.nanmean(rets, axis=1) / np.where(sd > 0, sd, 1.0), np.nan)
    sims = np.column_stack([steps[:, -1], mdd, sharpe * math.sqrt(n / r.years)])
    return sims, steps[:, _fan_steps(n + 1)]


def _bootstrap(r: _Run, size: int, block: int, seed: np.random.SeedSequence) -> tuple[np.ndarray, np.ndarray]:
    """Figures of ``size`` block-bootstrapped return paths (annualized Sharpe), and the equity of
    the first ``_FAN_PATHS`` of them at the fan's steps."""
    rets = _returns(r.equity)
    index = bootstrap_index(rets.size, size, block, seed)
    sims = simulate_paths(rets, index, r.cash)
    sims[:, 2] *= math.sqrt(r.periods_per_year)
    growth = np.cumprod(1.0 + rets[index[:_FAN_PATHS]], axis=1)
    paths = r.cash * np.concatenate([np.ones((growth.shape[0], 1)), growth], axis=1)
    return sims, paths[:, _fan_steps(rets.size + 1)]


def _fan(paths: np.ndarray | None, r: _Run, method: str) -> pl.DataFrame:
    """Equity percentiles at each step of the simulated paths, beside the run's own path."""
    assert paths is not None  # batch 0 always carries them
    if method == "reshuffle":
        pnl = r.trade_pnl + (r.observed["final_equity"] - r.cash - r.trade_pnl.sum()) / r.trade_pnl.size
        own = r.cash + np.concatenate(([0.0], np.cumsum(pnl)))
    else:
        own = r.cash * np.concatenate(([1.0], np.cumprod(1.0 + _returns(r.equity))))
    step = _fan_steps(own.size)
    q = np.nanpercentile(paths, _PCTS, axis=0)
    return pl.DataFrame({"step": step, **{f"p{int(p)}": q[i] for i, p in enumerate(_PCTS)},
                         "observed": own[step]})  # fmt: skip
