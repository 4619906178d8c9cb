"""Event-engine benchmark: SMA(10, 50) crossover on one year of synthetic one-minute bars.

Sizes: 98,280 bars (252 NYSE sessions x 390 minutes) and 525,600 bars (365 days x 1,440 on the
24/7 calendar). Bars are generated once and served from memory (``FrameDataSource``) so data
generation is not timed. For backtape we time ``run_backtest`` end to end (portal load, indicator,
loop, results) and the clock loop alone; the same strategy runs in backtesting.py and backtrader in
this process when they are installed (each engine with its own idea of all-in sizing, so trade
counts may differ slightly; the work per bar is the same). Every timing is the best of ``--repeat``
runs after one warm-up run (numba caches, imports).

    python benchmarks/bench_engine.py [--sizes 98280,525600] [--repeat 3] [--peers-max 98280]
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import polars as pl

from backtape._time import to_ns
from backtape.engine import run_backtest, sma_crossover
from backtape.engine.engine import _Run
from backtape.options import TradingOptions
from backtape.sources.memory import FrameDataSource
from backtape.sources.synthetic import SyntheticDataSource

FAST, SLOW, COMMISSION, CASH = 10, 50, 0.001, 10_000.0
SETUPS = {98_280: ("XNYS", "2023-01-03", "2024-03-01"), 525_600: ("24/7", "2023-01-01", "2024-01-01")}


def _bars(n: int) -> FrameDataSource:
    calendar, start, end = SETUPS[n]
    bars = SyntheticDataSource(seed=42, calendar=calendar).fetch_sync(["SYN"], start, end, "1min").head(n)
    if bars.height != n:
        raise SystemExit(f"synthetic source gave {bars.height} bars, wanted {n}")
    return FrameDataSource(bars, frequency="1min", calendar_name=calendar)


def _range(src: FrameDataSource) -> tuple[int, int]:
    ts = src.bars["ts"].cast(pl.Int64)
    return int(ts[0]), int(ts[-1]) + 1


def _best(fn: Callable[[], object], repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_backtape(src: FrameDataSource, repeat: int) -> tuple[float, float, int]:
    start, end = _range(src)

    def full() -> None:
        full.result = run_backtest(sma_crossover(FAST, SLOW), "SYN", start, end, "1min", source=src,
                                   cash=CASH, commission=COMMISSION)

    opts = TradingOptions(cash=CASH, commission=COMMISSION)
    loop_best = float("inf")
    for _ in range(repeat + 1):
        run = _Run(sma_crossover(FAST, SLOW), ["SYN"], to_ns(start), to_ns(end), "1min", src, opts)
        t0 = time.perf_counter()
        run.execute(None)
        loop_best = min(loop_best, time.perf_counter() - t0)
    return _best(full, repeat), loop_best, full.result.metrics["trades"]


def bench_backtesting_py(src: FrameDataSource, repeat: int) -> tuple[float, int] | None:
    try:
        from backtesting import Backtest, Strategy
        from backtesting.lib import crossover
        from backtesting.test import SMA
    except ImportError:
        return None
    names = {"ts": "Date", "open": "Open", "high": "High", "low": "Low", "close": "Close", "volume": "Volume"}
    df = src.bars.select(list(names)).rename(names).to_pandas().set_index("Date")

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

    def run() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run.stats = Backtest(df, SmaCross, cash=CASH, commission=COMMISSION).run()

    return _best(run, repeat), int(run.stats["# Trades"])


def bench_backtrader(src: FrameDataSource, repeat: int) -> tuple[float, int] | None:
    try:
        import backtrader as bt
    except ImportError:
        return None
    df = src.bars.select(pl.col("ts").dt.replace_time_zone(None).alias("datetime"), "open", "high", "low",
                         "close", "volume").to_pandas().set_index("datetime")

    class SmaCross(bt.Strategy):
        def __init__(self) -> None:
            self.cross = bt.indicators.CrossOver(bt.indicators.SMA(self.data.close, period=FAST),
                                                 bt.indicators.SMA(self.data.close, period=SLOW))
            self.trades = 0

        def notify_trade(self, trade) -> None:
            if trade.isclosed:
                self.trades += 1

        def next(self) -> None:
            if self.cross > 0 and not self.position:
                self.buy()
            elif self.cross < 0 and self.position:
                self.close()

    def run() -> None:
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.adddata(bt.feeds.PandasData(dataname=df, timeframe=bt.TimeFrame.Minutes))
        cerebro.addstrategy(SmaCross)
        cerebro.addsizer(bt.sizers.AllInSizerInt, percents=95)
        cerebro.broker.setcash(CASH)
        cerebro.broker.setcommission(commission=COMMISSION)
        run.trades = cerebro.run()[0].trades

    return _best(run, repeat), run.trades


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="98280,525600")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peers-max", type=int, default=98_280,
                        help="run backtesting.py and backtrader only up to this many bars (they are slow)")
    args = parser.parse_args()
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        src = _bars(n)
        full, loop, trades = bench_backtape(src, args.repeat)
        rows.append(("backtape run_backtest", n, full, trades, None))
        rows.append(("backtape loop only", n, loop, trades, None))
        if n <= args.peers_max:
            for name, fn in (("backtesting.py", bench_backtesting_py), ("backtrader", bench_backtrader)):
                got = fn(src, 1 if name == "backtrader" else args.repeat)
                missing = (f"{name} (not installed)", n, None, 0, None)
                rows.append((name, n, got[0], got[1], full) if got else missing)
    print(f"{'engine':<26}{'bars':>9}{'seconds':>10}{'bars/s':>13}{'trades':>8}{'backtape is':>14}")
    for name, n, sec, trades, ours in rows:
        if sec is None:
            print(f"{name:<26}{n:>9,}{'-':>10}{'-':>13}{'-':>8}{'-':>14}")
            continue
        ratio = f"{sec / ours:,.1f}x faster" if ours else ""
        print(f"{name:<26}{n:>9,}{sec:>10.3f}{n / sec:>13,.0f}{trades:>8}{ratio:>14}")


if __name__ == "__main__":
    main()
