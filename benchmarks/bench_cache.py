"""Benchmark of the range-aware cache; prints a table of figures against the issue's goals.

Run `python benchmarks/bench_cache.py`. Upstream is the in-process SyntheticDataSource behind a
call counter. Rows:

* seed 004's backtest: 62 daily steps, each with an engine request for that day and a strategy
  request for the 30-day window ending that day, then one chart request for the whole period;
  upstream calls without a cache, with a cold cache (with and without read-ahead) and warm;
* coverage lookup p50/p95 (SQLite, and the in-process request path);
* disk hit and memory hit of one year of 1-minute bars, and a memory hit of a 30-day daily window;
  a plain `pl.read_parquet` of the same rows in one file and a DuckDB scan of the cache folder are
  the peers (the floor a cache read cannot beat, and the usual way to query Parquet folders).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import polars as pl

from backtape._time import NS_PER_DAY, to_ns
from backtape.cache import CachedDataSource
from backtape.cache.coverage import Span, missing
from backtape.cache.index import Change
from backtape.sources import SyntheticDataSource
from backtape.sources.base import DataSource, DataSourceMetadata


class _Counting(DataSource):
    """Delegates to ``inner`` and counts upstream calls."""

    def __init__(self, inner: DataSource) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = 0

    async def fetch(self, symbols, start, end, frequency="1d") -> pl.DataFrame:
        self.calls += 1
        return await self.inner.fetch(symbols, start, end, frequency)

    def get_metadata(self) -> DataSourceMetadata:
        return self.inner.get_metadata()

    def cache_identity(self) -> str:
        return self.inner.cache_identity()


def _seed_004(source: DataSource) -> None:
    """The 2024-10-01 .. 2024-12-01 daily AAPL backtest of seed 004: 62 engine + 62 strategy + 1 chart."""
    first = to_ns("2024-10-01")
    for i in range(62):
        day = first + i * NS_PER_DAY
        source.fetch_sync(["AAPL"], day, day + NS_PER_DAY, "1d")  # engine: the bar of that day
        source.fetch_sync(["AAPL"], day - 29 * NS_PER_DAY, day + NS_PER_DAY, "1d")  # strategy: 30 days
    source.fetch_sync(["AAPL"], first, first + 62 * NS_PER_DAY, "1d")  # chart: the whole period


def _timings(fn: Callable[[], Awaitable[object]], n: int) -> tuple[float, float]:
    """p50 and p95 in milliseconds of ``n`` awaited calls on one event loop (after one warm-up)."""

    async def run() -> list[float]:
        await fn()
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            await fn()
            out.append((time.perf_counter() - t0) * 1e3)
        return out

    ts = sorted(asyncio.run(run()))
    return statistics.median(ts), ts[min(len(ts) - 1, int(0.95 * len(ts)))]


def _sync_timings(fn: Callable[[], object], n: int) -> tuple[float, float]:
    async def wrapped() -> object:
        return fn()

    return _timings(wrapped, n)


def main() -> None:
    rows: list[tuple[str, str, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    synthetic = SyntheticDataSource(seed=1)

    plain = _Counting(synthetic)
    _seed_004(plain)
    rows.append(("seed 004: upstream calls, no cache", f"{plain.calls}", "125"))
    for ahead, label in ((0, "cold cache"), (64, "cold cache, read_ahead_bars=64")):
        up = _Counting(synthetic)
        _seed_004(CachedDataSource(up, cache_dir=tmp / f"s004-{ahead}", read_ahead_bars=ahead))
        rows.append((f"seed 004: upstream calls, {label}", f"{up.calls}", "<= 2" if ahead else "-"))
    warm_up = _Counting(synthetic)
    warm = CachedDataSource(warm_up, cache_dir=tmp / "s004-64")
    _seed_004(warm)
    rows.append(("seed 004: upstream calls, warm cache (new instance)", f"{warm_up.calls}", "0"))
    rows.append(("seed 004: warm hit rate", f"{warm.stats.hit_rate:.1%}", "-"))

    # coverage lookups: a key fragmented into 1,000 spans (a request path lookup is the generation
    # check plus the gap computation on the in-memory copy)
    lookups = CachedDataSource(synthetic, cache_dir=tmp / "lookup")
    key = lookups._key("bars", "FRAG", "1d")
    base = to_ns("2000-01-03")
    ends = [base + (2 * i + 1) * NS_PER_DAY for i in range(1000)]
    spans = [Span(end - NS_PER_DAY, end, 1, end) for end in ends]  # immutable one-day spans, one-day holes
    lookups._index.commit(Change(spans={key: spans}))
    window = (base + 1000 * NS_PER_DAY, base + 1030 * NS_PER_DAY)
    everything = (base, base + 2000 * NS_PER_DAY)
    lookups._coverage(key)
    for label, req in (("30-day request", window), ("request over all spans", everything)):
        p50, p95 = _sync_timings(lambda req=req: missing(req, lookups._index.spans(key, *req),
                                                         lambda sp: False), 300)
        rows.append((f"coverage lookup, SQLite, {label} p50 / p95", f"{p50:.3f} / {p95:.3f} ms",
                     "p95 <= 1 ms"))
        def request_path(req: tuple[int, int] = req) -> list:
            lookups._sync_generation()
            return missing(req, lookups._coverage(key), lambda sp: False)

        p50, p95 = _sync_timings(request_path, 300)
        rows.append((f"coverage lookup, request path, {label} p50 / p95", f"{p50:.3f} / {p95:.3f} ms",
                     "p95 <= 1 ms"))

    # one year of 1-minute bars for one symbol
    year = ("2023-01-01", "2024-01-01")
    filler = CachedDataSource(synthetic, cache_dir=tmp / "year")
    bars = filler.fetch_sync(["AAPL"], *year, "1min")
    disk = CachedDataSource(synthetic, cache_dir=tmp / "year", memory_bytes=0)
    p50, p95 = _timings(lambda: disk.fetch(["AAPL"], *year, "1min"), 30)
    rows.append((f"disk hit, 1 year of 1-minute bars ({bars.height:,} rows) p50 / p95",
                 f"{p50:.2f} / {p95:.2f} ms", "p50 <= 10 ms"))
    single = tmp / "single.parquet"
    bars.write_parquet(single, compression="uncompressed")
    p50, _ = _sync_timings(lambda: pl.read_parquet(single), 30)
    rows.append(("  peer: pl.read_parquet of the same rows in one file p50", f"{p50:.2f} ms", "floor"))
    try:
        import duckdb

        glob = (tmp / "year" / "bars" / "**" / "*.parquet").as_posix()
        query = f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true) WHERE symbol = 'AAPL'"
        p50, _ = _sync_timings(lambda: duckdb.sql(query).pl(), 20)
        rows.append(("  peer: DuckDB scan of the cache folder -> Polars p50", f"{p50:.2f} ms", "-"))
    except ImportError:
        pass
    p50, p95 = _timings(lambda: filler.fetch(["AAPL"], *year, "1min"), 50)
    rows.append(("memory hit, 1 year of 1-minute bars p50 / p95", f"{p50:.3f} / {p95:.3f} ms", "-"))
    filler.fetch_sync(["AAPL"], "2023-05-01", "2023-06-01", "1d")
    p50, p95 = _timings(lambda: filler.fetch(["AAPL"], "2023-05-01", "2023-06-01", "1d"), 300)
    rows.append(("memory hit, 30-day daily window p50 / p95", f"{p50:.3f} / {p95:.3f} ms", "p50 <= 0.2 ms"))
    size = sum(p.stat().st_size for p in (tmp / "year").rglob("*.parquet"))
    rows.append(("cache size, 1 year of 1-minute bars + 1 month daily", f"{size / 2**20:.1f} MiB", "-"))

    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print(f"{'metric':<{width}}  {'value':>{vwidth}}  goal")
    print("-" * (width + vwidth + 16))
    for name, value, goal in rows:
        print(f"{name:<{width}}  {value:>{vwidth}}  {goal}")


if __name__ == "__main__":
    main()
