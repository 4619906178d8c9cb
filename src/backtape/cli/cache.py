"""``backtape cache``: inspect, clean and refresh the local data cache."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from .._paths import expand_path
from .._time import format_ns
from ..cache import CachedDataSource
from ..cache.maintenance import cache_summary, clean_cache, verify_cache
from ..formatting import data_size
from ..schema import parse_kind
from ._common import state
from ._tables import new_table
from ._units import parse_duration, parse_size

app = typer.Typer(help="Inspect and maintain the local data cache.", no_args_is_help=True)

CACHE_DIR = typer.Option(None, "--cache-dir", help="cache folder (default: data.cache_dir in the config)")


def _folder(ctx: typer.Context, cache_dir: Path | None) -> Path:
    """``--cache-dir``, else the workspace's (``data.cache_dir`` of the configuration)."""
    return expand_path(cache_dir) if cache_dir is not None else state(ctx).workspace().cache_dir



@app.command("stats")
def stats(ctx: typer.Context, cache_dir: Path | None = CACHE_DIR) -> None:
    """What the cache holds per source and kind, and the persisted request counters."""
    console = Console()
    folder = _folder(ctx, cache_dir)
    rows, counters = cache_summary(folder)
    table = new_table(f"cache {folder}")
    table.add_column("source", ratio=1, overflow="fold", min_width=8)
    for col in ("kind", "entries", "spans", "files", "rows", "size", "newest fetch (UTC)"):
        table.add_column(col, no_wrap=True, justify="left" if col == "kind" else "right")
    for r in rows:
        newest = format_ns(r["newest_fetch"])[:16].replace("T", " ") if r["newest_fetch"] else "-"
        table.add_row(r["source"], r["kind"], str(r["entries"]), str(r["spans"]), str(r["files"]),
                      f"{r['rows']:,}", data_size(r["bytes"]), newest)
    console.print(table)
    if counters:
        console.print("  ".join(f"{k.replace('_', ' ')}: {v:,}" for k, v in counters.items()))


@app.command("clean")
def clean(
    ctx: typer.Context,
    older_than: str | None = typer.Option(None, "--older-than", help="drop data fetched before, e.g. 30d"),
    max_size: str | None = typer.Option(None, "--max-size", help="then shrink to this size, e.g. 10GB"),
    cache_dir: Path | None = CACHE_DIR,
) -> None:
    """Remove cached rows together with their coverage (by age, then least recently fetched)."""
    console = Console()
    if older_than is None and max_size is None:
        raise typer.BadParameter("give --older-than (e.g. 30d) and/or --max-size (e.g. 10GB)")
    report = clean_cache(_folder(ctx, cache_dir),
                         older_than_ns=parse_duration(older_than) if older_than else None,
                         max_bytes=parse_size(max_size) if max_size else None)
    console.print(f"removed {report.spans} span(s), {report.files} file(s), {report.rows:,} row(s), "
                  f"{data_size(report.bytes)}; {report.orphans} orphan file(s)")


@app.command("refresh")
def refresh(
    ctx: typer.Context,
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
    ws = state(ctx).workspace()
    cached = CachedDataSource(ws.source(source, cache=False), cache_dir=_folder(ctx, cache_dir))
    rows = cached.refresh_sync(symbol, start, end, kind=parse_kind(kind), frequency=frequency)
    console.print(f"refreshed {symbol} {kind} {frequency if kind == 'bars' else ''} [{start}, {end}) "
                  f"from {source}: {rows.height:,} row(s)")


@app.command("verify")
def verify(
    ctx: typer.Context,
    repair: bool = typer.Option(False, "--repair", help="quarantine damaged files and drop their coverage "
                                                        "so the next request fetches them again"),
    cache_dir: Path | None = CACHE_DIR,
) -> None:
    """Check every cache file against its checksum; exit 1 when some are damaged and not repaired."""
    console = Console(soft_wrap=True)  # one line per file, whatever the terminal width
    folder = _folder(ctx, cache_dir)
    report = verify_cache(folder, repair=repair)
    for e in report.damaged:
        console.print(f"damaged: {e.path} ({e.key.symbol} {e.key.kind} {e.key.frequency}, {e.rows:,} rows)")
    if not report.damaged:
        console.print(f"{report.checked:,} file(s) checked in {folder}: all intact")
    elif report.repaired:
        console.print(f"{len(report.damaged)} of {report.checked:,} file(s) damaged: moved to "
                      f"{folder / 'quarantine'}; their data will be fetched again when next asked for")
    else:
        console.print(f"{len(report.damaged)} of {report.checked:,} file(s) damaged; run "
                      f"`backtape cache verify --repair`")
        raise typer.Exit(1)
