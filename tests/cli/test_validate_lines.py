"""``backtape validate FILE`` checks the file as written: file lines, unsorted rows, exit codes."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from backtape.cli.app import app
from backtape.sources.files import read_bars
from backtape.sources.sample import sample_data_dir

runner = CliRunner()
HEADER = "date,open,high,low,close,volume\n"
EXAMPLE = HEADER + (
    "2024-01-03,10,11,9,10.5,100\n"
    "2024-01-02,10,11,9,10.5,100\n"
    "2024-01-04,10,9,11,10.5,100\n"
    "2024-01-05,10,11,9,10,-100\n"
    "2024-01-05,10,11,9,10,100\n"
)


def table_rows(stdout: str) -> list[list[str]]:
    """Cells of every body row of the rich tables in ``stdout``."""
    return [[c.strip() for c in line.strip("│").split("│")] for line in stdout.splitlines()
            if line.startswith("│")]


def violations(stdout: str) -> list[tuple[str, str]]:
    """(rule, place) of each row of the violations table (its header names the place column)."""
    header = next(line for line in stdout.splitlines() if line.startswith("┃ rule"))
    names = [c.strip() for c in header.strip("┃").split("┃")]
    place = 3  # rule, symbol, ts, then line or row
    rows = [r for r in table_rows(stdout) if len(r) == len(names) and re.fullmatch(r"\d+", r[place])]
    return [(r[0], f"{names[place]} {r[place]}") for r in rows]


def test_violations_carry_file_lines_including_unsorted(tmp_path: Path) -> None:
    path = tmp_path / "X.csv"
    path.write_text(EXAMPLE)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1, result.stderr
    assert violations(result.stdout) == [
        ("unsorted", "line 3"),
        ("high_below_low", "line 4"),
        ("high_below_open_close", "line 4"),
        ("low_above_open_close", "line 4"),
        ("negative_volume", "line 5"),
        ("duplicate", "line 6"),
    ]
    assert "repeats (symbol, ts) of line 5" in result.stdout
    assert "previous row at line 2" in result.stdout
    assert path.read_text().splitlines()[4 - 1] == "2024-01-04,10,9,11,10.5,100"  # the named line


def test_newest_first_file_loads_but_validate_reports_it(tmp_path: Path) -> None:
    path = tmp_path / "N.csv"
    path.write_text(HEADER + "2024-01-04,10,11,9,10.5,1\n2024-01-03,10,11,9,10.5,1\n"
                    "2024-01-02,10,11,9,10.5,1\n")
    assert read_bars(path).height == 3
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert violations(result.stdout) == [("unsorted", "line 3"), ("unsorted", "line 4")]


def test_parquet_violations_are_named_by_row_index(tmp_path: Path) -> None:
    bars = read_bars(sample_data_dir() / "IBM_1d_2012-2014_with_div_split.csv").head(5)
    path = tmp_path / "IBM.parquet"
    bars.with_columns(volume=pl.when(pl.int_range(pl.len()) == 2).then(-1.0).otherwise("volume")) \
        .write_parquet(path)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert violations(result.stdout) == [("negative_volume", "row 2")]


def test_clean_files_exit_0(tmp_path: Path) -> None:
    rows = "".join(f"2024-01-0{d},{s},10,11,9,10.5,1\n" for d in (2, 3, 4) for s in ("B", "A"))
    path = tmp_path / "interleaved.csv"
    path.write_text("date,symbol,open,high,low,close,volume\n" + rows)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.stdout
    real = sample_data_dir() / "AAPL_1d_2012-2014_with_div_split.csv"
    result = runner.invoke(app, ["validate", str(real)])
    assert result.exit_code == 0, result.stdout
    assert "754" in result.stdout and "1.0000" in result.stdout
