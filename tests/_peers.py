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
