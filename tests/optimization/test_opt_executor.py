"""Executors: shared memory-mapped data for worker processes, and a sweep on a local Ray instance."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backtape.optimization import load_market_data, optimize
from backtape.optimization.data import MarketData

GRID = {"fast": [5, 10, 20], "slow": [30, 50]}
SYN = {"symbols": "SYN", "start": "2021-01-01", "end": "2022-06-01", "source": "synthetic"}


def test_shared_arrays_are_memory_mapped_and_equal(tmp_path: Path) -> None:
    data = load_market_data("SYN", "2021-01-01", "2021-06-01", "1d", "synthetic", warmup=20)
    back = MarketData.attach(data.share(tmp_path))
    assert isinstance(back.bars["SYN"]["close"], np.memmap)
    for group in ("bars", "base"):
        for name, arr in getattr(data, group)["SYN"].items():
            np.testing.assert_array_equal(getattr(back, group)["SYN"][name], arr)
    assert (back.start, back.end, back.periods_per_year, back.calendar) == (
        data.start, data.end, data.periods_per_year, data.calendar)  # fmt: skip
    assert back.frame_source().bars.equals(data.frame_source().bars)


def test_process_pool_equals_in_process_run() -> None:
    one = optimize("sma_crossover", GRID, **SYN, engine="event", n_jobs=1, commission=0.001)
    pool = optimize("sma_crossover", GRID, **SYN, engine="event", n_jobs=2, commission=0.001)
    assert pool.table.equals(one.table)


LOCAL_RAY = """
import numpy as np
from backtape.optimization import optimize
syn = dict(symbols="SYN", start="2021-01-01", end="2022-06-01", source="synthetic", commission=0.001)
grid = {"fast": [5, 10, 20], "slow": [30, 50]}
done = []
local = optimize("sma_crossover", grid, **syn)
vec = optimize("sma_crossover", grid, **syn, executor="ray", progress=lambda d, t: done.append((d, t)))
evt = optimize("sma_crossover", grid, **syn, executor="ray", engine="event")
assert vec.table.equals(local.table) and done[-1] == (6, 6), done
np.testing.assert_allclose(evt.table["final_equity"].to_numpy(), local.table["final_equity"].to_numpy(),
                           rtol=1e-9)
print("ok")
"""


@pytest.mark.slow
def test_ray_without_an_address_starts_a_local_instance() -> None:
    """In a fresh process (a process re-initialising Ray for other clusters is fragile)."""
    pytest.importorskip("ray")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    out = subprocess.run([sys.executable, "-c", LOCAL_RAY], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.stdout.strip().endswith("ok"), out.stderr[-2000:]


def test_a_named_provider_is_read_through_the_cache(tmp_path: Path, monkeypatch) -> None:
    from backtape.cache import CachedDataSource
    from backtape.workspace import Workspace

    monkeypatch.setenv("BACKTAPE_CACHE_DIR", str(tmp_path))
    ws = Workspace()
    src = ws.source("yahoo")
    assert isinstance(src, CachedDataSource) and src.cache_dir == tmp_path
    assert not isinstance(ws.source("synthetic"), CachedDataSource)
