"""A cache or bundle folder that is a file, or cannot be created, is one error naming it (it was a
raw ``FileExistsError``/``FileNotFoundError``, and ``cache stats`` said the cache did not exist)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from backtape import CachedDataSource, get_source
from backtape.cli.app import app
from backtape.errors import BacktapeError, ConfigError


def test_a_file_where_the_cache_folder_should_be(tmp_path: Path) -> None:
    file = tmp_path / "prices.csv"
    file.write_text("not a folder\n")
    with pytest.raises(ConfigError, match=r"cache folder .*prices\.csv is a file, not a folder"):
        CachedDataSource(get_source("synthetic", seed=1), cache_dir=file)
    with pytest.raises(ConfigError, match=r"cache folder .*prices\.csv/sub: cannot create it"):
        CachedDataSource(get_source("synthetic", seed=1), cache_dir=file / "sub")
    assert file.read_text() == "not a folder\n"


@pytest.mark.parametrize(("args", "message"), [
    (["cache", "stats", "--cache-dir", "{file}"], "is a file, not a folder"),
    (["ingest", "synthetic", "--symbols", "ACME", "--start", "2024-01-02", "--end", "2024-01-10",
      "--bundle", "b", "--bundles-dir", "{file}"], "bundle folder"),
])
def test_the_command_line_says_it_in_one_line(tmp_path: Path, monkeypatch, args, message) -> None:
    monkeypatch.chdir(tmp_path)
    file = tmp_path / "prices.csv"
    file.write_text("x\n")
    result = CliRunner().invoke(app, [a.format(file=file) for a in args])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert message in lines[0] and "unexpected" not in lines[0]
    assert isinstance(result.exception, SystemExit | BacktapeError)
