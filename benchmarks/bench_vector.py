"""Vector engine benchmarks: single SMA(10, 50) runs, a ~1,000-pair sweep, first-call latency,
and the same sweep end to end through ``backtape.optimization.optimize`` (data through the portal,
table, Deflated Sharpe and PBO).

Run: ``python benchmarks/bench_vector.py`` (add ``--no-peer`` to skip vectorbt). Prices are a
seeded geometric random walk of one-minute bars. The sweep's peak memory is measured in a child
process (``ru_maxrss``, which sees numba's allocations too), as is the first call in a fresh
process, once with the on-disk numba cache warm and once with an empty cache (a true cold compile).
vectorbt, when installed, runs the same work in the same run; its sweep is fed 50 pairs at a time
because the one-shot form needs about 17 GB.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

from backtape.vector import crossed_above, crossed_below, simulate, sma  # noqa: E402
from backtape.vector.sweep import _sma_rows, sma_crossover_sweep, sma_pairs  # noqa: E402

SIZES = (98_280, 525_600)
FAST, SLOW = range(5, 51, 5), range(20, 219, 2)


def prices(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded random-walk OHLC bars (open = previous close plus a small gap)."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0.0, 0.0002, n))
    span = np.abs(rng.normal(0.0, 0.0008, n)) * close
    return open_, np.maximum(open_, close) + span, np.minimum(open_, close) - span, close


def minute_source(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray):
    """The bars as one symbol's XNYS one-minute bars from 2023-01-03, in an in-memory source."""
    import polars as pl

    from backtape.calendars import get_calendar
    from backtape.sources.memory import FrameDataSource

    cal = get_calendar("XNYS")
    first = int(np.searchsorted(cal.opens, np.datetime64("2023-01-03T00:00", "ns").astype(np.int64)))
    minute = 60_000_000_000
    starts, k = [], first
    while sum(len(x) for x in starts) < len(c):
        starts.append(np.arange(cal.opens[k], cal.closes[k], minute))
        k += 1
    ts = np.concatenate(starts)[: len(c)]
    utc = pl.Datetime("ns", "UTC")
    bars = pl.DataFrame({
        "symbol": "BENCH", "ts": pl.Series(ts).cast(utc), "ts_end": pl.Series(ts + minute).cast(utc),
        "open": o, "high": h, "low": lo, "close": c, "volume": np.full(len(c), 1_000.0),
    })  # fmt: skip
    return FrameDataSource(bars, frequency="1min", name="bench"), int(ts[0]), int(ts[-1]) + minute


def run_optimize(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray):
    """The ~1,000-pair sweep through ``optimize``: portal load, search, sorted table, DSR and PBO."""
    from backtape.optimization import optimize

    source, start, end = minute_source(o, h, lo, c)
    return optimize("sma_crossover", {"fast": FAST, "slow": SLOW}, "BENCH", start, end, "1min", source,
                    constraint="fast < slow", commission=0.001)  # fmt: skip


