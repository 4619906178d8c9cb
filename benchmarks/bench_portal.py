"""DataPortal benchmark: spot value, history windows, load time and memory, printed as a table.

Run: ``python benchmarks/bench_portal.py``. Data: one year of XNYS 1-minute bars for 10 symbols,
served from memory (``backtape.cache.CachedDataSource`` is not on main yet, so "warm cache" here
means an in-memory source: the figure excludes Parquet reads).
"""

from __future__ import annotations

import gc
import time

import numpy as np
import polars as pl
import psutil

from backtape._time import NS_PER_MINUTE, check_range
from backtape.calendars import get_calendar
from backtape.portal import DataPortal, DataRequirement
from backtape.sources.base import DataSource, DataSourceMetadata, SourceCapabilities

SYMBOLS = [f"S{i:02d}" for i in range(10)]


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


def _p50_us(fn, clocks: np.ndarray, portal: DataPortal) -> float:
    times = np.empty(len(clocks))
    for i, t in enumerate(clocks):
        portal.set_clock(int(t))
        t0 = time.perf_counter_ns()
        fn(int(t))
        times[i] = time.perf_counter_ns() - t0
    return float(np.median(times)) / 1000


def _searchsorted_us(a: np.ndarray) -> float:
    """Cost of one scalar ``searchsorted`` here, to read the figures above against (shared CPUs)."""
    t = int(a[len(a) // 2])
    t0 = time.perf_counter_ns()
    for _ in range(20000):
        a.searchsorted(t, "right")
    return (time.perf_counter_ns() - t0) / 20000 / 1000


def main() -> None:
    bars = _bars()
    source = _MemorySource(bars)
    rss0 = psutil.Process().memory_info().rss
    portal = DataPortal(source)
    t0 = time.perf_counter()
    portal.load_data("2023-03-01", "2024-01-01", SYMBOLS, requirements=[DataRequirement("bars", "5min", 50),
                                                                       DataRequirement("bars", "1d", 40)])
    load_s = time.perf_counter() - t0
    gc.collect()
    rss_delta = psutil.Process().memory_info().rss - rss0
    raw_bytes = portal.store.rows * 7 * 8  # ts, ts_end, open, high, low, close, volume
    rng = np.random.default_rng(1)
    ts_all = portal.store.series("S00").ts_end
    clocks = rng.choice(ts_all[len(ts_all) // 2:], 2000)
    spot = _p50_us(lambda t: portal.get_spot_value("S03", "close", t), clocks, portal)
    steps = ts_all[len(ts_all) // 2:len(ts_all) // 2 + 2000]  # an engine stepping minute by minute
    spot_seq = _p50_us(lambda t: portal.get_spot_value("S03", "close", t), steps, portal)
    one = _p50_us(lambda t: portal.get_history_window("S03", t, 50, "1min", "close"), clocks, portal)
    portal.get_history_window(SYMBOLS, int(clocks[0]), 50, "5min", "close")  # build the 5min views once
    one5 = _p50_us(lambda t: portal.get_history_window("S03", t, 50, "5min", "close"), clocks, portal)
    ten = _p50_us(lambda t: portal.get_history_window(SYMBOLS, t, 50, "1min", "close"), clocks, portal)
    ten5 = _p50_us(lambda t: portal.get_history_window(SYMBOLS, t, 50, "5min", "close"), clocks, portal)
    part = _p50_us(lambda t: portal.get_history_window(SYMBOLS, t, 50, "5min", "close", partial=True),
                   clocks, portal)
    rows = [
        ("get_spot_value p50 (random clocks)", f"{spot:.2f} us", "<= 2 us"),
        ("get_spot_value p50 (clock stepping by 1 min)", f"{spot_seq:.2f} us", "<= 2 us"),
        ("history 1 asset x 50 (1min) p50", f"{one:.2f} us", "<= 10 us"),
        ("history 1 asset x 50 (5min) p50", f"{one5:.2f} us", "<= 10 us"),
        ("history 10 assets x 50 (1min) p50", f"{ten:.2f} us", "<= 30 us"),
        ("history 10 assets x 50 (5min) p50", f"{ten5:.2f} us", "<= 30 us"),
        ("history 10 x 50 (5min, partial) p50", f"{part:.2f} us", "-"),
        (f"load_data 10 symbols, {portal.store.rows:,} rows (in-memory source)", f"{load_s:.3f} s",
         "<= 0.5 s"),
        ("store bytes / raw column bytes", f"{portal.store.nbytes / raw_bytes:.3f}x", "<= 1.2x"),
        ("RSS growth during load / raw column bytes", f"{rss_delta / raw_bytes:.3f}x", "<= 1.2x"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'result':>12}  goal")
    for name, value, goal in rows:
        print(f"{name:<{width}}  {value:>12}  {goal}")
    print(f"numpy searchsorted alone on this machine: {_searchsorted_us(ts_all):.2f} us")
    print("peer library: zipline's DataPortal is not installed in this environment; no comparison run")


if __name__ == "__main__":
    main()
