"""Parameter search: grid, seeded random or Optuna TPE over either engine, with overfitting statistics.

``OptimizationEngine.optimize`` evaluates every candidate parameter set on data loaded once
(``MarketData``), returns a Polars table sorted by the objective metric and reports the Deflated
Sharpe Ratio of the winner and the Probability of Backtest Overfitting (CSCV) of the search.
``optimize(...)`` is the one-call form that loads the data, searches and stores the result::

    res = optimize("sma_crossover", {"fast": range(5, 55, 5), "slow": range(20, 220, 2)},
                   "AAPL", "2012-01-01", "2015-01-01", constraint="fast < slow", commission=0.001)
    res.table.head(), res.best, res.deflated_sharpe, res.pbo

Candidates: ``method="grid"`` (every combination passing the constraint), ``"random"``
(``n_samples`` of them, seeded) or ``"tpe"`` (Optuna's TPE sampler proposes ``n_samples`` sets
from the grid's values, in batches; needs the ``optuna`` extra). A set the strategy's constructor
rejects (e.g. ``fast >= slow``) is skipped and counted in ``skipped``.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from .._symbols import symbol_list
from .._time import TimeLike
from ..analytics import METRIC_NAMES, metrics_frame
from ..errors import ConfigError, kept_warnings, warn_once
from ..options import TradingOptions, trading_options
from .data import MarketData, load_market_data
from .evaluate import EvalSpec, ParamSet, best_vector_run, choose_engine, event_run, strategy_label
from .executor import Progress, quiet_in_worker_import, run_sets
from .resume import logging_to, open_search
from .stats import deflated_sharpe_ratio, pbo_from_block_sums

if TYPE_CHECKING:
    from pathlib import Path

    from ..engine.result import BacktestResult
    from ..results import ResultsStore, SearchLog
    from ..sources.base import DataSource
    from ..vector.engine import VectorResult

Constraint = Callable[[dict[str, Any]], bool] | str
LOWER_IS_BETTER = frozenset({"max_drawdown", "max_drawdown_duration", "volatility", "turnover"})
METHODS = ("grid", "random", "tpe")


@dataclass
class OptimizationResult:
    """``table``: one row per parameter set (parameters, then ``METRIC_NAMES``), best first.

    ``best_run`` is the winner's full run (a ``VectorResult`` or an event ``BacktestResult``),
    ``optimization_id`` its row in the results database when stored, ``skipped`` the candidate
    sets the constraint or the strategy rejected.
    """

    table: pl.DataFrame
    metric: str
    params: tuple[str, ...]
    deflated_sharpe: float
    pbo: float
    engine: str = "vector"
    method: str = "grid"
    skipped: int = 0
    duration_s: float = 0.0
    best_run: BacktestResult | VectorResult | None = None
    optimization_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> dict[str, Any]:
        """The winning parameter set."""
        return {name: _plain(self.table[name][0]) for name in self.params}

    def report(self, path: Any) -> Any:
        """Write a self-contained interactive HTML report (``backtape.reports``); returns the path."""
        from ..reports import write_report

        return write_report(self, path)

    def plot(self) -> Any:
        """The metric over the parameters as a plotly ``Figure`` (for further styling)."""
        from ..reports.research import optimization_figure

        return optimization_figure(self)

    def _repr_html_(self) -> str:
        from ..reports.notebook import optimization_html

        return optimization_html(self)

    def __repr__(self) -> str:
        best = ", ".join(f"{k}={v}" for k, v in self.best.items())
        return (f"OptimizationResult({self.table.height} sets, {self.engine} engine, best {best}: "
                f"{self.metric}={self.table[self.metric][0]:.4g}, DSR={self.deflated_sharpe:.3f}, "
                f"PBO={self.pbo:.3f})")  # fmt: skip


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _constraint_fn(constraint: Constraint | None) -> Callable[[dict[str, Any]], bool] | None:
    """A callable from a callable or an expression over the parameter names (``"fast < slow"``)."""
    if constraint is None or callable(constraint):
        return constraint
    code = compile(constraint, "<constraint>", "eval")

    def check(params: dict[str, Any]) -> bool:
        try:
            return bool(eval(code, {"__builtins__": {}}, dict(params)))
        except NameError as exc:
            raise ConfigError(f"constraint {constraint!r}: {exc}") from None

    return check


def grid_lists(grid: Mapping[str, Iterable[Any]]) -> dict[str, list[Any]]:
    """``grid`` with each parameter's values as a list; a single value or a string (which would be
    iterated into characters: ``"5,10"`` -> ``'5'``, ``','``...) is a ``ConfigError``."""
    if not isinstance(grid, Mapping):
        raise ConfigError(f"the parameter grid must map names to lists of values, e.g. {{'fast': [5, 10]}}, "
                          f"got {grid!r}")
    out = {}
    for name, values in grid.items():
        if isinstance(values, str | bytes) or not isinstance(values, Iterable):
            raise ConfigError(f"grid parameter {name!r} must be a list or range of values, e.g. "
                              f"{{{name!r}: [5, 10]}} or range(5, 55, 5), got {values!r}")
        out[name] = list(values)
    return out


def parameter_sets(grid: Mapping[str, Iterable[Any]], constraint: Constraint | None = None) -> list[ParamSet]:
    """Every combination of the grid's values (first key varies slowest) that passes ``constraint``."""
    if not grid:
        raise ConfigError("the parameter grid is empty")
    grid = grid_lists(grid)
    names = list(grid)
    values = [grid[n] for n in names]
    for name, vals in zip(names, values, strict=True):
        if not vals:
            raise ConfigError(f"grid parameter {name!r} has no values")
    check = _constraint_fn(constraint)
    sets = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]
    sets = [s for s in sets if check is None or check(s)]
    if not sets:
        raise ConfigError("no parameter set satisfies the constraint")
    return sets


