"""``optimize --resume``: a search stopped by Ctrl-C or a killed driver continues where it stopped.

The sweeps run as real ``backtape optimize`` subprocesses on a real SQLite file or PostgreSQL server;
the strategy writes a line per parameter set it runs, so the resumed process is seen to evaluate
only the sets the interrupted one had not stored, and the stored table equals an uninterrupted one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

from backtape.errors import BacktapeError, ConfigError
from backtape.optimization import optimize
from backtape.results import ResultsStore, searches
from engine.test_postgres import postgres_url  # noqa: F401  (the real server fixture)

SRC = Path(__file__).parents[2] / "src"
COUNTED = '''
import os
from backtape.engine.builtins import SmaCrossover

class Counted(SmaCrossover):
    """sma_crossover that writes a line each time a run starts."""

    def initialize(self, ctx):
        with open(os.environ["BT_COUNT_LOG"], "a") as f:
            f.write(f"{self.fast},{self.slow}\\n")
        super().initialize(ctx)
'''
#: 160 sets of about 45 ms each on the event engine: about 7 s of work, recorded every ~2 s
SWEEP = ["--grid", "fast=3:43", "--grid", "slow=50,70,90,110", "--symbols", "SYN", "--start", "2016-01-01",
         "--end", "2022-01-01", "--source", "synthetic", "--engine", "event", "--jobs", "1"]
N_SETS = 160


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the counting strategy, used as HOME and working folder of every subprocess."""
    folder = tmp_path_factory.mktemp("resume")
    (folder / "counted.py").write_text(COUNTED)
    return folder


def _cli(home: Path, db: str, count: Path, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKTAPE_")}
    env.update(HOME=str(home), BT_COUNT_LOG=str(count), COLUMNS="200",
               PYTHONPATH=os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]))  # fmt: skip
    cmd = [sys.executable, "-m", "backtape.cli.app", "optimize", f"{home / 'counted.py'}:Counted", *SWEEP,
           "--db", db, *extra]  # fmt: skip
    return subprocess.Popen(cmd, cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err
    return out


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def _stored_sets(db: str) -> tuple[int, int, str]:
    """(search id, sets stored, status) of the newest search in ``db`` (0, 0, '' before it exists)."""
    try:
        rows = searches(ResultsStore(db), limit=1)
    except BacktapeError:
        return 0, 0, ""
    return (rows[0]["id"], rows[0]["sets_done"], rows[0]["status"]) if rows else (0, 0, "")


@pytest.fixture(scope="module")
def reference(home: Path) -> pl.DataFrame:
    """The table of the same sweep run without interruption (stored, read back)."""
    db = str(home / "reference.db")
    _finish(_cli(home, db, home / "reference.count"))
    assert _lines(home / "reference.count") == N_SETS + 1  # every set, and the winner's full run again
    return ResultsStore(db).get_optimization(1)["results"]


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "results.db")
    else:
        yield request.getfixturevalue("postgres_url")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_an_interrupted_sweep_resumes_with_only_the_missing_sets(
        home: Path, reference: pl.DataFrame, db: str, sig: signal.Signals, tmp_path: Path) -> None:
    before = _stored_sets(db)[0]
    proc = _cli(home, db, tmp_path / "first.count")
    try:
        deadline = time.monotonic() + 120
        while True:  # two checkpoints written: the first set, then about 2 s of sets
            search, stored, _ = _stored_sets(db)
            if search > before and stored > 1:
                break
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode != 0
    search, stored, status = _stored_sets(db)
    assert status == ("interrupted" if sig == signal.SIGINT else "running"), err
    assert 1 < stored < N_SETS
    resumed = tmp_path / "resumed.count"
    flag = ["--resume"] if sig == signal.SIGINT else ["--resume-id", str(search)]
    out = _finish(_cli(home, db, resumed, *flag))
    assert f"(search {search}, {stored} set(s) resumed)" in out
    assert _lines(resumed) == N_SETS - stored + 1  # only the missing sets (+ the winner's full run)
    done = searches(ResultsStore(db), limit=1)[0]
    assert (done["id"], done["status"], done["sets_done"]) == (search, "completed", N_SETS)
    table = ResultsStore(db).get_optimization(done["optimization_id"])["results"]
    assert table.equals(reference)


GRID: dict[str, Any] = {"fast": list(range(5, 55, 5)), "slow": list(range(20, 220, 10))}
SYN: dict[str, Any] = {"symbols": "SYN", "start": "2018-01-01", "end": "2022-01-01", "source": "synthetic",
       "constraint": "fast < slow", "commission": 0.001}  # fmt: skip


