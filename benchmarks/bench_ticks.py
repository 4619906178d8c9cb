"""Benchmark of the tick pipeline: merge + Lee-Ready classification + cumulative delta; prints a table.

Run `python benchmarks/bench_ticks.py [N]` (default N = 10 million trades and N quotes). Data are
generated inline with vectorised numpy (one symbol, cent price grid, many equal timestamps), in
time-ordered batches. Cases:

* whole frame: ``classify_trades`` + ``cumulative_delta`` on all 2N events in memory;
* streaming: ``iter_classified`` over 1M-row batches (merge, classify and delta fused in one pass);
* materialised merge: ``merge_streams`` (the full event stream as one frame);
* baseline: plain Polars ``join_asof`` (backward, strictly before) + quote rule + tick rule +
  ``cum_sum`` in expressions, checked to give the same sides.

Peak resident memory while streaming is measured in a fresh subprocess that generates batches on
the fly and keeps nothing but a checksum (``resource.getrusage`` high-water mark).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import polars as pl

from backtape.schema import TS
from backtape.ticks import classify_trades, cumulative_delta, iter_classified, merge_streams

BATCH = 1_000_000
_SPAN_NS = 6 * 3_600 * 1_000_000_000  # six hours of events


def _batches(kind: str, n: int, batch: int = BATCH, seed: int = 0) -> Iterator[pl.DataFrame]:
    """``n`` synthetic trades or quotes in time-ordered batches; state carries across batches."""
    rng = np.random.default_rng(seed + (kind == "quotes"))
    mean_gap = _SPAN_NS // n
    t0, level = 1_700_000_000 * 1_000_000_000, 10_000
    for start in range(0, n, batch):
        m = min(batch, n - start)
        gaps = rng.integers(0, 2 * mean_gap, m)
        gaps[rng.random(m) < 0.3] = 0  # bursts share a timestamp
        ts = t0 + np.cumsum(gaps)
        walk = level + np.cumsum(rng.integers(-1, 2, m))
        t0, level = int(ts[-1]), int(walk[-1])
        cols: dict[str, object] = {"symbol": pl.Series(["X"]).new_from_index(0, m),
                                   "ts": pl.Series(ts).cast(TS)}
        if kind == "trades":
            cols["price"] = (walk + rng.integers(-1, 2, m)) / 100
            cols["size"] = rng.integers(1, 100, m).astype(np.float64)
        else:
            cols["bid"] = walk / 100
            cols["ask"] = (walk + 1 + (rng.random(m) < 0.2)) / 100
            cols["bid_size"] = rng.integers(1, 50, m).astype(np.float64)
            cols["ask_size"] = rng.integers(1, 50, m).astype(np.float64)
        frame = pl.DataFrame(cols)
        del cols, gaps, ts, walk  # a source keeps nothing of a batch it has handed over
        yield frame
        del frame


def _baseline(trades: pl.DataFrame, quotes: pl.DataFrame) -> pl.DataFrame:
    """The same classification in plain Polars: join_asof for the quote, expressions for the rest."""
    joined = trades.join_asof(quotes.select("ts", "bid", "ask"), on="ts", strategy="backward",
                              allow_exact_matches=False)
    price, bid, ask = pl.col("price"), pl.col("bid"), pl.col("ask")
    tick = price.diff().sign().replace(0, None).forward_fill().fill_null(0)
    valid = (bid > 0) & (ask >= bid)
    mid = (bid + ask) * 0.5
    side = (pl.when(valid & (price > mid)).then(1).when(valid & (price < mid)).then(-1)
            .otherwise(tick).cast(pl.Int8))
    return joined.with_columns(side.alias("side")).with_columns(
        (pl.col("side").cast(pl.Float64) * pl.col("size")).cum_sum().alias("cum_delta"))


def _time(fn: Callable[[], object]) -> tuple[float, float, object]:
    """Wall seconds, CPU seconds of the process (all threads) and the result of ``fn``."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def _peak_mib() -> float:
    """This process's resident high-water mark in MiB (VmHWM: reset at exec, unlike ru_maxrss)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _stream_rss(n: int) -> None:
    """Child process: stream 2n generated events through iter_classified, print peak RSS in MiB."""
    list(iter_classified(_batches("trades", 1000), _batches("quotes", 1000)))  # load the kernels
    base = _peak_mib()
    total, rows = 0.0, 0
    for out in iter_classified(_batches("trades", n), _batches("quotes", n)):
        total += float(out["cum_delta"][-1])
        rows += out.height
    peak = _peak_mib()
    print(f"{base:.1f} {peak:.1f} {rows}")


def main(n: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    child = subprocess.run([sys.executable, __file__, "--rss", str(n)], capture_output=True, text=True,
                           env=env, check=True)
    base_mib, peak_mib, streamed_rows = child.stdout.split()

    # warm the numba caches so compile time is not measured
    small_t, small_q = next(_batches("trades", 1000)), next(_batches("quotes", 1000))
    cumulative_delta(classify_trades(small_t, small_q))
    list(iter_classified([small_t], [small_q]))
    merge_streams(small_t, small_q)

    trades = pl.concat(_batches("trades", n))
    quotes = pl.concat(_batches("quotes", n))
    events = 2 * n
    rows: list[tuple[str, float, float]] = []

    t_whole, c_whole, whole = _time(lambda: cumulative_delta(classify_trades(trades, quotes)))
    rows.append(("whole frame: classify_trades + cumulative_delta", t_whole, c_whole))
    t_stream, c_stream, streamed = _time(lambda: pl.concat(iter_classified(
        (trades.slice(i, BATCH) for i in range(0, n, BATCH)),
        (quotes.slice(i, BATCH) for i in range(0, n, BATCH)))))
    rows.append(("streaming: iter_classified, 1M-row batches", t_stream, c_stream))
    t_merge, c_merge, merged = _time(lambda: merge_streams(trades, quotes))
    rows.append(("materialised merge_streams (all columns)", t_merge, c_merge))
    t_base, c_base, base = _time(lambda: _baseline(trades, quotes))
    rows.append(("baseline: Polars join_asof + expressions", t_base, c_base))

    same = (whole["side"] == base["side"]).all() and (streamed["cum_delta"] == whole["cum_delta"]).all()  # type: ignore[index]
    assert merged.height == events  # type: ignore[union-attr]

    width = max(len(r[0]) for r in rows)
    print(f"{n:,} trades + {n:,} quotes = {events:,} events (one symbol)")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; CPU s = all threads")
    print(f"{'case':<{width}}  {'wall s':>7}  {'CPU s':>7}  {'events/s wall':>14}  {'events/s CPU':>14}"
          f"  {'vs baseline (wall)':>18}")
    for name, secs, cpu in rows:
        print(f"{name:<{width}}  {secs:7.3f}  {cpu:7.3f}  {events / secs:14,.0f}  {events / cpu:14,.0f}"
              f"  {t_base / secs:17.2f}x")
    print(f"sides identical to the Polars baseline and streaming == whole frame: {bool(same)}")
    print(f"streaming peak RSS (fresh process, {int(streamed_rows):,} trades classified): "
          f"{float(peak_mib):.0f} MiB (after imports: {float(base_mib):.0f} MiB); goal <= 512 MiB")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--rss":
        _stream_rss(int(sys.argv[2]))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000)
