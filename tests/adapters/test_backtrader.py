"""backtrader through the adapter on backtape data == cerebro run alone on the same files."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from _adapter_data import BTC_RANGE, btc_pandas, daily_pandas, goog_pandas
from backtape.engine.result import BacktestResult

bt = pytest.importorskip("backtrader")
from backtape.adapters import backtrader as bta  # noqa: E402

REL = 1e-9


class SmaCross(bt.Strategy):
    """95% of the account long on a golden cross, flat on a death cross."""

    params = (("fast", 10), ("slow", 30))

    def __init__(self) -> None:
        self.cross = bt.ind.CrossOver(bt.ind.SMA(period=self.p.fast), bt.ind.SMA(period=self.p.slow))

    def next(self) -> None:
        if self.cross > 0:
            self.order_target_percent(target=0.95)
        elif self.cross < 0:
            self.close()


class RsiLongShort(bt.Strategy):
    """A fixed size long below RSI ``low`` and short above ``high``, reversing through flat."""

    params = (("period", 14), ("low", 30), ("high", 70), ("size", 2))

    def __init__(self) -> None:
        self.rsi = bt.ind.RSI(period=self.p.period)

    def next(self) -> None:
        pos = self.position.size
        if self.rsi < self.p.low and pos <= 0:
            self.order_target_size(target=self.p.size)
        elif self.rsi > self.p.high and pos >= 0:
            self.order_target_size(target=-self.p.size)


class Rotation(bt.Strategy):
    """Every ``every`` bars hold the symbol with the best ``lookback``-bar return (30% of the account)."""

    params = (("lookback", 20), ("every", 10))

    def __init__(self) -> None:
        self.mom = {d._name: bt.ind.ROC(d.close, period=self.p.lookback) for d in self.datas}

    def next(self) -> None:
        if len(self) % self.p.every:
            return
        best = max(self.datas, key=lambda d: self.mom[d._name][0])
        for d in self.datas:
            if d is not best and self.getposition(d).size:
                self.order_target_percent(d, target=0.0)
        self.order_target_percent(best, target=0.3)


def _peer(frames: dict[str, Any], cls: type, cash: float, commission: float, **params: Any) -> Any:
    cerebro = bt.Cerebro(stdstats=False)
    for name, df in frames.items():
        cerebro.adddata(bt.feeds.PandasData(dataname=df, openinterest=None), name=name)
    cerebro.broker.setcash(cash)
    cerebro.broker.setcommission(commission=commission)
    cerebro.addstrategy(cls, **params)
    cerebro.addanalyzer(bt.analyzers.Transactions, _name="tx")
    strat = cerebro.run()[0]
    return cerebro.broker.getvalue(), strat.analyzers.tx.get_analysis()


def _same(res: BacktestResult, value: float, transactions: dict) -> None:
    assert res.metrics["final_equity"] == pytest.approx(value, rel=REL)
    assert res.equity["equity"][-1] == pytest.approx(value, rel=REL)
    theirs = sorted((day.date(), name, size, price) for day, rows in transactions.items()
                    for size, price, _, name, _ in rows)
    days = res.fills["ts"].dt.date()
    ours = sorted(zip(days, res.fills["symbol"], res.fills["quantity"], res.fills["price"], strict=True))
    assert len(ours) == len(theirs) > 5
    for (day, sym, qty, price), (peer_day, name, size, peer_price) in zip(ours, theirs, strict=True):
        assert (day, sym, qty) == (peer_day, name, size)
        assert price == pytest.approx(peer_price, rel=REL)
    closed = res.trades
    assert closed.height > 2
    gross = closed["gross_pnl"].sum() + res.open_trades["gross_pnl"].sum()
    commission = res.fills["commission"].sum()
    assert res.cash + gross - commission == pytest.approx(value, rel=REL)
    assert res.fingerprint["engine"] == "backtrader"


def test_sma_cross_on_goog_daily(ws, goog) -> None:
    value, tx = _peer({"GOOG": goog_pandas()}, SmaCross, 10_000, 0.002, fast=10, slow=30)
    res = bta.run(SmaCross, "GOOG", "2004-01-01", "2014-01-01", source=goog, cash=10_000, commission=0.002,
                  workspace=ws, fast=10, slow=30)
    _same(res, value, tx)
    assert res.parameters == {"fast": 10, "slow": 30}


def test_rsi_long_short_on_btc_minutes(ws, btc) -> None:
    value, tx = _peer({"BTC-PERP": btc_pandas()}, RsiLongShort, 1_000_000, 0.0005)
    res = bta.run(RsiLongShort, "BTC-PERP", *BTC_RANGE, "1min", source=btc, cash=1_000_000,
                  commission=0.0005, workspace=ws)
    _same(res, value, tx)
    assert (res.trades["side"] == -1).any() and (res.trades["side"] == 1).any()


def test_rotation_across_two_symbols_daily(ws) -> None:
    names = ["IBM", "MSFT"]
    value, tx = _peer({n: daily_pandas(n) for n in names}, Rotation, 100_000, 0.001)
    res = bta.run(Rotation, names, "2012-01-01", "2015-01-01", source="sample", cash=100_000,
                  commission=0.001, workspace=ws, adjustment="split")
    _same(res, value, tx)
    assert set(res.trades["symbol"]) == set(names)
    run_id = res.save(ws.results)
    assert ws.results.load_result(run_id).equity["equity"].equals(res.equity["equity"])


def test_equity_is_one_row_per_bar_in_utc(ws, goog) -> None:
    res = bta.run(SmaCross, "GOOG", "2010-01-01", "2011-01-01", source=goog, workspace=ws, cash=10_000)
    assert res.equity["ts"].dtype == pl.Datetime("ns", "UTC")
    starts = goog.fetch_sync("GOOG", "2010-01-01", "2011-01-01")["ts"]
    assert res.equity["ts"].equals(starts)
    assert np.all(np.diff(res.equity["ts"].cast(pl.Int64).to_numpy()) > 0)
