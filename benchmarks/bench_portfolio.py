"""Portfolio benchmark: 500 synthetic symbols x 20 years of daily bars (2.5M bars), one account.

Vector engine: ``momentum_rotation`` monthly (time warm, peak memory of the run), a sweep of 100
parameter sets over it (``optimization.evaluate``), and ``equal_weight`` monthly; event engine:
``equal_weight`` monthly on the same universe, the peer of the vector row above it (same fills, same
final equity). Goals (issue 14): vector <= 0.5 s and <= 1 GiB, sweep <= 20 s on 2 cores, event <= 15 s
and <= 2 GiB. Times are wall clock and, for the event engine, also the process's CPU time (on a shared
machine the wall clock includes waiting for a core). With ``--minute-symbols N``, the event engine also
runs ``equal_weight`` monthly on N symbols x one year of XNYS 1-minute bars (100: 9.8M bar events),
each case in its own process: from memory and from a Parquet cache (``CachedDataSource`` without a
memory tier, so the source holds nothing), with every bar held at once and streamed in windows.
``--minute-calendar 24/7`` makes those bars crypto-style, every minute of 2023 (525,600 per symbol;
100: 52.6M bar events), on symbols the engine treats as 24/7 (the source's ``calendar_of``); only the
two streamed cases run then, the held-whole ones would need ~10 GiB.

    PYTHONPATH=src python benchmarks/bench_portfolio.py [--symbols 500] [--years 20] [--no-event]
                                                        [--minute-symbols 100] [--minute-calendar 24/7]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from backtape.engine import BacktestEngine, Strategy, StrategyFactory, run_backtest
from backtape.optimization.data import load_market_data
from backtape.optimization.evaluate import EvalSpec, evaluate
from backtape.options import TradingOptions
from backtape.schema import SCHEMAS
from backtape.sources.base import DataSource
from backtape.sources.memory import FrameDataSource
from backtape.vector.form import decisions
from backtape.vector.portfolio import run, vector_data


def universe(n_symbols: int, years: int, seed: int = 7) -> FrameDataSource:
    """Geometric random walks on the XNYS sessions of ``years`` years, one frame for all symbols."""
    from backtape.calendars import get_calendar

    cal = get_calendar("XNYS")
    opens, closes = cal.opens, cal.closes
    lo = int(np.searchsorted(opens, np.datetime64("2004-01-01", "ns").astype(np.int64)))
    n = 252 * years
    ts, te = opens[lo:lo + n], closes[lo:lo + n]
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n_symbols):
        close = 50.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, n)))
        open_ = close * np.exp(rng.normal(0, 0.005, n))
        frames.append(pl.DataFrame({"symbol": f"S{k:03d}", "ts": ts, "ts_end": te, "open": open_,
                                    "high": np.maximum(open_, close) * 1.01,
                                    "low": np.minimum(open_, close) * 0.99, "close": close,
                                    "volume": np.full(n, 1e6)}))
    utc = pl.Datetime("ns", "UTC")
    bars = pl.concat(frames).with_columns(pl.col("ts", "ts_end").cast(utc))
    return FrameDataSource(bars, name="bench-portfolio")


def minute_universe(n_symbols: int, calendar: str = "XNYS",
                    seed: int = 7) -> tuple[FrameDataSource, int, int]:
    """Random walks on one year of 1-minute bars and its range: on XNYS 252 sessions x 390 minutes,
    on 24/7 every minute of 2023 (365 x 1,440)."""
    from backtape.sources.synthetic import SyntheticDataSource

    syn = SyntheticDataSource(seed=42, calendar=calendar)
    if calendar == "XNYS":
        grid = syn.fetch_sync(["SYN"], "2023-01-03", "2024-03-01", "1min").head(98_280)
    else:
        grid = syn.fetch_sync(["SYN"], "2023-01-01", "2024-01-01", "1min")
    m, rng = grid.height, np.random.default_rng(seed)
    frames = []
    for k in range(n_symbols):
        close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0008, m)))
        open_ = close * np.exp(rng.normal(0, 0.0002, m))
        frames.append(pl.DataFrame({"symbol": f"M{k:03d}", "ts": grid["ts"], "ts_end": grid["ts_end"],
                                    "open": open_, "high": np.maximum(open_, close) * 1.0005,
                                    "low": np.minimum(open_, close) * 0.9995, "close": close,
                                    "volume": np.full(m, 1e4)}))
    ts = grid["ts"].cast(pl.Int64)
    src = FrameDataSource(pl.concat(frames), frequency="1min", calendar_name=calendar, name="bench-minutes")
    return src, int(ts[0]), int(ts[-1]) + 1


@dataclass(frozen=True)
class _CachedOnly(FrameDataSource):
    """The minute universe's identity without its rows: a cache over it serves only what it holds."""

    identity: str = ""

    def cache_identity(self) -> str:
        return self.identity

    async def fetch(self, symbols: list[str], start: Any, end: Any, frequency: Any = "1d") -> pl.DataFrame:
        raise RuntimeError(f"{symbols[:3]}... {start}..{end} is not in the benchmark's cache")


