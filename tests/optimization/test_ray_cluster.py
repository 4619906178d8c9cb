"""A real two-node Ray cluster on 127.0.0.1 (``ray start --head`` + a second ``ray start``,
started as subprocesses and stopped by their session, never by a broad ``ray stop``).

Sweeps and a walk-forward run on it with ``address=``; data is fetched by the driver only; a worker
process killed mid-sweep leaves the table equal to the single-process result.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import backtape
from backtape.optimization import optimize, walk_forward
from backtape.sources import get_source
from backtape.sources.base import DataSource, DataSourceMetadata

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")
pytestmark = pytest.mark.slow

RAY = str(Path(sys.executable).with_name("ray"))
#: address -> the session ids of its nodes' processes
SESSIONS: dict[str, list[int]] = {}
GRID = {"fast": [5, 10, 15, 20], "slow": [30, 40, 50]}
SYN = {"symbols": "SYN", "start": "2021-01-01", "end": "2022-06-01", "source": "synthetic"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _node(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``ray start --block ...`` in a new session, so that teardown ends exactly its processes."""
    return subprocess.Popen([RAY, "start", "--block", *args], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def _stop(nodes: list[subprocess.Popen[bytes]]) -> None:
    """Every process of the nodes' sessions (raylets, GCS, workers): SIGTERM, then SIGKILL."""
    sessions = {n.pid for n in nodes}
    procs = [p for p in psutil.process_iter() if _session(p) in sessions]
    for p in procs:
        p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=10)
    for p in alive:
        p.kill()
    for n in nodes:
        n.wait(timeout=10)


def _session(p: Any) -> int | None:
    try:
        return int(os.getsid(p.pid))
    except (ProcessLookupError, PermissionError):
        return None


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """``host:port`` of a head node and a second node, one CPU each, both stopped afterwards always."""
    port = _free_port()
    src = str(Path(backtape.__file__).parents[1])
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
           "PYTHONPATH": os.pathsep.join([src, str(Path(__file__).parents[1])])}  # fmt: skip
    env.pop("RAY_ADDRESS", None)
    common = ["--num-cpus=1", "--object-store-memory=100000000", "--disable-usage-stats",
              "--node-ip-address=127.0.0.1"]  # fmt: skip
    address = f"127.0.0.1:{port}"
    nodes = [_node("--head", f"--port={port}", "--include-dashboard=false", *common, env=env)]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the GCS accepts connections: add the second node
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        nodes.append(_node(f"--address={address}", *common, env=env))
        SESSIONS[address] = [n.pid for n in nodes]
        ray.init(address=address, log_to_driver=False)
        while ray.cluster_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ray.cluster_resources().get("CPU", 0) == 2
        ray.shutdown()  # the searches connect themselves, through ``address=``
        yield address
    finally:
        ray.shutdown()
        _stop(nodes)


class _Recording(DataSource):
    """Synthetic bars that record the pid of every caller in a file: who fetched data?"""

    name = "recording"

    def __init__(self, log: Path) -> None:
        self.inner, self.log = get_source("synthetic"), log

    async def fetch(self, symbols: Any, start: Any, end: Any, frequency: str = "1d") -> pl.DataFrame:
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
    workers = [p for p in psutil.process_iter(["cmdline"]) if "default_worker.py" in " ".join(
        p.info["cmdline"] or [])]  # fmt: skip
    assert {_session(p) for p in workers} >= set(SESSIONS[cluster])  # both nodes ran tasks


def test_walk_forward_windows_search_on_the_cluster(cluster: str) -> None:
    args = ("sma_crossover", GRID, "SYN", "2020-01-01", "2022-06-01", 120, 60)
    local = walk_forward(*args, source="synthetic")
    remote = walk_forward(*args, source="synthetic", executor="ray", address=cluster)
    assert remote.windows.equals(local.windows)
    assert remote.equity.equals(local.equity)


def _kill_one_worker(killed: list[int], stop: threading.Event) -> None:
    """Kill the first worker process seen running an evaluation chunk."""
    while not stop.is_set():
        for p in psutil.process_iter(["pid", "cmdline"]):
            if "ray::_ray_eval" in " ".join(p.info["cmdline"] or []):
                p.kill()
                killed.append(p.info["pid"])
                return
        time.sleep(0.05)


def test_a_killed_worker_is_retried_and_the_table_is_complete(cluster: str) -> None:
    grid = {"fast": list(range(3, 23)), "slow": [30, 40, 50, 60]}
    local = optimize("sma_crossover", grid, **SYN, engine="event", n_jobs=1, commission=0.001)
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_one_worker, args=(killed, stop))
    killer.start()
    try:
        remote = optimize("sma_crossover", grid, **SYN, engine="event", commission=0.001, executor="ray",
                          address=cluster)  # fmt: skip
    finally:
        stop.set()
        killer.join()
    assert killed, "no worker was killed"
    assert remote.table.equals(local.table)
