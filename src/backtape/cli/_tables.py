"""Result tables of the research commands, formatted by ``backtape.formatting`` to fit 80 columns.

``backtest``, ``runs``, ``optimize``, ``walkforward`` and ``montecarlo`` print through these, so a
metric reads the same in each (``+48.01%``, ``7``, ``14,709.00``, ``–`` for undefined).
"""

from __future__ import annotations

from typing import Any

import polars as pl
from rich import box
from rich.table import Table

from ..formatting import LABELS, cell, label, metric, metric_rows, ordered

#: the trade columns ``runs show`` and ``backtest`` list (the export holds every column)
TRADE_COLUMNS = ("symbol", "side", "entry_time", "exit_time", "size", "quantity", "entry_price", "exit_price",
                 "pnl", "return")


def new_table(title: str | None) -> Table:
    """A compact table: a rule under the header, no vertical borders, one space between columns, at
    least as wide as its title (so a long title is not wrapped into a narrow table)."""
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                 padding=(0, 0), show_edge=False, header_style="bold", min_width=min(len(title or ""), 79))


def metrics_table(metrics: dict[str, Any], title: str) -> Table:
    """The metrics of a run as two columns: readable label and formatted value."""
    table = new_table(title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, text in metric_rows(metrics):
        table.add_row(name, text)
    return table


def whole_days(frame: pl.DataFrame) -> bool:
    """True when the datetimes of ``frame`` can be shown as dates: no two differ within one UTC day."""
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime) and frame.height:
            col = frame[name].drop_nulls()
            if col.n_unique() != col.dt.date().n_unique():
                return False
    return True


def frame_table(frame: pl.DataFrame, title: str | None = None, *, names: dict[str, str] | None = None,
                dates: bool | None = None) -> Table:
    """Any result frame: each column formatted as the metric it names (``side`` as a word, times as
    dates when the data is daily); ``names`` relabels headers, which break at spaces (narrow columns)."""
    dates = whole_days(frame) if dates is None else dates
    table = new_table(title)
    for col, dtype in frame.schema.items():
        right = dtype.is_numeric() and col != "side"
        header = ((names or {}).get(col) or (label(col) if col in LABELS else col)).replace(" ", "\n")
        table.add_column(header, justify="right" if right else "left", no_wrap=True)
    for row in frame.iter_rows():
        table.add_row(*(cell(col, value, dates=dates) for col, value in zip(frame.columns, row, strict=True)))
    return table


def trades_table(trades: pl.DataFrame, title: str, *, limit: int = 20, dates: bool | None = None) -> Table:
    """The trade list (its first and last rows when long) with sides as words and, for ``dates``
    (daily bars; guessed from the times when not given), dates instead of times."""
    cols = [c for c in TRADE_COLUMNS if c in trades.columns]
    shown = trades.select(cols)
    if shown.height > limit:
        shown = pl.concat([shown.head(limit // 2), shown.tail(limit - limit // 2)])
    table = frame_table(shown, title, names={"entry_time": "entry", "exit_time": "exit", "entry_price": "in",
                                             "exit_price": "out"},
                        dates=whole_days(trades) if dates is None else dates)
    if trades.height > limit:
        table.caption = f"first {limit // 2} and last {limit - limit // 2} of {trades.height:,} trades"
        table.caption_justify = "left"
    return table


def compare_table(metrics: dict[str, dict[str, Any]], title: str) -> Table:
    """Several runs' metrics side by side: one row per metric (readable label), one column per run."""
    table = new_table(title)
    table.add_column("metric")
    for run in metrics:
        table.add_column(run, justify="right")
    for n in ordered(*metrics.values()):
        table.add_row(label(n), *(metric(n, m.get(n)) for m in metrics.values()))
    return table

