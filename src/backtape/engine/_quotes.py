"""Quote fills: orders of symbols whose quotes are loaded execute against bid/ask, not bars.

The rules are documented in ``backtape.engine.broker`` ("With quotes"); this module holds the
timing. An order placed at ``t`` *arrives* at ``t + latency``. It is first matched (``arriving``)
against the quote prevailing at its arrival, at the first point of the event stream where that
instant has been reached: right after the callback that placed it when ``latency == 0``, else just
before the first event stamped at or after the arrival (so only quotes strictly before it count).
An order still working after that *rests* and is matched again after each new quote of its symbol.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .orders import Order, OrderStatus, OrderType, TimeInForce

if TYPE_CHECKING:
    from .broker import Broker
    from .ticks import Quote


class QuoteDesk:
    """Arrival and resting queues of quote-filled orders; fills go through the broker."""

    def __init__(self, broker: Broker, quotes: dict[str, Quote], latency: int) -> None:
        self.broker = broker
        self.quotes = quotes  # the feed's prevailing quote per symbol, updated event by event
        self.latency = latency
        self.pending: list[Order] = []
        self.resting: dict[str, list[Order]] = {}

    def accept(self, order: Order) -> None:
        """Queue a newly submitted order (refused orders are ignored)."""
        if order.is_active:
            self.pending.append(order)

    def arrive(self, now: int) -> float:
        """Match the orders that have arrived by ``now`` against their prevailing quote; traded notional."""
        latency = self.latency
        due = [o for o in self.pending if o.created_at + latency <= now]
        if not due:
            return 0.0
        self.pending = [o for o in self.pending if o.created_at + latency > now]
        traded = 0.0
        for order in due:
            if not order.is_active:
                continue
            traded += self._match(order, self.quotes.get(order.symbol), order.created_at + latency, True)
            if order.is_active:
                self.resting.setdefault(order.symbol, []).append(order)
        return traded

    def on_quote(self, quote: Quote) -> float:
        """Match the resting orders of ``quote.symbol`` against this new quote; traded notional."""
        book = self.resting.get(quote.symbol)
        if not book:
            return 0.0
        traded = 0.0
        for order in list(book):
            if order.is_active:
                traded += self._match(order, quote, quote.ts, False)
        book[:] = [o for o in book if o.is_active]
        return traded

    def expire(self, now: int) -> None:
        """Expire DAY orders whose session closed by ``now`` (also those no quote reached)."""
        for book in (self.pending, *self.resting.values()):
            for order in book:
                if order.is_active:
                    _expire(order, now)

    def _match(self, order: Order, quote: Quote | None, ts: int, arriving: bool) -> float:
        if _expire(order, ts) or quote is None:
            return 0.0
        fills = self.broker.fill_quote(order, quote.bid, quote.ask, ts, arriving)
        if not fills:
            return 0.0
        for child in order.children:  # bracket legs activated by this fill
            if child.is_active and child.created_at >= 0:
                self.pending.append(child)
        working = self.broker._working
        working[order.symbol] = [o for o in working.get(order.symbol, ()) if o.is_active]
        return math.fsum(abs(f.quantity) * f.price for f in fills)


def _expire(order: Order, ts: int) -> bool:
    """Mark a DAY order expired when ``ts`` is at or after its session close."""
    if order.tif == TimeInForce.DAY and order.session_close is not None and ts >= order.session_close:
        order.status = OrderStatus.EXPIRED
        order.reason = "day order expired at the session close"
        return True
    return False


def quote_match(order: Order, bid: float, ask: float, arriving: bool) -> tuple[float, bool] | None:
    """(reference price, takes liquidity) of ``order`` against a valid quote, or None (it keeps working).

    Market: the mid, taking (the spread model then charges the half spread: a buy pays the ask).
    Limit buy ``L``: when ``ask <= L``; taking at the mid if ``arriving`` (marketable), else passive
    at ``L`` (the resting bid was hit). Stop buy ``S``: triggers when ``ask >= S``, then as a market
    order (stop-limit: as a limit order arriving now). Sells mirror with the bid.
    """
    kind = order.type
    mid = 0.5 * (bid + ask)
    if kind == OrderType.MARKET:
        return mid, True
    buy = order.quantity > 0
    if kind != OrderType.LIMIT and not order.triggered:
        stop = order.stop
        if not (ask >= stop if buy else bid <= stop):
            return None
        if kind == OrderType.STOP:
            return mid, True
        order.triggered = True
        arriving = True
    limit = order.limit
    if not (ask <= limit if buy else bid >= limit):
        return None
    return (mid, True) if arriving else (limit, False)
