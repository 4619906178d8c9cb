"""``Workspace.run_many``: many event backtests on worker processes, each worker storing its runs in a
real PostgreSQL server with an idempotency key (no duplicate, none lost, retries find their run)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from backtape.errors import ConfigError
from backtape.optimization.many import _run_jobs, jobs_of
from backtape.results import ResultsStore
from backtape.workspace import Workspace
from engine.test_postgres import postgres_url  # noqa: F401  (the real server fixture)

GRID = {"fast": [5, 10], "slow": [30, 50]}
SPAN = {"start": "2021-01-01", "end": "2022-06-01", "source": "synthetic"}


def _workspace(tmp: Path) -> Workspace:
    cfg = tmp / "backtape.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"cache_dir": str(tmp / "cache"), "bundles_dir": str(tmp / "b"),
                                            "results_db": str(tmp / "results.db")}}))  # fmt: skip
    return Workspace(cfg)


def _count(url: str, table: str) -> int:
    with ResultsStore(url).engine.connect() as conn:
        return int(conn.execute(sa.text(f"select count(*) from {table}")).scalar_one())


def test_workers_store_every_run_once_in_postgresql(tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    ws = _workspace(tmp_path)
    before = _count(postgres_url, "backtests")
    frame = ws.run_many(["sma_crossover"], ["AAA", "BBB"], GRID, **SPAN, n_jobs=2, store=postgres_url,
                        batch="first")  # fmt: skip
    assert frame.height == 8 and frame["run_id"].n_unique() == 8 and frame["pid"].n_unique() == 2
    assert _count(postgres_url, "backtests") == before + 8
    one = ws.run_backtest("sma_crossover", "BBB", SPAN["start"], SPAN["end"], source="synthetic",
                          params={"fast": 10, "slow": 30})  # fmt: skip
    row = frame.filter(symbol="BBB", params='{"fast": 10, "slow": 30}')
    assert row["final_equity"].item() == one.metrics["final_equity"]
    stored = ResultsStore(postgres_url).load_result(int(row["run_id"].item()))
    assert stored.metrics["final_equity"] == one.metrics["final_equity"]
    # the whole batch again (every task retried): the same runs, no new row
    again = ws.run_many(["sma_crossover"], ["AAA", "BBB"], GRID, **SPAN, n_jobs=1, store=postgres_url,
                        batch="first")  # fmt: skip
    assert again["run_id"].to_list() == frame["run_id"].to_list()
    assert _count(postgres_url, "backtests") == before + 8


def test_two_copies_of_a_task_racing_store_one_run(tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    from backtape.optimization.data import load_market_data

    ws = _workspace(tmp_path)
    data = load_market_data(["AAA"], SPAN["start"], SPAN["end"], "1d", "synthetic", warmup=50)
    jobs = jobs_of("sma_crossover", "AAA", [{"fast": 5, "slow": 30}, {"fast": 10, "slow": 50}])
    before = _count(postgres_url, "backtests")
    out: list[list[dict]] = []
    def copy() -> None:
        out.append(_run_jobs(data, jobs, ws.options, postgres_url, "race"))

    copies = [threading.Thread(target=copy) for _ in range(3)]
    for t in copies:
        t.start()
    for t in copies:
        t.join()
    assert len(out) == 3 and all([r["run_id"] for r in rows] == [r["run_id"] for r in out[0]] for rows in out)
    assert _count(postgres_url, "backtests") == before + 2


def test_run_many_needs_work() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        jobs_of([], "AAA", GRID)
