"""Each mistake a user can make on the command line is one line naming the input and what to do."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from backtape.cli.app import app

BACKTEST = ["backtest", "sma_crossover", "--symbols", "AAPL", "--start", "2012-01-01", "--end",
            "2013-01-01", "--no-store"]


@pytest.mark.parametrize(("args", "message"), [
    ([*BACKTEST, "--param", "fast=abc"], "parameter fast must be a whole number"),
    ([*BACKTEST, "--param", "fast=2.5"], "parameter fast must be a whole number (default 10), got 2.5; a "
                                         "default of 10.0 takes fractions"),
    ([*BACKTEST, "--param", "nosuch=3"], "unknown parameter(s) nosuch; known: allow_short, fast, slow"),
    ([*BACKTEST, "--frequency", "1000000000min"], "longer than 100 years"),
    (["runs", "show", "99999999999999999999999"], "no backtest run with id 99999999999999999999999"),
    (["runs", "list", "--db", "mysql://u@h/db"], "mysql://... is not supported"),
    (["runs", "list", "--db", "file:/tmp/x.db"], "without 'file:'"),
    ([*BACKTEST[:-1], "--db", "."], "is a folder; give a file path such as"),
    (["runs", "list", "--db", "."], "is a folder; give a file path such as"),
    ([*BACKTEST[:-1], "--db", "/dev/null/x.db"], "cannot create its folder"),
    ([*BACKTEST[:3], "AAPL,MSFT,AAPL", *BACKTEST[4:]], "symbol(s) AAPL given more than once"),
    ([*BACKTEST[:3], "", *BACKTEST[4:]], "no symbols given"),
    ([*BACKTEST[:3], "AAPL,,MSFT", *BACKTEST[4:]], "empty symbol name in 'AAPL,,MSFT'"),
    (["optimize", *BACKTEST[1:3], " ", *BACKTEST[4:], "-g", "fast=5,10"], "no symbols given"),
    (["optimize", *BACKTEST[1:3], "KO,KO", *BACKTEST[4:], "-g", "fast=5,10"], "KO given more than once"),
    ([*BACKTEST[:-1], "--report", "run.txt"], "the report path must end in .html, got 'run.txt'"),
    (["optimize", *BACKTEST[1:], "-g", "fast=5,10", "--report", "opt"], "the report path must end in .html"),
    (["runs", "compare", "3", "3"], "run id(s) 3 given more than once"),
    ([*BACKTEST, "--commission", "2"], "commission must be a fraction of traded notional in [0, 1)"),
])
def test_one_clear_line(tmp_path, monkeypatch, args, message) -> None:
    monkeypatch.setenv("BACKTAPE_RESULTS_DB", str(tmp_path / "r.db"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
    assert "unexpected" not in result.output and not (tmp_path / "file:").exists()


@pytest.mark.parametrize("args", [
    ["runs", "list", "--verbose"], ["--verbose", "runs", "list"], ["runs", "--log-json", "list"],
    ["runs", "list", "--config", "CFG"], ["-c", "CFG", "runs", "list"],
])
def test_global_flags_before_or_after_the_sub_command(tmp_path, monkeypatch, args) -> None:
    from backtape.cli.app import _hoist_globals

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"data:\n  results_db: {tmp_path / 'r.db'}\n")
    args = [str(cfg) if a == "CFG" else a for a in args]
    hoisted = _hoist_globals(args)
    assert hoisted[hoisted.index("runs"):hoisted.index("runs") + 2] == ["runs", "list"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output


def test_option_values_are_not_taken_for_flags() -> None:
    from backtape.cli.app import _hoist_globals

    args = ["backtest", "x.py:S", "--param", "-v", "--symbols", "AAPL"]
    assert _hoist_globals(["-c", "a.yaml", "data", "show"]) == ["-c", "a.yaml", "data", "show"]
    assert _hoist_globals(args)[:2] == ["-v", "backtest"]
