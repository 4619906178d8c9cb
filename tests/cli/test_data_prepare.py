"""``backtape data prepare``: the rows equal ``PreparedSource`` in Python, written whole to a file, and
each bad setting is one ``error:`` line naming it."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import backtape as bt
from backtape.cli.app import app
from backtape.cli.prepare import parse_features

runner = CliRunner()
RANGE = ["--start", "2014-05-01", "--end", "2014-07-01"]


def test_the_file_holds_the_rows_python_prepares(tmp_path: Path) -> None:
    out = tmp_path / "prepared.parquet"
    result = runner.invoke(app, ["data", "prepare", "AAPL,KO", *RANGE, "--missing", "ffill", "--outliers",
                                 "hampel", "--outlier-window", "15", "--features", "returns,rsi=14,sma=5/20",
                                 "--output", str(out)])
    assert result.exit_code == 0, result.stderr
    assert "wrote 84 rows" in result.stderr
    source = bt.PreparedSource(bt.Workspace().source("sample"), missing="ffill",
                               outliers=bt.Outliers("hampel", window=15),
                               features=bt.Features(returns=True, rsi=14, sma=(5, 20)))
    expected = source.fetch_sync(["AAPL", "KO"], "2014-05-01", "2014-07-01", "1d")
    written = pl.read_parquet(out)
    assert written.equals(expected)
    assert {"outlier", "returns", "rsi_14", "sma_5", "sma_20"} <= set(written.columns)


def test_feature_lists_read_as_the_python_settings() -> None:
    assert parse_features("log_returns, volatility=20, sma=10/50") == bt.Features(
        returns=False, log_returns=True, volatility=20, sma=(10, 50))


@pytest.mark.parametrize(("args", "message"), [
    (["--features", "rsi"], "error: --features 'rsi' is not a feature; known: returns, log_returns"),
    (["--features", "sma=ten"], "error: --features 'sma=ten': windows are whole numbers of bars"),
    (["--features", "rsi=1"], "error: Features.rsi windows must be an integer >= 2"),
    (["--missing", "sometimes"], "error: MissingBars.policy must be one of leave, ffill, drop"),
    (["--outliers", "mad"], "error: Outliers.method must be one of hampel, zscore"),
    (["--outliers", "zscore", "--outlier-action", "delete"], "error: Outliers.action must be one of flag"),
    ([], "error: nothing to prepare: give --missing, --outliers or --features"),
])
def test_a_bad_setting_is_one_error_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["data", "prepare", "AAPL", *RANGE, *args])
    assert result.exit_code != 0
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
