"""Nothing after the clock: peeking indicators raise, history ends at the last complete bar."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from backtape.engine import Context, Strategy, run_backtest
from backtape.errors import LookAheadError

from .conftest import END, FIRST, HAND, hand_source


def _next_close(values: np.ndarray) -> np.ndarray:
    out = np.full_like(values, np.nan)
    out[:-1] = values[1:]
    return out


class Peeker(Strategy):
    params: ClassVar[dict[str, Any]] = {}

    def initialize(self, ctx: Context) -> None:
        self.tomorrow = ctx.indicator(_next_close, name="tomorrow")


class Watcher(Strategy):
    """Records what history shows at every bar and tries to read past the clock."""

    params: ClassVar[dict[str, Any]] = {}

    def initialize(self, ctx: Context) -> None:
        self.windows: list[np.ndarray] = []
        self.ahead_errors = 0

    def on_bar(self, ctx: Context) -> None:
        n = min(ctx.bar_index + 1, 3)
        self.windows.append(ctx.history("T", n, "close"))
        try:
            ctx.portal.get_history_window(["T"], ctx.now + 1, 1, "1d", "close")
        except LookAheadError:
            self.ahead_errors += 1
        with pytest.raises(LookAheadError):
            ctx.indicator(np.cumsum)[0]  # positive indices do not exist


def test_indicator_that_peeks_ahead_raises() -> None:
    with pytest.raises(LookAheadError, match="tomorrow"):
        run_backtest(Peeker(), "T", FIRST, END, source=hand_source())


def test_history_never_returns_bars_after_the_clock() -> None:
    w = Watcher()
    run_backtest(w, "T", FIRST, END, source=hand_source())
    closes = [r[3] for r in HAND]
    assert len(w.windows) == len(HAND)
    for k, window in enumerate(w.windows):
        assert window[-1] == closes[k]  # the newest visible bar is the one that just completed
        assert list(window) == closes[max(k - 2, 0):k + 1]
    assert w.ahead_errors == len(HAND)
