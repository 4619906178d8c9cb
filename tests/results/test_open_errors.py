"""A results database that cannot be opened is one line saying why and what to do; the driver's
message had a hidden second line ('+1 more lines') and no hint."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from backtape.cli.app import app
from backtape.errors import BacktapeError
from backtape.results import ResultsStore


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    junk = tmp_path / "prices.csv"
    junk.write_text("Date,Close\n2024-01-02,1.5\n" * 200)
    with pytest.raises(BacktapeError, match=r"prices\.csv: file is not a database; the file is not a SQLite "
                                            r"database: give a new path"):
        ResultsStore(junk)
    assert junk.read_text().startswith("Date,Close")


def test_a_relative_sqlite_url_to_a_missing_folder_hints_at_the_slashes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["runs", "list", "--db", "sqlite:///no/such/r.db"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "more lines" not in lines[0], result.output
    assert "unable to open database file; check that its folder exists" in lines[0]
    assert "sqlite:////abs/path" in lines[0]
