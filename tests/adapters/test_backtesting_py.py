"""backtesting.py through the adapter on backtape data == backtesting.py run alone on the same file."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import polars as pl
import pytest

from _adapter_data import BTC_RANGE, btc_pandas, goog_pandas
from _peers import backtesting_sma_cross
from backtape.engine.result import BacktestResult

pytest.importorskip("backtesting")
from backtape.adapters import backtesting_py

REL = 1e-9


def breakout(lookback: int, stop: float) -> Any:
    """Long on a close above the prior ``lookback``-bar high with a stop-loss ``stop`` below entry and a
    take-profit twice as far; short on the mirror image (orders with sl/tp, exclusive of each other)."""
    from backtesting import Strategy

    class Breakout(Strategy):
        def init(self) -> None:
            pass

        def next(self) -> None:
            if len(self.data) <= lookback or self.position:
                return
            close = self.data.Close[-1]
            if close > self.data.High[-lookback - 1:-1].max():
                self.buy(sl=close * (1 - stop), tp=close * (1 + 2 * stop))
            elif close < self.data.Low[-lookback - 1:-1].min():
                self.sell(sl=close * (1 + stop), tp=close * (1 - 2 * stop))

    return Breakout


def _peer(df: Any, cls: Any, **options: Any) -> Any:
    from backtesting import Backtest

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Backtest(df, cls, **options).run()


def _same(res: BacktestResult, stats: Any, on_close: bool = False) -> None:
    theirs = stats._trades
    ours = res.trades
    assert ours.height == len(theirs) > 5
    bars = res.equity["ts"].cast(pl.Int64).to_numpy()
    if not on_close:
        for col, peer_col in (("entry_time", "EntryBar"), ("exit_time", "ExitBar")):
            idx = np.searchsorted(bars, ours[col].cast(pl.Int64).to_numpy())
            np.testing.assert_array_equal(idx, theirs[peer_col].to_numpy())
    np.testing.assert_array_equal(ours["size"].to_numpy() * ours["side"].to_numpy(), theirs.Size.to_numpy())
    for col, peer_col in (("entry_price", "EntryPrice"), ("exit_price", "ExitPrice"), ("pnl", "PnL"),
                          ("commission", "Commission")):
        np.testing.assert_allclose(ours[col].to_numpy(), theirs[peer_col].to_numpy(), rtol=REL)
    assert res.metrics["final_equity"] == pytest.approx(stats["Equity Final [$]"], rel=REL)
    np.testing.assert_allclose(res.equity["equity"].to_numpy(), stats._equity_curve.Equity.to_numpy(),
                               rtol=REL)
    assert res.fingerprint["engine"] == "backtesting"


@pytest.mark.parametrize(("fast", "slow", "short", "options"), [
    (10, 20, False, {}),
    (5, 30, True, {"trade_on_close": True, "finalize_trades": True}),
    (20, 50, True, {"exclusive_orders": True}),
])
def test_sma_cross_on_goog_daily(ws, goog, fast: int, slow: int, short: bool, options: dict) -> None:
    cls = backtesting_sma_cross(fast, slow, short)
    stats = _peer(goog_pandas(), cls, cash=10_000, commission=0.002, **options)
    res = backtesting_py.run(cls, "GOOG", "2004-01-01", "2014-01-01", source=goog, cash=10_000,
                             commission=0.002, workspace=ws, backtest_options=options)
    _same(res, stats, on_close=options.get("trade_on_close", False))
    if not options.get("finalize_trades"):
        assert res.open_trades.height == len(stats._strategy.trades)
    # the statistics count the positions still open, as backtape's engines do (they said "0 open")
    assert res.metrics["open_trades"] == res.open_trades.height
    assert res.metrics["trades"] == res.trades.height + res.open_trades.height
    assert res.metrics["open_pnl"] == pytest.approx(float(res.open_trades["pnl"].sum()), abs=1e-9)


@pytest.mark.parametrize(("lookback", "stop", "commission"), [(30, 0.004, 0.0005), (60, 0.01, 0.0)])
def test_breakout_with_stops_on_btc_minutes(ws, btc, lookback: int, stop: float, commission: float) -> None:
    cls = breakout(lookback, stop)
    stats = _peer(btc_pandas(), cls, cash=1_000_000, commission=commission, finalize_trades=True)
    res = backtesting_py.run(cls, "BTC-PERP", *BTC_RANGE, "1min", source=btc, cash=1_000_000,
                             commission=commission, workspace=ws, backtest_options={"finalize_trades": True})
    _same(res, stats)
    assert res.frequency == "1min" and res.equity.height == 5 * 1440


def test_sma_cross_on_btc_minutes_is_stored_and_read_back(ws, btc) -> None:
    cls = backtesting_sma_cross(10, 40, True)
    stats = _peer(btc_pandas(), cls, cash=1_000_000, commission=0.001)
    res = backtesting_py.run(cls, "BTC-PERP", *BTC_RANGE, "1min", source=btc, cash=1_000_000,
                             commission=0.001, workspace=ws)
    _same(res, stats)
    run_id = res.save(ws.results)
    back = ws.results.load_result(run_id)
    assert back.metrics["final_equity"] == pytest.approx(stats["Equity Final [$]"], rel=REL)
    assert back.trades.equals(res.trades)


def test_one_symbol_only(ws, goog) -> None:
    from backtape.errors import ConfigError

    with pytest.raises(ConfigError, match="one symbol"):
        backtesting_py.run(backtesting_sma_cross(5, 10, False), ["GOOG", "AAPL"], "2005-01-01", "2006-01-01",
                           source=goog, workspace=ws)
