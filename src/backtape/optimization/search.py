"""Grid and random parameter search over the vectorized engine, with overfitting statistics.

``OptimizationEngine.optimize`` evaluates every parameter set (or a seeded random sample of them)
that passes the constraint, returns a Polars table sorted by the objective metric, and reports the
Deflated Sharpe Ratio of the winner and the Probability of Backtest Overfitting of the search.
Example::

    engine = OptimizationEngine(metric="sharpe")
    result = engine.optimize("sma_crossover", {"fast": range(5, 55, 5), "slow": range(20, 220, 2)},
                             close=close, open=open_, commission=0.001,
                             constraint=lambda p: p["fast"] < p["slow"])
    result.best, result.deflated_sharpe, result.pbo

Strategies: ``"sma_crossover"`` (parameters ``fast``, ``slow``; swept by the streaming kernel) or
any function ``f(close, **params) -> (entries, exits)`` (or a 4-tuple adding short entries and
exits) evaluated in chunks of columns. Memory stays bounded in both cases: the statistics need
only per-block return sums, gathered chunk by chunk.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from ..analytics import METRIC_NAMES, periods_per_year
from ..errors import ConfigError
from ..vector import crossed_above, crossed_below, simulate, sma
from ..vector.sweep import sma_crossover_sweep
from .stats import block_sums, deflated_sharpe_ratio, pbo_from_block_sums

SignalFn = Callable[..., tuple[np.ndarray, ...]]
Constraint = Callable[[dict[str, Any]], bool]
_LOWER_IS_BETTER = {"max_drawdown", "max_drawdown_duration", "volatility", "turnover"}


@dataclass(frozen=True)
class OptimizationResult:
    """``table``: one row per parameter set (parameters, then metrics), best first."""

    table: pl.DataFrame
    metric: str
    params: tuple[str, ...]
    deflated_sharpe: float
    pbo: float

    @property
    def best(self) -> dict[str, Any]:
        """The winning parameter set."""
        return {name: self.table[name][0] for name in self.params}


def parameter_sets(
    grid: Mapping[str, Iterable[Any]], constraint: Constraint | None = None
) -> list[dict[str, Any]]:
    """Every combination of the grid's values (first key varies slowest) that passes ``constraint``."""
    if not grid:
        raise ConfigError("the parameter grid is empty")
    names = list(grid)
    values = [list(grid[n]) for n in names]
    for name, vals in zip(names, values, strict=True):
        if not vals:
            raise ConfigError(f"grid parameter {name!r} has no values")
    sets = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]
    sets = [s for s in sets if constraint is None or constraint(s)]
    if not sets:
        raise ConfigError("no parameter set satisfies the constraint")
    return sets


def _sma_signals(
    cache: dict[int, np.ndarray], close: np.ndarray, fast: int, slow: int
) -> tuple[np.ndarray, ...]:
    for n in (fast, slow):
        if n not in cache:
            cache[n] = sma(close, n)
    return crossed_above(cache[fast], cache[slow]), crossed_below(cache[fast], cache[slow])


