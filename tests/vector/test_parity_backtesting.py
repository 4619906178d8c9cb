"""The vector engine reproduces backtesting.py's SMA crossover trades and equity on its GOOG data."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

from backtape.vector import crossed_above, crossed_below, simulate, sma

backtesting = pytest.importorskip("backtesting")
from backtesting import Backtest  # noqa: E402
from backtesting.test import GOOG  # noqa: E402

from _peers import GOOG_CASES, backtesting_sma_cross  # noqa: E402

REL = 1e-9


@pytest.mark.parametrize(("fast", "slow", "commission", "allow_short", "on_close"), GOOG_CASES)
def test_sma_crossover_matches_backtesting_py(
    fast: int, slow: int, commission: float, allow_short: bool, on_close: bool
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(
            GOOG, backtesting_sma_cross(fast, slow, allow_short), cash=10_000, commission=commission,
            trade_on_close=on_close,
        )  # fmt: skip
        stats = bt.run()
    close, open_ = GOOG.Close.to_numpy(), GOOG.Open.to_numpy()
    f, s = sma(close, fast), sma(close, slow)
    up, down = crossed_above(f, s), crossed_below(f, s)
    shorts: dict[str, Any] = {"short_entries": down, "short_exits": up} if allow_short else {}
    res = simulate(
        close, open=open_, high=GOOG.High.to_numpy(), low=GOOG.Low.to_numpy(), entries=up, exits=down,
        cash=10_000, commission=commission, fill="close" if on_close else "next_open", **shorts,
    )  # fmt: skip
    ours = res.trades.filter(~res.trades["is_open"])
    theirs = stats._trades
    assert len(theirs) > 10
    assert ours.height == len(theirs)
    np.testing.assert_array_equal(ours["entry_idx"].to_numpy(), theirs.EntryBar.to_numpy())
    np.testing.assert_array_equal(ours["exit_idx"].to_numpy(), theirs.ExitBar.to_numpy())
    np.testing.assert_array_equal(ours["size"].to_numpy(), theirs.Size.to_numpy())
    np.testing.assert_allclose(ours["entry_price"].to_numpy(), theirs.EntryPrice.to_numpy(), rtol=REL)
    np.testing.assert_allclose(ours["exit_price"].to_numpy(), theirs.ExitPrice.to_numpy(), rtol=REL)
    np.testing.assert_allclose(ours["pnl"].to_numpy(), theirs.PnL.to_numpy(), rtol=REL)
    np.testing.assert_allclose(ours["commission"].to_numpy(), theirs.Commission.to_numpy(), rtol=REL)
    assert res.equity[-1, 0] == pytest.approx(stats["Equity Final [$]"], rel=REL)
    assert res.column_metrics()["closed_trades"] == stats["# Trades"]
    assert res.column_metrics()["sqn"] == pytest.approx(stats["SQN"], rel=REL)
    if not on_close:
        # backtesting.py books a close-filled trade's commission one bar late, so the whole
        # curve is compared for next-open fills only (final equity agrees in both modes).
        np.testing.assert_allclose(res.equity[:, 0], stats._equity_curve.Equity.to_numpy(), rtol=REL)
