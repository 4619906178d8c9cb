"""Benchmark: session-aware aggregation of one year of 1-minute bars, beside a plain pandas resample.

Data: one symbol, every minute of the 2024 NYSE sessions (~98k bars) and of a 24/7 year (525,600
bars), generated inline with numpy. pandas' ``resample`` is not session-aware (it bins on the UTC
clock and makes daily bars per UTC date, with empty bins for nights and weekends), so it is a speed
reference, not the same result.

Run: ``python benchmarks/bench_aggregate.py``
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import polars as pl

from backtape._time import NS_PER_MINUTE, to_ns
from backtape.aggregation import aggregate
from backtape.calendars import get_calendar
from backtape.schema import TS

TIMEFRAMES = {"5min": "5min", "1h": "1h", "1d": "1D"}  # backtape name -> pandas rule
REPEAT = 7


def year_of_minutes(calendar: str, seed: int = 7) -> pl.DataFrame:
    """Every session minute of 2024 on ``calendar`` as canonical bars with a random walk."""
    cal = get_calendar(calendar)
    lo, hi = np.searchsorted(cal.labels, [to_ns("2024-01-01"), to_ns("2025-01-01")])
    sessions = zip(cal.opens[lo:hi], cal.closes[lo:hi], strict=True)
    ts = np.concatenate([np.arange(o, c, NS_PER_MINUTE) for o, c in sessions])
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 5e-4, ts.size)))
    open_ = np.r_[close[0], close[:-1]]
    return pl.DataFrame({
        "symbol": "SYN", "ts": ts, "ts_end": ts + NS_PER_MINUTE, "open": open_,
        "high": np.maximum(open_, close) * (1 + rng.random(ts.size) * 1e-4),
        "low": np.minimum(open_, close) * (1 - rng.random(ts.size) * 1e-4), "close": close,
        "volume": rng.integers(1, 1000, ts.size).astype(np.float64),
    }).with_columns(pl.col("ts", "ts_end").cast(TS))


def best_ms(fn: Callable[[], object]) -> float:
    """Best wall time of ``REPEAT`` runs after one warm-up (JIT, caches), in milliseconds.

    The best run is the least disturbed by other processes on a shared machine.
    """
    fn()
    times = []
    for _ in range(REPEAT):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return min(times)


def pandas_resampler(df: pl.DataFrame) -> Callable[[str], Callable[[], object]] | None:
    """A factory of plain pandas OHLCV resamples of ``df``, or None when pandas is missing."""
    try:
        import pandas as pd
    except ImportError:
        return None
    stamps = df.get_column("ts").dt.epoch("ns").to_numpy().astype("datetime64[ns]")
    pdf = pd.DataFrame(
        {c: df.get_column(c).to_numpy() for c in ("open", "high", "low", "close", "volume")},
        index=pd.DatetimeIndex(stamps, tz="UTC"),
    )
    how = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    return lambda rule: lambda: pdf.resample(rule).agg(how)


def main() -> None:
    rows = []
    for calendar in ("XNYS", "24/7"):
        df = year_of_minutes(calendar)
        resample = pandas_resampler(df)
        for tf, rule in TIMEFRAMES.items():
            ours = best_ms(lambda df=df, tf=tf, calendar=calendar: aggregate(df, tf, calendar))
            theirs = best_ms(resample(rule)) if resample else float("nan")
            out_rows = aggregate(df, tf, calendar).height
            rows.append((calendar, f"{df.height:,}", tf, f"{out_rows:,}", ours, theirs))
    header = (f"{'calendar':<8} {'input':>9} {'to':>5} {'bars':>7} {'backtape ms':>12} {'pandas ms':>10} "
              f"{'ratio':>6}")
    print(f"aggregate(): one year of 1-minute bars (best of {REPEAT}; pandas resample is not session-aware)")
    print(header)
    print("-" * len(header))
    for calendar, n, tf, out_rows, ours, theirs in rows:
        print(f"{calendar:<8} {n:>9} {tf:>5} {out_rows:>7} {ours:>12.1f} {theirs:>10.1f} "
              f"{theirs / ours:>5.1f}x")
    print("ratio = pandas time / backtape time (above 1 means backtape is faster)")


if __name__ == "__main__":
    main()
