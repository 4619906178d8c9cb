"""``backtape backtest`` and ``backtape runs`` through typer's CliRunner, on a temporary database."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from backtape.cli.backtest import app as backtest_app
from backtape.cli.runs import app as runs_app
from backtape.results import ResultsStore

runner = CliRunner(env={"COLUMNS": "250"})

USER_STRATEGY = '''
from backtape.engine import Strategy

class BuyAndHold(Strategy):
    params = {"fraction": 1.0}

    def on_bar(self, ctx):
        if not ctx.position():
            ctx.order_target_percent(ctx.symbols[0], self.fraction)
'''


def _backtest(db: Path, *args: str) -> str:
    result = runner.invoke(backtest_app, [*args, "--db", str(db)])
    assert result.exit_code == 0, result.output
    return result.output


def test_backtest_builtin_and_user_file_are_stored_and_listed(tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    out = _backtest(db, "sma_crossover", "--symbols", "AAPL", "--start", "2012-01-01", "--end", "2015-01-01",
                    "--param", "fast=10", "--param", "slow=50", "--commission", "0.001")
    assert "final_equity" in out and "stored run 1" in out
    user = tmp_path / "mine.py"
    user.write_text(USER_STRATEGY)
    out = _backtest(db, f"{user}:BuyAndHold", "--symbols", "MSFT", "--start", "2013-01-01",
                    "--end", "2014-01-01", "--param", "fraction=0.5", "--fill", "close")
    assert "stored run 2" in out
    store = ResultsStore(db)
    rec = store.get_run(1)
    assert rec.header["parameters"] == {"fast": 10, "slow": 50, "allow_short": False}
    assert rec.trades.height == rec.metrics["trades"] > 0
    fp = rec.header["data_fingerprint"]
    assert fp["source"] == "sample" and fp["symbols"] == ["AAPL"] and fp["package_version"]
    listed = runner.invoke(runs_app, ["list", "--db", str(db)])
    assert listed.exit_code == 0 and "SmaCrossover" in listed.output and "BuyAndHold" in listed.output
    shown = runner.invoke(runs_app, ["show", "1", "--db", str(db)])
    assert shown.exit_code == 0 and "sharpe" in shown.output and "AAPL" in shown.output
    compared = runner.invoke(runs_app, ["compare", "1", "2", "--db", str(db)])
    assert compared.exit_code == 0 and "run_1" in compared.output and "run_2" in compared.output


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    from backtape.cli.app import app as root

    bad = runner.invoke(root, ["backtest", "nope", "--symbols", "AAPL", "--start", "2012-01-01",
                               "--end", "2013-01-01", "--db", str(db)])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: ") and "unknown strategy 'nope'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    missing = runner.invoke(root, ["runs", "show", "42", "--db", str(db)])
    assert missing.exit_code == 2 and "no backtest run with id 42" in missing.stderr
    bad_param = runner.invoke(backtest_app, ["sma_crossover", "--symbols", "AAPL", "--start", "2012-01-01",
                                             "--end", "2013-01-01", "--param", "fast", "--db", str(db)])
    assert bad_param.exit_code != 0
