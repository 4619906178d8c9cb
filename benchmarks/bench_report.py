"""Report benchmark: time and size of ``result.report(path)`` for SMA(10, 50) on 98,280 and 525,600
synthetic one-minute bars, beside backtesting.py's ``bt.plot()`` (its own decimation, bokeh HTML)
on the same bars from the same run.

    python benchmarks/bench_report.py [--sizes 98280,525600] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from backtape.engine import run_backtest, sma_crossover
from bench_engine import CASH, COMMISSION, FAST, SLOW, _bars, _range


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_backtape(n: int, out: Path, repeat: int) -> tuple[float, int, int]:
    src = _bars(n)
    start, end = _range(src)
    res = run_backtest(
        sma_crossover(FAST, SLOW), "SYN", start, end, "1min", source=src, cash=CASH, commission=COMMISSION
    )
    path = out / f"backtape_{n}.html"
    res.report(path)  # first call also compresses plotly.js once per process
    return _best(lambda: res.report(path), repeat), path.stat().st_size, res.trades.height


def bench_backtesting_py(n: int, out: Path, repeat: int) -> tuple[float, int] | None:
    try:
        from backtesting import Backtest, Strategy
        from backtesting.lib import crossover
        from backtesting.test import SMA
    except ImportError:
        return None
    names = {"ts": "Date", "open": "Open", "high": "High", "low": "Low", "close": "Close", "volume": "Volume"}
    df = _bars(n).bars.select(list(names)).rename(names).to_pandas().set_index("Date")
    df.index = df.index.tz_localize(None)

    class SmaCross(Strategy):
        def init(self) -> None:
            self.fast = self.I(SMA, self.data.Close, FAST)
            self.slow = self.I(SMA, self.data.Close, SLOW)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                self.position.close()
                self.buy()
            elif crossover(self.slow, self.fast):
                self.position.close()

    path = out / f"backtesting_{n}.html"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(df, SmaCross, cash=CASH, commission=COMMISSION)
        bt.run()
        secs = _best(lambda: bt.plot(filename=str(path), open_browser=False), repeat)
    return secs, path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="98280,525600")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for n in (int(s) for s in args.sizes.split(",")):
            secs, size, trades = bench_backtape(n, out, args.repeat)
            rows.append((f"{n:,}", "backtape report", f"{secs:.2f}", f"{size / 1e6:.2f}", f"{trades:,}"))
            peer = bench_backtesting_py(n, out, args.repeat)
            if peer is not None:
                rows.append(
                    (f"{n:,}", "backtesting.py bt.plot()", f"{peer[0]:.2f}", f"{peer[1] / 1e6:.2f}", "")
                )
    head = ("bars", "tool", "seconds", "MB", "trades marked")
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    for r in (head, *rows):
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
