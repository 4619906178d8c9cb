"""``backtape data show``: rows of one or more symbols from any registered source, or to a file
(``backtape data prepare``, the same through ``backtape.prepare``, is in ``cli/prepare.py``).

Provider sources (polygon, alpaca, alphavantage, yahoo, ccxt) are read through the cache in the
configuration's ``data.cache_dir``, so asking twice for the same range costs one download. With
``--output`` the rows are fetched one symbol and window at a time (a month of minute bars, a day of
ticks) and appended to the file, so memory stays bounded whatever the range; progress is shown on
stderr when it is a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import typer

from .._async import run_sync
from .._time import NS_PER_DAY, check_range, format_ns
from ..errors import NoDataError
from ..timeframes import Timeframe
from ._common import OPTION_HELP, console, frame_table, parse_options, state
from ._progress import FetchProgress, reports_progress
from ._sink import FrameSink, check_output
from .prepare import prepare_command

if TYPE_CHECKING:
    from ..sources.base import DataSource

app = typer.Typer(help="Look at market data from any registered source.", no_args_is_help=True)
app.command("prepare")(prepare_command)


class Kind(StrEnum):
    bars = "bars"
    trades = "trades"
    quotes = "quotes"
    actions = "actions"




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
    output: Path | None = typer.Option(None, "--output", help="Also write all rows to FILE.parquet or .csv "
                                       "(streamed window by window)."),
    rows: int = typer.Option(20, "--rows", "-n", help="Rows to print (first and last halves)."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Read provider sources through the cache "
                               "(data.cache_dir); --no-cache always downloads."),
) -> None:
    """Fetch SYMBOL from a source and print it (all times UTC); with --output, stream every row to a file."""
    s_ns, e_ns = check_range(start, end)
    if output is not None:
        check_output(output)
    ws = state(ctx).workspace()
    name = source or ws.config.data.default_source
    options = parse_options(option)
    if path is not None:
        options["path"] = str(path)
    provider = reports_progress(name)
    shown = provider or (output is not None and sys.stderr.isatty())
    label = f"{name} {symbol}" + (f" → {output.name}" if output is not None else "")
    with FetchProgress(label, enabled=shown) as progress:
        if provider:
            options.setdefault("progress", progress.on_chunk)
        src = ws.source(name, cache=provider and cache, **options)
        try:
            if output is None:
                frame = src.fetch_kind_sync(kind.value, symbol, s_ns, e_ns, frequency)
                total = frame.height
            else:
                frame, total = _export(src, kind.value, symbol, (s_ns, e_ns), frequency, output, rows,
                                       progress.on_chunk)
        finally:
            run_sync(src.aclose())
    what = f"{kind.value}" + (f" {frequency}" if kind is Kind.bars else "")
    if total == 0:
        span = f"[{format_ns(s_ns)}, {format_ns(e_ns)})"
        raise NoDataError(f"source {name!r} has no {what} for {symbol} in {span}")
    console().print(frame_table(frame, title=f"{symbol} · {what} · source {name}", max_rows=rows,
                                caption=f"{total:,} rows · times in UTC"))
    if output is not None:
        sys.stderr.write(f"wrote {total:,} rows to {output}\n")


#: span of one fetch when streaming to a file: a month of minute bars, a day of ticks
WINDOWS = {"1min": 30 * NS_PER_DAY, "trades": NS_PER_DAY, "quotes": NS_PER_DAY}


def windows(kind: str, frequency: str, start: int, end: int) -> list[tuple[int, int]]:
    """``[start, end)`` cut into fetch windows: minute bars and ticks by ``WINDOWS``, the rest whole.

    Coarser bars are fetched at once: a bar straddling a window edge could be split by a source that
    aggregates them from finer bars, and they are few.
    """
    key = kind if kind in ("trades", "quotes") else str(Timeframe.parse(frequency)) if kind == "bars" else ""
    step = WINDOWS.get(key, end - start)
    return [(lo, min(lo + step, end)) for lo in range(start, end, step)]


def _export(src: DataSource, kind: str, symbol: str, span: tuple[int, int], frequency: str, output: Path,
            rows: int, progress: Callable[[int, int], None]) -> tuple[pl.DataFrame, int]:
    """Write every row to ``output`` one symbol and window at a time (bounded memory); return the rows
    to print (the first and last ``rows // 2``, or all when ``rows`` is 0) and how many were written."""
    parts = windows(kind, frequency, *span)
    symbols = [s.strip() for s in symbol.split(",") if s.strip()]
    head: list[pl.DataFrame] = []
    tail = pl.DataFrame()
    with FrameSink(output) as sink:
        for sym in symbols:
            for done, (lo, hi) in enumerate(parts, 1):
                frame = src.fetch_kind_sync(kind, sym, lo, hi, frequency)
                sink.write(frame)
                if rows == 0 or sum(f.height for f in head) < rows:
                    head.append(frame if rows == 0 else frame.head(rows))
                if rows and frame.height:
                    tail = pl.concat([tail, frame.tail(rows)], how="diagonal_relaxed").tail(rows)
                progress(done, len(parts))
        total = sink.rows
    first = pl.concat(head, how="diagonal_relaxed") if head else pl.DataFrame()
    if rows == 0 or total <= rows:
        return first, total
    # rows + 1 rows: the table then shows its first and last halves with an ellipsis between them
    return pl.concat([first.head(rows // 2), tail.tail(rows - rows // 2 + 1)], how="diagonal_relaxed"), total
