"""All-in sizing at an exact division: 100,000 / 0.78125 = 128,000 shares. backtape (and vectorbt)
divide exactly; backtesting.py spends (1 - 2**-52) of its cash and buys 127,999; the preset's
``budget_scale`` reproduces that in both engines."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from backtape.engine import Context, Strategy, run_backtest
from backtape.options import BACKTESTING_PY_BUDGET_SCALE, CONVENTIONS, TradingOptions
from backtape.sources.memory import FrameDataSource, daily_bars

PRICE = 0.78125  # 2**-7 * 100: 100,000 / PRICE is exactly 128,000
ROWS = [(PRICE, PRICE, PRICE, PRICE)] * 5
FIRST, END = "2024-01-02", "2024-01-09"


class AllIn(Strategy):
    """Goes all-in long once (event engine: ``on_bar``; vector engine: ``target_weights``)."""

    def on_bar(self, ctx: Context) -> None:
        if not ctx.position("T"):
            ctx.order_target_percent("T", 1.0)

    def target_weights(self, data: Any) -> np.ndarray:
        return np.ones((data.n_steps, 1))


@pytest.mark.parametrize("engine", ["event", "vector"])
@pytest.mark.parametrize(("conventions", "shares"), [("backtape", 128_000), ("vectorbt", 128_000),
                                                     ("backtesting.py", 127_999)])
def test_exact_division(engine: str, conventions: str, shares: int) -> None:
    src = FrameDataSource(daily_bars("T", ROWS, FIRST))
    res = run_backtest(AllIn(), "T", FIRST, END, source=src, cash=100_000, engine=engine,
                       conventions=conventions)
    assert res.fills["quantity"][0] == shares


def test_backtesting_py_buys_127999() -> None:
    pytest.importorskip("backtesting")
    from backtesting import Backtest
    from backtesting import Strategy as PeerStrategy

    class Buy(PeerStrategy):
        def init(self) -> None:
            pass

        def next(self) -> None:
            if not self.position:
                self.buy()

    frame = pd.DataFrame({c: [PRICE] * 5 for c in ("Open", "High", "Low", "Close")} | {"Volume": [1e6] * 5},
                         index=pd.date_range(FIRST, periods=5, freq="B"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = Backtest(frame, Buy, cash=100_000, finalize_trades=True).run()
    assert stats._trades.Size.tolist() == [127_999]
    assert int(100_000 * BACKTESTING_PY_BUDGET_SCALE // PRICE) == 127_999


def test_presets_are_options_and_overrides_win() -> None:
    opts = TradingOptions.conventions("backtesting.py", fill="close")
    assert (opts.repeat_signals, opts.budget_scale, opts.statistics, opts.fill) == (
        "reenter", BACKTESTING_PY_BUDGET_SCALE, "backtesting.py", "close")
    assert TradingOptions(cash=5).with_conventions("vectorbt").replace(cash=7).fill == "close"
    # switching presets resets every convention option
    for name in CONVENTIONS:
        assert TradingOptions.conventions(name).with_conventions("backtape") == TradingOptions()
    assert set(CONVENTIONS) == {"backtape", "backtesting.py", "vectorbt", "backtrader"}
    from backtape.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown conventions 'zipline'"):
        TradingOptions.conventions("zipline")
    with pytest.raises(ConfigError, match="budget_scale must be in"):
        TradingOptions(budget_scale=1.5)
