"""SMA crossovers tie exactly where pandas' rolling mean ties: on real daily data, every pair of a
50-pair grid trades as backtesting.py does (its SMA is ``pd.Series.rolling(n).mean()``), through
``simulate`` and through the sweep kernel."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import backtape
from backtape.indicators import sma
from backtape.vector import crossed_above, crossed_below, simulate
from backtape.vector.sweep import sma_crossover_sweep

backtesting = pytest.importorskip("backtesting")
from backtesting import Backtest  # noqa: E402

from _peers import backtesting_sma_cross  # noqa: E402

GOOG = Path(__file__).resolve().parents[1] / "data" / "GOOG_1d_2004-08-19_2013-03-01.csv"
SAMPLE = Path(backtape.__file__).parent / "sample_data"  # the zipline files the package ships
#: fast x slow with fast < slow; holds the pairs where a running sum without pandas' exact update
#: order trades differently on these files: (24, 32) on GOOG, (4, 6) on KO, (2, 3), (2, 6), (2, 12)
#: and (4, 8) on MSFT
GRID = [(f, s) for f in (2, 4, 5, 10, 24) for s in (3, 6, 8, 12, 20, 32, 40, 50, 75, 100, 150, 200) if f < s]
CASH = 1_000_000


def _bars(name: str) -> pd.DataFrame:
    """OHLCV with backtesting.py's column names and a DatetimeIndex."""
    if name.startswith("QUANDL:"):
        raw = pd.read_csv(SAMPLE / "QUANDL_WIKI_sample_1d_2014_multi_ticker_adj.csv")
        raw = raw[raw.ticker == name.split(":")[1]]
        frame = raw[["date", "adj_open", "adj_high", "adj_low", "adj_close", "adj_volume"]]
        frame.columns = ["date", "open", "high", "low", "close", "volume"]
    elif name == "GOOG":
        frame = pd.read_csv(GOOG).rename(columns={"Unnamed: 0": "date"})
    else:
        frame = pd.read_csv(SAMPLE / name)
    frame = frame.rename(columns=str.capitalize)
    return frame.set_index(pd.DatetimeIndex(frame.pop("Date")))[["Open", "High", "Low", "Close", "Volume"]]


DATASETS = [
    "GOOG",
    "AAPL_1d_2012-2014_with_div_split.csv",
    "IBM_1d_2012-2014_with_div_split.csv",
    "KO_1d_2012-2014_with_div_split.csv",
    "MSFT_1d_2012-2014_with_div_split.csv",
    "QUANDL:AAPL",
]


def test_grid_has_fifty_pairs() -> None:
    assert len(GRID) == 50 and all(f < s for f, s in GRID)


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_pair_trades_as_backtesting_py(dataset: str) -> None:
    bars = _bars(dataset)
    close, open_ = bars.Close.to_numpy(), bars.Open.to_numpy()
    sweep = sma_crossover_sweep(close, pairs=GRID, open=open_, cash=CASH)
    differ, trades = [], 0
    for row, (fast, slow) in enumerate(GRID):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stats = Backtest(bars, backtesting_sma_cross(fast, slow, False, rebuy=False), cash=CASH).run()
        theirs = stats._trades
        f, s = sma(close, fast), sma(close, slow)
        res = simulate(close, open=open_, entries=crossed_above(f, s), exits=crossed_below(f, s), cash=CASH)
        ours = res.trades.filter(~res.trades["is_open"])
        same = (ours.height == len(theirs)
                and np.array_equal(ours["entry_idx"].to_numpy(), theirs.EntryBar.to_numpy())
                and np.array_equal(ours["exit_idx"].to_numpy(), theirs.ExitBar.to_numpy())
                and np.array_equal(ours["size"].to_numpy(), theirs.Size.to_numpy())
                and sweep["final_equity"][row] == pytest.approx(stats["Equity Final [$]"], rel=1e-9)
                and res.equity[-1, 0] == pytest.approx(stats["Equity Final [$]"], rel=1e-9))
        trades += len(theirs)
        if not same:
            differ.append((fast, slow))
    assert trades >= 2 * len(GRID)
    assert differ == [], f"{dataset}: {len(differ)} of {len(GRID)} pairs trade differently: {differ}"
