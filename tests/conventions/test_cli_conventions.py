"""``backtape backtest --conventions NAME`` runs under the preset, as ``run_backtest(conventions=NAME)``."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from _isolation import isolate
from backtape.cli.backtest import app as backtest_app
from backtape.engine import run_backtest
from backtape.results import ResultsStore

runner = CliRunner(env={"COLUMNS": "250"})
ARGS = ["sma_crossover", "-s", "AAPL", "--start", "2012-01-01", "--end", "2015-01-01", "-p", "fast=10",
        "-p", "slow=30", "-p", "allow_short=true"]


@pytest.fixture(autouse=True)
def _no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch, tmp_path)


def test_conventions_flag_applies_the_preset(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    for name in ("backtape", "backtesting.py"):
        out = runner.invoke(backtest_app, [*ARGS, "--conventions", name, "--db", str(db)])
        assert out.exit_code == 0, out.output
    store = ResultsStore(str(db))
    own, peer = store.get_run(1).metrics, store.get_run(2).metrics
    expected = run_backtest("sma_crossover", "AAPL", "2012-01-01", "2015-01-01", source="sample",
                            params={"fast": 10, "slow": 30, "allow_short": True},
                            conventions="backtesting.py")
    assert peer["sharpe"] == pytest.approx(expected.metrics["sharpe"], rel=1e-12)
    assert peer["volatility"] != pytest.approx(own["volatility"], rel=1e-6)  # geometric vs arithmetic


def test_unknown_conventions_is_a_one_line_error(tmp_path: Path) -> None:
    from backtape.cli.app import app as root

    out = runner.invoke(root, ["backtest", *ARGS, "--conventions", "zipline", "--db", str(tmp_path / "r.db")])
    assert out.exit_code == 2 and out.stderr.startswith("error: ")
    assert "unknown conventions 'zipline'" in out.stderr
