"""DataPortal benchmark: spot value, history windows, load time and memory, printed as a table.

Run: ``python benchmarks/bench_portal.py``. Data: one year of XNYS 1-minute bars for 10 symbols.
``load_data`` is timed from an in-memory source and from a warm ``backtape.cache.CachedDataSource``
(a fresh instance over a filled cache directory: Parquet reads, no upstream call; and the same
instance again: its memory tier). Latencies are per-call medians over 2000 random clocks, repeated in
``ROUNDS`` rounds; the table shows the median and the best round, beside the cost of one bare numpy
``searchsorted`` measured the same way, to read them against the machine's load.
"""

from __future__ import annotations

import gc
import tempfile
import time

import numpy as np
import polars as pl
import psutil

from backtape._time import NS_PER_MINUTE, check_range
from backtape.calendars import get_calendar
from backtape.portal import DataPortal, DataRequirement
from backtape.sources.base import DataSource, DataSourceMetadata, SourceCapabilities

SYMBOLS = [f"S{i:02d}" for i in range(10)]
ROUNDS = 5


class _MemorySource(DataSource):
    name = "bench-memory"

    def __init__(self, bars: pl.DataFrame) -> None:
        self.bars = bars

    async def fetch(self, symbols, start, end, frequency="1min") -> pl.DataFrame:
        s, e = check_range(start, end)
        ts = pl.col("ts").cast(pl.Int64)
        return self.bars.filter(pl.col("symbol").is_in(symbols) & (ts >= s) & (ts < e))

    def get_metadata(self) -> DataSourceMetadata:
        caps = SourceCapabilities(frequencies=("1min", "1d"))
        return DataSourceMetadata(self.name, "bench", "in-memory", "XNYS", caps)


def _bars() -> pl.DataFrame:
    cal = get_calendar("XNYS")
    lo, hi = np.searchsorted(cal.opens, [np.datetime64("2023-01-01", "ns").astype(np.int64),
                                         np.datetime64("2024-01-01", "ns").astype(np.int64)])
    minutes = np.concatenate([np.arange(o, c, NS_PER_MINUTE) for o, c in
                              zip(cal.opens[lo:hi], cal.closes[lo:hi], strict=True)])
    rng = np.random.default_rng(0)
    frames = []
    for k, sym in enumerate(SYMBOLS):
        close = 50.0 * (k + 1) * np.exp(np.cumsum(rng.normal(0, 4e-4, len(minutes))))
        frames.append(pl.DataFrame({
            "symbol": sym, "ts": minutes, "ts_end": minutes + NS_PER_MINUTE, "open": close,
            "high": close * 1.001, "low": close * 0.999, "close": close,
            "volume": rng.integers(1, 10_000, len(minutes)).astype(float)}))
    ts = pl.Datetime("ns", "UTC")
    return pl.concat(frames).with_columns(pl.col("ts").cast(ts), pl.col("ts_end").cast(ts))


def _p50_us(fn, clocks: np.ndarray, portal: DataPortal) -> tuple[float, float]:
    """(median, best) over ``ROUNDS`` rounds of the per-call median at ``clocks``."""
    medians = []
    for _ in range(ROUNDS):
        times = np.empty(len(clocks))
        for i, t in enumerate(clocks.tolist()):
            portal.set_clock(t)
            t0 = time.perf_counter_ns()
            fn(t)
            times[i] = time.perf_counter_ns() - t0
        medians.append(float(np.median(times)) / 1000)
    return float(np.median(medians)), min(medians)


def _load_seconds(source: DataSource, reqs: list[DataRequirement]) -> DataPortal:
    portal = DataPortal(source)
    t0 = time.perf_counter()
    portal.load_data("2023-03-01", "2024-01-01", SYMBOLS, requirements=reqs)
    portal.load_seconds = time.perf_counter() - t0  # type: ignore[attr-defined]
    return portal