def minute_cache(n_symbols: int, folder: str, calendar: str) -> tuple[str, int, int]:
    """Write the 1-minute universe on ``calendar`` to a Parquet cache in ``folder`` (one file per
    symbol and month): the cache identity and the run's range."""
    from backtape.cache import CachedDataSource

    src, start, end = minute_universe(n_symbols, calendar)
    cached = CachedDataSource(src, folder, memory_bytes=0)
    names = [f"M{k:03d}" for k in range(n_symbols)]
    for lo in range(0, n_symbols, 10):
        cached.fetch_sync(names[lo:lo + 10], start, end, "1min")
    return src.cache_identity(), start, end


def minute_row(n_symbols: int, folder: str | None, windows: int | None,
               calendar: str) -> tuple[str, str, str, str, str]:
    """The event engine's ``equal_weight`` monthly on the 1-minute universe: its row of the table.

    ``folder``: read the universe from the Parquet cache there (nothing held by the source), else
    from memory (a ``FrameDataSource`` holds every row, ~0.8 GiB for 100 symbols on XNYS). ``windows``:
    0 holds all bars in the engine at once, ``None`` lets it stream by size (~1M bars per window:
    for 100 symbols a month of XNYS, 6 days of 24/7).
    ``calendar``: the universe's, which the engine learns from the source's ``calendar_of``.
    """
    from backtape.cache import CachedDataSource

    if folder is not None:
        identity, start, end = json.loads(sys.stdin.read())
        stub = _CachedOnly(pl.DataFrame(schema=SCHEMAS["bars"]), frequency="1min", calendar_name=calendar,
                           name="bench-minutes", identity=identity)
        src: DataSource = CachedDataSource(stub, folder, memory_bytes=0)
        what = "Parquet cache"
    else:
        src, start, end = minute_universe(n_symbols, calendar)
        what = "in memory"
    assert src.calendar_of("M000") == calendar
    names = [f"M{k:03d}" for k in range(n_symbols)]
    opts = TradingOptions(cash=1_000_000, commission=0.001)
    engine = BacktestEngine(opts, source=src, window_sessions=windows)
    result, wall, cpu = timed(lambda: engine.run(StrategyFactory.create("equal_weight", rebalance="1mo"),
                                                 names, start, end, "1min"))
    mode = "whole" if windows == 0 else "streamed"
    label = f"event {n_symbols} x 1y 1min {calendar}, {what}, {mode}"
    final = result.metrics["final_equity"]
    return (label, f"{wall:.1f} s", f"{cpu:.1f} s", f"{peak_rss():.2f} GiB",
            f"{result.equity.height * n_symbols / 1e6:.1f}M bars, final {final:,.0f}")


