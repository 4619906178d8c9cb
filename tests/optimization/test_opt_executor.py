"""Executors: shared memory-mapped data for worker processes, and a sweep on a local Ray instance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import backtape
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


@pytest.mark.slow
def test_ray_executor_matches_local() -> None:
    ray = pytest.importorskip("ray")
    src = str(Path(backtape.__file__).parents[1])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": src}})  # fmt: skip
    try:
        done: list[Any] = []
        local = optimize("sma_crossover", GRID, **SYN, commission=0.001)
        vec = optimize("sma_crossover", GRID, **SYN, commission=0.001, executor="ray",
                       progress=lambda d, t: done.append((d, t)))  # fmt: skip
        evt = optimize("sma_crossover", GRID, **SYN, commission=0.001, executor="ray", engine="event")
        assert vec.table.equals(local.table) and done[-1] == (6, 6)
        expected = local.table["final_equity"].to_numpy()
        np.testing.assert_allclose(evt.table["final_equity"].to_numpy(), expected, rtol=1e-9)
    finally:
        ray.shutdown()


def test_a_named_provider_is_read_through_the_cache(tmp_path: Path, monkeypatch) -> None:
    from backtape.cache import CachedDataSource
    from backtape.workspace import Workspace

    monkeypatch.setenv("BACKTAPE_CACHE_DIR", str(tmp_path))
    ws = Workspace()
    src = ws.source("yahoo")
    assert isinstance(src, CachedDataSource) and src.cache_dir == tmp_path
    assert not isinstance(ws.source("synthetic"), CachedDataSource)
