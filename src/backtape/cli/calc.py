"""``backtape calc``: entry-time calculations for one symbol, printed one row per entry and calculation."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from ..cache import CachedDataSource
from ..calculations import CALCULATIONS
from ..calculations.runner import run_calculations
from ..errors import DataFormatError
from ._common import state


def calc(
    ctx: typer.Context,
    symbol: str = typer.Option(..., "--symbol", help="symbol to compute for, e.g. AAPL"),
    entry: list[str] = typer.Option(None, "--entry", help="entry time (ISO, UTC); repeatable"),
    entries: Path | None = typer.Option(None, "--entries", help="CSV file with an 'entry' column"),
    calcs: str = typer.Option(..., "--calcs", help=f"comma-separated names: {', '.join(CALCULATIONS)}"),
    source: str = typer.Option("sample", "--source", help="registered data source name"),
) -> None:
    """Compute calculations at entry times from one pre-load and show the upstream calls made."""
    console = Console()
    times = list(entry or []) + (_read_entries(entries) if entries else [])
    if not times:
        raise typer.BadParameter("give --entry TIME (repeatable) or --entries FILE.csv")
    data_source = state(ctx).workspace().source(source)
    names = [c for c in calcs.split(",") if c.strip()]
    rows, portal = run_calculations(data_source, symbol, times, names)
    table = Table(title=f"{symbol}: {len(times)} entries x {rows['calculation'].n_unique()} calculations")
    for col in ("entry", "calculation", "values"):
        table.add_column(col)
    for r in rows.iter_rows(named=True):
        table.add_row(str(r["entry"]), r["calculation"], r["values"])
    console.print(table)
    log = portal.fetch_log
    console.print(f"upstream calls: {log.height} ({', '.join(log['kind'].to_list())}); "
                  f"rows fetched: {log['rows'].sum()}")
    if isinstance(data_source, CachedDataSource):
        console.print(f"cache stats: {data_source.stats}")


def _read_entries(path: Path) -> list[str]:
    """Entry times of the CSV file at ``path``: its ``entry`` column, else its first."""
    try:
        frame = pl.read_csv(path, infer_schema=False) if path.is_file() else None
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise DataFormatError(f"--entries {path}: not a readable CSV file ({str(exc).splitlines()[0][:120]})"
                              ) from exc
    if frame is None or not frame.columns:
        raise DataFormatError(f"--entries {str(path)!r}: give a CSV file with an 'entry' column of times")
    column = "entry" if "entry" in frame.columns else frame.columns[0]
    return [v for v in frame[column].to_list() if v]
