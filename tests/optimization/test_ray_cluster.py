"""A real two-node Ray cluster on 127.0.0.1 (``ray start --head`` + a second ``ray start``,
started as subprocesses and stopped by their session, never by a broad ``ray stop``).

Sweeps, a walk-forward and Monte Carlo run on it with ``address=``; data is fetched by the driver
only; a worker process killed mid-sweep, or a third node removed mid-sweep, leaves the table equal to
the single-process result.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from backtape.cli.optimize import app as optimize_cli
from backtape.engine import run_backtest
from backtape.optimization import monte_carlo, optimize, walk_forward
from backtape.optimization.cluster import add_node, local_cluster
from backtape.results import ResultsStore
from backtape.sources import get_source
from backtape.sources.base import DataSource, DataSourceMetadata
from engine.test_postgres import postgres_url  # noqa: F401  (the real server fixture)
from optimization.test_run_many import SPAN, _count, _workspace

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")
pytestmark = pytest.mark.slow

GRID: dict[str, Any] = {"fast": [5, 10, 15, 20], "slow": [30, 40, 50]}
SYN: dict[str, Any] = {"symbols": "SYN", "start": "2021-01-01", "end": "2022-06-01", "source": "synthetic"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """``host:port`` of a head node and a second node, one CPU each, both stopped afterwards always."""
    with local_cluster(nodes=2, cpus=1, pythonpath=[str(Path(__file__).parents[1])]) as address:
        # the searches join this connection (``address=``); a fresh driver joining by address alone is
        # the Ctrl-C test's subprocess (one process re-initialising Ray many times is fragile)
        ray.init(address=address, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path)}})  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while ray.cluster_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert ray.cluster_resources().get("CPU", 0) == 2
            yield address
        finally:
            ray.shutdown()


class _Recording(DataSource):
    """Synthetic bars that record the pid of every caller in a file: who fetched data?"""

    name = "recording"

    def __init__(self, log: Path) -> None:
        self.inner, self.log = get_source("synthetic"), log

    async def fetch(self, symbols: Any, start: Any, end: Any, frequency: Any = "1d") -> pl.DataFrame:
        with self.log.open("a") as f:
            f.write(f"{os.getpid()}\n")
        return await self.inner.fetch(symbols, start, end, frequency)

    def get_metadata(self) -> DataSourceMetadata:
        return self.inner.get_metadata()


def test_sweep_on_the_cluster_equals_local_and_only_the_driver_fetches(cluster: str, tmp_path: Path) -> None:
    log = tmp_path / "calls.txt"
    src = _Recording(log)
    done: list[tuple[int, int]] = []
    local = optimize("sma_crossover", GRID, **{**SYN, "source": src}, commission=0.001)
    remote = optimize("sma_crossover", GRID, **{**SYN, "source": src}, commission=0.001, executor="ray",
                      address=cluster, progress=lambda d, t: done.append((d, t)))  # fmt: skip
    assert remote.table.equals(local.table)
    assert done == [(d, 12) for d in range(2, 13, 2)]  # 2 CPUs x 4 chunks of 2 sets (6), as they arrive
    assert set(log.read_text().split()) == {str(os.getpid())}
    cmd = {p: " ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline", "ppid"])}
    port = ":" + cluster.rsplit(":", 1)[1]
    workers = [p for p, c in cmd.items() if "default_worker.py" in c and port in c]
    assert len({p.info["ppid"] for p in workers}) == 2  # workers of both raylets ran chunks


def test_walk_forward_windows_search_on_the_cluster(cluster: str) -> None:
    args = ("sma_crossover", GRID, "SYN", "2020-01-01", "2022-06-01", 120, 60)
    local = walk_forward(*args, source="synthetic")
    remote = walk_forward(*args, source="synthetic", executor="ray", address=cluster)
    assert remote.windows.equals(local.windows)
    assert remote.equity.equals(local.equity)


def _kill_one_worker(port: str, killed: list[int], stop: threading.Event, name: str) -> None:
    """Kill the first worker process of this cluster (its raylet names ``port``) running a chunk."""
    while not stop.is_set():
        for p in psutil.process_iter(["pid", "cmdline"]):
            if f"ray::{name}" in " ".join(p.info["cmdline"] or []) and _parent_has(p, port):
                p.kill()
                killed.append(p.info["pid"])
                return
        time.sleep(0.05)


def _parent_has(p: Any, text: str) -> bool:
    try:
        return text in " ".join(p.parent().cmdline())
    except (psutil.Error, AttributeError):
        return False


@contextmanager
def _killing_one_worker(cluster: str, name: str = "_ray_eval") -> Iterator[list[int]]:
    killed: list[int] = []
    stop = threading.Event()
    port = ":" + cluster.rsplit(":", 1)[1]
    killer = threading.Thread(target=_kill_one_worker, args=(port, killed, stop, name))
    killer.start()
    try:
        yield killed
    finally:
        stop.set()
        killer.join()
    assert killed, "no worker was killed"


def test_a_killed_worker_is_retried_and_the_table_is_complete(cluster: str) -> None:
    grid = {"fast": list(range(3, 23)), "slow": [30, 40, 50, 60]}
    local = optimize("sma_crossover", grid, **SYN, engine="event", n_jobs=1, commission=0.001)
    with _killing_one_worker(cluster):
        remote = optimize("sma_crossover", grid, **SYN, engine="event", commission=0.001, executor="ray",
                          address=cluster)  # fmt: skip
    assert remote.table.equals(local.table)


def test_run_many_on_the_cluster_with_a_killed_worker_stores_each_run_once(
        cluster: str, tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    ws = _workspace(tmp_path)
    grid = {"fast": [5, 10, 15, 20], "slow": [30, 50]}
    local = ws.run_many(["sma_crossover"], ["AAA", "BBB"], grid, **SPAN, n_jobs=1)
    before = _count(postgres_url, "backtests")
    with _killing_one_worker(cluster, "_run_jobs"):
        remote = ws.run_many(["sma_crossover"], ["AAA", "BBB"], grid, **SPAN, executor="ray", address=cluster,
                             store=postgres_url)  # fmt: skip
    assert remote.drop("run_id", "pid").equals(local.drop("run_id", "pid"))
    assert remote["run_id"].n_unique() == 16 and _count(postgres_url, "backtests") == before + 16


DRIVER = """
import sys
from backtape.optimization import optimize
from backtape.results import ResultsStore
grid = {"fast": list(range(3, 43)), "slow": list(range(50, 100))}  # about 25 s of work
optimize("sma_crossover", grid, "SYN", "2021-01-01", "2022-06-01", source="synthetic", engine="event",
         executor="ray", address=sys.argv[1], store=ResultsStore(sys.argv[2]),
         progress=lambda d, t: print(d, t, flush=True))
