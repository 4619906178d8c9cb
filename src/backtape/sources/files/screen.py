"""Validation on load: a file's rows are checked in file order and named by file line or row.

Every file is checked by ``backtape.validation`` on its rows **in file order, before any sorting**,
so each problem is named by file and place: the file line for CSV (header counted, as an editor
shows it) or the 0-based row index for Parquet, with the symbol, timestamp and rule. Impossible
bars (high < low, high below open/close, low above them), non-positive prices, negative volumes or
sizes, NaN or missing values, crossed quotes, duplicate bars with different values and, when a
calendar is given, intraday bars outside its sessions (``outside_session``) are problems:

* ``on_invalid="raise"`` (default): ``DataValidationError`` listing the first ten problems and the
  total (``.violations`` holds them as ``Violation`` records, ``.report`` the file's full report);
* ``"drop"``: the offending rows are removed with a ``DataQualityWarning`` naming how many and
  which lines; of duplicates the first valid row is kept;
* ``"warn"``: a ``DataQualityWarning`` with the same text as the error, and every row is kept.

Two things are repaired without loss and are therefore never an error: rows that are merely out of
order (e.g. newest-first vendor exports) are sorted, and a bar row that repeats an earlier row
exactly (every column equal) is removed. Both are logged at INFO and kept, with their lines, as
``unsorted``/``duplicate`` entries of the file's quality report (``source.file_reports()``), which
``backtape validate FILE`` prints.

A file's report has the violation columns of ``backtape.validation`` with ``row`` and ``ref`` as
0-based file rows, plus ``line`` and ``ref_line`` (CSV file lines; null for Parquet). The rows a
violation refers to are mapped as numbers; the text is written from them, never parsed back.
"""

from __future__ import annotations

import itertools
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from ... import validation
from ...errors import DataValidationError
from ...schema import SCHEMAS
from ...validation import DataQualityWarning, OnInvalid, QualityReport, sort_by_symbol_ts, violation_records

log = logging.getLogger(__name__)

#: How many problems an error or warning lists before giving the total.
PROBLEM_LIMIT = 10
FILE_ROW = "__backtape_file_row"
#: text before the referenced place; a file's ``unsorted`` is judged per symbol, hence its own words
_PHRASES = {**validation.REFERENCE_PHRASES, "unsorted": "ts earlier than the symbol's previous row at"}
#: columns of a file's violations, in order
REPORT_COLUMNS = ("rule", "symbol", "ts", "row", "line", "ref", "ref_line", "detail")


@dataclass(frozen=True)
class Origin:
    """Where a file's rows came from: CSV rows are named by file line, Parquet rows by index."""

    path: Path
    first_line: int  # file line of the first data row (header counted); 0 for Parquet
    rows: pl.Series | None = None  # file row of each parsed row when some rows were left out

    def file_rows(self, like: pl.Series) -> pl.Series:
        """The 0-based file row of each parsed row, chunked like the column ``like`` (so that adding
        it to a frame read in blocks does not copy the frame into one chunk)."""
        if self.rows is None:
            bounds = np.cumsum([0, *(c.len() for c in like.get_chunks())])
            parts = [pl.Series(FILE_ROW, np.arange(a, b, dtype=np.int64))
                     for a, b in itertools.pairwise(bounds)]
            return pl.concat(parts, rechunk=False) if parts else pl.Series(FILE_ROW, [], pl.Int64)
        return self.rows.cast(pl.Int64).alias(FILE_ROW)

    def line(self, file_row: pl.Expr) -> pl.Expr:
        """The CSV file line of a file row (null for Parquet, which has no lines)."""
        return file_row + self.first_line if self.first_line else pl.lit(None, pl.Int64)

    def place(self, file_row: pl.Expr) -> pl.Expr:
        """Text naming a file row: ``"line 7"`` for CSV, ``"row 5"`` for Parquet."""
        if self.first_line:
            return pl.format("line {}", file_row + self.first_line)
        return pl.format("row {}", file_row)

    def places(self, file_rows: pl.Series) -> str:
        """Comma-separated places of at most ``PROBLEM_LIMIT`` file rows, then the count of the rest."""
        word = ("line" if self.first_line else "row") + ("s" if file_rows.len() > 1 else "")
        shown = ", ".join(str(r + self.first_line) for r in file_rows.head(PROBLEM_LIMIT).to_list())
        more = file_rows.len() - PROBLEM_LIMIT
        return f"{word} {shown}" + (f" and {more:,} more" if more > 0 else "")


