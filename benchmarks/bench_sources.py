"""Benchmark of the local, sample and synthetic sources; prints a table.

Run `python benchmarks/bench_sources.py`. CSV loading is compared with pandas.read_csv (the usual
peer) on the same file in the same process; pandas only parses, backtape also maps sessions.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from backtape.sources import SyntheticDataSource
from backtape.sources.files import CSVDataSource, ParquetDataSource
from backtape.sources.sample import sample_data_dir


def _best(fn: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    data = sample_data_dir()
    rows: list[tuple[str, float, int]] = []
    csv = data / "AAPL_1d_2012-2014_with_div_split.csv"
    t, df = _best(lambda: CSVDataSource(csv, adjusted="splits").frame("bars"))
    rows.append(("CSV daily file -> canonical bars (backtape)", t, df.height))  # type: ignore[union-attr]
    try:
        import pandas as pd

        t, pdf = _best(lambda: pd.read_csv(csv, parse_dates=["date"]))
        rows.append(("CSV daily file -> DataFrame (pandas.read_csv)", t, len(pdf)))  # type: ignore[arg-type]
    except ImportError:
        pass
    pq = data / "BTC-PERP_1m_2021-12-31_2022-02-01.parquet"
    t, df = _best(lambda: ParquetDataSource(pq, calendar="24/7").frame("bars"))
    rows.append(("Parquet 1-minute file -> canonical bars", t, df.height))  # type: ignore[union-attr]
    for cal in ("XNYS", "24/7"):
        src = SyntheticDataSource(seed=1, calendar=cal)
        src.fetch_sync("W", "2024-01-02", "2024-01-03", "1min")  # build the calendar clock once
        t, df = _best(lambda src=src: src.fetch_sync("X", "2023-01-01", "2024-01-01", "1min"))
        rows.append((f"synthetic 1 year of 1-minute bars ({cal})", t, df.height))  # type: ignore[union-attr]
        t, df = _best(lambda src=src: src.fetch_sync("X", "2023-01-01", "2024-01-01", "1d"))
        rows.append((f"synthetic 1 year of daily bars ({cal})", t, df.height))  # type: ignore[union-attr]
    src = SyntheticDataSource(seed=1, calendar="24/7", trades_per_minute=20)
    t, df = _best(lambda: src.fetch_kind_sync("trades", "X", "2024-01-01", "2024-12-14T05:20:00Z"), 1)
    rows.append(("synthetic 10M trades (24/7, 20 per minute)", t, df.height))  # type: ignore[union-attr]
    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  {'seconds':>9}  {'rows':>10}  {'rows/s':>12}")
    for name, secs, n in rows:
        print(f"{name:<{width}}  {secs:9.3f}  {n:10d}  {n / secs:12.0f}")


if __name__ == "__main__":
    main()
