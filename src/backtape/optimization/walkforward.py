"""Walk-forward analysis: optimize on a training window, trade the winner on the next, repeat.

Windows are counted in bars of the run frequency over ``[start, end)``. Window ``k`` trains on
``train_periods`` bars starting at ``k * step_size`` (rolling) or on every bar from the first one up
to ``train_periods + k * step_size`` (``anchored=True``) and tests on the ``test_periods`` bars
that follow (the last test window may be shorter). Indicators warm up on the bars before each
window, as in a live run. Data is loaded once for all windows.

The out-of-sample (OOS) runs are stitched into one equity curve by compounding: each test window
starts with the capital the previous one ended with, so the curve's returns are exactly the test
windows' returns. **Walk-forward efficiency** is the OOS annualized return (CAGR of the stitched
curve) divided by the mean in-sample annualized return (CAGR) of the windows' winners; about 1
means the out-of-sample performance kept what the optimization found, near 0 or negative that it
did not.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from .._symbols import symbol_list
from .._time import TimeLike
from ..analytics import compute_metrics
from ..errors import ConfigError, warn_once
from ..options import WALK_FORWARD_TEST, WALK_FORWARD_TRAIN, TradingOptions, trading_options
from .data import MarketData, load_market_data
from .evaluate import EvalSpec, best_vector_run, choose_engine, event_run, strategy_label
from .executor import Progress, quiet_in_worker_import
from .search import Constraint, OptimizationEngine, grid_lists

if TYPE_CHECKING:
    from ..sources.base import DataSource


@dataclass
class WalkForwardResult:
    """``windows``: one row per window (ranges, winning parameters, IS and OOS metric and CAGR);
    ``equity``: the stitched OOS curve (``ts``, ``equity``); ``metrics``: its metrics;
    ``efficiency``: walk-forward efficiency (module doc)."""

    windows: pl.DataFrame
    equity: pl.DataFrame
    metrics: dict[str, float]
    efficiency: float
    metric: str
    anchored: bool

    def report(self, path: Any) -> Any:
        """Write a self-contained interactive HTML report (``backtape.reports``); returns the path."""
        from ..reports import write_report

        return write_report(self, path)

    def plot(self) -> Any:
        """In- vs out-of-sample per window and the stitched equity as a plotly ``Figure``."""
        from ..reports.research import walk_forward_figure

        return walk_forward_figure(self)

    def _repr_html_(self) -> str:
        from ..reports.notebook import walk_forward_html

        return walk_forward_html(self)

    def __repr__(self) -> str:
        return (
            f"WalkForwardResult({self.windows.height} windows, {'anchored' if self.anchored else 'rolling'}, "
            f"OOS CAGR {self.metrics.get('cagr', math.nan):+.2%}, efficiency {self.efficiency:.3f})"
        )


def window_bounds(
    n_bars: int, train_periods: int, test_periods: int, step_size: int, anchored: bool
) -> list[tuple[int, int, int]]:
    """``(train_start, test_start, test_end)`` bar offsets of every window over ``n_bars`` bars."""
    for name, v in (
        ("train_periods", train_periods),
        ("test_periods", test_periods),
        ("step_size", step_size),
    ):
        if int(v) != v or v < 1:
            raise ConfigError(f"{name} must be a positive whole number of bars, got {v!r}")
    if step_size < test_periods:
        raise ConfigError(
            f"step_size ({step_size}) must be >= test_periods ({test_periods}): test windows "
            "would overlap and the stitched out-of-sample curve would count bars twice"
        )
    out = []
    k = 0
    while True:
        lo = 0 if anchored else k * step_size
        mid = train_periods + k * step_size
        if mid >= n_bars:
            break
        out.append((lo, mid, min(mid + test_periods, n_bars)))
        k += 1
    if not out:
        raise ConfigError(f"{n_bars} bars leave no test window after {train_periods} training bars")
    return out


def _window(data: MarketData, ts: np.ndarray, first: int, a: int, b: int) -> MarketData:
    start = int(ts[first + a])
    end = int(ts[first + b]) if first + b < ts.shape[0] and ts[first + b] < data.end else data.end
    return dataclasses.replace(data, start=start, end=end)


def walk_forward(
    strategy: Any,
    grid: Mapping[str, Iterable[Any]],
    symbols: Sequence[str] | str,
    start: TimeLike,
    end: TimeLike,
    train_periods: int = WALK_FORWARD_TRAIN,
    test_periods: int = WALK_FORWARD_TEST,
    step_size: int | None = None,
    anchored: bool = False,
    metric: str = "sharpe",
    *,
    frequency: str = "1d",
    source: DataSource | str = "sample",
    engine: str = "vector",
    executor: str = "local",
    constraint: Constraint | None = None,
    n_jobs: int | None = None,
    address: str | None = None,
    method: str = "grid",
    n_samples: int | None = None,
    seed: int = 0,
    n_partitions: int = 4,
    progress: Progress | None = None,
    options: TradingOptions | None = None,
    **overrides: Any,
) -> WalkForwardResult:
    """Walk-forward optimization of ``strategy`` over ``grid`` (see the module doc for the windows).

    The windows default to those of the CLI and the configuration (252 bars to train, 63 to test,
    ``step_size`` = ``test_periods``); other arguments as in ``optimize`` (each window's search runs
    on ``executor``, with ``address`` for a Ray cluster).
    ``progress(done, total)`` counts windows.
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
        warn_once(f"walk-forward of {strategy_label(strategy)} on the event engine: {why}")
    eng = OptimizationEngine(
        metric=metric,
        method=method,
        n_samples=n_samples,
        seed=seed,
        n_partitions=n_partitions,
        engine=engine,
        executor=executor,
        n_jobs=n_jobs,
        address=address,
    )
    sets, _ = eng.candidates(strategy, grid, constraint)
    spec = EvalSpec(strategy, engine, opts, n_partitions)
    data = load_market_data(
        names, start, end, frequency, source, warmup=max(EvalSpec(strategy).warmup(s) for s in sets),
        adjustment=opts.adjustment,
        dividends=opts.dividends,
    )
    sym = data.symbols[0]
    first, last = data.span(sym)
    ts = np.asarray(data.bars[sym]["ts"])
    bounds = window_bounds(last - first, train_periods, test_periods, step_size or test_periods, anchored)
    rows, pieces, stamps = [], [], []
    capital = opts.cash
    for k, (a, b, c) in enumerate(bounds):
        train, test = _window(data, ts, first, a, b), _window(data, ts, first, b, c)
        res = eng.optimize(strategy, grid, train, constraint=constraint, options=opts)
        best = res.best
        run = event_run(test, spec, best) if engine == "event" else best_vector_run(test, spec, best)
        if isinstance(run.equity, pl.DataFrame):  # an event run, or the portfolio kernel's
            eq, when, oos = (
                run.equity["equity"].to_numpy(),
                run.equity["ts"].cast(pl.Int64).to_numpy(),
                run.metrics,
            )
        else:
            eq = run.equity[:, 0]
            t_first, t_last = test.span(sym)
            when = np.asarray(data.bars[sym]["ts_end"][t_first:t_last])
            oos = run.column_metrics()
        pieces.append(eq / opts.cash * capital)
        stamps.append(when)
        capital = float(pieces[-1][-1])
        top = res.table.row(0, named=True)
        rows.append(
            {
                "window": k,
                "train_start": train.start,
                "train_end": train.end,
                "test_start": test.start,
                "test_end": test.end,
                **best,
                f"is_{metric}": top[metric],
                f"oos_{metric}": oos[metric],
                "is_cagr": top["cagr"],
                "oos_cagr": oos["cagr"],
                "oos_return": oos["total_return"],
                "oos_trades": oos["trades"],
            }
        )
        if progress is not None:
            progress(k + 1, len(bounds))
    equity = np.concatenate(pieces)
    utc = pl.Datetime("ns", "UTC")
    curve = pl.DataFrame({"ts": pl.Series(np.concatenate(stamps)).cast(utc), "equity": equity})
    metrics = compute_metrics(
        _with_start(equity, opts.cash), periods_per_year=data.periods_per_year
    )
    metrics["trades"] = sum(int(r["oos_trades"]) for r in rows)  # the curve alone cannot count them
    windows = pl.DataFrame(rows).with_columns(
        pl.col("train_start", "train_end", "test_start", "test_end").cast(utc)
    )
    is_cagr = windows["is_cagr"].cast(pl.Float64).drop_nans().drop_nulls().mean()
    eff = metrics["cagr"] / float(is_cagr) if isinstance(is_cagr, float) and is_cagr != 0.0 else math.nan
    return WalkForwardResult(windows, curve, metrics, float(eff), metric, anchored)


def _with_start(equity: np.ndarray, cash: float) -> np.ndarray:
    """The stitched curve with the starting capital in front (the first OOS bar's return counts)."""
    return np.concatenate(([cash], equity))