"""


def test_ctrl_c_on_the_driver_cancels_its_tasks_and_stores_nothing(cluster: str, tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, cluster, str(db)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert driver.stdout is not None
        first = driver.stdout.readline()  # a chunk is done: the sweep is under way
        assert first.split()[1] == "2000", driver.stderr.read() if driver.stderr else ""
        driver.send_signal(signal.SIGINT)
        _, err = driver.communicate(timeout=60)
    finally:
        driver.kill()
    assert driver.returncode != 0 and "KeyboardInterrupt" in err
    assert _count(str(db), "optimizations") == 0
    port = ":" + cluster.rsplit(":", 1)[1]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # soon no worker of this cluster evaluates a chunk any more
        busy = [p for p in psutil.process_iter(["cmdline"])
                if "ray::_ray_eval" in " ".join(p.info["cmdline"] or []) and _parent_has(p, port)]
        if not busy:
            break
        time.sleep(0.2)
    assert not busy


def test_monte_carlo_batches_on_the_cluster_equal_the_local_run(cluster: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    run = run_backtest("sma_crossover", "SYN", "2018-01-01", "2023-01-01", source="synthetic",
                       params={"fast": 10, "slow": 50}, commission=0.001)  # fmt: skip
    for method in ("reshuffle", "bootstrap"):
        local = monte_carlo(run, 4500, method, seed=11)
        done: list[tuple[int, int]] = []

        def note(d: int, t: int, seen: list[tuple[int, int]] = done) -> None:
            seen.append((d, t))

        remote = monte_carlo(run, 4500, method, seed=11, executor="ray", address=cluster, progress=note)
        assert remote.simulations.equals(local.simulations), method
        assert remote.table.equals(local.table) and remote.fan.equals(local.fan)
        assert done == [(d, 5) for d in range(1, 6)]  # 5 seeded batches (4 x 1,000 + 500), one task each
    db = tmp_path / "r.db"
    run_id = run.save(ResultsStore(db))
    out = CliRunner().invoke(optimize_cli, ["montecarlo", str(run_id), "--n", "2500", "--seed", "11", "--db",
                                            str(db), "--executor", "ray", "--address", cluster])  # fmt: skip
    assert out.exit_code == 0, out.output
    median = monte_carlo(run, 2500, seed=11).table.row(2, named=True)
    assert f"{median['max_drawdown']:.2%}" in out.output


def test_a_search_stopped_on_the_cluster_resumes_with_the_missing_chunks(cluster: str,
                                                                         tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "r.db")
    grid = {"fast": list(range(3, 23)), "slow": [30, 40, 50, 60]}
    kw: dict[str, Any] = {**SYN, "engine": "event", "commission": 0.001}
    local = optimize("sma_crossover", grid, **kw, n_jobs=1)

    def ctrl_c(done: int, _total: int) -> None:
        if done >= 30:  # 3 of the 8 chunks of 10 sets are back
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        optimize("sma_crossover", grid, **kw, executor="ray", address=cluster, store=store, progress=ctrl_c)
    again = optimize("sma_crossover", grid, **kw, executor="ray", address=cluster, store=store, resume=True)
    assert again.table.equals(local.table)
    assert again.details["sets_reused"] == 30 and again.details["sets_run"] == 50


def _when_busy(node: Any, stopped: list[float], stop: threading.Event) -> None:
    """Remove ``node`` as soon as one of its workers runs a chunk of the sweep."""
    while not stop.is_set():
        for pid in node.pids():
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::_ray_eval"):
                node.stop()
                stopped.append(time.monotonic())
                return
        time.sleep(0.02)


def _cpus(target: int) -> None:
    deadline = time.monotonic() + 90
    while ray.cluster_resources().get("CPU", 0) != target:
        assert time.monotonic() < deadline, ray.cluster_resources()
        time.sleep(0.2)


def test_a_node_removed_mid_sweep_leaves_the_table_complete(cluster: str) -> None:
    grid = {"fast": list(range(3, 43)), "slow": [50, 60, 70, 80]}
    local = optimize("sma_crossover", grid, **SYN, engine="event", n_jobs=1, commission=0.001)
    kw: dict[str, Any] = {**SYN, "engine": "event", "commission": 0.001, "executor": "ray",
                          "address": cluster}  # fmt: skip
    with add_node(cluster, pythonpath=[str(Path(__file__).parents[1])]) as node:
        _cpus(3)
        optimize("sma_crossover", grid, **kw)  # every node starts its worker (a cold start is not the point)
        stopped: list[float] = []
        stop = threading.Event()
        remover = threading.Thread(target=_when_busy, args=(node, stopped, stop))
        remover.start()
        try:
            remote = optimize("sma_crossover", grid, **kw)
        finally:
            stop.set()
            remover.join()
        assert stopped and not node.pids(), "the node was not removed during the sweep"
    assert remote.table.equals(local.table)
    _cpus(2)  # the cluster forgets the node: the other tests see their two CPUs again
