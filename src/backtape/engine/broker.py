"""The simulated broker: turns orders into fills against completed bars, costs itemized.

Fill rules (the same description the vectorized engine follows):

=================  ==============================================================================
order              fills on the first bar that starts after it was placed
=================  ==============================================================================
market             at that bar's open (``fill="next_open"``), or at the signal bar's close when
                   ``fill="close"``
limit buy  L       at the open if ``open <= L`` (gap through), else at ``L`` if ``low <= L``
limit sell L       at the open if ``open >= L``, else at ``L`` if ``high >= L``
stop buy   S       at the open if ``open >= S``, else at ``S`` if ``high >= S``
stop sell  S       at the open if ``open <= S``, else at ``S`` if ``low <= S``
stop-limit S, L    triggers like a stop; fills at the trigger price when it respects ``L``, and
                   rests as a limit order afterwards
=================  ==============================================================================

Bracket legs become active from the bar after their entry fills. Spread, slippage and impact
apply to market and stop fills (they take liquidity); limit fills execute at their price.
Commission applies to every fill. When both legs of a bracket could fill in one bar the
stop-loss is assumed first (the conservative reading of an unknown path).
``max_participation`` caps a fill at that fraction of the bar's volume; the rest stays working.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..costs import MarketState, TransactionCostEngine
from ..risk import PortfolioSnapshot, RiskManager
from .orders import Fill, Order, OrderStatus, OrderType, TimeInForce
from .portfolio import Portfolio


@dataclass(frozen=True, slots=True)
class Bar:
    """A completed bar as the broker sees it."""

    ts: int
    ts_end: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    volatility: float = math.nan
    bid: float = math.nan
    ask: float = math.nan


class Broker:
    """Holds working orders and fills them against bars; the portal is injected (seed 000)."""

    def __init__(
        self,
        portal: Any,
        portfolio: Portfolio,
        *,
        costs: TransactionCostEngine | None = None,
        risk: RiskManager | None = None,
        fill: str = "next_open",
        max_participation: float | None = None,
        leverage: float = 1.0,
        fractional: bool | set[str] = False,
        on_fill: Callable[[Fill], None] | None = None,
    ) -> None:
        if fill not in ("next_open", "close"):
            raise ValueError(f"fill must be 'next_open' or 'close', got {fill!r}")
        if leverage <= 0:
            raise ValueError("leverage must be positive")
        self.portal = portal
        self.portfolio = portfolio
        self.costs = costs or TransactionCostEngine()
        self.risk = risk
        self.fill_mode = fill
        self.max_participation = max_participation
        self.leverage = leverage
        self.fractional = fractional
        self.on_fill = on_fill
        self.orders: list[Order] = []
        self.fills: list[Fill] = []
        self.rejections: list[dict] = []
        self._working: dict[str, list[Order]] = {}

    # order entry -------------------------------------------------------------------------
    def submit(self, order: Order, now: int, session_close: int | None = None) -> Order:
        """Accept an order placed at clock ``now``; DAY orders expire at ``session_close``."""
        if order.type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and not _positive(order.limit_price):
            return self._reject(order, now, "limit price must be a positive number")
        if order.type in (OrderType.STOP, OrderType.STOP_LIMIT) and not _positive(order.stop_price):
            return self._reject(order, now, "stop price must be a positive number")
        if order.target_percent is None and (order.quantity == 0 or not math.isfinite(order.quantity)):
            return self._reject(order, now, "quantity must be a non-zero number")
        order.created_at = now
        if order.tif == TimeInForce.DAY:
            order.session_close = session_close
        book = self._working.setdefault(order.symbol, [])
        for leg in (order, *order.children):
            self.orders.append(leg)
            book.append(leg)
        for child in order.children:  # dormant until the parent fills
            child.parent_id, child.created_at = order.id, -1
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
        """Orders still working, oldest first."""
        pool = self.orders if symbol is None else self._working.get(symbol, [])
        return [o for o in pool if o.is_active and not (o.parent_id is not None and o.created_at < 0)]

    # matching ----------------------------------------------------------------------------
    def process_bar(self, symbol: str, bar: Bar) -> list[Fill]:
        """Fill the orders placed before ``bar`` started, then expire DAY orders past their session."""
        fills: list[Fill] = []
        book = self._working.get(symbol)
        if not book:
            return fills
        for order in sorted(_live(book), key=_priority):
            if order.created_at > bar.ts or not order.is_active:
                continue
            ref = self._reference(order, bar)
            if ref is not None:
                fill = self._execute(order, bar, ref, bar.ts)
                if fill is not None:
                    fills.append(fill)
        for order in _live(book):
            if order.tif == TimeInForce.DAY and order.session_close is not None \
                    and bar.ts_end >= order.session_close:
                order.status = OrderStatus.EXPIRED
        self._working[symbol] = [o for o in book if o.is_active or o.created_at < 0]
        return fills

    def fill_at_close(self, symbol: str, bar: Bar, now: int) -> list[Fill]:
        """``fill="close"``: market orders placed at ``now`` execute at this bar's close."""
        fills = []
        for order in list(_live(self._working.get(symbol, []))):
            if order.type == OrderType.MARKET and order.created_at == now:
                fill = self._execute(order, bar, bar.close, bar.ts_end)
                if fill is not None:
                    fills.append(fill)
        return fills

    def _reference(self, order: Order, bar: Bar) -> float | None:
        side = order.side if order.target_percent is None else 0
        if order.type == OrderType.MARKET:
            return bar.open
        if order.type in (OrderType.STOP, OrderType.STOP_LIMIT) and not order.triggered:
            s = float(order.stop_price)  # type: ignore[arg-type]
            side = side or (1 if order.quantity > 0 else -1)
            if side > 0:
                trig = bar.open if bar.open >= s else (s if bar.high >= s else None)
            else:
                trig = bar.open if bar.open <= s else (s if bar.low <= s else None)
            if trig is None:
                return None
            order.triggered = True
            if order.type == OrderType.STOP:
                return trig
            lim = float(order.limit_price)  # type: ignore[arg-type]
            return trig if (side > 0 and trig <= lim) or (side < 0 and trig >= lim) else None
        lim = float(order.limit_price)  # type: ignore[arg-type]
        side = side or (1 if order.quantity > 0 else -1)
        if side > 0:
            return bar.open if bar.open <= lim else (lim if bar.low <= lim else None)
        return bar.open if bar.open >= lim else (lim if bar.high >= lim else None)

    def _execute(self, order: Order, bar: Bar, ref: float, ts: int) -> Fill | None:
        pf = self.portfolio
        takes_liquidity = order.type in (OrderType.MARKET, OrderType.STOP) or (
            order.type == OrderType.STOP_LIMIT and ref != order.limit_price)
        market = MarketState(price=ref, volume=bar.volume, volatility=bar.volatility,
                             bid=bar.bid, ask=bar.ask)
        qty = self._quantity(order, ref, market, takes_liquidity)
        if qty == 0:
            if order.target_percent is not None:
                order.status = OrderStatus.FILLED  # already at target
            return None
        if self.max_participation is not None and bar.volume > 0:
            cap = self._round(order.symbol, self.max_participation * bar.volume)
            if abs(qty) > cap:
                qty = math.copysign(cap, qty)
                if cap == 0:
                    return None
        qty = self._limit(order, qty, ref)
        if qty == 0:
            order.status = OrderStatus.REJECTED
            self._record_rejection(order, ts)
            self._cancel_children(order)
            return None
        side = 1 if qty > 0 else -1
        if takes_liquidity:
            c = self.costs.fill(side, abs(qty), market)
        else:
            c = self.costs.fill(side, abs(qty), MarketState(price=ref))
            c = type(c)(ref, ref, abs(qty), commission=self.costs.commission(abs(qty), ref))
        fill = Fill(order.id, order.symbol, ts, qty, c.price, ref, c.commission, c.spread, c.slippage,
                    c.impact, order.tag)
        pf.apply_fill(fill, bar.high, bar.low)
        self.fills.append(fill)
        if order.target_percent is not None:
            order.quantity = order.filled + qty
        order.filled += qty
        done = abs(order.remaining) < 1e-9 or order.target_percent is not None
        order.status = OrderStatus.FILLED if done else OrderStatus.PARTIAL
        if order.oco_id is not None:
            self._cancel_sibling(order)
        self._activate_children(order, qty, ts)
        if self.on_fill is not None:
            self.on_fill(fill)
        return fill

    # sizing and limits -------------------------------------------------------------------
    def _quantity(self, order: Order, ref: float, market: MarketState, takes_liquidity: bool) -> float:
        if order.target_percent is None:
            return self._round(order.symbol, abs(order.remaining)) * order.side
        pf = self.portfolio
        current = pf.position(order.symbol)
        equity = pf.cash + sum(q * (ref if s == order.symbol else pf.prices.get(s, 0.0))
                               for s, q in pf.positions.items() if q)
        target_value = order.target_percent * equity
        cost_f = self.costs.cost_fraction(market) if takes_liquidity else 0.0
        direction = 1 if target_value - current * ref >= 0 else -1
        exec_price = ref * (1 + direction * cost_f)
        target = self._affordable(order.symbol, abs(target_value), exec_price)
        return math.copysign(target, target_value) - current

    def _affordable(self, symbol: str, value: float, price: float) -> float:
        """Largest quantity whose notional plus commission fits in ``value``."""
        if price <= 0 or value <= 0:
            return 0.0
        qty = self._round(symbol, value / price)
        while qty > 0 and qty * price + self.costs.commission(qty, price) > value + 1e-9:
            step = 1.0 if not self._is_fractional(symbol) else qty * 1e-6
            excess = qty * price + self.costs.commission(qty, price) - value
            qty = self._round(symbol, qty - max(step, excess / price))
        return qty

    def _limit(self, order: Order, qty: float, ref: float) -> float:
        """Apply the risk manager and the leverage limit; record why a quantity shrank."""
        pf = self.portfolio
        if self.risk is not None:
            snap = PortfolioSnapshot(pf.equity, pf.peak_equity, dict(pf.positions), dict(pf.prices), {})
            decision = self.risk.check(order.symbol, qty, ref, snap, stop_price=_bracket_stop(order))
            if decision.action != "accept":
                order.reason = decision.reason
                qty = self._round(order.symbol, abs(decision.approved)) * (1 if qty > 0 else -1)
                if qty == 0:
                    return 0.0
        current = pf.position(order.symbol)
        new = current + qty
        if abs(new) > abs(current):  # adds exposure: check leverage
            others = sum(abs(q) * pf.prices.get(s, 0.0) for s, q in pf.positions.items() if s != order.symbol)
            equity = pf.cash + current * ref + sum(
                q * pf.prices.get(s, 0.0) for s, q in pf.positions.items() if s != order.symbol and q)
            room = self.leverage * equity - others
            max_abs = self._round(order.symbol, max(room, 0.0) / ref) if ref > 0 else 0.0
            if abs(new) > max_abs + 1e-9:
                allowed = max_abs * (1 if new > 0 else -1) - current
                if allowed * qty <= 0:
                    order.reason = order.reason or f"leverage limit {self.leverage:g}x of equity"
                    return 0.0
                order.reason = order.reason or f"resized to the leverage limit {self.leverage:g}x of equity"
                qty = allowed
        return qty

    def _round(self, symbol: str, qty: float) -> float:
        if self._is_fractional(symbol):
            return qty
        return float(math.floor(qty + 1e-9))

    def _is_fractional(self, symbol: str) -> bool:
        return self.fractional if isinstance(self.fractional, bool) else symbol in self.fractional

    # brackets and bookkeeping -------------------------------------------------------------
    def _activate_children(self, order: Order, qty: float, ts: int) -> None:
        for child in order.children:
            if child.status == OrderStatus.OPEN:
                child.quantity = -(order.filled if order.status == OrderStatus.FILLED else qty)
                child.created_at = ts

    def _cancel_sibling(self, order: Order) -> None:
        for other in self._working.get(order.symbol, []):
            if other is not order and other.oco_id == order.oco_id and other.is_active:
                other.status = OrderStatus.CANCELLED
                other.reason = f"one-cancels-other: order {order.id} filled"

    def _cancel_children(self, order: Order) -> None:
        for child in order.children:
            child.status = OrderStatus.CANCELLED

    def _reject(self, order: Order, now: int, reason: str) -> Order:
        order.created_at = now
        order.status = OrderStatus.REJECTED
        order.reason = reason
        self.orders.append(order)
        self._record_rejection(order, now)
        return order

    def _record_rejection(self, order: Order, ts: int) -> None:
        self.rejections.append({"ts": ts, "order_id": order.id, "symbol": order.symbol,
                                "quantity": order.quantity, "reason": order.reason})


def _positive(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


def _live(book: list[Order]) -> list[Order]:
    return [o for o in book if o.is_active and o.created_at >= 0]


def _priority(order: Order) -> tuple[int, int]:
    """Creation order, but a bracket's stop-loss before its take-profit (conservative)."""
    rank = 0 if order.type in (OrderType.STOP, OrderType.STOP_LIMIT) and order.oco_id is not None else 1
    return (order.created_at, rank if order.oco_id is not None else 0)


def _bracket_stop(order: Order) -> float | None:
    for child in order.children:
        if child.type == OrderType.STOP:
            return child.stop_price
    return None
