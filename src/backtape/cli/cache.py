"""``backtape cache``: inspect, clean and refresh the local data cache."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from .._time import format_ns
from ..cache import CachedDataSource, default_cache_dir
from ..cache.maintenance import cache_summary, clean_cache
from ..sources import get_source
from ._units import format_size, parse_duration, parse_size

app = typer.Typer(help="Inspect and maintain the local data cache.", no_args_is_help=True)

CACHE_DIR = typer.Option(None, "--cache-dir",
                         help="cache folder (default $BACKTAPE_CACHE_DIR or ~/.backtape/cache)")



@app.command("stats")
def stats(cache_dir: Path | None = CACHE_DIR) -> None:
    """What the cache holds per source and kind, and the persisted request counters."""
    console = Console()
    rows, counters = cache_summary(cache_dir or default_cache_dir())
    table = Table(title=f"cache {cache_dir or default_cache_dir()}")
    for col in ("source", "kind", "entries", "spans", "files", "rows", "size", "newest fetch"):
        table.add_column(col, justify="left" if col in ("source", "kind") else "right")
    for r in rows:
        newest = format_ns(r["newest_fetch"]) if r["newest_fetch"] else "-"
        table.add_row(r["source"], r["kind"], str(r["entries"]), str(r["spans"]), str(r["files"]),
                      f"{r['rows']:,}", format_size(r["bytes"]), newest)
    console.print(table)
    if counters:
        console.print("  ".join(f"{k.replace('_', ' ')}: {v:,}" for k, v in counters.items()))


@app.command("clean")
def clean(
    older_than: str | None = typer.Option(None, "--older-than", help="drop data fetched before, e.g. 30d"),
    max_size: str | None = typer.Option(None, "--max-size", help="then shrink to this size, e.g. 10GB"),
    cache_dir: Path | None = CACHE_DIR,
) -> None:
    """Remove cached rows together with their coverage (by age, then least recently fetched)."""
    console = Console()
    if older_than is None and max_size is None:
        raise typer.BadParameter("give --older-than (e.g. 30d) and/or --max-size (e.g. 10GB)")
    report = clean_cache(cache_dir or default_cache_dir(),
                         older_than_ns=parse_duration(older_than) if older_than else None,
                         max_bytes=parse_size(max_size) if max_size else None)
    console.print(f"removed {report.spans} span(s), {report.files} file(s), {report.rows:,} row(s), "
                  f"{format_size(report.bytes)}; {report.orphans} orphan file(s)")


@app.command("refresh")
def refresh(
    symbol: str = typer.Argument(..., help="symbol to fetch again"),
    start: str = typer.Option(..., "--start", help="range start (ISO date or time, UTC)"),
    end: str = typer.Option(..., "--end", help="range end, exclusive"),
    source: str = typer.Option("sample", "--source", help="registered data source name"),
    frequency: str = typer.Option("1d", "--frequency", help="bar size, e.g. 1min, 1h, 1d"),
    kind: str = typer.Option("bars", "--kind", help="bars, trades, quotes or actions"),
    cache_dir: Path | None = CACHE_DIR,
) -> None:
    """Fetch a range again from its source and replace what the cache holds for it."""
    console = Console()
    cached = CachedDataSource(get_source(source), cache_dir=cache_dir or default_cache_dir())
    rows = cached.refresh_sync(symbol, start, end, kind=kind, frequency=frequency)
    console.print(f"refreshed {symbol} {kind} {frequency if kind == 'bars' else ''} [{start}, {end}) "
                  f"from {source}: {rows.height:,} row(s)")
