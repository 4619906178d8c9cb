"""Interactive, self-contained HTML reports of backtests and research results (plotly.js, offline).

``write_report(result, path)`` writes the report of a ``BacktestResult``, ``OptimizationResult``,
``WalkForwardResult`` or ``MonteCarloResult``; the results' own ``report(path)`` methods call it.
The page embeds plotly.js (compressed) and every series, so it opens without a network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError


def write_report(result: Any, path: str | Path) -> Path:
    """Write the report of ``result`` to ``path`` (a ``.html`` file); returns the path."""
    from ..engine.result import BacktestResult
    from ..optimization.montecarlo import MonteCarloResult
    from ..optimization.search import OptimizationResult
    from ..optimization.walkforward import WalkForwardResult
    from .page import write_page

    if isinstance(result, BacktestResult):
        from .backtest import backtest_page

        return write_page(path, backtest_page(result))
    from . import research

    builders = {
        OptimizationResult: research.optimization_page,
        WalkForwardResult: research.walk_forward_page,
        MonteCarloResult: research.monte_carlo_page,
    }
    for kind, build in builders.items():
        if isinstance(result, kind):
            return write_page(path, build(result))
    raise ConfigError(
        f"no report for a {type(result).__name__}; give a backtest, optimization, "
        "walk-forward or Monte Carlo result"
    )


def stored_optimization(store: Any, optimization_id: int) -> Any:
    """An ``OptimizationResult`` rebuilt from a ``ResultsStore`` (its event-engine winner too, when
    stored; a vector winner is not stored, so its report has no winner's equity)."""
    from ..optimization.search import OptimizationResult

    row = store.get_optimization(optimization_id)
    best_run = store.load_result(row["best_run_id"]) if row.get("best_run_id") else None
    nan = float("nan")
    return OptimizationResult(
        table=row["results"],
        metric=row["metric"],
        params=tuple(row["grid"] or row["best"]),
        deflated_sharpe=nan if row["deflated_sharpe"] is None else float(row["deflated_sharpe"]),
        pbo=nan if row["pbo"] is None else float(row["pbo"]),
        engine=row["engine"],
        method=row["method"],
        skipped=int(row["skipped"] or 0),
        duration_s=float(row["duration_s"] or 0.0),
        best_run=best_run,
        optimization_id=int(optimization_id),
    )


__all__ = ["stored_optimization", "write_report"]
