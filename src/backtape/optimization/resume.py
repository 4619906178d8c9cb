"""What identifies a parameter search for ``resume``, and the search log it writes to.

Two searches are the same when their strategy, grid, constraint, search settings, trading options
and data (range, source and a hash of every loaded array) are; ``optimize(..., resume=...)`` then
continues a stored one (``results.searches``) instead of starting again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .data import MarketData
from .evaluate import strategy_label

if TYPE_CHECKING:
    from pathlib import Path

    from ..options import TradingOptions
    from ..results import ResultsStore, SearchLog
    from .search import OptimizationEngine


def data_hash(data: MarketData) -> str:
    """SHA-256 of every array of ``data`` (symbols in order): changed bars make another search."""
    digest = hashlib.sha256()
    for group in (data.bars, data.base, data.adjusted):
        for sym in sorted(group):
            for name in sorted(group[sym]):
                digest.update(f"{sym}/{name}".encode())
                digest.update(group[sym][name].tobytes())
    return digest.hexdigest()


def describe(engine: OptimizationEngine, strategy: Any, grid: Mapping[str, Iterable[Any]], data: MarketData,
             constraint: Any, options: TradingOptions) -> dict[str, Any]:  # fmt: skip
    """The search as plain values: equal descriptions evaluate the same sets to the same figures."""
    return {
        "strategy": strategy_label(strategy), "grid": {k: list(v) for k, v in grid.items()},
        "constraint": constraint if constraint is None or isinstance(constraint, str)
        else strategy_label(constraint),
        "metric": engine.metric, "method": engine.method, "n_samples": engine.n_samples,
        "seed": engine.seed, "engine": engine.engine, "n_partitions": engine.n_partitions,
        "symbols": list(data.symbols), "start": data.start, "end": data.end, "frequency": data.frequency,
        "source": data.source_name, "data": data_hash(data), "options": options.describe(),
    }  # fmt: skip


def open_search(store: ResultsStore | str | Path | None, resume: int | bool | None,
                engine: OptimizationEngine, strategy: Any, grid: Mapping[str, Iterable[Any]],
                data: MarketData, constraint: Any,
                options: TradingOptions) -> SearchLog | None:  # fmt: skip
    """The log of this search in ``store`` (new, or the one ``resume`` names); ``None`` without a store."""
    from ..results import ResultsStore, SearchLog

    if store is None:
        if resume:
            raise ConfigError("resume continues a search stored in a results database: pass store=...")
        return None
    db = store if isinstance(store, ResultsStore) else ResultsStore(store)
    return SearchLog.open(db, describe(engine, strategy, grid, data, constraint, options), resume)


@contextmanager
def logging_to(log: SearchLog | None) -> Iterator[None]:
    """Marks the search ``interrupted`` when Ctrl-C stops it (a killed driver leaves it ``running``)."""
    try:
        yield
    except KeyboardInterrupt:
        if log is not None:
            log.interrupted()
        raise
