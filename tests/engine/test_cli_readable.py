"""What the research commands print fits 80 columns and reads the same everywhere; runs export."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from backtape.cli.app import app as root
from backtape.results import ResultsStore
from backtape.results.export import read_frame

RUN = ["sma_crossover", "-s", "AAPL,MSFT", "--start", "2012-01-01", "--end", "2015-01-01", "--cash", "10000",
       "-p", "fast=10", "-p", "slow=50"]
UTC = pl.Datetime("ns", "UTC")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("readable")
    env = {"COLUMNS": "80", "HOME": str(base / "home"), "XDG_CONFIG_HOME": str(base / "xdg"),
           "BACKTAPE_CONFIG": str(base / "none.yaml")}
    (base / "none.yaml").write_text("{}\n")
    runner = CliRunner(env=env)
    db = base / "results.db"

    def cli(*args: str) -> str:
        out = runner.invoke(root, [*args])
        assert out.exit_code == 0, out.output
        return out.output

    first = cli("backtest", *RUN, "--db", str(db), "--trades", str(base / "trades.csv"))
    cli("backtest", "rsi_mean_reversion", "-s", "KO", "--start", "2012-01-01", "--end", "2015-01-01",
        "--db", str(db))
    return {"cli": cli, "db": str(db), "base": base, "backtest": first}


def _readable(text: str) -> None:
    """Every line fits 80 columns, no NaN or float-formatted count shows, nothing is cut with an ellipsis."""
    for line in text.splitlines():
        assert len(line) <= 80, line
    assert not re.search(r"\bnan\b", text, re.IGNORECASE), text
    assert "…" not in text, text


def test_backtest_prints_readable_statistics_and_the_open_positions(home: dict[str, Any]) -> None:
    out = home["backtest"]
    _readable(out)
    for text in ("final equity", "14,709.80", "total return", "+47.10%", "buy & hold return", "SQN",
                 "max drawdown length", "145 bars", "average trade duration", "63d 21h", "open P&L"):
        assert text in out, text
    assert re.search(r"trades\s+19\n", out) and re.search(r"open trades\s+1\n", out)
    notice = [line for line in out.splitlines() if "still open at the end" in line]
    assert notice and "1 trade(s) still open at the end (AAPL)" in notice[0]


def test_trades_file_holds_closed_and_open_trades(home: dict[str, Any]) -> None:
    trades = read_frame(home["base"] / "trades.csv")
    assert trades.height == 19 and trades["is_open"].to_list() == [False] * 18 + [True]
    assert trades.schema["entry_time"] == UTC and trades.schema["exit_time"] == UTC
    stored = ResultsStore(home["db"]).load_result(1)
    assert trades.filter(~pl.col("is_open")).drop("is_open").equals(stored.trades)


def test_runs_list_show_compare_fit_80_columns(home: dict[str, Any]) -> None:
    cli, db = home["cli"], home["db"]
    listed = cli("runs", "list", "--db", db)
    _readable(listed)
    assert "SmaCrossover" in listed and "RsiMeanReversion" in listed and "+47.10%" in listed
    sma = next(line for line in listed.splitlines() if "SmaCrossover" in line)
    assert sma.split()[-4:] == ["+47.10%", "1.14", "9.71%", "19"], sma
    shown = cli("runs", "show", "1", "--db", db)
    _readable(shown)
    assert "open at the end (1," in shown and "closed trades (18)" in shown
    assert " long " in shown and " short " not in shown and " 1 20" not in shown
    compared = cli("runs", "compare", "1", "2", "--db", db)
    _readable(compared)
    assert "run 1" in compared and "run 2" in compared and not re.search(r"\d\.0000", compared)


def test_runs_export_round_trip(home: dict[str, Any], tmp_path: Path) -> None:
    cli, db = home["cli"], home["db"]
    stored = ResultsStore(db).load_result(1).frames()
    out = cli("runs", "export", "1", "-o", str(tmp_path / "csv"), "--db", db)
    assert out.count("wrote") == 5
    assert stored["open_trades"].height == 1  # the 19th trade of the run: exported by default too
    for name in ("trades", "open_trades", "orders", "fills", "equity"):
        back = read_frame(tmp_path / "csv" / f"{name}.csv", stored[name].schema)
        assert back.equals(stored[name]), name
    cli("runs", "export", "1", "--what", "fills,records", "-o", str(tmp_path / "pq"), "--format", "parquet",
        "--db", db)
    assert pl.read_parquet(tmp_path / "pq" / "fills.parquet").equals(stored["fills"])
    cli("runs", "export", "1", "-w", "orders", "-o", str(tmp_path / "orders.parquet"), "--db", db)
    assert pl.read_parquet(tmp_path / "orders.parquet").equals(stored["orders"])


def test_runs_export_refuses_unknown_frames_and_formats(home: dict[str, Any], tmp_path: Path) -> None:
    runner = CliRunner(env={"COLUMNS": "80"})
    bad = runner.invoke(root, ["runs", "export", "1", "-w", "nope", "-o", str(tmp_path), "--db", home["db"]])
    assert bad.exit_code != 0 and "no frame 'nope'" in bad.output
    two = runner.invoke(root, ["runs", "export", "1", "-o", str(tmp_path / "x.csv"), "--db", home["db"]])
    assert two.exit_code != 0 and "give a folder" in two.output


def test_research_commands_read_the_same(home: dict[str, Any]) -> None:
    cli, db = home["cli"], home["db"]
    mc = cli("montecarlo", "1", "--n", "50", "--db", db)
    _readable(mc)
    assert re.search(r"\d+\.\d\d%", mc) and not re.search(r"0\.\d{4}\b", mc)
    opt = cli("optimize", "sma_crossover", "-g", "fast=5:30:5", "-g", "slow=40,60", "-s", "AAPL",
              "--start", "2012-01-01", "--end", "2015-01-01", "--db", db, "--top", "5")
    _readable(opt)
    rows = [line.split() for line in opt.splitlines() if re.match(r"^\s*\d+\s+\d+\s", line)]
    assert len(rows) == 5 and all(re.fullmatch(r"\d+", r[-1]) for r in rows)  # trades: whole numbers
    assert all(re.fullmatch(r"[\d,]+\.\d\d", r[3]) and r[4].endswith("%") for r in rows)  # equity, return
