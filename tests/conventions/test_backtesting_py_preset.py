"""With ``conventions="backtesting.py"`` both engines reproduce backtesting.py on the repository's GOOG
data: trades, final equity and its statistics, in every shared setup plus the SMA(5/25) pairs whose
signals repeat (a golden cross while already long, after a tie hid the death cross between)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import polars as pl
import pytest

from _peers import GOOG_CASES, backtesting_sma_cross, goog_frame, goog_source
from backtape.engine import run_backtest, sma_crossover

pytest.importorskip("backtesting")
REL = 1e-9
#: (fast, slow, commission, allow_short, trade_on_close): SMA(5/25) signals a golden cross twice in a row
REPEATED = [(5, 25, 0.002, True, False), (5, 25, 0.0, False, False), (5, 25, 0.001, True, True)]
#: backtape metric -> (backtesting.py statistic, scale to backtape's units)
STATS = {
    "total_return": ("Return [%]", 0.01), "cagr": ("CAGR [%]", 0.01),
    "volatility": ("Volatility (Ann.) [%]", 0.01),
    "sharpe": ("Sharpe Ratio", 1.0), "sortino": ("Sortino Ratio", 1.0), "calmar": ("Calmar Ratio", 1.0),
    "max_drawdown": ("Max. Drawdown [%]", -0.01), "win_rate": ("Win Rate [%]", 0.01),
    "best_trade": ("Best Trade [%]", 0.01), "worst_trade": ("Worst Trade [%]", 0.01),
    "avg_trade": ("Avg. Trade [%]", 0.01), "profit_factor": ("Profit Factor", 1.0), "sqn": ("SQN", 1.0),
    "exposure": ("Exposure Time [%]", 0.01), "final_equity": ("Equity Final [$]", 1.0),
}


def _backtesting_py(fast: int, slow: int, commission: float, allow_short: bool, on_close: bool) -> Any:
    from backtesting import Backtest

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Backtest(goog_frame(), backtesting_sma_cross(fast, slow, allow_short), cash=10_000,
                        commission=commission, trade_on_close=on_close).run()


def _check(res: Any, stats: Any, opens: np.ndarray, on_close: bool) -> None:
    ours, theirs = res.trades, stats._trades
    assert len(theirs) > 10 and ours.height == len(theirs)
    bar_of = {int(t): i for i, t in enumerate(opens)}
    if not on_close:
        np.testing.assert_array_equal([bar_of.get(t) for t in ours["entry_time"].cast(pl.Int64)],
                                      theirs.EntryBar.to_numpy())
    np.testing.assert_array_equal(ours["size"].to_numpy() * ours["side"].to_numpy(), theirs.Size.to_numpy())
    for col, peer in (("entry_price", "EntryPrice"), ("exit_price", "ExitPrice"), ("pnl", "PnL"),
                      ("commission", "Commission")):
        np.testing.assert_allclose(ours[col].to_numpy(), theirs[peer].to_numpy(), rtol=REL, err_msg=col)
    m = res.metrics
    assert m["closed_trades"] == stats["# Trades"]
    for name, (peer, scale) in STATS.items():
        assert m[name] == pytest.approx(float(stats[peer]) * scale, rel=REL, abs=1e-12), name
    assert m["max_drawdown_time"] == stats["Max. Drawdown Duration"].total_seconds()


@pytest.mark.parametrize("engine", ["event", "vector"])
@pytest.mark.parametrize(("fast", "slow", "commission", "allow_short", "on_close"), GOOG_CASES + REPEATED)
def test_engines_reproduce_backtesting_py_under_its_preset(engine: str, fast: int, slow: int,
                                                           commission: float, allow_short: bool,
                                                           on_close: bool) -> None:
    stats = _backtesting_py(fast, slow, commission, allow_short, on_close)
    source, opens = goog_source()
    res = run_backtest(sma_crossover(fast, slow, allow_short), "GOOG", int(opens[0]), int(opens[-1]) + 1,
                       source=source, cash=10_000, commission=commission, engine=engine,
                       fill="close" if on_close else "next_open", conventions="backtesting.py")
    _check(res, stats, opens, on_close)


def test_repeated_signal_differs_from_backtapes_own_convention() -> None:
    """The preset is what makes the SMA(5/25) runs agree: backtape's default keeps the position."""
    fast, slow, commission, allow_short, on_close = REPEATED[0]
    stats = _backtesting_py(fast, slow, commission, allow_short, on_close)
    source, opens = goog_source()
    own = run_backtest(sma_crossover(fast, slow, allow_short), "GOOG", int(opens[0]), int(opens[-1]) + 1,
                       source=source, cash=10_000, commission=commission)
    assert own.metrics["closed_trades"] == stats["# Trades"] - 1
    assert not math.isclose(own.metrics["final_equity"], stats["Equity Final [$]"], rel_tol=1e-6)


@pytest.mark.parametrize(("fast", "slow", "commission", "allow_short", "on_close"),
                         [GOOG_CASES[0], REPEATED[0], REPEATED[2]])
def test_finalize_trades_closes_the_open_positions_on_the_last_bar(fast: int, slow: int, commission: float,
                                                                   allow_short: bool, on_close: bool) -> None:
    from backtesting import Backtest

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = Backtest(goog_frame(), backtesting_sma_cross(fast, slow, allow_short), cash=10_000,
                         commission=commission, trade_on_close=on_close, finalize_trades=True).run()
    source, opens = goog_source()
    res = run_backtest(sma_crossover(fast, slow, allow_short), "GOOG", int(opens[0]), int(opens[-1]) + 1,
                       source=source, cash=10_000, commission=commission, finalize_trades=True,
                       fill="close" if on_close else "next_open", conventions="backtesting.py")
    assert res.open_trades.height == 0 and res.fills["tag"][-1] == "finalize"
    _check(res, stats, opens, on_close)
    from backtape.errors import ConfigError

    with pytest.raises(ConfigError, match="finalize_trades"):
        run_backtest(sma_crossover(fast, slow, allow_short), "GOOG", int(opens[0]), int(opens[-1]) + 1,
                     source=source, engine="vector", finalize_trades=True)
