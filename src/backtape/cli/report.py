"""``backtape report``: the HTML report of a stored backtest run or optimization.

Walk-forward and Monte Carlo results are not stored; write their reports from Python
(``wf.report(path)``, ``mc.report(path)``).
"""

from __future__ import annotations

import typer
from rich.console import Console

from ..errors import ConfigError
from ._common import html_path, state


def report(
    ctx: typer.Context,
    run_id: int | None = typer.Argument(None, help="id of a stored backtest run (backtape runs list)"),
    output: str = typer.Option(..., "--output", "-o", callback=html_path, help="the .html file to write"),
    optimization: int | None = typer.Option(None, "--optimization", help="report this stored optimization"),
    db: str | None = typer.Option(
        None, "--db", help="results database path or SQLAlchemy URL (default: data.results_db in the config)"
    ),
) -> None:
    """Write the interactive HTML report of stored run RUN_ID (or of --optimization ID)."""
    from ..reports import stored_optimization, write_report

    if (run_id is None) == (optimization is None):
        raise ConfigError("give a run id or --optimization ID (one of them)")
    store = state(ctx).workspace().store(db or True)
    assert store is not None
    result = stored_optimization(store, optimization) if optimization is not None else None
    if result is None and run_id is not None:
        result = store.load_result(run_id)
    Console().print(f"report written to {write_report(result, output)}")
