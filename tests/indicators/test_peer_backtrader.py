"""ATR, RSI and EMA equal backtrader's (Wilder's ATR and RSI, SMA-seeded EMA) on every bar of GOOG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from backtape import indicators as ind

bt = pytest.importorskip("backtrader")

GOOG = Path(__file__).resolve().parents[1] / "data" / "GOOG_1d_2004-08-19_2013-03-01.csv"


def test_atr_rsi_ema_equal_backtrader() -> None:
    frame = pd.read_csv(GOOG, index_col=0, parse_dates=True)
    seen: dict[str, list[float]] = {"atr": [], "rsi": [], "ema": []}

    class Record(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.atr = bt.indicators.ATR(self.data, period=14)
            self.rsi = bt.indicators.RSI(self.data.close, period=14, safediv=True)
            self.ema = bt.indicators.EMA(self.data.close, period=20)

        def next(self) -> None:
            for name in seen:
                seen[name].append(getattr(self, name)[0])

    cerebro: Any = bt.Cerebro()
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.addstrategy(Record)
    cerebro.run()
    h, lo, c = (frame[col].to_numpy(float) for col in ("High", "Low", "Close"))
    ours = {"atr": ind.atr(h, lo, c, 14), "rsi": ind.rsi(c, 14), "ema": ind.ema(c, 20)}
    k = len(seen["atr"])
    assert k > 2000
    for name, values in seen.items():
        np.testing.assert_allclose(ours[name][-k:], values, rtol=1e-13, atol=0, err_msg=name)