class OptimizationEngine:
    """Searches a parameter grid on loaded ``MarketData``; see the module doc.

    ``metric`` is any of ``backtape.analytics.METRIC_NAMES``; drawdowns, volatility and turnover
    are minimized, the rest maximized. ``n_partitions`` (even) sets the CSCV blocks for PBO,
    ``max_splits`` caps its C(n, n/2) splits (a seeded subset).
    """

    def __init__(self, *, metric: str = "sharpe", method: str = "grid", n_samples: int | None = None,
                 seed: int = 0, n_partitions: int = 16, max_splits: int | None = 2000,
                 engine: str = "vector", executor: str = "local", n_jobs: int | None = None,
                 address: str | None = None) -> None:  # fmt: skip
        if metric not in METRIC_NAMES:
            raise ConfigError(f"unknown metric {metric!r}; choose from {', '.join(METRIC_NAMES)}")
        if method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if method != "grid" and (n_samples is None or n_samples < 1):
            raise ConfigError(f"{method} search needs n_samples >= 1")
        if n_partitions < 2 or n_partitions % 2:
            raise ConfigError(f"n_partitions must be an even number >= 2, got {n_partitions}")
        self.metric, self.method, self.n_samples, self.seed = metric, method, n_samples, seed
        self.n_partitions, self.max_splits = n_partitions, max_splits
        self.engine, self.executor, self.address = engine, executor, address
        self.n_jobs = None if n_jobs is not None and n_jobs < 0 else n_jobs  # -1: every core
        self.log: SearchLog | None = None  # where finished sets are recorded (``resume``)

    @property
    def descending(self) -> bool:
        return self.metric not in LOWER_IS_BETTER

    def candidates(
        self, strategy: Any, grid: Mapping[str, Iterable[Any]], constraint: Constraint | None = None
    ) -> tuple[list[ParamSet], int]:
        """The valid sets of the grid (constraint and strategy checks passed), and how many were not."""
        total = math.prod(len(list(v)) for v in grid.values()) if grid else 0
        sets = parameter_sets(grid, constraint)
        spec = EvalSpec(strategy)
        valid = []
        first: tuple[ParamSet, Exception] | None = None
        for s in sets:
            try:
                spec.build(s)
            except (ValueError, TypeError, ConfigError) as exc:
                first = first or (s, exc)
                continue
            valid.append(s)
        if not valid:
            why = f": {first[1]}" if first is not None else ""
            raise ConfigError(f"the strategy rejects every parameter set of the grid (e.g. {sets[0]}{why})")
        if first is not None:
            warn_once(f"{strategy_label(strategy)} rejects {len(sets) - len(valid)} of {len(sets)} parameter "
                      f"set(s), skipped (e.g. {first[0]}: {first[1]})")
        return valid, total - len(valid)

    def optimize(self, strategy: Any, grid: Mapping[str, Iterable[Any]], data: MarketData, *,
                 constraint: Constraint | None = None, progress: Progress | None = None,
                 options: TradingOptions | None = None) -> OptimizationResult:  # fmt: skip
        """Search ``grid`` for ``strategy`` on ``data`` trading with ``options``."""
        t0 = time.perf_counter()
        grid = grid_lists(grid)
        sets, skipped = self.candidates(strategy, grid, constraint)
        spec = EvalSpec(strategy, self.engine, options or TradingOptions(), self.n_partitions)
        if self.method == "random" and self.n_samples is not None and self.n_samples < len(sets):
            pick = np.random.default_rng(self.seed).choice(len(sets), size=self.n_samples, replace=False)
            skipped += len(sets) - self.n_samples
            sets = [sets[i] for i in sorted(pick)]
        if self.method == "tpe":
            sets, metrics, blocks = self._tpe(data, spec, sets, progress)
        else:
            metrics, blocks = self._run(data, spec, sets, progress)
        return self._result(data, spec, sets, metrics, blocks, skipped, time.perf_counter() - t0)

    def _run(
        self, data: MarketData, spec: EvalSpec, sets: list[ParamSet], progress: Progress | None
    ) -> tuple[np.ndarray, np.ndarray]:
        return run_sets(data, spec, sets, executor=self.executor, n_jobs=self.n_jobs, address=self.address,
                        progress=progress, log=self.log)  # fmt: skip

    def _tpe(
        self, data: MarketData, spec: EvalSpec, sets: list[ParamSet], progress: Progress | None
    ) -> tuple[list[ParamSet], np.ndarray, np.ndarray]:
        """Optuna TPE over the valid sets' values; proposals outside them are pruned, repeats reused."""
        try:
            import optuna
        except ImportError:
            raise ConfigError("method='tpe' needs the optuna extra: pip install 'backtape[optuna]'") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        names = list(sets[0])
        choices = {n: sorted({s[n] for s in sets}, key=repr) for n in names}
        valid = {tuple(s[n] for n in names) for s in sets}
        target = min(int(self.n_samples or 1), len(valid))
        sampler = optuna.samplers.TPESampler(seed=self.seed)
        study = optuna.create_study(direction="maximize" if self.descending else "minimize", sampler=sampler)
        col = METRIC_NAMES.index(self.metric)
        seen: dict[tuple, int] = {}
        done_sets: list[ParamSet] = []
        rows_m: list[np.ndarray] = []
        rows_b: list[np.ndarray] = []
        batch = max(1, int(self.n_jobs or 1))
        attempts = 0
        while len(done_sets) < target and attempts < 50 * target:
            trials = [study.ask() for _ in range(batch)]
            fresh: list[tuple[Any, ParamSet]] = []
            for trial in trials:
                attempts += 1
                params = {n: trial.suggest_categorical(n, choices[n]) for n in names}
                key = tuple(params[n] for n in names)
                if key not in valid:
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                elif key in seen:
                    study.tell(trial, _objective(rows_m[seen[key]][col]))
                elif len(done_sets) + len(fresh) < target and key not in {
                    tuple(p[n] for n in names) for _, p in fresh
                }:
                    fresh.append((trial, params))
                else:
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            if not fresh:
                continue
            metrics, blocks = self._run(data, spec, [p for _, p in fresh], None)
            for (trial, params), m, b in zip(fresh, metrics, blocks, strict=True):
                seen[tuple(params[n] for n in names)] = len(done_sets)
                done_sets.append(params)
                rows_m.append(m)
                rows_b.append(b)
                study.tell(trial, _objective(m[col]))
            if progress is not None:
                progress(len(done_sets), target)
        return done_sets, np.array(rows_m), np.array(rows_b)

    def _result(
        self,
        data: MarketData,
        spec: EvalSpec,
        sets: list[ParamSet],
        metrics: np.ndarray,
        blocks: np.ndarray,
        skipped: int,
        duration: float,
    ) -> OptimizationResult:
        names = tuple(sets[0])
        params = pl.DataFrame([{n: s[n] for n in names} for s in sets])
        full = pl.concat([params, metrics_frame(metrics)], how="horizontal").with_row_index("_set")
        full = full.with_columns(pl.col(self.metric).fill_nan(None)).sort(
            self.metric, descending=self.descending, nulls_last=True, maintain_order=True
        )
        best_index = int(full["_set"][0])
        full = full.drop("_set")
        best = sets[best_index]
        with kept_warnings():  # the best set's run again: the search said its warnings
            if spec.engine == "event":
                run = event_run(data, spec, best)
                equity = run.equity["equity"].to_numpy()
            else:
                run = best_vector_run(data, spec, best)
                eq = run.equity
                equity = eq["equity"].to_numpy() if isinstance(eq, pl.DataFrame) else eq[:, 0]
        returns = np.diff(equity) / np.where(equity[:-1] > 0, equity[:-1], np.nan)
        returns = returns[np.isfinite(returns)]
        trial_sharpes = metrics[:, METRIC_NAMES.index("sharpe")] / math.sqrt(data.periods_per_year)
        multi = len(sets) > 1
        dsr = deflated_sharpe_ratio(returns, trial_sharpes) if multi and returns.size >= 3 else math.nan
        pbo = math.nan
        details: dict[str, Any] = {}
        if multi:
            cnt = np.diff(np.linspace(0, equity.shape[0] - 1, self.n_partitions + 1).astype(np.int64))
            stats = pbo_from_block_sums(blocks[:, 0, :].T, blocks[:, 1, :].T, cnt.astype(np.float64),
                                        self.max_splits, self.seed)  # fmt: skip
            pbo, details = stats["pbo"], {"pbo_splits": stats["splits"], "pbo_logit": stats["logit"]}
        return OptimizationResult(full, self.metric, names, dsr, pbo, spec.engine, self.method, skipped,
                                  duration, run, details=details)  # fmt: skip


