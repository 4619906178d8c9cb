"""Loading a 500-symbol x 20-year daily universe warm from the cache's disk tier (goal <= 2 s).

Run `python benchmarks/bench_universe_cache.py [symbols] [years]`. The synthetic source fills the cache
once (cold); then a fresh CachedDataSource with no memory tier reads everything from Parquet. The
peer row is a plain `pl.read_parquet` of the same files (the floor a cache read cannot beat).
Also prints how many files the universe takes (the old month layout needed one per symbol and month).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from backtape.cache import CachedDataSource, NeverStalePolicy
from backtape.sources import SyntheticDataSource


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    years = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    symbols = [f"S{i:04d}" for i in range(n)]
    start, end = f"{2024 - years}-01-01", "2024-01-01"
    folder = Path(tempfile.mkdtemp(prefix="bench-universe-"))
    up = SyntheticDataSource(seed=7)
    t0 = time.perf_counter()
    cold = CachedDataSource(up, cache_dir=folder, freshness_policy=NeverStalePolicy(), memory_bytes=0)
    rows = cold.fetch_sync(symbols, start, end, "1d").height
    t_cold = time.perf_counter() - t0
    files = list((folder / "bars").rglob("*.parquet"))
    t0 = time.perf_counter()
    warm = CachedDataSource(up, cache_dir=folder, freshness_policy=NeverStalePolicy(), memory_bytes=0)
    got = warm.fetch_sync(symbols, start, end, "1d")
    t_warm = time.perf_counter() - t0
    assert got.height == rows and warm.stats.upstream_calls == 0
    t0 = time.perf_counter()
    floor = pl.read_parquet(files).height
    t_floor = time.perf_counter() - t0
    print(f"universe: {n} symbols x {years} years of daily bars = {rows:,} rows in {len(files):,} files "
          f"(month layout: {n * years * 12:,})")
    print(f"{'what':<44} {'seconds':>8}  goal")
    print(f"{'cold fill from the synthetic source':<44} {t_cold:>8.2f}  -")
    print(f"{'warm read from disk (checksums verified)':<44} {t_warm:>8.2f}  <= 2 s")
    print(f"{'peer: pl.read_parquet of the same files':<44} {t_floor:>8.2f}  - ({floor:,} rows)")


if __name__ == "__main__":
    main()
