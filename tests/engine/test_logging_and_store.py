"""Structured run events through stdlib logging; the results schema is portable SQLAlchemy Core."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

from backtape.engine import run_backtest
from backtape.results import store as store_module


def test_start_complete_and_error_events(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="backtape.backtest"):
        res = run_backtest("sma_crossover", "AAPL", "2012-01-01", "2013-01-01",
                           params={"fast": 5, "slow": 20})
    events = {r.event: r for r in caplog.records}
    start, done = events["backtest.start"], events["backtest.complete"]
    assert start.strategy == "SmaCrossover" and start.parameters["fast"] == 5 and start.symbols == ["AAPL"]
    assert start.start.startswith("2012-01-01") and start.frequency == "1d"
    assert done.final_equity == res.metrics["final_equity"] and done.trades == res.metrics["trades"]
    assert done.duration_s > 0
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="backtape.backtest"), pytest.raises(Exception, match="ZZZZ"):
        run_backtest("sma_crossover", "ZZZZ", "2012-01-01", "2013-01-01")
    err = [r for r in caplog.records if getattr(r, "event", "") == "backtest.error"]
    assert err and err[0].levelno == logging.ERROR and "ZZZZ" in err[0].error


def test_results_schema_compiles_for_postgresql() -> None:
    dialect = postgresql.dialect()
    ddl = [str(CreateTable(t).compile(dialect=dialect)) for t in store_module._metadata.sorted_tables]
    assert any("CREATE TABLE backtests" in d and "JSON" in d for d in ddl)
    assert all("AUTOINCREMENT" not in d for d in ddl)  # SQLite-only keyword never emitted
    q = sa.select(store_module._backtests.c.id).order_by(store_module._backtests.c.id.desc()).limit(5)
    assert "LIMIT" in str(q.compile(dialect=dialect))


def test_a_failing_run_in_python_is_an_exception_and_no_log_line_on_stderr(tmp_path: Path) -> None:
    code = ("import backtape as bt\n"
            "try:\n"
            "    bt.run_backtest('sma_crossover', 'ZZZZ', '2012-01-01', '2013-01-01', source='sample')\n"
            "except bt.BacktapeError:\n    print('raised')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HOME": str(tmp_path)})
    assert proc.stdout.strip() == "raised" and proc.stderr == ""