def best_of(fn, repeat: int = 7) -> float:
    """Fastest of ``repeat`` timed calls, in seconds."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def backtape_single(o, h, lo, c) -> None:
    f, s = sma(c, 10), sma(c, 50)
    simulate(c, open=o, high=h, low=lo, entries=crossed_above(f, s), exits=crossed_below(f, s),
             commission=0.001)  # fmt: skip


def vbt_single(vbt, o, c) -> None:
    f, s = vbt.MA.run(c, 10), vbt.MA.run(c, 50)
    pf = vbt.Portfolio.from_signals(c, f.ma_crossed_above(s), f.ma_crossed_below(s), price=o, fees=0.001,
                                    init_cash=10_000, freq="1min")  # fmt: skip
    pf.total_return()


def vbt_sweep(vbt, o, c, pairs: np.ndarray, chunk: int = 50) -> None:
    import pandas as pd

    close = pd.Series(c)
    for k in range(0, len(pairs), chunk):
        part = pairs[k : k + chunk]
        fast = vbt.MA.run(close, window=list(part[:, 0]), per_column=False)
        slow = vbt.MA.run(close, window=list(part[:, 1]), per_column=False)
        entries = fast.ma_crossed_above(slow.ma.values)
        exits = fast.ma_crossed_below(slow.ma.values)
        pf = vbt.Portfolio.from_signals(close, entries, exits, price=pd.Series(o), fees=0.001,
                                        init_cash=10_000, freq="1min")  # fmt: skip
        pf.sharpe_ratio()


def child(code: str, env: dict[str, str] | None = None) -> dict[str, float]:
    """Run ``code`` in a fresh interpreter; it prints ``key=value`` lines."""
    full_env = {**os.environ, "PYTHONPATH": str(SRC), **(env or {})}
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         env=full_env, check=True).stdout  # fmt: skip
    return {k: float(v) for k, v in (line.split("=") for line in out.splitlines() if "=" in line)}


FIRST_CALL = """
    import time
    t0 = time.perf_counter()
    import numpy as np
    from backtape.vector import simulate, sma, crossed_above, crossed_below
    t1 = time.perf_counter()
    c = 100 + np.cumsum(np.random.default_rng(1).normal(0, 0.1, 98_280))
    f, s = sma(c, 10), sma(c, 50)
    simulate(c, entries=crossed_above(f, s), exits=crossed_below(f, s), commission=0.001)
    from backtape.vector.sweep import sma_crossover_sweep
    sma_crossover_sweep(c[:1000], pairs=[(5, 20)])
    print(f"import={t1 - t0}")
    print(f"total={time.perf_counter() - t0}")
"""

SWEEP_MEMORY = """
    import sys
    sys.path.insert(0, {bench!r})
    from bench_vector import prices, FAST, SLOW
    from backtape.vector.sweep import sma_crossover_sweep
    o, h, lo, c = prices(98_280)
    sma_crossover_sweep(c[:2000], FAST, SLOW, open=o[:2000])

    def rss(field):
        with open("/proc/self/status") as fh:
            return next(int(x.split()[1]) for x in fh if x.startswith(field)) / 1024

    base = rss("VmRSS:")
    with open("/proc/self/clear_refs", "w") as fh:  # reset the high-water mark to the current RSS
        fh.write("5")
    table = sma_crossover_sweep(c, FAST, SLOW, open=o, high=h, low=lo, commission=0.001)
    print(f"peak_mib={{rss('VmHWM:')}}")
    print(f"base_mib={{base}}")
    print(f"rows={{table.height}}")
"""

OPTIMIZE_MEMORY = """
    import sys
    sys.path.insert(0, {bench!r})
    from bench_vector import prices, run_optimize

    o, h, lo, c = prices(98_280)
    run_optimize(o[:3000], h[:3000], lo[:3000], c[:3000])

    def rss(field):
        with open("/proc/self/status") as fh:
            return next(int(x.split()[1]) for x in fh if x.startswith(field)) / 1024

    base = rss("VmRSS:")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    res = run_optimize(o, h, lo, c)
    print(f"peak_mib={{rss('VmHWM:')}}")
    print(f"base_mib={{base}}")
    print(f"rows={{res.table.height}}")
