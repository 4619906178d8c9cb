"""Run an unmodified backtrader strategy in cerebro on backtape data and get a ``BacktestResult``.

>>> from backtape.adapters import backtrader as bta                              # doctest: +SKIP
>>> res = bta.run(MyStrategy, ["AAPL", "MSFT"], "2012-01-01", "2015-01-01", source="sample",
...               cash=100_000, commission=0.001, period=20)                     # doctest: +SKIP

Each symbol becomes one ``PandasData`` feed named after it (``self.getdatabyname("AAPL")``), in the
order given, with bar start times (naive UTC) as its datetimes. ``setup(cerebro)`` may add sizers,
analyzers or observers before the run. A recording analyzer collects fills, orders, closed trades
and the broker value after every bar; the result's metrics are backtape's of that equity curve.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._time import TimeLike
from ..timeframes import Timeframe
from . import require
from ._data import PeerData, cash_and_commission, load
from ._result import PeerRun, build_result, trade_row

if TYPE_CHECKING:
    from ..engine.result import BacktestResult
    from ..sources.base import DataSource
    from ..workspace import Workspace

_RECORDER = "backtape_recorder"


def feeds(data: PeerData) -> list[Any]:
    """One backtrader ``PandasData`` feed per symbol of ``data``, with its timeframe and compression."""
    bt = require("backtrader")
    tf = Timeframe.parse(data.frequency)
    unit = {"min": (bt.TimeFrame.Minutes, 1), "h": (bt.TimeFrame.Minutes, 60), "d": (bt.TimeFrame.Days, 1),
            "w": (bt.TimeFrame.Weeks, 1)}[tf.unit]
    return [bt.feeds.PandasData(dataname=data.pandas(s, tz=False), name=s, timeframe=unit[0],
                                compression=tf.n * unit[1], openinterest=None) for s in data.symbols]


def run(strategy_class: type, symbols: Sequence[str] | str, start: TimeLike, end: TimeLike,
        frequency: str = "1d", source: DataSource | str | None = None, cash: float | None = None,
        commission: float | None = None, *, workspace: Workspace | None = None,
        adjustment: str | None = None, setup: Callable[[Any], None] | None = None,
        cerebro_options: dict[str, Any] | None = None, **params: Any) -> BacktestResult:
    """Backtest backtrader ``strategy_class`` on ``symbols`` from ``source`` (through ``workspace``,
    default: the default workspace); keywords ``params`` are the strategy's ``params``."""
    bt = require("backtrader")
    cash_, rate = cash_and_commission(workspace, cash, commission)
    data = load(symbols, start, end, frequency, source, workspace=workspace, adjustment=adjustment)
    cerebro = bt.Cerebro(**{"stdstats": False, **(cerebro_options or {})})
    for feed in feeds(data):
        cerebro.adddata(feed, name=feed._name)
    cerebro.broker.setcash(cash_)
    cerebro.broker.setcommission(commission=rate)
    cerebro.addstrategy(strategy_class, **params)
    cerebro.addanalyzer(recorder(), _name=_RECORDER)
    if setup is not None:
        setup(cerebro)
    began = time.perf_counter()
    strategy = cerebro.run()[0]
    return from_strategy(strategy, data, cash=cash_, parameters=params,
                         duration_s=time.perf_counter() - began)


def from_strategy(strategy: Any, data: PeerData, *, cash: float, parameters: dict[str, Any] | None = None,
                  duration_s: float = 0.0) -> BacktestResult:
    """The ``BacktestResult`` of a finished cerebro strategy that ran with ``recorder()`` attached."""
    import backtrader

    rec = strategy.analyzers.getbyname(_RECORDER)
    times = np.unique(np.concatenate([data.ts(s) for s in data.symbols]))
    clock = np.asarray(rec.clock, dtype=np.int64)
    nearest = np.clip(np.searchsorted(times, clock), 1, max(times.size - 1, 1))
    snap = np.where(np.abs(times[nearest - 1] - clock) <= np.abs(times[nearest] - clock),
                    times[nearest - 1], times[nearest])
    ts = {s: data.ts(s) for s in data.symbols}
    closes = {s: data.frames[s]["close"].to_numpy() for s in data.symbols}
    trades = [trade_row(sym, size, ts[sym][a], ts[sym][b], price, price + pnl / size, comm)
              for sym, size, a, b, price, pnl, comm in rec.closed]
    open_trades = [trade_row(sym, size, ts[sym][a], ts[sym][-1], price, closes[sym][-1], comm)
                   for sym, size, a, price, comm in rec.opened.values()]
    traded = np.zeros(snap.size)
    for _, _, t, qty, price, _ in rec.fills:
        i = min(int(np.searchsorted(snap, t)), snap.size - 1)
        traded[i] += abs(qty) * price
    peer = PeerRun(engine="backtrader", peer_version=backtrader.__version__,
                   strategy=type(strategy).__name__, parameters=dict(parameters or {}), cash=cash,
                   equity_ts=snap, equity=np.asarray(rec.values), exposed=np.asarray(rec.exposed, dtype=bool),
                   trades=trades, open_trades=open_trades, fills=rec.fills, orders=rec.orders, traded=traded,
                   duration_s=duration_s)
    return build_result(peer, data)


def recorder() -> type:
    """The backtrader ``Analyzer`` class that records what ``from_strategy`` needs (built on first
    use so backtrader is imported only then)."""
    bt = require("backtrader")

    def ns(num: float) -> int:
        return int(np.datetime64(bt.num2date(num), "ns").astype(np.int64))

    analyzer: Any = bt.Analyzer

    class Recorder(analyzer):
        """Broker value and exposure after each bar; fills, final orders and round trips as they happen."""

        def start(self) -> None:
            self.clock: list[int] = []
            self.values: list[float] = []
            self.exposed: list[bool] = []
            self.fills: list[tuple] = []
            self.orders: list[tuple] = []
            self.closed: list[tuple] = []
            self.opened: dict[int, tuple] = {}

        def next(self) -> None:
            st = self.strategy
            self.clock.append(ns(st.datetime[0]))
            self.values.append(float(st.broker.getvalue()))
            self.exposed.append(any(st.getposition(d).size != 0 for d in st.datas))

        def notify_order(self, order: Any) -> None:
            if not order.alive():
                ex, name = order.executed, order.data._name
                if order.status == order.Completed:
                    self.fills.append((order.ref, name, ns(ex.dt), float(ex.size), float(ex.price),
                                       float(ex.comm)))
                self.orders.append((order.ref, name, order.getordername(), float(order.created.size),
                                    float(ex.size), float(ex.price) if ex.size else np.nan,
                                    order.getstatusname(), ns(order.created.dt)))

        def notify_trade(self, trade: Any) -> None:
            name = trade.data._name
            if trade.isopen:
                before = self.opened.get(trade.ref)
                size = trade.size if before is None or abs(trade.size) > abs(before[1]) else before[1]
                self.opened[trade.ref] = (name, size, trade.baropen - 1, trade.price, trade.commission)
            elif trade.isclosed:
                _, size, entry, price, _ = self.opened.pop(trade.ref)
                self.closed.append((name, size, entry, trade.barclose - 1, price, trade.pnl,
                                    trade.commission))

    return Recorder


__all__ = ["feeds", "from_strategy", "recorder", "run"]
