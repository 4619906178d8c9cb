"""Adapter overhead: a peer strategy run through its backtape adapter (data served by a workspace from
the CSV, result built) against the same peer run alone on a pandas frame already in memory, in the
same process (median of several runs, after one warm-up that also pays vectorbt's numba compile).

    python benchmarks/bench_adapters.py [runs]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "tests"))
GOOG = ROOT / "tests" / "data" / "GOOG_1d_2004-08-19_2013-03-01.csv"
BTC = ROOT / "tests" / "data" / "BTC-PERP_1m_2021-12-31_2022-02-01.csv"


def _median(fn: Callable[[], Any], runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _cases(ws: Any) -> list[tuple[str, Callable[[], Any], Callable[[], Any]]]:
    import backtrader as bt
    import vectorbt as vbt
    from backtesting import Backtest

    from _peers import backtesting_sma_cross
    from backtape.adapters import backtesting_py, vectorbt
    from backtape.adapters import backtrader as bta
    from backtape.sources.files import CSVDataSource

    goog, btc = CSVDataSource(GOOG), CSVDataSource(BTC, calendar="24/7")
    goog_df = pd.read_csv(GOOG, index_col=0, parse_dates=True)
    btc_df = pd.read_csv(BTC, index_col=0, parse_dates=True).rename(columns=str.capitalize)
    btc_df = btc_df.loc["2022-01-03":"2022-01-09"]
    cross = backtesting_sma_cross(10, 20, True)

    class SmaCross(bt.Strategy):
        def __init__(self) -> None:
            self.x = bt.ind.CrossOver(bt.ind.SMA(period=10), bt.ind.SMA(period=30))

        def next(self) -> None:
            if self.x > 0:
                self.order_target_percent(target=0.95)
            elif self.x < 0:
                self.close()

    def cerebro() -> float:
        c = bt.Cerebro(stdstats=False)
        c.adddata(bt.feeds.PandasData(dataname=goog_df, openinterest=None))
        c.broker.setcash(10_000)
        c.addstrategy(SmaCross)
        c.run()
        return c.broker.getvalue()

    def signals(close: pd.DataFrame) -> dict[str, Any]:
        f, s = close.rolling(20).mean(), close.rolling(60).mean()
        up, down = (f > s) & (f.shift() <= s.shift()), (f < s) & (f.shift() >= s.shift())
        return {"entries": up, "short_entries": down}

    def vbt_alone() -> Any:
        close = btc_df[["Close"]]
        return vbt.Portfolio.from_signals(close, init_cash=1e6, fees=5e-4, **signals(close)).final_value()

    return [
        ("backtesting.py SmaCross GOOG 1d (2,148 bars)",
         lambda: Backtest(goog_df, cross, cash=10_000, commission=0.002).run(),
         lambda: backtesting_py.run(cross, "GOOG", "2004-01-01", "2014-01-01", source=goog, cash=10_000,
                                    commission=0.002, workspace=ws)),
        ("backtrader SmaCross GOOG 1d (2,148 bars)", cerebro,
         lambda: bta.run(SmaCross, "GOOG", "2004-01-01", "2014-01-01", source=goog, cash=10_000,
                         workspace=ws)),
        ("vectorbt long/short BTC-PERP 1min (10,080 bars)", vbt_alone,
         lambda: vectorbt.run(lambda d: signals(d.wide("close")), "BTC-PERP", "2022-01-03", "2022-01-10",
                              "1min", source=btc, cash=1e6, commission=5e-4, workspace=ws)),
    ]


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    warnings.simplefilter("ignore")
    from backtape import Workspace

    work = Path(tempfile.mkdtemp(prefix="bench-adapters-"))
    (work / "backtape.yaml").write_text(f"data:\n  cache_dir: {work / 'c'}\n  results_db: {work / 'r.db'}\n")
    ws = Workspace(work / "backtape.yaml")
    print(f"{'case':<50} {'peer alone':>11} {'adapter':>9} {'overhead':>9}")
    for name, alone, adapted in _cases(ws):
        a, b = _median(alone, runs), _median(adapted, runs)
        print(f"{name:<50} {a * 1e3:>9.1f}ms {b * 1e3:>7.1f}ms {(b - a) * 1e3:>7.1f}ms")


if __name__ == "__main__":
    main()
