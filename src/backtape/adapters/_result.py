"""A ``BacktestResult`` from what a peer reports: its round trips, fills and equity per bar.

The frames have the event engine's columns (times as ``Datetime("ns", "UTC")``) and the metrics are
backtape's (``backtape.analytics``: arithmetic Sharpe, ...) computed from the peer's own equity
curve, so a peer run is stored, compared and reported like any other. The peer's name and version
are in the fingerprint (``engine``, ``peer_version``) beside the data the run read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from ..engine.result import BacktestResult
from ._data import TS, PeerData

#: one round trip, as in the event engine's ``trades`` table (``size`` unsigned, ``side`` +1/-1)
TRADE_SCHEMA: dict[str, Any] = {
    "symbol": pl.String, "side": pl.Int64, "entry_time": pl.Int64, "exit_time": pl.Int64,
    "entry_price": pl.Float64, "exit_price": pl.Float64, "size": pl.Float64, "pnl": pl.Float64,
    "gross_pnl": pl.Float64, "return": pl.Float64, "commission": pl.Float64, "slippage": pl.Float64,
    "mae": pl.Float64, "mfe": pl.Float64,
}
#: one execution: signed ``quantity`` at ``price`` and its commission
FILL_SCHEMA: dict[str, Any] = {"order_id": pl.Int64, "symbol": pl.String, "ts": pl.Int64,
                               "quantity": pl.Float64, "price": pl.Float64, "commission": pl.Float64}
#: one order as the peer reported it (``price`` is the average execution price, NaN if none)
ORDER_SCHEMA: dict[str, Any] = {"id": pl.Int64, "symbol": pl.String, "type": pl.String,
                                "quantity": pl.Float64, "filled": pl.Float64, "price": pl.Float64,
                                "status": pl.String, "created_at": pl.Int64}


def trade_row(symbol: str, signed_size: float, entry_ts: int, exit_ts: int, entry_price: float,
              exit_price: float, commission: float) -> tuple:
    """One trades-table row from a peer's round trip (P&L and return derived the engine's way)."""
    side = 1 if signed_size > 0 else -1
    size = abs(float(signed_size))
    gross = side * (exit_price - entry_price) * size
    pnl = gross - commission
    return (symbol, side, int(entry_ts), int(exit_ts), float(entry_price), float(exit_price), size, pnl,
            gross, pnl / (entry_price * size), float(commission), 0.0, np.nan, np.nan)


@dataclass
class PeerRun:
    """What an adapter collected from one peer run, in backtape's units (UTC ns, signed sizes)."""

    engine: str
    peer_version: str
    strategy: str
    parameters: dict[str, Any]
    cash: float
    equity_ts: np.ndarray
    equity: np.ndarray
    exposed: np.ndarray
    trades: list[tuple] = field(default_factory=list)
    open_trades: list[tuple] = field(default_factory=list)
    fills: list[tuple] = field(default_factory=list)
    orders: list[tuple] = field(default_factory=list)
    traded: np.ndarray | None = None
    duration_s: float = 0.0


def _frame(rows: Sequence[tuple], schema: dict[str, Any], times: Sequence[str]) -> pl.DataFrame:
    df = pl.DataFrame(list(rows), schema=schema, orient="row")
    return df.with_columns(pl.col(c).cast(TS) for c in times)


def build_result(run: PeerRun, data: PeerData) -> BacktestResult:
    """The ``BacktestResult`` of ``run`` over ``data``: backtape metrics of the peer's equity and trades."""
    from .. import __version__
    from ..analytics import compute_metrics, drawdown, periods_per_year

    equity = np.asarray(run.equity, dtype=np.float64)
    trades = _frame(run.trades, TRADE_SCHEMA, ("entry_time", "exit_time"))
    still_open = _frame(run.open_trades, TRADE_SCHEMA, ("entry_time", "exit_time"))
    ppy = periods_per_year(calendar=data.calendar, frequency=data.frequency)
    metrics: dict[str, Any] = compute_metrics(equity, trades, periods_per_year=ppy, positions=run.exposed,
                                              traded_value=run.traded, open_trades=still_open)
    fills = _frame(run.fills, FILL_SCHEMA, ("ts",))
    metrics["commission"] = float(fills["commission"].sum()) if fills.height else float(
        trades["commission"].sum())
    eq = pl.DataFrame({"ts": pl.Series(np.asarray(run.equity_ts, dtype=np.int64)).cast(TS),
                       "equity": equity, "drawdown": drawdown(equity)})
    fingerprint = {**data.fingerprint, "engine": run.engine, "peer_version": run.peer_version,
                   "package_version": __version__}
    return BacktestResult(
        strategy=run.strategy, parameters=dict(run.parameters), symbols=data.symbols, start=data.start,
        end=data.end, frequency=data.frequency, source=data.source, cash=float(run.cash), metrics=metrics,
        trades=trades, orders=_frame(run.orders, ORDER_SCHEMA, ("created_at",)), fills=fills, equity=eq,
        open_trades=still_open,
        rejections=pl.DataFrame(), records=pl.DataFrame(), duration_s=run.duration_s,
        fingerprint=fingerprint,
    )


__all__ = ["FILL_SCHEMA", "ORDER_SCHEMA", "TRADE_SCHEMA", "PeerRun", "build_result", "trade_row"]
