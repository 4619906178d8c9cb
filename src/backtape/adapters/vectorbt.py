"""Hand backtape data to vectorbt and turn a vectorbt ``Portfolio`` back into a ``BacktestResult``.

>>> from backtape.adapters import vectorbt as vba                                  # doctest: +SKIP
>>> def cross(data, fast, slow):                                                   # doctest: +SKIP
...     close = data.wide("close")
...     f, s = close.rolling(fast).mean(), close.rolling(slow).mean()
...     return {"entries": (f > s) & (f.shift() <= s.shift()), "exits": (f < s) & (f.shift() >= s.shift())}
>>> res = vba.run(cross, "AAPL", "2012-01-01", "2015-01-01", source="sample",
...               fast=10, slow=50)                                                  # doctest: +SKIP

``data.wide(field)`` gives bars x symbols frames aligned on the union of bar starts (UTC). A strategy
returns either the keyword arguments of ``vbt.Portfolio.from_signals`` (``close`` defaults to the wide
closes, ``init_cash``/``fees`` to ``cash``/``commission``; several symbols share one cash account)
or a finished ``Portfolio``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._time import TimeLike
from . import require
from ._data import PeerData, cash_and_commission, load
from ._result import PeerRun, build_result, trade_row

if TYPE_CHECKING:
    from ..engine.result import BacktestResult
    from ..sources.base import DataSource
    from ..workspace import Workspace


def run(strategy: Callable[..., Any], symbols: Sequence[str] | str, start: TimeLike, end: TimeLike,
        frequency: str = "1d", source: DataSource | str | None = None, cash: float | None = None,
        commission: float | None = None, *, workspace: Workspace | None = None,
        adjustment: str | None = None, **params: Any) -> BacktestResult:
    """Call ``strategy(data, **params)`` on ``symbols``' bars from ``source`` (through ``workspace``)
    and build the portfolio it describes (see the module doc)."""
    vbt = require("vectorbt")
    cash_, rate = cash_and_commission(workspace, cash, commission)
    data = load(symbols, start, end, frequency, source, workspace=workspace, adjustment=adjustment)
    began = time.perf_counter()
    made = strategy(data, **params)
    if isinstance(made, Mapping):
        shared = {"group_by": True, "cash_sharing": True} if len(data.symbols) > 1 else {}
        made = vbt.Portfolio.from_signals(**{"close": data.wide("close"), "init_cash": cash_, "fees": rate,
                                             **shared, **made})
    name = getattr(strategy, "__name__", type(strategy).__name__)
    return from_portfolio(made, data, strategy=name, parameters=params,
                          duration_s=time.perf_counter() - began)


def from_portfolio(pf: Any, data: PeerData, *, strategy: str = "vectorbt",
                   parameters: dict[str, Any] | None = None, duration_s: float = 0.0) -> BacktestResult:
    """The ``BacktestResult`` of vectorbt portfolio ``pf`` built on ``data``'s wide frames (its rows are
    the union of bar starts, its columns the symbols; one group when there are several)."""
    import vectorbt

    index = pf.wrapper.index
    times = np.asarray(index.tz_convert("UTC").tz_localize(None) if index.tz is not None else index,
                       dtype="datetime64[ns]").astype(np.int64)
    columns = [str(c) for c in pf.wrapper.columns]
    last = {c: float(np.asarray(pf.close)[..., j].reshape(-1)[-1]) for j, c in enumerate(columns)}
    trades, open_trades = [], []
    for r in pf.trades.values:
        sym = columns[int(r["col"])]
        signed = float(r["size"]) * (1 if int(r["direction"]) == 0 else -1)
        fees = float(r["entry_fees"] + r["exit_fees"])
        if int(r["status"]) == 1:
            trades.append(trade_row(sym, signed, times[r["entry_idx"]], times[r["exit_idx"]],
                                    r["entry_price"], r["exit_price"], fees))
        else:
            open_trades.append(trade_row(sym, signed, times[r["entry_idx"]], times[-1], r["entry_price"],
                                         last[sym], fees))
    orders = pf.orders.values
    sign = np.where(orders["side"] == 0, 1.0, -1.0)
    fills = [(int(o["id"]), columns[int(o["col"])], int(times[o["idx"]]), float(s * o["size"]),
              float(o["price"]), float(o["fees"])) for o, s in zip(orders, sign, strict=True)]
    traded = np.zeros(times.size)
    np.add.at(traded, orders["idx"], orders["size"] * orders["price"])
    assets = np.asarray(pf.assets()).reshape(times.size, -1)
    equity = np.asarray(pf.value(), dtype=np.float64).reshape(times.size, -1).sum(axis=1)
    cash = float(np.asarray(pf.init_cash, dtype=np.float64).sum())
    peer = PeerRun(engine="vectorbt", peer_version=vectorbt.__version__, strategy=strategy,
                   parameters=dict(parameters or {}), cash=cash, equity_ts=times, equity=equity,
                   exposed=(assets != 0).any(axis=1), trades=trades, open_trades=open_trades, fills=fills,
                   traded=traded, duration_s=duration_s)
    return build_result(peer, data)


__all__ = ["from_portfolio", "run"]
