"""A real workspace for the dashboard: stored backtests and an optimization in SQLite, a cache with a
gap and an empty range, and a bundle; a real uvicorn server on 127.0.0.1 for browser tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from engine.test_postgres import postgres_url  # noqa: F401 - the real PostgreSQL server fixture

SRC = Path(__file__).parents[2] / "src"
#: fake credentials that must never appear in any page
FAKE_SECRETS = {"POLYGON_API_KEY": "pk_SECRETpolygon123456", "ALPACA_API_SECRET_KEY": "alpacaSECRET987654",
                "ALPHAVANTAGE_API_KEY": "avSECRETkey55555"}


@dataclass(frozen=True)
class DashWorkspace:
    config: Path
    db: Path
    cache_dir: Path
    bundles_dir: Path
    run_ids: list[int]
    optimization_id: int
    best_run_id: int


@pytest.fixture(scope="session")
def dash_ws(tmp_path_factory: pytest.TempPathFactory) -> DashWorkspace:
    from backtape import Workspace
    from backtape._async import run_sync

    root = tmp_path_factory.mktemp("dashws")
    data = {"cache_dir": str(root / "cache"), "bundles_dir": str(root / "bundles"),
            "results_db": str(root / "results.db")}
    config = root / "backtape.yaml"
    config.write_text(yaml.safe_dump({"data": data}))
    ws = Workspace(config)
    runs = [ws.run_backtest("sma_crossover", ["AAPL", "MSFT"], "2012-01-01", "2015-01-01", source="sample",
                            store=True, params={"fast": 10, "slow": 50}),
            ws.run_backtest("sma_crossover", ["KO"], "2012-01-01", "2014-01-01", source="sample",
                            store=True, params={"fast": 5, "slow": 20}),
            ws.run_backtest("donchian_breakout", ["IBM"], "2013-01-01", "2015-01-01", source="sample",
                            store=True)]
    opt = ws.optimize("sma_crossover", {"fast": [5, 10], "slow": [20, 40]}, ["MSFT"], "2012-01-01",
                      "2014-01-01", source="sample", store=True, engine="event", n_jobs=1)
    cached = ws.source("sample", cache=True)
    run_sync(cached.fetch(["AAPL"], "2012-01-01", "2013-06-01", "1d"))
    run_sync(cached.fetch(["AAPL"], "2016-01-01", "2016-06-01", "1d"))  # after the data ends: empty
    run_sync(cached.fetch(["MSFT"], "2012-01-01", "2014-12-31", "1d"))
    ws.bundles.ingest("sample-bundle", ["AAPL", "KO"], "2012-01-01", "2014-12-31", source="sample")
    _remote_key_fetched_a_month_ago(Path(data["cache_dir"]))
    assert opt.optimization_id is not None and opt.best_run is not None
    return DashWorkspace(config, Path(data["results_db"]), Path(data["cache_dir"]), Path(data["bundles_dir"]),
                         [int(r.run_id) for r in runs if r.run_id is not None], int(opt.optimization_id),
                         int(opt.best_run.run_id or 0))


def _remote_key_fetched_a_month_ago(cache_dir: Path) -> None:
    """A provider's key (SPY from polygon) asked up to now but fetched 30 days ago, written through
    the cache's own index as a fetch writes it: its tail since the fetch is stale (re-fetched on use)."""
    from backtape._time import NS_PER_DAY
    from backtape.cache.coverage import Span
    from backtape.cache.index import CacheKey, Change, CoverageIndex, FileEntry

    now, month = time.time_ns(), 30 * NS_PER_DAY
    key = CacheKey("polygon:v2", "bars", "SPY", "1d", "raw")
    fetched = now - month
    rows = FileEntry("bars/polygon-spy.parquet", key, "month=recent", now - 4 * month, fetched - NS_PER_DAY,
                     62, 4096, 0)
    index = CoverageIndex(cache_dir / "index.sqlite")
    index.commit(Change(spans={key: [Span(now - 4 * month, now, fetched, fetched)]}, added=[rows]))
    index.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(ws: DashWorkspace, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """``backtape serve`` in a real subprocess; returns it and its base URL once it answers."""
    port = free_port()
    path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, **FAKE_SECRETS, "PYTHONPATH": path}
    proc = subprocess.Popen(
        [sys.executable, "-m", "backtape.cli.app", "--config", str(ws.config), "serve", "--port", str(port),
         *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(f"{base}/runs", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("serve did not answer within 60 s")


def stop_server(proc: subprocess.Popen[str], timeout: float = 15) -> tuple[int, str]:
    """Ctrl-C (SIGINT) and wait; returns the exit code and stderr."""
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"serve did not stop within {timeout} s of SIGINT: {err}") from None
    return proc.returncode, err


@pytest.fixture(scope="session")
def live_server(dash_ws: DashWorkspace) -> Iterator[str]:
    proc, base = start_server(dash_ws)
    yield base
    stop_server(proc)
