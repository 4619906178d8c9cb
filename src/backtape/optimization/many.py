"""Many independent event backtests (strategies x symbols x parameter sets) on processes or Ray.

The driver loads every symbol once (``MarketData``, through its workspace's cache); workers run the
event engine on it in memory and never call a data source. With a results database each worker
stores its own runs under an idempotency key (batch id + job), so a retried task (killed worker,
lost node) finds its run instead of writing a second one.
"""

from __future__ import annotations

import itertools
import json
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from .._symbols import symbol_list
from ..errors import ConfigError
from ..options import TradingOptions
from .cluster import CHUNKS_PER_CPU, Progress, chunked, chunks_for, map_chunks
from .data import MarketData
from .evaluate import EvalSpec, strategy_label

#: metrics copied into the run_many frame (one column each)
COLUMNS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "trades", "final_equity")


@dataclass(frozen=True)
class Job:
    """One backtest: a strategy (name or class) on one symbol with one parameter set."""

    strategy: Any
    symbol: str
    params: tuple[tuple[str, Any], ...]

    @property
    def key(self) -> str:
        """Stable text naming this job (part of its idempotency key)."""
        return json.dumps([strategy_label(self.strategy), self.symbol, list(self.params)], default=str)


def jobs_of(
    strategies: Sequence[Any] | Any,
    symbols: Sequence[str] | str,
    params: Mapping[str, Iterable[Any]] | Sequence[Mapping[str, Any]] | None = None,
) -> list[Job]:
    """Every strategy x symbol x parameter set; ``params`` is a grid (name -> values) or a list of sets."""
    strategies = list(strategies) if isinstance(strategies, list | tuple) else [strategies]
    names = symbol_list(symbols)
    if params is None:
        sets: list[dict[str, Any]] = [{}]
    elif isinstance(params, Mapping):
        keys = list(params)
        combos = itertools.product(*(list(params[k]) for k in keys))
        sets = [dict(zip(keys, combo, strict=True)) for combo in combos]
    else:
        sets = [dict(p) for p in params]
    if not strategies or not names or not sets:
        raise ConfigError("run_many needs at least one strategy, one symbol and one parameter set")
    return [Job(s, sym, tuple(sorted(p.items()))) for s in strategies for sym in names for p in sets]


def _run_jobs(data: MarketData, jobs: list[Job], options: TradingOptions, store_url: str | None,
              batch: str) -> list[dict[str, Any]]:  # fmt: skip
    """Run ``jobs`` on the loaded bars (in a worker); store each run once under its key."""
    from ..engine import run_backtest
    from ..results.store import ResultsStore

    source, store = data.frame_source(), ResultsStore(store_url) if store_url else None
    rows = []
    for job in jobs:
        params = dict(job.params)
        res = run_backtest(EvalSpec(job.strategy).build(params), [job.symbol], data.start, data.end,
                           data.frequency, source=source, options=options)  # fmt: skip
        run_id = res.save(store, key=f"{batch}:{job.key}") if store is not None else None
        rows.append({"strategy": strategy_label(job.strategy), "symbol": job.symbol,
                     "params": json.dumps(params, default=str),
                     **{c: float(res.metrics.get(c, float("nan"))) for c in COLUMNS},
                     "run_id": run_id, "pid": os.getpid()})  # fmt: skip
    return rows


def run_many(
    jobs: list[Job],
    data: MarketData,
    options: TradingOptions,
    *,
    executor: str = "local",
    n_jobs: int | None = None,
    address: str | None = None,
    store_url: str | None = None,
    batch: str | None = None,
    progress: Progress | None = None,
) -> pl.DataFrame:
    """One row of metrics per job, in job order (``run_id`` when stored, ``pid`` of the worker).

    ``batch`` names this batch in the idempotency keys (a new one by default; pass the same one to
    resume a batch without re-storing its finished runs).
    """
    from .executor import EXECUTORS, map_pool

    if executor not in EXECUTORS:
        raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    batch = batch or uuid.uuid4().hex
    args = (options, store_url, batch)
    if executor == "ray":
        chunks = chunks_for(address, jobs)
        parts = map_chunks(_run_jobs, data, chunks, *args, address=address, progress=progress)
    else:
        procs = max(1, min(len(jobs), n_jobs if n_jobs and n_jobs > 0 else os.cpu_count() or 1))
        chunks = chunked(jobs, procs * CHUNKS_PER_CPU)
        parts = (map_pool(_run_jobs, data, chunks, *args, jobs=procs, progress=progress) if procs > 1
                 else [_run_jobs(data, c, *args) for c in chunks])  # fmt: skip
    return pl.DataFrame([row for part in parts for row in part],
                        schema_overrides={"run_id": pl.Int64}, infer_schema_length=None)  # fmt: skip
