"""``backtape data show``: rows of one or more symbols from any registered source, or to a file.

Provider sources (polygon, alpaca, alphavantage, yahoo, ccxt) are read through the cache in the
configuration's ``data.cache_dir``, so asking twice for the same range costs one download.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import typer

from .._async import run_sync
from .._time import check_range, format_ns
from ..errors import NoDataError
from ._common import console, frame_table, parse_options, state, write_frame
from ._progress import FetchProgress, reports_progress

app = typer.Typer(help="Look at market data from any registered source.", no_args_is_help=True)


class Kind(StrEnum):
    bars = "bars"
    trades = "trades"
    quotes = "quotes"
    actions = "actions"


OPTION_HELP = "Source option NAME=VALUE, repeatable (values parse as JSON when they can)."


@app.command("show")
def show(
    ctx: typer.Context,
    symbol: str = typer.Argument(..., help="Symbol, or several separated by commas."),
    source: str | None = typer.Option(
        None, "--source", "-s", help="Registered source (see 'backtape sources'); default: the config's "
        "data.default_source."
    ),
    frequency: str = typer.Option("1d", "--frequency", "-f", help="Bar size: 1min 5min 15min 1h 1d 1w..."),
    start: str = typer.Option(..., "--start", help="First ts included, e.g. 2014-06-01 (UTC)."),
    end: str = typer.Option(..., "--end", help="End of the half-open range [start, end)."),
    kind: Kind = typer.Option(Kind.bars, "--kind", "-k", help="What to fetch."),
    path: Path | None = typer.Option(None, "--path", help="File or folder, for the csv and parquet sources."),
    option: list[str] = typer.Option([], "--option", "-o", help=OPTION_HELP),
    output: Path | None = typer.Option(None, "--output", help="Also write all rows to FILE.parquet or .csv."),
    rows: int = typer.Option(20, "--rows", "-n", help="Rows to print (first and last halves)."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Read provider sources through the cache "
                               "(data.cache_dir); --no-cache always downloads."),
) -> None:
    """Fetch SYMBOL from a source and print it (all times UTC)."""
    s_ns, e_ns = check_range(start, end)
    ws = state(ctx).workspace()
    name = source or ws.config.data.default_source
    options = parse_options(option)
    if path is not None:
        options["path"] = str(path)
    provider = reports_progress(name)
    with FetchProgress(f"{name} {symbol}", enabled=provider) as progress:
        if provider:
            options.setdefault("progress", progress.on_chunk)
        src = ws.source(name, cache=provider and cache, **options)
        try:
            frame = src.fetch_kind_sync(kind.value, symbol, s_ns, e_ns, frequency)
        finally:
            run_sync(src.aclose())
    what = f"{kind.value}" + (f" {frequency}" if kind is Kind.bars else "")
    if frame.is_empty():
        span = f"[{format_ns(s_ns)}, {format_ns(e_ns)})"
        raise NoDataError(f"source {name!r} has no {what} for {symbol} in {span}")
    console().print(frame_table(frame, title=f"{symbol} · {what} · source {name}", max_rows=rows))
    if output is not None:
        write_frame(frame, output)
        sys.stderr.write(f"wrote {frame.height:,} rows to {output}\n")
