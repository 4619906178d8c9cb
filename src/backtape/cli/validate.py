"""``backtape validate FILE``: read a CSV or Parquet file and print its quality report.

The file is validated as written, in file order: every violation names the file line (CSV, header
counted, so an editor opens it there) or row index (Parquet), and rows out of time order within
their symbol are reported as ``unsorted`` although loading would sort them.
"""

from __future__ import annotations

import warnings
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import typer
from rich.table import Table

from ._common import console, frame_table, parse_options

if TYPE_CHECKING:
    from ..validation import QualityReport

VIOLATIONS_EXIT = 1


class Kind(StrEnum):
    bars = "bars"
    trades = "trades"
    quotes = "quotes"


def quality(frame: pl.DataFrame, kind: str) -> QualityReport:
    """The quality report of ``frame``, never raising for violations (they are the answer here)."""
    from .. import validation  # imported on use: keeps ``backtape --help`` fast

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", validation.DataQualityWarning)
        return getattr(validation, f"validate_{kind}")(frame, on_invalid="warn")


def report_table(reports: dict[str, QualityReport], *, title: str = "Quality report") -> Table:
    """One row per report: rows, violations by rule, score and verdict."""
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in ("data", "kind", "rows", "violations", "score", "verdict"):
        table.add_column(column, justify="right" if column in ("rows", "score") else "left")
    for label, report in reports.items():
        found = ", ".join(f"{rule} {n:,}" for rule, n in sorted(report.counts.items())) or "none"
        verdict = "[green]ok[/]" if report.ok else "[red]violations[/]"
        table.add_row(label, report.kind, f"{report.rows:,}", found, f"{report.score:.4f}", verdict)
    return table


def violations_table(report: QualityReport, *, title: str, limit: int = 10) -> Table:
    """The first ``limit`` violations: rule, symbol, ts, where and detail.

    Where is the file ``line`` when the report has one (CSV files), else the 0-based ``row``; the
    row a violation refers to is named in its detail, so the ``ref`` columns are not shown.
    """
    shown = report.violations.head(limit).drop("ref", "ref_line", strict=False)
    if "line" in shown.columns:
        by_line = shown.get_column("line").null_count() < shown.height
        shown = shown.drop("row" if by_line else "line")
    more = report.violations.height - shown.height
    caption = f"{shown.height:,} of {report.violations.height:,} violations" + (
        f" ({more:,} more: raise --rows)" if more else ""
    )
    return frame_table(shown, title=title, max_rows=0, caption=caption)


def validate(
    file: Path = typer.Argument(..., help="CSV (optionally .gz) or Parquet file, or a folder of them."),
    kind: Kind | None = typer.Option(None, "--kind", "-k", help="bars, trades or quotes (default: guessed)."),
    option: list[str] = typer.Option(
        [], "--option", "-o", help="Reading option NAME=VALUE, e.g. timezone=America/New_York, "
        "calendar=24/7, columns='{\"Date\": \"ts\"}' (see backtape.sources.files.options)."
    ),
    rows: int = typer.Option(10, "--rows", "-n", help="Violations to list."),
) -> None:
    """Read FILE into canonical rows, validate them and print the report; exit 1 on violations."""
    from ..sources.files import source_for
    from ..validation import DataQualityWarning

    options = parse_options(option)
    if kind is not None:
        options["kind"] = kind.value
    options["on_invalid"] = "warn"  # every violation is the answer here, not a reason to stop
    source = source_for(file, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        by_file = source.file_reports()
    reports = {f"{path.name} ({r.kind})": r for path, r in by_file.items()}
    out = console()
    out.print(report_table(reports, title=f"Quality report of {file}"))
    for label, report in reports.items():
        if not report.ok:
            out.print(violations_table(report, title=f"Violations in {label}", limit=rows))
    if not all(r.ok for r in reports.values()):
        raise typer.Exit(VIOLATIONS_EXIT)
