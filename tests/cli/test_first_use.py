"""Mistakes found by using backtape as a new user would, run as real ``backtape`` processes: the
output off a terminal (a pipe, a CI log) holds the answer and nothing else, and an error is one line
saying what was wrong with which input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import backtape

SRC = Path(backtape.__file__).parents[1]


def backtape_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m backtape ARGS`` with stdout and stderr captured (pipes, not a terminal)."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-m", "backtape", *args], capture_output=True, text=True,
                          env=env, timeout=300, check=False)


SEARCH = ["sma_crossover", "-s", "AAPL", "--start", "2012-01-01", "--end", "2015-01-01", "--no-store"]


def test_a_grid_the_strategy_refuses_says_why_on_one_line_and_prints_nothing_else() -> None:
    proc = backtape_cli("optimize", *SEARCH, "-g", "nosuch=1,2")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: the strategy rejects every parameter set of the grid (e.g. {'nosuch': 1}: SmaCrossover: "
        "unknown parameter(s) nosuch; known: allow_short, fast, slow)"]
    proc = backtape_cli("optimize", *SEARCH, "-g", "fast=60,70")
    assert proc.stderr.splitlines() == [
        "error: the strategy rejects every parameter set of the grid (e.g. {'fast': 60}: sma_crossover "
        "needs 0 < fast < slow, got fast=60, slow=50)"]


def test_search_and_ingest_output_off_a_terminal_has_no_stray_blank_lines(tmp_path: Path) -> None:
    proc = backtape_cli("optimize", *SEARCH, "-g", "fast=60,70")
    assert proc.returncode == 2 and proc.stdout == ""  # the transient progress bar left a blank line
    proc = backtape_cli("optimize", *SEARCH, "-g", "fast=5,10", "-g", "slow=20,50")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("sma_crossover on AAPL"), proc.stdout
    proc = backtape_cli("walkforward", *SEARCH[:-1], "-g", "fast=5,10", "-g", "slow=20,50")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("sma_crossover: "), proc.stdout
    proc = backtape_cli("ingest", "synthetic", "--symbols", "ACME", "--start", "2024-01-02", "--end",
                        "2024-02-01", "--bundle", "demo", "--bundles-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and proc.stdout.startswith("bundle demo: 1 symbol(s), 21 rows"), proc
    assert proc.stdout.rstrip().endswith(f"-> {tmp_path / 'demo'}") and proc.stdout.count("\n") == 1, proc


def test_bundles_list_and_cache_stats_fit_80_columns_without_cutting_values(tmp_path: Path) -> None:
    bundles = str(tmp_path / "bundles")
    assert backtape_cli("ingest", "synthetic", "--symbols", "ACME", "--start", "2024-01-02", "--end",
                        "2024-02-01", "--bundle", "demo", "--bundles-dir", bundles).returncode == 0
    proc = backtape_cli("bundles", "list", "--bundles-dir", bundles)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80 and "…" not in proc.stdout, proc.stdout
    row = next(line for line in lines if line.startswith("demo"))
    assert row.split() == ["demo", "synthetic", "1d", "1", "2024-01-02", "2024-02-01", "21", "3.9", "KiB",
                           "1.000"], row
    cache = str(tmp_path / "cache")
    code = ("from backtape import CachedDataSource, get_source; CachedDataSource(get_source('synthetic', "
            f"seed=3), cache_dir={cache!r}).fetch_sync('ACME', '2024-01-02', '2024-01-10', '1d')")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(SRC)})
    proc = backtape_cli("cache", "stats", "--cache-dir", cache)
    assert proc.returncode == 0, proc.stderr
    assert max(len(line.rstrip()) for line in proc.stdout.splitlines()) <= 80 and "…" not in proc.stdout
    assert "seed=3" in proc.stdout.replace("\n", "").replace(" ", ""), proc.stdout  # which synthetic source


def test_your_own_csv_is_backtested_and_searched_from_the_command_line(tmp_path: Path) -> None:
    """``--source csv`` said "options are given as --option NAME=VALUE", which backtest, optimize and
    walkforward did not have: a file of one's own could not be used from the command line."""
    rows = ["Date,Open,High,Low,Close,Volume"]
    price = 100.0
    for day in range(1, 29):  # February 2024 sessions with a rise then a fall: one crossover each way
        price *= 1.01 if day < 15 else 0.99
        rows.append(f"2024-02-{day:02d},{price:.4f},{price * 1.01:.4f},{price * 0.99:.4f},{price:.4f},1000")
    path = tmp_path / "SPY.csv"
    path.write_text("\n".join(rows) + "\n")
    run = ["-s", "SPY", "--source", "csv", "-o", f"path={path}", "-o", "on_non_session=drop",
           "--start", "2024-02-01", "--end", "2024-03-01", "--no-store"]
    proc = backtape_cli("backtest", "sma_crossover", *run, "-p", "fast=2", "-p", "slow=4")
    assert proc.returncode == 0, proc.stderr
    assert "SmaCrossover(fast=2, slow=4, allow_short=False) on SPY 1d" in proc.stdout
    proc = backtape_cli("optimize", "sma_crossover", *run, "-g", "fast=2,3", "-g", "slow=4,5")
    assert proc.returncode == 0 and "top 4 of 4" in proc.stdout, proc.stderr
    proc = backtape_cli("backtest", "sma_crossover", *run, "-o", "nosuch=1")
    assert proc.returncode == 2 and proc.stderr.startswith("error: unknown option(s) nosuch; known:"), proc


def test_an_output_file_that_is_a_folder_is_refused_before_the_work(tmp_path: Path) -> None:
    """``--trades x.csv`` and ``--report x.html`` naming folders failed after the run (stored and
    printed) with the writer's message; ``data show --output`` left a ``.partial`` file behind."""
    for name in ("dir.csv", "dir.html"):
        (tmp_path / name).mkdir()
    run = ["backtest", "sma_crossover", "-s", "AAPL", "--start", "2012-01-01", "--end", "2013-01-01",
           "--db", str(tmp_path / "r.db")]
    for flag, name in (("--trades", "dir.csv"), ("--report", "dir.html")):
        proc = backtape_cli(*run, flag, str(tmp_path / name))
        assert proc.returncode == 2 and proc.stdout == "", proc
        assert f"Invalid value for '{flag}': {tmp_path / name} is a folder; give a file name" in proc.stderr
    assert not (tmp_path / "r.db").exists()  # nothing was run or stored
    proc = backtape_cli("data", "show", "AAPL", "--source", "sample", "--start", "2014-01-01", "--end",
                        "2014-02-01", "--output", str(tmp_path / "dir.csv"))
    assert proc.returncode == 2 and "is a folder" in proc.stderr
    assert not list(tmp_path.glob(".*partial")) and not list((tmp_path / "dir.csv").iterdir())


def test_refused_orders_say_where_to_read_them(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'r.db'}"
    done = backtape_cli("backtest", "equal_weight", "-s", "BRK_A,KO,IBM", "--start", "2014-01-01",
                        "--end", "2015-01-01", "--db", db)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("warning: 12 order(s) of EqualWeight refused") == 1
    hint = [line for line in done.stdout.splitlines() if "refused order(s)" in line]
    assert hint == ["12 refused order(s) with their reasons: backtape runs export 1 --what rejections -o "
                    "rejections.csv"], done.stdout
    out = tmp_path / "rejections.csv"
    listed = backtape_cli("runs", "export", "1", "--what", "rejections", "-o", str(out), "--db", db)
    assert listed.returncode == 0, listed.stderr
    assert len(out.read_text().splitlines()) == 13 and "buys no whole unit of BRK_A" in out.read_text()