"""


def timed(fn) -> tuple[float, float]:
    """Wall and CPU (all threads) seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-peer", action="store_true", help="skip vectorbt even when installed")
    args = parser.parse_args()
    vbt = None
    if not args.no_peer:
        try:
            import vectorbt as vbt
        except ImportError:
            print("vectorbt not installed: peer columns skipped")
    rows: list[tuple[str, str, str, str]] = []
    data = {n: prices(n) for n in SIZES}
    backtape_single(*prices(500))  # compile or load from the on-disk cache
    for n in SIZES:
        o, h, lo, c = data[n]
        ours = best_of(lambda o=o, h=h, lo=lo, c=c: backtape_single(o, h, lo, c))
        peer = "-"
        if vbt is not None:
            vbt_single(vbt, o[:500], c[:500])
            peer = f"{best_of(lambda o=o, c=c: vbt_single(vbt, o, c), 3) * 1e3:.1f} ms"
        rows.append((f"SMA(10,50) single run, {n:,} bars", f"{ours * 1e3:.2f} ms", peer, "<= 5 ms @98,280"))
    pairs = sma_pairs(FAST, SLOW)
    o, h, lo, c = data[SIZES[0]]
    sma_crossover_sweep(c[:2000], pairs=pairs[:4], open=o[:2000])
    runs = [timed(lambda: sma_crossover_sweep(c, pairs=pairs, open=o, high=h, low=lo, commission=0.001))
            for _ in range(3)]  # fmt: skip
    sweep_s, sweep_cpu = min(runs)
    mem = child(SWEEP_MEMORY.format(bench=str(Path(__file__).parent)))
    peer = "-"
    if vbt is not None:
        t = time.perf_counter()
        vbt_sweep(vbt, o, c, pairs)
        peer = f"{time.perf_counter() - t:.2f} s (50-pair chunks)"
    ours = f"{sweep_s:.3f} s (cpu {sweep_cpu:.2f} s)"
    rows.append((f"sweep {len(pairs)} pairs, {SIZES[0]:,} bars", ours, peer, "<= 0.5 s"))
    windows = np.unique(pairs)
    lines = best_of(lambda: _sma_rows(c, windows), 3)
    pandas_lines = best_of(lambda: [pd.Series(c).rolling(int(w)).mean() for w in windows], 3)
    rows.append((f"its {len(windows)} SMA lines (pandas-exact)", f"{lines * 1e3:.1f} ms",
                 f"{pandas_lines * 1e3:.1f} ms (pandas rolling)", "report"))  # fmt: skip
    peak = f"{mem['peak_mib']:.0f} MiB (before {mem['base_mib']:.0f})"
    rows.append(("sweep peak RSS (child process)", peak, "-", "<= 1 GiB"))
    run_optimize(o[:3000], h[:3000], lo[:3000], c[:3000])
    timings = []
    for _ in range(3):
        wall, cpu = time.perf_counter(), time.process_time()
        res = run_optimize(o, h, lo, c)
        timings.append((time.perf_counter() - wall, time.process_time() - cpu, res.duration_s))
    total, cpu, search = min(timings)
    figure = f"{total:.3f} s (cpu {cpu:.2f} s; search {search:.3f} s)"
    rows.append((f"optimize() end to end, {res.table.height} sets", figure, "-", "report"))
    opt_mem = child(OPTIMIZE_MEMORY.format(bench=str(Path(__file__).parent)))
    peak = f"{opt_mem['peak_mib']:.0f} MiB (before {opt_mem['base_mib']:.0f})"
    rows.append(("optimize() peak RSS (child process)", peak, "-", "<= 1 GiB"))
    warm = child(FIRST_CALL)
    rows.append(("fresh process, warm numba cache", f"{warm['total']:.2f} s (import {warm['import']:.2f})",
                 "-", "<= 3 s"))  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        cold = child(FIRST_CALL, {"NUMBA_CACHE_DIR": tmp})
    rows.append(("fresh process, empty cache (cold compile)", f"{cold['total']:.2f} s", "-", "report"))
    if vbt is not None:
        peer_first = child("""
            import time
            t0 = time.perf_counter()
            import numpy as np, vectorbt as vbt
            c = 100 + np.cumsum(np.random.default_rng(1).normal(0, 0.1, 98_280))
            f, s = vbt.MA.run(c, 10), vbt.MA.run(c, 50)
            vbt.Portfolio.from_signals(c, f.ma_crossed_above(s), f.ma_crossed_below(s)).total_return()
            print(f"total={time.perf_counter() - t0}")
        """)
        rows[-2] = (*rows[-2][:2], f"{peer_first['total']:.2f} s", rows[-2][3])
    widths = [max(len(r[i]) for r in [*rows, ("case", "backtape", "vectorbt", "goal")]) for i in range(4)]
    header = ("case", "backtape", "vectorbt", "goal")
    for row in (header, tuple("-" * w for w in widths), *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