def minute_rows(n_symbols: int, calendar: str) -> list[tuple[str, ...]]:
    """Each minute case in its own child process, so each peak memory is its own; on 24/7 only the
    streamed cases (held whole, 52.6M bars for 100 symbols would need ~10 GiB)."""
    import tempfile

    whole = calendar == "XNYS"
    base = [sys.executable, __file__, "--minutes-only", str(n_symbols), "--minute-calendar", calendar]

    def child(*extra: str, feed: str = "") -> tuple[str, ...]:
        out = subprocess.run([*base, *extra], input=feed, check=True, capture_output=True, text=True)
        return tuple(json.loads(out.stdout.splitlines()[-1]))

    rows = ([child("--windows", "0")] if whole else []) + [child()]
    with tempfile.TemporaryDirectory() as folder:
        out = subprocess.run([*base, "--write", folder], check=True, capture_output=True, text=True)
        feed = out.stdout.splitlines()[-1]
        rows += [child("--cache", folder, "--windows", "0", feed=feed)] if whole else []
        rows.append(child("--cache", folder, feed=feed))
    return rows


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """``fn()``, its wall-clock seconds and the process's CPU seconds."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def peak_rss() -> float:
    """The process's peak resident memory so far, GiB: ``VmHWM`` on Linux (``ru_maxrss`` would carry
    the parent's peak across the child's exec), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as status:
            kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--years", type=int, default=20)
    ap.add_argument("--no-event", action="store_true")
    ap.add_argument("--minute-symbols", type=int, default=0)
    ap.add_argument("--minute-calendar", choices=("XNYS", "24/7"), default="XNYS")
    ap.add_argument("--minutes-only", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--windows", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--cache", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--write", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.minutes_only and args.write:
        print(json.dumps(minute_cache(args.minutes_only, args.write, args.minute_calendar)))
        return
    if args.minutes_only:
        print(json.dumps(minute_row(args.minutes_only, args.cache, args.windows, args.minute_calendar)))
        return
    src = universe(args.symbols, args.years)
    names = [f"S{k:03d}" for k in range(args.symbols)]
    start, end = "2005-01-01", f"{2004 + args.years}-01-01"
    t0 = time.perf_counter()
    market = load_market_data(names, start, end, "1d", src, warmup=253)
    n_bars = sum(len(b["ts"]) for b in market.bars.values())
    print(f"loaded {n_bars:,} bars in {time.perf_counter() - t0:.1f} s")
    opts = TradingOptions(cash=1_000_000, commission=0.001).for_symbols({s: "XNYS" for s in names})
    strat = StrategyFactory.create("momentum_rotation", lookback=126, top_n=20, rebalance="1mo")
    equal = StrategyFactory.create("equal_weight", rebalance="1mo")

    def vector_once(s: Strategy = strat) -> float:
        data = vector_data(market, s.warmup)
        return float(run(data, decisions(s, data), opts).equity[-1])

    vector_once()  # compile
    final, vec_s, vec_cpu = timed(vector_once)
    tracemalloc.start()
    vector_once()
    vec_peak = tracemalloc.get_traced_memory()[1] / 2**30
    tracemalloc.stop()
    sets = [{"lookback": lb, "top_n": n, "rebalance": "1mo"} for lb in range(21, 252, 23) for n in
            (5, 10, 15, 20, 25, 30, 35, 40, 45, 50)][:100]
    _, sweep_s, _ = timed(lambda: evaluate(market, EvalSpec("momentum_rotation", "vector", opts), sets))
    eq_final, eq_s, eq_cpu = timed(lambda: vector_once(equal))
    rows = [("vector momentum_rotation 1mo", f"{vec_s:.3f} s", f"{vec_cpu:.3f} s", f"{vec_peak:.2f} GiB",
             "<= 0.5 s, <= 1 GiB"),
            (f"vector sweep {len(sets)} sets", f"{sweep_s:.1f} s", "", "", "<= 20 s"),
            ("vector equal_weight 1mo (peer)", f"{eq_s:.3f} s", f"{eq_cpu:.3f} s", "",
             f"final {eq_final:,.2f}")]
    if not args.no_event:  # timed without tracemalloc (it slows Python code severalfold)
        ev, ev_s, ev_cpu = timed(lambda: run_backtest("equal_weight", names, start, end, source=src,
                                                      options=opts, params={"rebalance": "1mo"}))
        rows.append(("event equal_weight 1mo", f"{ev_s:.1f} s", f"{ev_cpu:.1f} s", f"{peak_rss():.2f} GiB",
                     "<= 15 s, <= 2 GiB"))
        rows.append(("  its final equity", f"{ev.metrics['final_equity']:,.2f}", "", "", ""))
    if args.minute_symbols:
        rows += minute_rows(args.minute_symbols, args.minute_calendar)
    print(f"{args.symbols} symbols x {args.years} years daily; momentum final equity {final:,.0f}")
    width = max(len(r[0]) for r in rows)
    print(f"{'case':{width}} {'wall':>10} {'cpu':>8} {'peak':>9}   goal")
    for r in rows:
        print(f"{r[0]:{width}} {r[1]:>10} {r[2]:>8} {r[3]:>9}   {r[4]}")


if __name__ == "__main__":
    main()
