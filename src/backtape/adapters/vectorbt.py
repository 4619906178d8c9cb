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
or a finished ``Portfolio``. A backtape strategy with ``vector_signals`` (``sma_crossover(10, 50)``)
is built by ``signals_portfolio`` with backtape's conventions matched:

==================  ============================================================================
backtape            vectorbt ``from_signals``
==================  ============================================================================
``fill="next_open"``  signals shifted one bar, ``price`` = the open (``"close"``: no shift, close)
all-in whole shares   ``size=inf``, ``size_granularity=1`` (``fractional=True``: no granularity)
percent commission    ``fees`` (sizing: ``floor(cash / (price * (1 + fees)))`` in both)
==================  ============================================================================
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
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
    if hasattr(strategy, "vector_signals"):
        made = signals_portfolio(strategy, data, cash=cash_, commission=rate, **params)
        params = dict(getattr(strategy, "parameters", {}))
    else:
        made = strategy(data, **params)
    if isinstance(made, Mapping):
        shared = {"group_by": True, "cash_sharing": True} if len(data.symbols) > 1 else {}
        made = vbt.Portfolio.from_signals(**{"close": data.wide("close"), "init_cash": cash_, "fees": rate,
                                             **shared, **made})
    name = str(getattr(strategy, "__name__", None) or getattr(strategy, "name", type(strategy).__name__))
    return from_portfolio(made, data, strategy=name, parameters=params,
                          duration_s=time.perf_counter() - began)


def signals_portfolio(strategy: Any, data: PeerData, *, cash: float, commission: float,
                      fill: str = "next_open", fractional: bool = False) -> Any:
    """A vectorbt ``Portfolio`` of backtape ``strategy``'s ``vector_signals`` on one symbol of ``data``,
    with backtape's fill, sizing and commission conventions (table in the module doc)."""
    import pandas as pd

    vbt = require("vectorbt")
    if len(data.symbols) != 1:
        raise ConfigError(f"signals_portfolio matches backtape's all-in sizing on one symbol, got "
                          f"{data.symbols}; pass a function returning from_signals keywords instead")
    if fill not in ("next_open", "close"):
        raise ConfigError(f"fill must be next_open or close, got {fill!r}")
    symbol = data.symbols[0]
    frame = data.frames[symbol]
    bars = {f: frame[f].to_numpy() for f in ("open", "high", "low", "close", "volume")}
    close = data.wide("close")
    signals = {}
    for key, values in strategy.vector_signals(bars).items():
        flags = pd.DataFrame(np.asarray(values, dtype=bool), index=close.index, columns=close.columns)
        signals[key] = flags.shift(fill_value=False) if fill == "next_open" else flags
    price = data.wide("open") if fill == "next_open" else close
    granularity = {} if fractional else {"size_granularity": 1.0}
    return vbt.Portfolio.from_signals(close, price=price, init_cash=cash, fees=commission, size=np.inf,
                                      **granularity, **signals)


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


__all__ = ["from_portfolio", "run", "signals_portfolio"]
