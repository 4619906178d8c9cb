"""Cash, positions and round-trip trades. Fills change it; bar closes mark it to market.

Trades are FIFO lots: every fill that opens or adds to a position is a lot; fills that reduce it
close the oldest lots first, and each closed (part of a) lot is one row of ``trades()`` with its
entry and exit, P&L net of both commissions, and its maximum adverse and favorable excursions
(MAE/MFE, as fractions of the entry price, from the bars' lows and highs while it was open).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from numba import njit

from .orders import Fill

if TYPE_CHECKING:
    from ..portal import DataPortal


@dataclass(slots=True)
class _Lot:
    symbol: str
    side: int
    quantity: float  # remaining, positive
    entry_ts: int
    entry_price: float
    entry_commission_per_unit: float
    entry_slippage_per_unit: float
    low: float
    high: float
    mark: int = 0  # the symbol's ``_Extremes.count`` when the lot opened


_TRADE_SCHEMA = {
    "symbol": pl.String, "side": pl.Int64, "entry_time": pl.Int64, "exit_time": pl.Int64,
    "entry_price": pl.Float64, "exit_price": pl.Float64, "size": pl.Float64, "pnl": pl.Float64,
    "gross_pnl": pl.Float64, "return": pl.Float64, "commission": pl.Float64, "slippage": pl.Float64,
    "mae": pl.Float64, "mfe": pl.Float64,
}


class Portfolio:
    """The account. ``portal`` is injected (seed 000) so valuations can read prices point in time
    (``None`` where the vector engine books its kernel's fills)."""

    def __init__(self, portal: DataPortal | None, cash: float) -> None:
        if not cash > 0:
            raise ValueError(f"starting cash must be positive, got {cash}")
        self.portal = portal
        self.starting_cash = float(cash)
        self.cash = float(cash)
        self.positions: dict[str, float] = {}
        self.prices: dict[str, float] = {}
        self.peak_equity = float(cash)
        self.commissions = 0.0
        self.slippage = 0.0
        self._lots: dict[str, list[_Lot]] = {}
        self._extremes: dict[str, _Extremes] = {}
        self._trades: list[tuple] = []
        self._held = False  # see hold_prices
        self._snapshot: _Snapshot | None = None

    # valuation -------------------------------------------------------------------------------
    @property
    def equity(self) -> float:
        """Cash plus positions at their last known prices."""
        return self.cash + sum(q * self.prices.get(s, math.nan) for s, q in self.positions.items() if q)

    def position(self, symbol: str) -> float:
        return self.positions.get(symbol, 0.0)

    def value(self, symbol: str) -> float:
        return self.position(symbol) * self.prices.get(symbol, 0.0)

    @property
    def gross_exposure(self) -> float:
        return sum(abs(q) * self.prices.get(s, 0.0) for s, q in self.positions.items())

    @property
    def net_exposure(self) -> float:
        return sum(q * self.prices.get(s, 0.0) for s, q in self.positions.items())

    def others_value(self, symbol: str) -> float:
        """Net value of every position but ``symbol``'s, at the last prices."""
        return self._others(symbol, False)

    def others_gross(self, symbol: str) -> float:
        """Gross value of every position but ``symbol``'s, at the last prices."""
        return self._others(symbol, True)

    def hold_prices(self) -> None:
        """The engine promises that only ``apply_fill`` changes positions or prices until
        ``release_prices``: sizing may then read a snapshot of them in compiled code (one pass over
        the positions per fill, not a Python loop), summed in the same order, to the same bits."""
        self._held = True
        self._snapshot = None

    def release_prices(self) -> None:
        self._held = False
        self._snapshot = None

    def _others(self, symbol: str, gross: bool) -> float:
        positions, prices = self.positions, self.prices
        if not self._held or len(positions) < _SNAPSHOT_FROM:
            total = 0.0
            for s, q in positions.items():
                if q and s != symbol:
                    total += (abs(q) if gross else q) * prices[s]
            return total
        snap = self._snapshot
        if snap is None:
            snap = self._snapshot = _Snapshot(positions, prices)
        return float(_others_sum(snap.quantity, snap.price, snap.slot.get(symbol, -1), gross))

    def mark_extremes(self, symbol: str, high: float, low: float) -> None:
        """Widen the open lots' excursions by bars they were open through (highest high, lowest low).

        Lazily: the values are logged (``_Extremes``) and folded into a lot when it is read (closed)
        or changed (``settle_extremes``), so a mark costs the same however many lots are open.
        """
        if self._lots.get(symbol):
            ext = self._extremes.get(symbol)
            if ext is None:
                ext = self._extremes[symbol] = _Extremes()
            ext.add(high, low)

    def settle_extremes(self, symbol: str) -> None:
        """Fold the logged extremes into every open lot of ``symbol`` (before anything rescales them)."""
        ext = self._extremes.get(symbol)
        if ext is not None:
            for lot in self._lots.get(symbol, ()):
                ext.settle(lot)
            ext.highs.clear()
            ext.lows.clear()

    def split(self, symbol: str, ratio: float) -> None:
        """Apply a ``ratio``:1 split to the position in ``symbol`` and its open lots (more shares at a
        lower price: quantities times ``ratio``, per-unit prices and costs divided by it)."""
        if not self.positions.get(symbol):
            return
        self.positions[symbol] *= ratio
        self.settle_extremes(symbol)
        for lot in self._lots.get(symbol, ()):
            lot.quantity *= ratio
            lot.entry_price /= ratio
            lot.low /= ratio
            lot.high /= ratio
            lot.entry_commission_per_unit /= ratio
            lot.entry_slippage_per_unit /= ratio

    def update_peak(self) -> float:
        eq = self.equity
        if eq > self.peak_equity:
            self.peak_equity = eq
        return eq

    # fills -----------------------------------------------------------------------------------
    def apply_fill(self, fill: Fill, bar_high: float, bar_low: float) -> None:
        """Book a fill: cash, position, lots and closed trades."""
        qty, price = fill.quantity, fill.price
        self.cash -= qty * price + fill.commission
        self.commissions += fill.commission
        slip_cost = fill.slippage + fill.spread + fill.impact
        self.slippage += slip_cost
        self.positions[fill.symbol] = self.positions.get(fill.symbol, 0.0) + qty
        if abs(self.positions[fill.symbol]) < 1e-12:
            self.positions[fill.symbol] = 0.0
        self.prices.setdefault(fill.symbol, price)
        if self._snapshot is not None:
            self._snapshot.update(fill.symbol, self.positions[fill.symbol], self)
        comm_unit = fill.commission / abs(qty)
        slip_unit = slip_cost / abs(qty)
        lots = self._lots.setdefault(fill.symbol, [])
        remaining = abs(qty)
        while remaining > 1e-12 and lots and lots[0].side != fill.side:
            lot = lots[0]
            ext = self._extremes.get(fill.symbol)
            if ext is not None:
                ext.settle(lot, oldest=True)
            take = min(lot.quantity, remaining)
            self._close(lot, take, fill, price, comm_unit, slip_unit)
            lot.quantity -= take
            remaining -= take
            if lot.quantity <= 1e-12:
                lots.pop(0)
        if remaining > 1e-12:
            ext = self._extremes.get(fill.symbol)
            lots.append(_Lot(fill.symbol, fill.side, remaining, fill.ts, price, comm_unit, slip_unit,
                             low=min(price, bar_low), high=max(price, bar_high),
                             mark=ext.count if ext is not None else 0))

    def _close(self, lot: _Lot, qty: float, fill: Fill, price: float, comm_unit: float,
               slip_unit: float) -> None:
        gross = lot.side * (price - lot.entry_price) * qty
        commission = (lot.entry_commission_per_unit + comm_unit) * qty
        pnl = gross - commission
        if lot.side > 0:
            mae, mfe = lot.low / lot.entry_price - 1.0, lot.high / lot.entry_price - 1.0
        else:
            mae, mfe = 1.0 - lot.high / lot.entry_price, 1.0 - lot.low / lot.entry_price
        self._trades.append((
            lot.symbol, lot.side, lot.entry_ts, fill.ts, lot.entry_price, price, qty, pnl, gross,
            pnl / (lot.entry_price * qty), commission, (lot.entry_slippage_per_unit + slip_unit) * qty,
            min(mae, 0.0), max(mfe, 0.0),
        ))

    def close_out(self, ts: int) -> list[tuple[str, float]]:
        """The open positions (symbol, quantity) still held at ``ts``; trades stay open in the table."""
        return [(s, q) for s, q in self.positions.items() if q]

    def open_trades(self, ts: int) -> pl.DataFrame:
        """Open lots valued at the last prices, in the trade table's shape (exit = mark)."""
        rows = []
        for lots in self._lots.values():
            for lot in lots:
                price = self.prices.get(lot.symbol, lot.entry_price)
                gross = lot.side * (price - lot.entry_price) * lot.quantity
                comm = lot.entry_commission_per_unit * lot.quantity
                rows.append((lot.symbol, lot.side, lot.entry_ts, ts, lot.entry_price, price, lot.quantity,
                             gross - comm, gross, (gross - comm) / (lot.entry_price * lot.quantity), comm,
                             lot.entry_slippage_per_unit * lot.quantity, math.nan, math.nan))
        return _frame(rows)

    def trades(self) -> pl.DataFrame:
        """Closed round trips, one row per closed lot (timestamps as UTC datetimes)."""
        return _frame(self._trades)


class _Extremes:
    """One symbol's bar extremes as they are marked, for its open lots to fold in when read.

    A lot's high is the fold ``if h > high: high = h`` over the marks since it opened (NaN marks
    change nothing), i.e. their maximum: ``highs`` keeps the marks that are the maximum of some
    suffix (index, value; values decreasing), so the first entry at or after a lot's ``mark`` is
    the maximum since it opened. ``lows`` mirrors it. Lots close oldest first, so entries before
    the oldest open lot's mark are dropped when it is settled.
    """

    __slots__ = ("count", "highs", "lows")

    def __init__(self) -> None:
        self.count = 0
        self.highs: deque[tuple[int, float]] = deque()
        self.lows: deque[tuple[int, float]] = deque()

    def add(self, high: float, low: float) -> None:
        i = self.count
        self.count = i + 1
        highs, lows = self.highs, self.lows
        if high == high:
            while highs and highs[-1][1] <= high:
                highs.pop()
            highs.append((i, high))
        if low == low:
            while lows and lows[-1][1] >= low:
                lows.pop()
            lows.append((i, low))

    def settle(self, lot: _Lot, oldest: bool = False) -> None:
        """Fold the marks since ``lot`` opened into it (``oldest``: no open lot is older)."""
        mark = lot.mark
        for side in (self.highs, self.lows):
            if oldest:
                while side and side[0][0] < mark:
                    side.popleft()
            for i, value in side:
                if i >= mark:
                    if side is self.highs:
                        if value > lot.high:
                            lot.high = value
                    elif value < lot.low:
                        lot.low = value
                    break


#: below this many positions the Python loop is quicker than building a snapshot
_SNAPSHOT_FROM = 16


class _Snapshot:
    """Positions and their last prices as arrays, in the ``positions`` dict's order."""

    __slots__ = ("price", "quantity", "slot")

    def __init__(self, positions: dict[str, float], prices: dict[str, float]) -> None:
        self.slot = {s: i for i, s in enumerate(positions)}
        self.quantity = np.fromiter(positions.values(), np.float64, len(positions))
        self.price = np.array([prices.get(s, math.nan) for s in positions], dtype=np.float64)

    def update(self, symbol: str, quantity: float, pf: Portfolio) -> None:
        """``symbol``'s position is now ``quantity``; a symbol new to the book rebuilds the snapshot."""
        i = self.slot.get(symbol)
        if i is None:
            pf._snapshot = None
        else:
            self.quantity[i] = quantity


@njit(cache=True)
def _others_sum(quantity: np.ndarray, price: np.ndarray, skip: int, gross: bool) -> float:
    """``Portfolio._others``' loop over the snapshot: left to right, skipping flat positions."""
    total = 0.0
    for i in range(quantity.shape[0]):
        q = quantity[i]
        if q != 0.0 and i != skip:
            total += (abs(q) if gross else q) * price[i]
    return total


def _frame(rows: list[tuple]) -> pl.DataFrame:
    df = pl.DataFrame(rows, schema=_TRADE_SCHEMA, orient="row")
    return df.with_columns(
        pl.col("entry_time").cast(pl.Datetime("ns", "UTC")),
        pl.col("exit_time").cast(pl.Datetime("ns", "UTC")),
    )
