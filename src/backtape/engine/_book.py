"""The broker's books: orders accepted and working, the rules that size and limit them, and the
bookkeeping a fill triggers (bracket legs, the default stop, one-cancels-other, stale exits, refusals).

``OrderBook`` is the base of ``Broker`` (``backtape.engine.broker``), whose docstring is the model
these follow ("Default stop-loss", "Drawdown halt"); matching and executing fills live there.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ..costs import TransactionCostEngine
from ..fills import FRACTIONAL_HINT
from ..risk import PortfolioSnapshot, RiskManager
from .orders import Fill, Order, OrderStatus, OrderType, TimeInForce
from .portfolio import Portfolio

if TYPE_CHECKING:
    from ..instruments import Instrument
    from ..portal import DataPortal
    from ._quotes import QuoteDesk


class OrderBook:
    """A broker's orders, fills and rejections, its sizing rules and their bookkeeping (see ``Broker``)."""

    def __init__(
        self,
        portal: DataPortal,
        portfolio: Portfolio,
        *,
        costs: TransactionCostEngine | None = None,
        risk: RiskManager | None = None,
        fill: str = "next_open",
        max_participation: float | None = None,
        leverage: float = 1.0,
        fractional: bool | frozenset[str] | set[str] = False,
        instruments: Mapping[str, Instrument] | None = None,
        on_fill: Callable[[Fill], None] | None = None,
        budget_scale: float = 1.0,
    ) -> None:
        if fill not in ("next_open", "close"):
            raise ValueError(f"fill must be 'next_open' or 'close', got {fill!r}")
        if not leverage > 0:
            raise ValueError(f"leverage must be positive, got {leverage}")
        if max_participation is not None and not 0 < max_participation <= 1:
            raise ValueError(f"max_participation must be in (0, 1], got {max_participation}")
        self.portal = portal
        self.portfolio = portfolio
        self.costs = costs or TransactionCostEngine()
        self.risk = risk
        self.fill_mode = fill
        self.max_participation = max_participation
        self.leverage = float(leverage)
        self.budget_scale = float(budget_scale)  # TradingOptions.budget_scale: all-in budgets times this
        self.fractional = fractional
        #: per-symbol lot size and minimum order value (``backtape.instruments``)
        self.instruments: Mapping[str, Instrument] = instruments or {}
        self.on_fill = on_fill
        self.orders: list[Order] = []
        self.fills: list[Fill] = []
        self.rejections: list[dict] = []
        self._working: dict[str, list[Order]] = {}
        #: symbols whose orders fill against quotes (``QuoteDesk``), never against bars
        self.by_quote: frozenset[str] = frozenset()
        #: the run's ``QuoteDesk`` (set by the engine), which receives default stops of quoted symbols
        self.desk: QuoteDesk | None = None
        #: the drawdown halt was breached at an earlier clock step (set by the engine's loop)
        self.halted = False
        self._guards: dict[str, Order] = {}  # symbol -> its working default stop
        self._ids = itertools.count(1)  # order ids of this run

    # order entry -------------------------------------------------------------------------
    def submit(self, order: Order, now: int, session_close: int | None = None) -> Order:
        """Accept an order placed at clock ``now``; DAY orders expire at ``session_close``."""
        order.id = next(self._ids)
        for child in order.children:  # bracket legs: numbered after their entry, one-cancels-other by it
            child.id = next(self._ids)
            if child.oco_id is not None:
                child.oco_id = order.id
        if order.type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and not _positive(order.limit_price):
            return self._reject(order, now, "limit price must be a positive number")
        if order.type in (OrderType.STOP, OrderType.STOP_LIMIT) and not _positive(order.stop_price):
            return self._reject(order, now, "stop price must be a positive number")
        if order.target_percent is None and (order.quantity == 0 or not math.isfinite(order.quantity)):
            return self._reject(order, now, "quantity must be a non-zero number")
        if order.target_percent is not None and not math.isfinite(order.target_percent):
            return self._reject(order, now, "target percent must be a finite number")
        order.created_at = now
        if order.tif == TimeInForce.DAY:
            order.session_close = session_close
        book = self._working.setdefault(order.symbol, [])
        if order.target_percent is not None:  # the newest target wins, as in the vector engine
            for old in live(book):
                if old.target_percent is not None and old.filled == 0:
                    old.status = OrderStatus.CANCELLED
                    old.reason = f"replaced by target order {order.id}"
        for leg in (order, *order.children):
            self.orders.append(leg)
            book.append(leg)
        for child in order.children:  # dormant until the parent fills
            child.parent_id, child.created_at = order.id, -1
        guard = self._guards.get(order.symbol)
        if guard is not None and order.type in _STOPS and order.side == guard.side and guard.is_active:
            guard.status = OrderStatus.CANCELLED
            guard.reason = f"replaced by the strategy's stop order {order.id}"
        return order

    def cancel(self, order_id: int) -> bool:
        """Cancel a working order (and its bracket legs); False when it is no longer working."""
        for order in self.orders:
            if order.id == order_id and order.is_active:
                order.status = OrderStatus.CANCELLED
                for child in order.children:
                    if child.is_active:
                        child.status = OrderStatus.CANCELLED
                return True
        return False

    def working(self, symbol: str | None = None) -> list[Order]:
        """Orders still working (dormant bracket legs excluded), oldest first."""
        pool = self.orders if symbol is None else self._working.get(symbol, [])
        return [o for o in pool if o.is_active and o.created_at >= 0]

    # sizing and limits -------------------------------------------------------------------
    def _risk_limit(self, order: Order, qty: float, ref: float, ts: int) -> float:
        """The risk manager's verdict on ``qty`` (signed); resizes and refusals are recorded."""
        if self.risk is None:
            return qty
        pf = self.portfolio
        stops = {o.symbol: o.stop_price for o in self.working() if o.type == OrderType.STOP
                 and o.stop_price is not None and o.side * pf.position(o.symbol) < 0}
        snap = PortfolioSnapshot(pf.equity, pf.peak_equity, dict(pf.positions), dict(pf.prices), stops,
                                 self.halted)
        decision = self.risk.check(order.symbol, qty, ref, snap, stop_price=_bracket_stop(order))
        if decision.action == "accept":
            return qty
        order.reason = decision.reason
        approved = self._round(order.symbol, abs(decision.approved))
        if approved and decision.action == "resize":
            self._record(order, ts, "resize", qty, math.copysign(approved, qty))
        return math.copysign(approved, qty)

    def _leverage_limit(self, order: Order, qty: float, ref: float, ts: int) -> float:
        """Shrink an order that adds exposure beyond ``leverage * equity`` (gross, at last prices)."""
        if qty == 0:
            return 0.0
        pf = self.portfolio
        current = pf.position(order.symbol)
        new = current + qty
        if abs(new) <= abs(current) and new * current >= 0:
            return qty
        equity = pf.cash + current * ref + pf.others_value(order.symbol)
        room = self.leverage * equity - pf.others_gross(order.symbol)
        max_abs = self._round(order.symbol, max(room, 0.0) / ref)
        if abs(new) <= max_abs + 1e-9:
            return qty
        allowed = math.copysign(max_abs, new) - current
        if allowed * qty <= 0:
            order.reason = order.reason or f"leverage limit {self.leverage:g}x of equity"
            return 0.0
        order.reason = f"resized to the leverage limit {self.leverage:g}x of equity"
        self._record(order, ts, "resize", qty, allowed)
        return allowed

    def _round(self, symbol: str, qty: float) -> float:
        """``qty`` (>= 0) as the symbol trades it: whole units unless fractional, whole lots."""
        if not self._is_fractional(symbol):
            qty = float(math.floor(qty + 1e-9))
        return self._lots(symbol, qty)

    def _lots(self, symbol: str, qty: float) -> float:
        """Signed ``qty`` rounded toward zero to the symbol's lot size (unchanged without one)."""
        rule = self.instruments.get(symbol)
        if rule is None or rule.lot_size is None or qty == 0:
            return qty
        return math.copysign(rule.round_down(abs(qty)), qty)

    def _too_small(self, symbol: str, qty: float, price: float) -> str:
        """Why ``qty`` at ``price`` is below the symbol's minimum order value ('' when it is not)."""
        rule = self.instruments.get(symbol)
        return f"{symbol}: {rule.too_small(qty, price)}" if rule and rule.too_small(qty, price) else ""

    def _below_one_unit(self, symbol: str, qty: float) -> str:
        rule = self.instruments.get(symbol)
        if rule is not None and rule.lot_size is not None:
            return f"quantity {qty:g} is less than one lot ({rule.lot_size:g}) of {symbol}"
        return f"quantity {qty:g} is less than one whole unit of {symbol}{FRACTIONAL_HINT}"

    def _is_fractional(self, symbol: str) -> bool:
        return self.fractional if isinstance(self.fractional, bool) else symbol in self.fractional

    # brackets and bookkeeping -------------------------------------------------------------
    def _activate_children(self, order: Order, active_from: int) -> None:
        for child in order.children:
            if child.status == OrderStatus.OPEN:
                child.quantity = -order.filled
                if child.created_at < 0:
                    child.created_at = active_from

    def _guard(self, order: Order, fill: Fill, active_from: int, risk: RiskManager) -> None:
        """Keep the default stop in step with the position after ``fill`` ("Default stop-loss")."""
        sym = order.symbol
        pos = self.portfolio.position(sym)
        guard = self._guards.pop(sym, None)
        if guard is not None and guard.is_active:
            if pos and (pos > 0) == (guard.side < 0):
                guard.quantity = guard.filled - pos  # what remains is the whole position
                self._guards[sym] = guard
                return
            guard.status = OrderStatus.CANCELLED
            guard.reason = f"position {'reversed' if pos else 'closed'} by order {order.id}"
        if not pos or any(o.type in _STOPS and o.side * pos < 0 for o in live(self._working.get(sym, []))):
            return
        stop_price = risk.default_stop(1 if pos > 0 else -1, fill.price)
        take_profit = next((c for c in order.children if c.type == OrderType.LIMIT and c.is_active), None)
        guard = Order(sym, -pos, OrderType.STOP, stop_price=stop_price, tif=TimeInForce.GTC,
                      tag=f"{order.tag}:default_stop" if order.tag else "default_stop",
                      parent_id=order.id, oco_id=take_profit.oco_id if take_profit is not None else None)
        guard.id, guard.created_at = next(self._ids), active_from
        self.orders.append(guard)
        self._working.setdefault(sym, []).append(guard)
        self._guards[sym] = guard
        if sym in self.by_quote and self.desk is not None:
            self.desk.accept(guard)

    def _cancel_stale_exits(self, order: Order) -> None:
        """Exit legs of earlier entries die with the position they protect (closed or reversed).

        Without this a bracket's stop or take-profit left working after ``ctx.close()`` could later
        open a position in the other direction.
        """
        pos = self.portfolio.position(order.symbol)
        for other in live(self._working.get(order.symbol, [])):
            if other is order or other.parent_id is None or other.parent_id == order.id:
                continue
            if pos == 0 or other.side * pos > 0:
                other.status = OrderStatus.CANCELLED
                other.reason = f"position {'closed' if pos == 0 else 'reversed'} by order {order.id}"

    def _cancel_sibling(self, order: Order) -> None:
        for other in self._working.get(order.symbol, []):
            if other is not order and other.oco_id == order.oco_id and other.is_active:
                other.status = OrderStatus.CANCELLED
                other.reason = f"one-cancels-other: order {order.id} filled"

    def _refuse(self, order: Order, ts: int, requested: float | None = None) -> None:
        """Reject ``order`` at fill time; ``requested`` is what a target order was sized to."""
        order.status = OrderStatus.REJECTED
        for child in order.children:
            child.status = OrderStatus.CANCELLED
        self._record(order, ts, "reject", order.quantity if requested is None else requested, 0.0)

    def _reject(self, order: Order, now: int, reason: str) -> Order:
        order.created_at = now
        order.status = OrderStatus.REJECTED
        order.reason = reason
        self.orders.append(order)
        self._record(order, now, "reject", order.quantity, 0.0)
        return order

    def _record(self, order: Order, ts: int, action: str, requested: float, approved: float) -> None:
        self.rejections.append({"ts": ts, "order_id": order.id, "symbol": order.symbol, "action": action,
                                "requested": float(requested), "approved": float(approved),
                                "reason": order.reason})

_STOPS = (OrderType.STOP, OrderType.STOP_LIMIT)


def _positive(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


def live(book: list[Order]) -> list[Order]:
    """The orders of ``book`` still working, dormant bracket legs excluded."""
    return [o for o in book if o.is_active and o.created_at >= 0]



def _bracket_stop(order: Order) -> float | None:
    for child in order.children:
        if child.type == OrderType.STOP:
            return child.stop_price
    return None
