"""backtesting.py's side of the parity tests (importable because pytest puts tests/ on the path)."""

from __future__ import annotations

from typing import Any

#: backtesting.py setups both engines are checked against on its GOOG data:
#: (fast, slow, commission, allow_short, trade_on_close)
GOOG_CASES = [
    (10, 20, 0.002, False, False),
    (10, 20, 0.0, False, False),
    (5, 30, 0.002, True, False),
    (20, 50, 0.001, False, True),
    (10, 20, 0.002, True, True),
]


def backtesting_sma_cross(fast: int, slow: int, allow_short: bool, rebuy: bool = True) -> Any:
    """A backtesting.py ``Strategy`` class: all-in long on a golden cross, flat (or short) on a death
    cross. ``rebuy=False`` keeps a long position on a golden cross instead of closing and buying again
    (backtape's built-in rule; the two differ after a tie hides a death cross)."""
    from backtesting import Strategy
    from backtesting.lib import crossover
    from backtesting.test import SMA

    class SmaCross(Strategy):
        def init(self) -> None:
            self.fast = self.I(SMA, self.data.Close, fast)
            self.slow = self.I(SMA, self.data.Close, slow)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                if rebuy or not self.position.is_long:
                    self.position.close()
                    self.buy()
            elif crossover(self.slow, self.fast):
                self.position.close()
                if allow_short:
                    self.sell()

    return SmaCross


GOOG_CSV = __import__("pathlib").Path(__file__).parent / "data" / "GOOG_1d_2004-08-19_2013-03-01.csv"


def goog_frame() -> Any:
    """The repository's GOOG daily bars as backtesting.py takes them (a DatetimeIndex, Open..Volume)."""
    import pandas as pd

    frame = pd.read_csv(GOOG_CSV).rename(columns={"Unnamed: 0": "date"})
    frame = frame.rename(columns=str.capitalize)
    return frame.set_index(pd.DatetimeIndex(frame.pop("Date")))[["Open", "High", "Low", "Close", "Volume"]]


def goog_source(frame: Any = None) -> tuple[Any, Any]:
    """``frame`` (default ``goog_frame()``) as a backtape source on XNYS sessions, and the sessions'
    opens (UTC ns): bar ``i`` of backtesting.py is the session opening at ``opens[i]``."""
    import numpy as np
    import polars as pl

    from backtape.calendars import get_calendar
    from backtape.sources.memory import FrameDataSource

    frame = goog_frame() if frame is None else frame
    cal = get_calendar("XNYS")
    days = frame.index.to_numpy().astype("datetime64[D]")
    labels = cal.labels.astype("datetime64[ns]").astype("datetime64[D]")
    idx = np.searchsorted(labels, days)
    assert (labels[idx] == days).all(), "GOOG has a day that is not an XNYS session"
    utc = pl.Datetime("ns", "UTC")
    bars = pl.DataFrame({
        "symbol": "GOOG", "ts": pl.Series(cal.opens[idx]).cast(utc),
        "ts_end": pl.Series(cal.closes[idx]).cast(utc),
        **{c.lower(): frame[c].to_numpy(float) for c in ("Open", "High", "Low", "Close", "Volume")},
    })
    return FrameDataSource(bars, name="goog"), cal.opens[idx]