def _objective(value: float) -> float:
    return float(value) if math.isfinite(value) else float("nan")


def optimize(
    strategy: Any,
    grid: Mapping[str, Iterable[Any]],
    symbols: Sequence[str] | str,
    start: TimeLike,
    end: TimeLike,
    frequency: str = "1d",
    source: DataSource | str = "sample",
    metric: str = "sharpe",
    engine: str = "vector",
    executor: str = "local",
    *,
    constraint: Constraint | None = None,
    n_jobs: int | None = None,
    store: ResultsStore | str | Path | None = None,
    method: str = "grid",
    n_samples: int | None = None,
    seed: int = 0,
    n_partitions: int = 16,
    max_splits: int | None = 2000,
    address: str | None = None,
    progress: Progress | None = None,
    warmup: int = 0,
    options: TradingOptions | None = None,
    resume: int | bool | None = None,
    **overrides: Any,
) -> OptimizationResult:
    """Load ``symbols`` once, search ``grid`` for ``strategy`` and (with ``store``) save the result.

    ``strategy``: a registered name (``"sma_crossover"``, ``"rsi_mean_reversion"``,
    ``"donchian_breakout"``, ``"momentum"``), ``file.py:Class``, a ``Strategy`` class or (vector
    engine) a signal function ``f(bars, **params) -> {"entries": ..., "exits": ...}``.
    ``constraint``: a callable on the parameter dict or an expression such as ``"fast < slow"``.
    ``warmup``: bars loaded before ``start`` at least (a signal function's warm-up; a strategy's
    own ``warmup`` is always honoured). ``options``: the ``TradingOptions`` (keyword ``overrides``
    such as ``commission=0.001`` change single ones). ``store``: a ``ResultsStore`` or database
    path/URL; the event engine's winning run is stored as a backtest too. ``engine="vector"`` falls
    back to the event engine (saying why, once) for a strategy without a vector form or options
    only the event engine models; both engines run any number of symbols on one account, on raw
    prices with splits and dividends booked, and agree to 1e-9. With a ``store`` every finished set is
    recorded as it finishes; ``resume=ID`` (or ``True``: the newest unfinished search like this one)
    continues an interrupted search, evaluating only the sets it had not stored.
    """
    quiet_in_worker_import()
    opts = trading_options(options, **overrides)
    grid = grid_lists(grid)
    names = symbol_list(symbols)
    from ..engine.engine import resolve_source

    source = resolve_source(source)
    opts = opts.with_instruments(source.instruments(names))
    engine, why = choose_engine(strategy, engine, opts, len(names))
    if why:
        warn_once(f"optimizing {strategy_label(strategy)} on the event engine: {why}")
    eng = OptimizationEngine(metric=metric, method=method, n_samples=n_samples, seed=seed,
                             n_partitions=n_partitions, max_splits=max_splits, engine=engine,
                             executor=executor, n_jobs=n_jobs, address=address)  # fmt: skip
    sets, _ = eng.candidates(strategy, grid, constraint)
    spec = EvalSpec(strategy)
    need = max(warmup, *(spec.warmup(s) for s in sets))
    data = load_market_data(names, start, end, frequency, source, warmup=need, adjustment=opts.adjustment,
                            dividends=opts.dividends)
    eng.log = open_search(store, resume, eng, strategy, grid, data, constraint, opts)
    with logging_to(eng.log):
        result = eng.optimize(strategy, grid, data, constraint=constraint, progress=progress, options=opts)
    if eng.log is not None:
        save_optimization(result, eng.log.store, strategy=strategy_label(strategy), data=data, grid=grid,
                          options=opts.describe())  # fmt: skip
        eng.log.finish(result.optimization_id)
        result.details.update(search_id=eng.log.id, sets_reused=eng.log.reused, sets_run=eng.log.recorded)
    return result


def save_optimization(
    result: OptimizationResult,
    store: ResultsStore | str | Path,
    *,
    strategy: str,
    data: MarketData,
    grid: Mapping[str, Iterable[Any]],
    options: Mapping[str, Any],
) -> int:
    """Store ``result`` (and an event-engine winner as a backtest run); sets ``optimization_id``."""
    from ..engine.result import BacktestResult
    from ..results import ResultsStore

    db = store if isinstance(store, ResultsStore) else ResultsStore(store)
    best_run_id = None
    if isinstance(result.best_run, BacktestResult):  # the event engine's winner
        best_run_id = result.best_run.save(db)
    result.optimization_id = db.save_optimization(
        strategy=strategy, metric=result.metric, method=result.method, engine=result.engine,
        symbols=data.symbols, start=data.start, end=data.end, frequency=data.frequency,
        source=data.source_name, grid={k: [_plain(v) for v in vals] for k, vals in grid.items()},
        options=dict(options), table=result.table, best=result.best, deflated_sharpe=result.deflated_sharpe,
        pbo=result.pbo, skipped=result.skipped, duration_s=result.duration_s, best_run_id=best_run_id,
    )  # fmt: skip
    return result.optimization_id
