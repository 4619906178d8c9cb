"""``backtape runs``: list, show and compare stored backtests (the results database)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from ..results import ResultsStore
from ._common import state
from .backtest import metrics_table

app = typer.Typer(help="Stored backtest runs: list, show, compare.", no_args_is_help=True)

DB = typer.Option(None, "--db", help="results database path or SQLAlchemy URL "
                                     "(default: data.results_db in the config)")
LIMIT = typer.Option(50, "--limit", "-n", help="most recent runs to show")
RUN_ID = typer.Argument(..., help="run id (see `backtape runs list`)")
RUN_IDS = typer.Argument(..., help="two or more run ids")
_HEADER = ("strategy_name", "parameters", "symbols", "start_date", "end_date", "frequency", "source", "cash",
           "status", "duration_s", "package_version", "created_at", "data_fingerprint")
_TRADE_COLS = ["symbol", "side", "entry_time", "exit_time", "entry_price", "exit_price", "quantity", "pnl",
               "commission"]


def _store(ctx: typer.Context, db: str | None) -> ResultsStore:
    """The results database named by ``--db``, else by the configuration's ``data.results_db``."""
    store = state(ctx).workspace().store(db or True)
    assert store is not None
    return store


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4f}"
    return str(value)


@app.command("list")
def list_runs(ctx: typer.Context, limit: int = LIMIT, db: str | None = DB) -> None:
    """The most recent runs with their headline metrics."""
    console = Console()
    frame = _store(ctx, db).list_runs(limit)
    table = Table(title="backtest runs")
    for col in frame.columns:
        table.add_column(col, justify="right" if frame[col].dtype.is_numeric() else "left")
    for row in frame.iter_rows():
        table.add_row(*(_fmt(v) for v in row))
    console.print(table)


@app.command("show")
def show(ctx: typer.Context, run_id: int = RUN_ID, db: str | None = DB) -> None:
    """One run: its header, data fingerprint, metrics and trades."""
    console = Console()
    rec = _store(ctx, db).get_run(run_id)
    head = Table(title=f"run {rec.id}", show_header=False)
    for key in _HEADER:
        head.add_row(key, _fmt(rec.header.get(key)))
    console.print(head)
    console.print(metrics_table(rec.metrics, "metrics"))
    trades = Table(title=f"trades ({rec.trades.height})")
    cols = _TRADE_COLS
    for col in cols:
        trades.add_column(col)
    for row in rec.trades.select(cols).iter_rows():
        trades.add_row(*(_fmt(v) for v in row))
    console.print(trades)


@app.command("compare")
def compare(ctx: typer.Context, run_ids: list[int] = RUN_IDS, db: str | None = DB) -> None:
    """Metrics of several runs side by side."""
    console = Console()
    if len(run_ids) < 2:
        raise typer.BadParameter("compare needs at least two run ids")
    frame = _store(ctx, db).compare(run_ids)
    table = Table(title="compare runs")
    for col in frame.columns:
        table.add_column(col, justify="left" if col == "metric" else "right")
    for row in frame.iter_rows():
        table.add_row(*(_fmt(v) for v in row))
    console.print(table)