def _cached_loads(source: DataSource, reqs: list[DataRequirement]) -> tuple[float, float, float]:
    """Seconds of load_data: filling a cache, from a fresh instance over it, from that instance again."""
    from backtape.cache import CachedDataSource

    with tempfile.TemporaryDirectory() as folder:
        cold = _load_seconds(CachedDataSource(source, cache_dir=folder), reqs).load_seconds
        warm_source = CachedDataSource(source, cache_dir=folder)
        disk = _load_seconds(warm_source, reqs).load_seconds
        memory = _load_seconds(warm_source, reqs).load_seconds
        upstream = getattr(warm_source, "stats", None)
        print(f"warm cache stats after both warm loads:\n{upstream}")
    return cold, disk, memory


def main() -> None:
    bars = _bars()
    source = _MemorySource(bars)
    reqs = [DataRequirement("bars", "5min", 50), DataRequirement("bars", "1d", 40)]
    rss0 = psutil.Process().memory_info().rss
    portal = _load_seconds(source, reqs)
    gc.collect()
    rss_delta = psutil.Process().memory_info().rss - rss0
    raw_bytes = portal.store.rows * 7 * 8  # ts, ts_end, open, high, low, close, volume
    cold, disk, memory = _cached_loads(source, reqs)
    rng = np.random.default_rng(1)
    ts_all = portal.store.series("S00").ts_end
    clocks = rng.choice(ts_all[len(ts_all) // 2:], 2000)
    steps = ts_all[len(ts_all) // 2:len(ts_all) // 2 + 2000]  # an engine stepping minute by minute
    portal.set_clock(int(clocks[0]))
    portal.get_history_window(SYMBOLS, None, 50, "5min", "close")  # build the 5min views once
    portal.get_spot_value("S03", "close", int(clocks[0]))  # compile the search kernel
    measures = [
        ("numpy searchsorted alone (reference)", lambda t: ts_all.searchsorted(t, "right"), clocks, "-"),
        ("get_spot_value (random clocks)", lambda t: portal.get_spot_value("S03", "close", t), clocks,
         "<= 2 us"),
        ("get_spot_value (clock stepping by 1 min)", lambda t: portal.get_spot_value("S03", "close", t),
         steps, "<= 2 us"),
        ("history 1 asset x 50 (1min)", lambda t: portal.get_history_window("S03", t, 50, "1min", "close"),
         clocks, "<= 10 us"),
        ("history 1 asset x 50 (5min)", lambda t: portal.get_history_window("S03", t, 50, "5min", "close"),
         clocks, "<= 10 us"),
        ("history 10 assets x 50 (1min)",
         lambda t: portal.get_history_window(SYMBOLS, t, 50, "1min", "close"), clocks, "<= 30 us"),
        ("history 10 assets x 50 (5min)",
         lambda t: portal.get_history_window(SYMBOLS, t, 50, "5min", "close"), clocks, "<= 30 us"),
        ("history 10 x 50 (5min, partial)",
         lambda t: portal.get_history_window(SYMBOLS, t, 50, "5min", "close", partial=True), clocks, "-"),
    ]
    rows = []
    for name, fn, at, goal in measures:
        med, best = _p50_us(fn, at, portal)
        rows.append((f"{name} p50", f"{med:.2f} us", f"{best:.2f} us", goal))
    n = f"{portal.store.rows:,} rows"
    rows += [
        (f"load_data 10 symbols, {n} (in-memory source)", f"{portal.load_seconds:.3f} s", "-", "-"),
        ("load_data, filling a CachedDataSource (cold)", f"{cold:.3f} s", "-", "-"),
        ("load_data, warm CachedDataSource (new instance: disk)", f"{disk:.3f} s", "-", "<= 0.5 s"),
        ("load_data, warm CachedDataSource (same instance: memory)", f"{memory:.3f} s", "-", "<= 0.5 s"),
        ("store bytes / raw column bytes", f"{portal.store.nbytes / raw_bytes:.3f}x", "-", "<= 1.2x"),
        ("RSS growth during load / raw column bytes", f"{rss_delta / raw_bytes:.3f}x", "-", "<= 1.2x"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'median':>10}  {'best':>10}  goal   ({ROUNDS} rounds)")
    for name, value, best, goal in rows:
        print(f"{name:<{width}}  {value:>10}  {best:>10}  {goal}")
    print("peer library: zipline's DataPortal is not installed in this environment; no comparison run")


if __name__ == "__main__":
    main()