def _interrupted(store: ResultsStore, grid: dict[str, list[int]], after: int, **kw: Any) -> tuple[int, int]:
    """Ctrl-C in this process once ``after`` sets are done: the search id and the sets it stored."""
    def stop(done: int, _total: int) -> None:
        if done >= after:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        optimize("sma_crossover", grid, **kw, store=store, progress=stop)
    row = searches(store, limit=1)[0]
    assert row["status"] == "interrupted" and 0 < row["sets_done"] < after + 1
    return row["id"], row["sets_done"]


@pytest.fixture
def every_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process searches record each set as it finishes (not every ~2 s)."""
    monkeypatch.setattr("backtape.optimization.executor.CHECKPOINT_S", 0.0)


@pytest.mark.usefixtures("every_set")
@pytest.mark.parametrize("method", ["grid", "random", "tpe"])
def test_resume_reuses_the_stored_sets_of_every_search_method(tmp_path: Path, method: str) -> None:
    if method == "tpe":
        pytest.importorskip("optuna")
    store = ResultsStore(tmp_path / "r.db")
    kw: dict[str, Any] = {**SYN, "method": method, "n_samples": None if method == "grid" else 60, "seed": 3}
    whole = optimize("sma_crossover", GRID, **kw)
    search, kept = _interrupted(store, GRID, whole.table.height // 2, **kw)
    again = optimize("sma_crossover", GRID, **kw, store=store, resume=search)
    assert again.table.equals(whole.table)
    assert (again.details["sets_reused"], again.details["sets_run"]) == (kept, whole.table.height - kept)
    done = searches(store, limit=1)[0]
    assert (done["id"], done["status"], done["sets_done"]) == (search, "completed", whole.table.height)
    assert done["optimization_id"] == again.optimization_id
    with store.engine.connect() as conn:  # the finished search's per-set records are dropped
        assert conn.execute(sa.text("SELECT count(*) FROM search_trials")).scalar_one() == 0


@pytest.mark.usefixtures("every_set")
def test_resume_refuses_another_search_and_a_finished_one(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "r.db")
    small = {"fast": [5, 10, 15], "slow": [30, 50]}
    done = optimize("sma_crossover", small, **SYN, store=store)
    with pytest.raises(BacktapeError, match=r"completed .*nothing to resume"):
        optimize("sma_crossover", small, **SYN, store=store, resume=done.details["search_id"])
    search, _ = _interrupted(store, small, 3, **SYN)
    with pytest.raises(BacktapeError, match="other grid"):
        optimize("sma_crossover", {**small, "fast": [5, 15]}, **SYN, store=store, resume=search)
    with pytest.raises(BacktapeError, match="no parameter search with id 99"):
        optimize("sma_crossover", small, **SYN, store=store, resume=99)
    with pytest.raises(ConfigError, match="store="):
        optimize("sma_crossover", small, **SYN, resume=True)
    fresh = optimize("sma_crossover", {**small, "slow": [40]}, **SYN, store=store, resume=True)
    assert fresh.details["sets_reused"] == 0 and fresh.details["search_id"] not in (search, 1)
    resumed = optimize("sma_crossover", small, **SYN, store=store, resume=True)
    assert resumed.details["search_id"] == search and resumed.details["sets_reused"] > 0


def test_a_process_pool_search_records_its_chunks_and_resumes(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "r.db")
    grid = {"fast": [5, 10, 15, 20], "slow": [30, 40, 50, 60]}
    kw: dict[str, Any] = {**SYN, "engine": "event", "n_jobs": 2}
    whole = optimize("sma_crossover", grid, **{**kw, "n_jobs": 1})
    search, kept = _interrupted(store, grid, 8, **kw)  # 8 chunks of 2 sets: Ctrl-C after 4 of them
    again = optimize("sma_crossover", grid, **kw, store=store, resume=True)
    assert again.details["search_id"] == search and again.table.equals(whole.table)
    assert (again.details["sets_reused"], again.details["sets_run"]) == (kept, 16 - kept)


def test_two_drivers_recording_the_same_sets_store_each_once(tmp_path: Path) -> None:
    import numpy as np

    from backtape.results import SearchLog

    store = ResultsStore(tmp_path / "r.db")
    first = SearchLog.open(store, {"what": "a search"})
    second = SearchLog.open(store, {"what": "a search"}, resume=first.id)
    sets = [{"fast": f} for f in range(4)]
    metrics, blocks = np.arange(8.0).reshape(4, 2), np.arange(16.0).reshape(4, 2, 2)
    first.record(sets[:3], metrics[:3], blocks[:3])
    second.record(sets, metrics, blocks)  # three of them are stored already
    again = SearchLog.open(store, {"what": "a search"}, resume=True)
    found = again.lookup(sets, 2, 2)
    assert again.id == first.id and again.reused == 4
    assert all(f is not None and np.array_equal(f[0], metrics[i]) for i, f in enumerate(found))
    assert searches(store)[0]["sets_done"] == 4
