"""Pieces every command shares: the global options, consoles, ``NAME=VALUE`` options, frame tables."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from ._state import State, state  # noqa: F401 - re-exported: every command takes them from here

_WIDE = 140  # width when stdout is not a terminal (pipes, tests): tables stay readable


def console() -> Console:
    """A rich console on stdout; 140 columns wide unless stdout is a terminal or COLUMNS is set."""
    out = Console(highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = Console(highlight=False, width=_WIDE)
    return out


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["tz=America/New_York", "skip_rows=1"]`` -> keyword arguments; values parse as JSON if they can.

    >>> parse_options(["tz=UTC", "header=false", 'columns={"Date": "ts"}'])
    {'tz': 'UTC', 'header': False, 'columns': {'Date': 'ts'}}
    """
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r}: write NAME=VALUE, e.g. timezone=America/New_York",
                                     param_hint="'--option'")
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        options[key.strip()] = value
    return options


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "NaN"
        if value.is_integer() and abs(value) < 1e15:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:,.4f}".rstrip("0").rstrip(".")
        return f"{value:.6g}"
    return str(value)


def _readable_times(df: pl.DataFrame) -> pl.DataFrame:
    """Datetime columns as text: minutes when every value is whole, else seconds and fractions."""
    exprs = []
    for name, dtype in df.schema.items():
        if isinstance(dtype, pl.Datetime):
            col = pl.col(name)
            whole = df.select((col.dt.truncate("1m") == col).all()).item()
            fmt = "%Y-%m-%d %H:%M" if whole in (True, None) else "%Y-%m-%d %H:%M:%S%.f"
            exprs.append(col.dt.strftime(fmt))
        else:
            exprs.append(pl.col(name))
    return df.select(exprs)


def frame_table(df: pl.DataFrame, *, title: str | None = None, max_rows: int = 20,
                caption: str | None = None) -> Table:
    """A rich table of ``df`` (first and last rows when longer than ``max_rows``; 0 = all); times in UTC.

    Columns that are entirely null (``vwap`` of a vendor without it) are left out and named below.
    """
    empty = [c for c in df.columns if df.height and df.get_column(c).null_count() == df.height]
    df = df.drop(empty)
    table = Table(title=title, title_justify="left", header_style="bold")
    for name, dtype in df.schema.items():
        table.add_column(name, justify="right" if dtype.is_numeric() else "left", no_wrap=True)
    if df.height > max_rows > 0:
        head, tail = df.head(max_rows // 2), df.tail(max_rows - max_rows // 2)
        for row in _readable_times(head).iter_rows():
            table.add_row(*map(_cell, row))
        table.add_row(*(["…"] * df.width))
        rows = _readable_times(tail).iter_rows()
    else:
        rows = _readable_times(df).iter_rows()
    for row in rows:
        table.add_row(*map(_cell, row))
    note = f" · empty: {', '.join(empty)}" if empty else ""
    table.caption = (caption or f"{df.height:,} rows · times in UTC") + note
    table.caption_justify = "left"
    return table


def not_a_folder(path: str | Path, option: str) -> None:
    """Refuse an output file name that is an existing folder, before any work is done."""
    if Path(path).is_dir():
        raise typer.BadParameter(f"{path} is a folder; give a file name (in it, e.g. "
                                 f"{Path(path) / ('out' + Path(path).suffix)})", param_hint=option)


def html_path(param: typer.CallbackParam, value: str | None) -> str | None:
    """Callback of report options: the path must name a .html file, checked before the work is done
    (the report is written last, after a run is stored or a search has finished)."""
    if value is not None and not value.lower().endswith((".html", ".htm")):
        raise typer.BadParameter(f"the report path must end in .html, got {value!r}")
    if value is not None:
        not_a_folder(value, f"'{param.opts[0]}'")
    return value


OPTION_HELP = "Source option NAME=VALUE, repeatable (values parse as JSON when they can)."


def source_option() -> Any:
    """``--option/-o NAME=VALUE`` of the commands that read a source (e.g. ``-o path=data/SPY.csv``)."""
    return typer.Option([], "--option", "-o",
                        help=f"{OPTION_HELP} E.g. -o path=data/SPY.csv with --source csv.")
