"""Run an unmodified backtesting.py ``Strategy`` on backtape data and get a ``BacktestResult``.

>>> from backtape.adapters import backtesting_py                                  # doctest: +SKIP
>>> res = backtesting_py.run(SmaCross, "GOOG", "2005-01-01", "2013-01-01", cash=10_000,
...                          commission=0.002, source="sample", n1=10, n2=20)     # doctest: +SKIP
>>> res.save(ws.results)                                                          # doctest: +SKIP

backtesting.py runs one symbol per ``Backtest``; its ``Backtest`` keywords (``trade_on_close``,
``exclusive_orders``, ``finalize_trades``, ``margin``...) go in ``backtest_options``, strategy
parameters as keywords. Trades keep the peer's conventions (sizing scales the budget by
``1 - 2**-52``; open trades at the end are only closed with ``finalize_trades=True``); the result's
metrics are backtape's, computed from the peer's equity curve (``stats`` holds the peer's own).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._time import TimeLike
from ..errors import ConfigError
from . import require
from ._data import PeerData, cash_and_commission, load
from ._result import PeerRun, build_result, trade_row

if TYPE_CHECKING:
    from ..engine.result import BacktestResult
    from ..sources.base import DataSource
    from ..workspace import Workspace


def run(strategy_class: type, symbols: Sequence[str] | str, start: TimeLike, end: TimeLike,
        frequency: str = "1d", source: DataSource | str | None = None, cash: float | None = None,
        commission: float | None = None, *, workspace: Workspace | None = None,
        adjustment: str | None = None, backtest_options: dict[str, Any] | None = None,
        **params: Any) -> BacktestResult:
    """Backtest backtesting.py ``strategy_class`` on one symbol's bars from ``source`` (through
    ``workspace``, default: the default workspace); keywords ``params`` are the strategy's."""
    bt = require("backtesting")
    names = [s.strip() for s in symbols.split(",")] if isinstance(symbols, str) else list(symbols)
    if len(names) != 1:
        raise ConfigError(f"backtesting.py runs one symbol per backtest, got {names}; "
                          "run each symbol on its own or use the backtrader adapter")
    cash_, rate = cash_and_commission(workspace, cash, commission)
    data = load(names, start, end, frequency, source, workspace=workspace, adjustment=adjustment)
    options = dict(backtest_options or {})
    began = time.perf_counter()
    stats = bt.Backtest(data.pandas(names[0]), strategy_class, cash=cash_, commission=rate,
                        **options).run(**params)
    return from_stats(stats, data, cash=cash_, trade_on_close=bool(options.get("trade_on_close")),
                      parameters=params, duration_s=time.perf_counter() - began)


def from_stats(stats: Any, data: PeerData, *, cash: float, trade_on_close: bool = False,
               parameters: dict[str, Any] | None = None, duration_s: float = 0.0) -> BacktestResult:
    """The ``BacktestResult`` of backtesting.py's ``stats`` (from ``Backtest.run``) over ``data``.

    Bar indices map back to bar starts (to bar ends with ``trade_on_close``: fills at the close); each
    trade yields an entry and an exit fill, its commission split in proportion to notional (exact for
    a percent commission).
    """
    import backtesting

    symbol = data.symbols[0]
    ts = data.ts(symbol)
    at = data.frames[symbol]["ts_end"].dt.epoch("ns").to_numpy() if trade_on_close else ts
    n = ts.size
    closes = data.frames[symbol]["close"].to_numpy()
    exposed = np.zeros(n, dtype=bool)
    traded = np.zeros(n)
    trades, fills = [], []
    for k, t in enumerate(stats._trades.itertuples(index=False)):
        entry, exit_ = int(t.EntryBar), int(t.ExitBar)
        row = trade_row(symbol, t.Size, at[entry], at[exit_], t.EntryPrice, t.ExitPrice, t.Commission)
        trades.append(row)
        exposed[entry:exit_] = True
        for bar, qty, price in ((entry, t.Size, t.EntryPrice), (exit_, -t.Size, t.ExitPrice)):
            notional = abs(qty) * price
            share = notional / (abs(t.Size) * (t.EntryPrice + t.ExitPrice))
            fills.append((k, symbol, int(at[bar]), float(qty), float(price), float(t.Commission) * share))
            traded[bar] += notional
    open_trades = []
    for trade in stats._strategy.trades:
        exposed[trade.entry_bar:] = True
        open_trades.append(trade_row(symbol, trade.size, at[trade.entry_bar], ts[-1], trade.entry_price,
                                     closes[-1], trade._commissions))
    strategy = stats._strategy
    peer = PeerRun(engine="backtesting", peer_version=backtesting.__version__,
                   strategy=type(strategy).__name__, parameters=dict(parameters or {}), cash=cash,
                   equity_ts=ts, equity=stats._equity_curve["Equity"].to_numpy(float), exposed=exposed,
                   trades=trades, open_trades=open_trades, fills=fills, traded=traded,
                   duration_s=duration_s)
    return build_result(peer, data)


__all__ = ["from_stats", "run"]
