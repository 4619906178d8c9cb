"""Real processes: a writer SIGKILLed mid-write, and several processes sharing one cache folder."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _upstream import CountingSource
from conftest import LATE

import backtape
from backtape._time import to_ns
from backtape.cache import CachedDataSource, NeverStalePolicy

HERE = Path(__file__).parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(backtape.__file__).parents[1]), str(HERE)])}
S, M, E = to_ns("2024-01-01"), to_ns("2024-01-15"), to_ns("2024-02-01")

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and fork-free spawning of POSIX")


def worker(*args: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(HERE / "_worker.py"), *map(str, args)], env=ENV)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"worker exited early with {proc.returncode}"
        assert time.monotonic() < deadline, "worker never reached the crash point"
        time.sleep(0.02)


def cached(path, up) -> CachedDataSource:
    return CachedDataSource(up, cache_dir=path, clock=lambda: LATE, freshness_policy=NeverStalePolicy())


@pytest.mark.parametrize("stage", ["before_rename", "before_commit"])
def test_sigkill_mid_write_leaves_a_correct_cache(tmp_path, stage) -> None:
    up = CountingSource("24/7")
    cached(tmp_path, up).fetch_sync(["AAPL"], S, M, "1d")  # committed history
    marker = tmp_path / "reached"
    proc = worker("crash", tmp_path, stage, marker, S, E)
    wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    visible = list(tmp_path.rglob("*.parquet"))
    if stage == "before_rename":
        assert len(visible) == 1  # only the committed file; the half-written one is a hidden .tmp
        assert list(tmp_path.rglob(".*.tmp"))
    else:
        assert len(visible) == 2  # the killed writer's file is complete but listed nowhere
    fresh = cached(tmp_path, up)
    assert [(sp.start, sp.end) for sp in fresh.coverage("AAPL")] == [(S, M)]
    got = fresh.fetch_sync(["AAPL"], S, E, "1d")
    assert got.equals(up.bars(["AAPL"], S, E, "1d"))
    assert up.calls[-1][2:] == (M, E)
    listed = {f.path for f in fresh._index.all_files()}
    assert fresh._store.gc(listed, min_age_s=0) >= 1  # the orphan or temp file of the killed writer
    assert cached(tmp_path, up).fetch_sync(["AAPL"], S, E, "1d").equals(got)


def run_all(procs: list[subprocess.Popen], go: Path) -> None:
    time.sleep(0.5)
    go.write_text("go")
    for p in procs:
        assert p.wait(timeout=120) == 0


def test_processes_sharing_a_folder_fetch_each_range_once(tmp_path) -> None:
    log, go = tmp_path / "calls.jsonl", tmp_path / "go"
    cache = tmp_path / "cache"
    cached(cache, CountingSource("24/7"))  # create the index before the race
    run_all([worker("fetch", cache, log, go, S, E, "AAPL,MSFT") for _ in range(3)], go)
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(calls) == 1, calls
    go.unlink()
    ranges = [(S, to_ns("2024-03-01")), (M, to_ns("2024-02-20")), (to_ns("2024-02-10"), to_ns("2024-03-10"))]
    run_all([worker("fetch", cache, log, go, s, e, "AAPL,MSFT") for s, e in ranges], go)
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    for sym in ("AAPL", "MSFT"):
        asked = sorted((c["start"], c["end"]) for c in calls if sym in c["symbols"])
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(asked)), asked


def test_threads_share_one_upstream_call(tmp_path) -> None:
    import threading

    up = CountingSource(delay=0.3)
    c = cached(tmp_path, up)
    results = []
    threads = [threading.Thread(target=lambda: results.append(c.fetch_sync(["AAPL"], S, E, "1d")))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(up.calls) == 1
    assert all(r.equals(up.bars(["AAPL"], S, E, "1d")) for r in results) and len(results) == 4


def test_a_cancelled_waiter_does_not_keep_the_lock(tmp_path) -> None:
    import asyncio

    from backtape.cache.index import CacheKey
    from backtape.cache.locks import KeyLocks

    locks = KeyLocks(tmp_path)
    key = CacheKey("s", "bars", "AAPL", "1d", "raw")

    async def scenario() -> None:
        async with locks.hold([key]):
            waiter = asyncio.create_task(_hold(locks, key))
            await asyncio.sleep(0.1)
            waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await asyncio.wait_for(_hold(locks, key), timeout=10)  # free again

    asyncio.run(scenario())


async def _hold(locks, key) -> None:
    async with locks.hold([key]):
        pass


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(2))
def test_concurrent_ingests_into_one_bundle_keep_every_symbol(tmp_path, round_) -> None:
    """Four processes with disjoint symbols ingest into one bundle at once: none is lost."""
    from backtape.cache.bundles import BundleDataSource, BundleMetadata

    go, bundles = tmp_path / "go", tmp_path / "bundles"
    groups = [f"A{i},B{i}" for i in range(4)]
    run_all([worker("ingest", bundles, go, "shared", g) for g in groups], go)
    meta = BundleMetadata.load("shared", bundles)
    every = sorted(s for g in groups for s in g.split(","))
    assert list(meta.symbols) == every and meta.row_count == 8 * 41
    assert [q.symbol for q in meta.per_symbol] == every
    got = BundleDataSource("shared", bundles).fetch_sync(every, "2024-01-01", "2024-03-01", "1d")
    assert got["symbol"].n_unique() == 8
    assert not [p for p in (bundles / "shared").iterdir() if p.name.endswith(".tmp")]