def quality(frame: pl.DataFrame, kind: str, on_invalid: OnInvalid = "warn",
            calendar: str | None = None) -> QualityReport:
    """Validation report of ``frame`` without raising or warning (the caller decides); bars are
    checked against ``calendar``'s sessions when one is given."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        if kind == "bars":
            return validation.validate_bars(frame, on_invalid, calendar=calendar)
        report: QualityReport = getattr(validation, f"validate_{kind}")(frame, on_invalid=on_invalid)
        return report


def _file_quality(frame: pl.DataFrame, kind: str,
                  calendar: str | None) -> tuple[pl.DataFrame, dict[str, int]]:
    """Violations of ``frame`` (rows in file order) and counts per rule, ``unsorted`` judged per symbol.

    A file may interleave symbols by time (one row per instrument and minute); that order loses
    nothing, so a row is ``unsorted`` only when it is earlier than the previous row of its symbol,
    and its ``ref`` is that row.
    """
    found = quality(frame, kind, calendar=calendar)
    counts = {rule: n for rule, n in found.counts.items() if rule != "unsorted"}
    others = found.violations.filter(pl.col("rule") != "unsorted")
    if found.counts.get("unsorted", 0) == 0:
        return others, counts
    late = (
        frame.lazy().with_row_index("__i")
        .with_columns(__prev=pl.col("__i").shift(1).over("symbol"),
                      __late=(pl.col("ts") < pl.col("ts").shift(1).over("symbol")).fill_null(False))
        .filter(pl.col("__late"))
        .select(pl.lit("unsorted").alias("rule"), pl.col("symbol").cast(pl.String), "ts",
                pl.col("__i").cast(pl.Int64).alias("row"), pl.col("__prev").cast(pl.Int64).alias("ref"),
                pl.lit(None, pl.String).alias("detail"))
        .collect()
        .cast(dict(others.schema))  # type: ignore[arg-type]
    )
    if late.height:
        counts["unsorted"] = late.height
    return pl.concat([others, late]).sort("row", nulls_last=False, maintain_order=True), counts


def _locate(violations: pl.DataFrame, file_rows: pl.Series, origin: Origin) -> pl.DataFrame:
    """Violations with ``row``/``ref`` as file rows, their ``line``/``ref_line`` (CSV) and details
    naming the referenced file place."""
    to_file = pl.lit(file_rows)
    phrase = pl.col("rule").replace_strict(_PHRASES, default="", return_dtype=pl.String)
    return violations.with_columns(
        row=to_file.gather(pl.col("row")), ref=to_file.gather(pl.col("ref")),
    ).with_columns(
        line=origin.line(pl.col("row")),
        ref_line=origin.line(pl.col("ref")),
        detail=pl.when(pl.col("ref").is_not_null())
        .then(pl.concat_str(phrase, pl.lit(" "), origin.place(pl.col("ref"))))
        .otherwise(pl.col("detail")),
    ).select(REPORT_COLUMNS)


def _exact_repeats(frame: pl.DataFrame, kind: str, counts: dict[str, int]) -> pl.Series:
    """File rows of bars repeating an earlier row in every canonical column (removable without loss)."""
    if kind != "bars" or not counts.get("duplicate"):
        return pl.Series(FILE_ROW, [], pl.Int64)
    again = pl.struct(SCHEMAS[kind].names()).is_first_distinct().not_()
    return frame.filter(again).get_column(FILE_ROW)


def _problem_text(head: str, problems: pl.DataFrame) -> str:
    """``head``, then the first ``PROBLEM_LIMIT`` problems one per line, then how many more."""
    lines = [head, *(f"  {v}" for v in violation_records(problems, PROBLEM_LIMIT))]
    if problems.height > PROBLEM_LIMIT:
        lines.append(f"  ... and {problems.height - PROBLEM_LIMIT:,} more")
    return "\n".join(lines)


def _rule_counts(problems: pl.DataFrame) -> str:
    counts = problems.group_by("rule", maintain_order=True).len()
    return ", ".join(f"{rule}: {n:,}" for rule, n in counts.iter_rows())


def screen(data: pl.DataFrame, kind: str, origin: Origin, on_invalid: OnInvalid,
           calendar: str | None = None) -> tuple[pl.DataFrame, QualityReport]:
    """Validate ``data`` in file order, act as ``on_invalid`` says, return it sorted with its report
    (bars against ``calendar``'s sessions when one is given).

    Out-of-order rows and exact repeats of bar rows are repaired without loss (and only logged);
    every other violation is a problem that raises, is dropped or is warned about.
    """
    file_rows = origin.file_rows(data.get_column("ts"))
    frame = data.with_columns(file_rows)
    found, counts = _file_quality(frame, kind, calendar)
    violations = _locate(found, file_rows, origin)
    if not counts:
        served = sort_by_symbol_ts(data)  # symbols may be interleaved by time
        return served, QualityReport(kind, data.height, served, violations)
    repeats = _exact_repeats(frame, kind, counts)
    benign = (pl.col("rule") == "unsorted") | (
        (pl.col("rule") == "duplicate") & pl.col("row").is_in(repeats.implode()))
    problems = violations.filter(benign.not_())
    if problems.height and on_invalid != "drop":
        what = (f"{origin.path}: {problems.get_column('row').n_unique():,} invalid {kind} row(s) of "
                f"{data.height:,} ({_rule_counts(problems)})")
        if on_invalid == "raise":
            hint = "; pass on_invalid='drop' to skip them or 'warn' to keep them"
            err = DataValidationError(_problem_text(what + hint, problems),
                                      violation_records(problems, validation.ERROR_RECORD_LIMIT))
            err.report = QualityReport(kind, data.height, data, violations, counts)
            raise err
        warnings.warn(_problem_text(what, problems), DataQualityWarning, stacklevel=2)
    kept = _keep(frame, kind, problems, repeats, on_invalid)
    dropped = file_rows.filter(file_rows.is_in(kept.get_column(FILE_ROW).implode()).not_()
                               & file_rows.is_in(repeats.implode()).not_())
    if dropped.len():
        gone = problems.filter(pl.col("row").is_in(dropped.implode()))
        warnings.warn(_problem_text(
            f"{origin.path}: dropped {dropped.len():,} invalid {kind} row(s) of {data.height:,} at "
            f"{origin.places(dropped)} ({_rule_counts(gone)})", gone),
            DataQualityWarning, stacklevel=2)
    _log_repairs(violations, repeats, kind, origin)
    served = sort_by_symbol_ts(kept).drop(FILE_ROW)
    return served, QualityReport(kind, data.height, served, violations, counts)


def _keep(frame: pl.DataFrame, kind: str, problems: pl.DataFrame, repeats: pl.Series,
          on_invalid: OnInvalid) -> pl.DataFrame:
    """Rows to serve: without exact repeats, and for ``"drop"`` without problem rows.

    Rows breaking a per-row rule go first, so of duplicates the first *valid* row is kept.
    """
    removed = repeats
    if on_invalid == "drop":
        removed = pl.concat([repeats, problems.filter(pl.col("rule") != "duplicate").get_column("row")])
    kept = frame.filter(pl.col(FILE_ROW).is_in(removed.implode()).not_())
    if on_invalid == "drop" and (problems.get_column("rule") == "duplicate").any():
        kept = quality(kept, kind, "drop").data
    return kept


def _log_repairs(violations: pl.DataFrame, repeats: pl.Series, kind: str, origin: Origin) -> None:
    """INFO notes for what was repaired without loss: out-of-order rows and exact repeats."""
    unsorted = violations.filter(pl.col("rule") == "unsorted").get_column("row")
    if unsorted.len():
        log.info("%s: %d %s row(s) earlier than their symbol's previous row at %s; sorted on load",
                 origin.path, unsorted.len(), kind, origin.places(unsorted))
    if repeats.len():
        log.info("%s: %d %s row(s) repeat an earlier row exactly at %s; removed (nothing lost)",
                 origin.path, repeats.len(), kind, origin.places(repeats))
