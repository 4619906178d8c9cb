"""The optimize, walkforward and montecarlo commands (typer's CliRunner on the module's sub-app)."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from backtape.cli.optimize import app, parse_grid
from backtape.engine import run_backtest
from backtape.results import ResultsStore

runner = CliRunner()
COMMON = ["--symbols", "SYN", "--start", "2020-01-01", "--end", "2022-01-01", "--source", "synthetic"]


def test_parse_grid() -> None:
    grid = parse_grid(["fast=5:55:5", "slow=20,50", "lower=20:35:7.5", "allow_short=true"])
    assert grid == {
        "fast": list(range(5, 55, 5)),
        "slow": [20, 50],
        "lower": [20.0, 27.5],
        "allow_short": [True],
    }
    with pytest.raises(typer.BadParameter, match="name=start:stop:step"):
        parse_grid(["fast"])
    with pytest.raises(typer.BadParameter, match="step must be positive"):
        parse_grid(["fast=5:55:0"])


def test_optimize_prints_the_top_sets_and_stores_the_search(tmp_path: Any) -> None:
    db = tmp_path / "r.db"
    out = runner.invoke(app, ["optimize", "sma_crossover", "--grid", "fast=5:25:5", "--grid", "slow=30:70:20",
                              "--metric", "sharpe", "--top", "3", "--db", str(db), *COMMON])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "top 3 of 8 by sharpe" in out.output and "deflated Sharpe" in out.output and "PBO" in out.output
    stored = ResultsStore(db).get_optimization(1)
    assert stored["n_sets"] == 8 and stored["strategy_name"] == "sma_crossover"
    assert str(stored["best"]) in out.output


def test_optimize_reports_errors() -> None:
    from backtape.cli.app import app as root

    out = runner.invoke(root, ["optimize", "sma_crossover", "--grid", "fast=5:25:5", "--metric", "alpha",
                               "--no-store", *COMMON])  # fmt: skip
    assert out.exit_code == 2 and out.stderr.startswith("error: ") and "unknown metric" in out.stderr


def test_walkforward_command() -> None:
    out = runner.invoke(app, ["walkforward", "sma_crossover", "--grid", "fast=5,10", "--grid", "slow=30,50",
                              "--train", "200", "--test", "100", "--anchored", *COMMON])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert (
        "4 windows" in out.output
    )  # 505 bars: 200 + 3 x 100 + 5 and "walk-forward efficiency" in out.output


def test_montecarlo_command(tmp_path: Any) -> None:
    db = ResultsStore(tmp_path / "r.db")
    run = run_backtest("sma_crossover", "SYN", "2018-01-01", "2023-01-01", source="synthetic",
                       params={"fast": 10, "slow": 50})  # fmt: skip
    run_id = run.save(db)
    out = runner.invoke(app, ["montecarlo", str(run_id), "--n", "200", "--method", "bootstrap", "--db",
                              str(tmp_path / "r.db")])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "bootstrap, 200 simulations" in out.output and "the run itself" in out.output
    from backtape.cli.app import app as root

    missing = runner.invoke(root, ["montecarlo", "999", "--db", str(tmp_path / "r.db")])
    assert missing.exit_code == 2 and "no backtest run with id 999" in missing.stderr
