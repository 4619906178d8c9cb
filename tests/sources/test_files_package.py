"""The files package: violations refer to rows by number (not text), and paths expand ``~``/``$VARS``."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from backtape.cli.app import app
from backtape.errors import DataValidationError
from backtape.schema import TS
from backtape.sources import get_source
from backtape.sources.files import CSVDataSource, ParquetDataSource, parse_file, read_bars
from backtape.validation import DataQualityWarning, Violation, validate_bars

HEADER = "date,open,high,low,close,volume\n"
# line 3 is out of order (refers to line 2), line 6 repeats line 5's date with other values
EXAMPLE = HEADER + (
    "2024-01-03,10,11,9,10.5,100\n"
    "2024-01-02,10,11,9,10.5,100\n"
    "2024-01-04,10,9,11,10.5,100\n"
    "2024-01-05,10,11,9,10,-100\n"
    "2024-01-05,10,11,9,10,100\n"
)
T0 = dt.datetime(2024, 1, 2, 14, 30, tzinfo=dt.UTC)


def minute_bars(minutes: list[int]) -> pl.DataFrame:
    rows = [{"symbol": "X", "ts": T0 + dt.timedelta(minutes=m), "ts_end": T0 + dt.timedelta(minutes=m + 1),
             "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.0 + i / 10, "volume": 1.0}
            for i, m in enumerate(minutes)]
    return pl.DataFrame(rows).with_columns(pl.col("ts", "ts_end").cast(TS))


def by_rule(records: list[Violation], rule: str) -> list[Violation]:
    return [v for v in records if v.rule == rule]


def test_frame_violations_carry_the_row_they_refer_to() -> None:
    # rows: 0 @0, 1 @2, 2 @1 (before row 1: unsorted), 3 @2 (repeats row 1's ts with another close)
    with pytest.warns(DataQualityWarning):
        report = validate_bars(minute_bars([0, 2, 1, 2]), on_invalid="warn")
    refs = report.violations.select("rule", "row", "ref").rows()
    assert ("unsorted", 2, 1) in refs and ("duplicate", 3, 1) in refs
    assert report.violations.schema["ref"] == pl.Int64
    dup = by_rule(report.records(), "duplicate")[0]
    assert (dup.row, dup.ref, dup.line, dup.symbol) == (3, 1, None, "X")
    assert dup.ts == int((T0 + dt.timedelta(minutes=2)).timestamp()) * 10**9  # exact UTC ns
    assert dup.detail == "repeats (symbol, ts) of row 1"  # written from ref, never parsed back
    assert str(dup) == "row 3 X 2024-01-02T14:32:00Z: duplicate (repeats (symbol, ts) of row 1)"


def test_rules_about_one_row_have_no_reference() -> None:
    bad = minute_bars([0, 1]).with_columns(volume=pl.Series([1.0, -1.0]))
    with pytest.raises(DataValidationError) as info:
        validate_bars(bad)
    (only,) = info.value.violations
    assert isinstance(only, Violation)
    assert (only.rule, only.row, only.ref) == ("negative_volume", 1, None)


def test_csv_report_maps_rows_and_references_to_file_lines(tmp_path: Path) -> None:
    path = tmp_path / "X.csv"
    path.write_text(EXAMPLE)
    src = CSVDataSource(path, on_invalid="warn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        report = src.file_reports()[path]
    assert report.violations.columns == ["rule", "symbol", "ts", "row", "line", "ref", "ref_line", "detail"]
    records = report.records()
    (unsorted,) = by_rule(records, "unsorted")
    assert (unsorted.row, unsorted.line, unsorted.ref, unsorted.ref_line) == (1, 3, 0, 2)
    (dup,) = by_rule(records, "duplicate")
    assert (dup.row, dup.line, dup.ref, dup.ref_line) == (4, 6, 3, 5)
    assert dup.detail == "repeats (symbol, ts) of line 5"
    lines = path.read_text().splitlines()
    assert dup.line is not None and dup.ref_line is not None
    assert lines[dup.line - 1].split(",")[0] == lines[dup.ref_line - 1].split(",")[0] == "2024-01-05"
    for v in records:  # rules about one row refer to none
        assert (v.ref is None) == (v.rule not in ("unsorted", "duplicate"))


def test_references_survive_rows_left_out_before_screening(tmp_path: Path) -> None:
    # a Saturday (line 3) is dropped as a non-session; file rows and lines still name the file
    path = tmp_path / "X.csv"
    path.write_text(HEADER + "2024-01-02,10,11,9,10.5,1\n2024-01-06,10,11,9,10.5,1\n"
                    "2024-01-03,10,11,9,10.5,1\n2024-01-03,10,11,9,10.7,1\n")
    with pytest.warns(UserWarning) as seen:
        df = read_bars(path, on_non_session="drop", on_invalid="drop")
    assert df.height == 2
    with pytest.raises(DataValidationError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        read_bars(path, on_non_session="drop")
    (dup,) = info.value.violations
    assert (dup.rule, dup.row, dup.line, dup.ref, dup.ref_line) == ("duplicate", 3, 5, 2, 4)
    assert any("at line 5" in str(w.message) for w in seen)


def test_parquet_references_are_row_indices(tmp_path: Path) -> None:
    path = tmp_path / "X.parquet"
    minute_bars([0, 1, 1]).write_parquet(path)
    with pytest.raises(DataValidationError) as info:
        ParquetDataSource(path).frame("bars")
    (dup,) = info.value.violations
    assert (dup.row, dup.ref, dup.line, dup.ref_line) == (2, 1, None, None)
    assert dup.detail == "repeats (symbol, ts) of row 1"
    assert "  row 2 X 2024-01-02T14:31:00Z: duplicate (repeats (symbol, ts) of row 1)" in str(info.value)


def test_paths_expand_home_and_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home, data = tmp_path / "home", tmp_path / "elsewhere"
    (home / "bars").mkdir(parents=True)
    data.mkdir()
    (home / "bars" / "X.csv").write_text(HEADER + "2024-01-02,10,11,9,10.5,1\n2024-01-03,10,11,9,10.5,1\n")
    minute_bars([0, 1]).write_parquet(data / "Y.parquet")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("BARS_ROOT", str(data))
    monkeypatch.chdir(tmp_path)
    assert read_bars("~/bars/X.csv").height == 2
    assert read_bars("~/bars").height == 2  # a folder
    assert read_bars("$BARS_ROOT/Y.parquet").height == 2
    assert read_bars("${BARS_ROOT}/Y.parquet").height == 2
    assert CSVDataSource("~/bars").path == home / "bars"
    for name, path in (("csv", "~/bars/X.csv"), ("parquet", "$BARS_ROOT")):
        source = get_source(name, path=path)
        assert isinstance(source, CSVDataSource | ParquetDataSource) and source.symbols() == ["X"]
    assert parse_file("~/bars/X.csv").data.height == 2
    result = CliRunner().invoke(app, ["validate", "~/bars/X.csv"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "~").exists()