class OptimizationEngine:
    """Grid (``method="grid"``) or seeded random (``"random"``, ``n_samples`` sets) search.

    ``metric`` is any name of ``backtape.analytics.METRIC_NAMES``; drawdowns, volatility and
    turnover are minimized, the rest maximized. ``n_partitions`` sets the CSCV blocks for PBO.
    """

    def __init__(
        self,
        *,
        metric: str = "sharpe",
        method: str = "grid",
        n_samples: int | None = None,
        seed: int = 0,
        n_partitions: int = 16,
        max_splits: int | None = 2000,
        chunk: int = 64,
    ) -> None:
        if metric not in METRIC_NAMES:
            raise ConfigError(f"unknown metric {metric!r}; choose from {', '.join(METRIC_NAMES)}")
        if method not in ("grid", "random"):
            raise ConfigError(f"method must be 'grid' or 'random', got {method!r}")
        if method == "random" and (n_samples is None or n_samples < 1):
            raise ConfigError("random search needs n_samples >= 1")
        self.metric, self.method, self.n_samples, self.seed = metric, method, n_samples, seed
        self.n_partitions, self.max_splits, self.chunk = n_partitions, max_splits, chunk

    def _candidates(self, grid: Mapping[str, Iterable[Any]], constraint: Constraint | None) -> list[dict]:
        sets = parameter_sets(grid, constraint)
        if self.method == "random" and self.n_samples is not None and self.n_samples < len(sets):
            pick = np.random.default_rng(self.seed).choice(len(sets), size=self.n_samples, replace=False)
            sets = [sets[i] for i in sorted(pick)]
        return sets

    def optimize(
        self,
        strategy: str | SignalFn,
        grid: Mapping[str, Iterable[Any]],
        bars: pl.DataFrame | None = None,
        *,
        close: np.ndarray | None = None,
        open: np.ndarray | None = None,
        high: np.ndarray | None = None,
        low: np.ndarray | None = None,
        calendar: str = "XNYS",
        constraint: Constraint | None = None,
        **options: Any,
    ) -> OptimizationResult:
        """Search ``grid`` for ``strategy`` on one price series; see the module doc.

        Prices come from ``bars`` (one symbol's canonical bars: annualization is then inferred
        from their timestamps on ``calendar``) or from the ``close``/``open``/``high``/``low``
        arrays (give ``periods_per_year`` in ``options``, default 252). Other ``options`` go to
        ``simulate`` (cash, commission, slippage_bps, fill, allow_short for sma_crossover...).
        """
        if bars is not None:
            if "symbol" in bars.columns and bars["symbol"].n_unique() != 1:
                raise ConfigError("optimize runs on one symbol's bars; filter the frame first")
            close, open, high, low = (bars[c].to_numpy() for c in ("close", "open", "high", "low"))
            options.setdefault("periods_per_year", periods_per_year(bars["ts"].to_numpy(), calendar=calendar))
        if close is None:
            raise ConfigError("give bars or a close array")
        close = np.asarray(close, dtype=np.float64)
        prices = {"open": open, "high": high, "low": low}
        sets = self._candidates(grid, constraint)
        names = tuple(sets[0])
        if strategy == "sma_crossover":
            if set(names) != {"fast", "slow"}:
                raise ConfigError(f"sma_crossover takes parameters fast and slow, got {sorted(names)}")
            pairs = np.array([(s["fast"], s["slow"]) for s in sets], dtype=np.int64)
            metrics = sma_crossover_sweep(close, pairs=pairs, **prices, **options).drop("fast", "slow")
            cache: dict[int, np.ndarray] = {}
            allow_short = bool(options.pop("allow_short", False))

            def signals(params: dict[str, Any]) -> tuple[np.ndarray, ...]:
                up, down = _sma_signals(cache, close, params["fast"], params["slow"])
                return (up, down, down, up) if allow_short else (up, down)
        elif callable(strategy):

            def signals(params: dict[str, Any]) -> tuple[np.ndarray, ...]:
                return strategy(close, **params)

            metrics = None
        else:
            raise ConfigError(
                f"unknown vector strategy {strategy!r}; use 'sma_crossover' or a signal function"
            )
        partials, table = self._evaluate(sets, signals, close, prices, options, need_metrics=metrics is None)
        metrics = table if metrics is None else metrics
        params = pl.DataFrame([{n: s[n] for n in names} for s in sets])
        full = pl.concat([params, metrics], how="horizontal").with_row_index("_set")
        full = full.with_columns(pl.col(self.metric).fill_nan(None)).sort(
            self.metric, descending=self.metric not in _LOWER_IS_BETTER, nulls_last=True, maintain_order=True
        )
        best_index = int(full["_set"][0])
        full = full.drop("_set")
        ppy = float(options.get("periods_per_year", 252.0))
        best = simulate(close, **prices, **_signal_kwargs(signals(sets[best_index])), trades=False, **options)
        best_returns = np.diff(best.equity[:, 0]) / best.equity[:-1, 0]
        trial_sharpes = metrics["sharpe"].to_numpy() / math.sqrt(ppy)
        dsr = deflated_sharpe_ratio(best_returns, trial_sharpes) if len(sets) > 1 else math.nan
        s1, s2, cnt = partials
        pbo = (
            pbo_from_block_sums(s1, s2, cnt, self.max_splits, self.seed)["pbo"] if len(sets) > 1 else math.nan
        )
        return OptimizationResult(full, self.metric, names, dsr, pbo)

    def _evaluate(
        self,
        sets: list[dict[str, Any]],
        signals: Callable[[dict[str, Any]], tuple[np.ndarray, ...]],
        close: np.ndarray,
        prices: dict[str, Any],
        options: dict[str, Any],
        need_metrics: bool,
    ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], pl.DataFrame | None]:
        """Simulate the sets chunk by chunk: per-block return sums (for PBO) and, if asked, metrics."""
        s1_parts, s2_parts, frames = [], [], []
        cnt = np.zeros(0)
        for lo in range(0, len(sets), self.chunk):
            chunk = sets[lo : lo + self.chunk]
            sig = [_signal_kwargs(signals(s)) for s in chunk]
            kwargs = {name: np.stack([s[name] for s in sig], axis=1) for name in sig[0]}
            res = simulate(close, **prices, **kwargs, trades=False, **options)
            eq = res.equity
            returns = np.diff(eq, axis=0) / eq[:-1]
            s1, s2, cnt = block_sums(returns, self.n_partitions)
            s1_parts.append(s1)
            s2_parts.append(s2)
            if need_metrics:
                frames.append(res.metrics.drop("column"))
        partials = (np.concatenate(s1_parts, axis=1), np.concatenate(s2_parts, axis=1), cnt)
        return partials, pl.concat(frames) if need_metrics else None


_SIGNAL_NAMES = ("entries", "exits", "short_entries", "short_exits")


def _signal_kwargs(sig: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
    if len(sig) not in (2, 4):
        raise ConfigError(f"a signal function returns (entries, exits) or 4 arrays, got {len(sig)}")
    return dict(zip(_SIGNAL_NAMES, sig, strict=False))
