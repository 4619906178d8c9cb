"""The simulated broker: turns orders into fills against completed bars or quotes, costs itemized.

Prices come from ``backtape.fills`` (``limit_fill_price``, ``stop_fill_price``, ``slipped``,
``commission``, ``affordable_shares``), the same numba functions the vectorized engine calls, so
the two engines follow one description (read that module's docstring):

=================  ==============================================================================
order              fills on the first bar that starts after it was placed
=================  ==============================================================================
market             at that bar's open (``fill="next_open"``), or at the signal bar's close when
                   ``fill="close"``
limit buy  L       at the open if ``open <= L`` (gap through), else at ``L`` if ``low <= L``
limit sell L       at the open if ``open >= L``, else at ``L`` if ``high >= L``
stop buy   S       at the open if ``open >= S``, else at ``S`` if ``high >= S``
stop sell  S       at the open if ``open <= S``, else at ``S`` if ``low <= S``
stop-limit S, L    triggers like a stop; fills at the trigger price when it respects ``L``, else
                   rests as a limit order from the next bar
=================  ==============================================================================

Bracket legs (stop-loss, take-profit; one cancels the other) are active on the entry's own bar
when the entry filled at that bar's open (everything else in the bar happened after it), else
from the next bar. When both legs could fill in one bar the stop-loss fills first, unless only the
take-profit was gapped through at the open (the conservative reading of an unknown path).

Target orders (``order_target_percent``) are sized when they fill, all-in style: a reversal first
closes the old position (paying its commission), then the new position is the largest whole
number of shares (fractions when the asset allows) whose slipped price and commission fit in
``percent * equity``, and in the margin left (``leverage * equity - gross exposure``). One that
needs no trade (the position is already at the target, or there is none to close) is cancelled
with that reason: no order is recorded as filled without a fill.

Default stop-loss
-----------------
With ``RiskManager(default_stop_loss_pct=p)``, every position opened (from flat, or reversed)
without a stop of its own gets a protective stop order, tagged ``default_stop``: GTC, for the whole
position, at ``entry * (1 - p)`` for a long and ``entry * (1 + p)`` for a short, where ``entry`` is
the price of the fill that opened it. It is a recorded order (``parent_id`` = the opening order)
and becomes active when a bracket leg would (on the entry's own bar after a fill at the open, else
from the next bar). "A stop of its own" is a working stop or stop-limit order against the
position, such as a bracket's stop-loss; a stop order the strategy places later replaces the
default one. The default stop follows the position size (adds and partial exits), is one-cancels-
other with the opening bracket's take-profit, and is cancelled when another order closes or
reverses the position (market orders filling at a bar's open go first, so an exit at the open
never meets a stop filled before it). Portfolio heat measures open risk to it.

Drawdown halt: once equity at a clock step is ``max_drawdown_halt`` below its peak, the engine
latches the halt; orders adding risk are refused from then on (recorded in ``rejections``).

Slippage applies to every fill; spread and impact to fills that take liquidity (market and stop).
``max_participation`` caps each fill at that fraction of the bar's volume; the rest stays working
(a capped target order keeps working toward its target). Orders resized or refused by the risk
manager or the leverage limit are recorded in ``rejections`` with the reason.

With quotes
-----------
When the run loads quotes (the strategy declares ``DataRequirement("quotes")``), every order of a
symbol is filled against its quotes instead of its bars; the bar rules above (and ``fill``) apply
only to runs without quotes. An order placed at ``t`` *arrives* at ``t + latency`` (engine option ``latency``,
ns, default 0) and is matched first against the quote prevailing at its arrival: with
``latency == 0`` the quote the strategy saw when it placed the order (for ``on_trade`` that is the
quote strictly before the trade, by the trade-first tie rule; for ``on_bar`` the last quote before
the bar end), with ``latency > 0`` the last quote stamped strictly before ``t + latency``. Its fill
time is the arrival. An order still working *rests* and is matched against each later quote of its
symbol, at that quote's ``ts``. Only valid quotes (``0 < bid <= ask``) fill.

=================  ==============================================================================
order              fills (``mid = (bid + ask) / 2``)
=================  ==============================================================================
market             at arrival (or at the first valid quote after it): reference ``mid``, taking
                   liquidity, so the quote-based spread cost makes a buy pay the ask and a sell
                   receive the bid; the itemized spread is ``|qty| * (ask - mid)``
limit buy  L       at arrival if ``ask <= L``: as a market order (pays the ask, at most ``L``);
                   resting: on the first quote with ``ask <= L``, at ``L``, providing liquidity
limit sell L       mirror: ``bid >= L``; at the bid when marketable, else at ``L`` when resting
stop buy   S       triggers on the first quote (arrival included) with ``ask >= S``: pays that ask
stop sell  S       triggers on ``bid <= S``: receives that bid
stop-limit S, L    triggers like a stop, then is a limit order arriving at the trigger quote
=================  ==============================================================================

The reference price goes through the same cost engine (``SpreadModel(use_quotes=True)``, the
default, charges the quote's half spread; slippage and commission as usual; impact and
``max_participation`` need a bar volume and do not apply). Bracket legs arrive when their entry
fills (plus the latency). DAY orders expire at their session close.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ..costs import MarketState
from ..errors import warn_once
from ..fills import DUST, limit_fill_price, reduces, slipped, stop_fill_price, target_refusal, wanted_units
from ._book import OrderBook, live
from ._quotes import quote_match
from .orders import Fill, Order, OrderStatus, OrderType, TimeInForce

_INF = math.inf


class Bar(NamedTuple):
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


class Broker(OrderBook):
    """Holds working orders and fills them against bars; the portal is injected (seed 000).

    Order entry, sizing and the bookkeeping after a fill are inherited from ``OrderBook``
    (``backtape.engine._book``); matching (the tables above) and execution are here.
    """

    # matching ----------------------------------------------------------------------------
    def process_bar(self, symbol: str, bar: Bar) -> list[Fill]:
        """Fill the orders placed before ``bar`` started, then expire DAY orders past their session."""
        fills: list[Fill] = []
        book = self._working.get(symbol)
        if not book or symbol in self.by_quote:
            return fills
        first = live(book)
        if len(first) > 1:
            first.sort(key=_priority)
        guard = self._guards.get(symbol)
        if guard is not None and guard.is_active:
            _after_market_orders(first, guard)
        self._match_all(first, bar, fills)
        # bracket legs of entries filled at this bar's open are live for the rest of the bar
        start = bar.ts
        legs = [o for o in book if o.created_at == start and o.parent_id is not None and o.is_active]
        if legs:
            seen = {id(o) for o in first}
            legs = [o for o in legs if id(o) not in seen]
            self._match_all(sorted(legs, key=_priority), bar, fills)
        end = bar.ts_end
        for order in book:
            close = order.session_close
            if close is not None and end >= close and order.tif == TimeInForce.DAY and order.created_at >= 0 \
                    and order.is_active:
                order.status = OrderStatus.EXPIRED
                order.reason = "day order expired at the session close"
        still = [o for o in book if o.is_active]
        if still:
            self._working[symbol] = still
        else:  # the book holds only symbols with orders (the engine skips matching when it is empty)
            del self._working[symbol]
        return fills

    def fill_order(self, due: list[tuple[str, Bar]], now: int, *, at_close: bool) -> list[tuple[str, Bar]]:
        """The symbols with orders at this step, in the order they fill: those whose market orders
        reduce their position first (``fills.reduces``, judged before any fills), then the others."""
        if len(due) < 2:
            return due
        first = [self._reduces(sym, bar.close if at_close else bar.open, now) for sym, bar in due]
        return [d for d, f in zip(due, first, strict=True) if f] + \
            [d for d, f in zip(due, first, strict=True) if not f]

    def _reduces(self, symbol: str, ref: float, now: int) -> bool:
        pf = self.portfolio
        held = pf.position(symbol)
        if not held:
            return False
        for order in live(self._working.get(symbol, [])):
            if order.type != OrderType.MARKET or order.created_at > now:
                continue
            target = order.target_percent
            if target is None:
                if order.side * held < 0:
                    return True
            elif reduces(held, target, pf.cash + held * ref + pf.others_value(symbol), ref,
                         self.budget_scale):
                return True
        return False

    def _match_all(self, orders: list[Order], bar: Bar, fills: list[Fill]) -> None:
        for order in orders:
            if order.created_at > bar.ts or not order.is_active:
                continue
            if order.oco_id is not None and self._sibling_gaps_first(order, bar):
                continue
            match = self._match(order, bar)
            if match is not None:
                fills.extend(self._execute(order, bar, match[0], bar.ts, match[1]))

    def finalize(self, symbol: str, bar: Bar, now: int, price: float, ts: int) -> list[Fill]:
        """``finalize_trades``: flatten ``symbol`` on the run's last ``bar`` at reference ``price``,
        booked at ``ts``."""
        qty = self.portfolio.position(symbol)
        if not qty:
            return []
        order = self.submit(Order(symbol, -qty, tag="finalize"), now)
        return self._execute(order, bar, price, ts, True)

    def fill_at_close(self, symbol: str, bar: Bar, now: int) -> list[Fill]:
        """``fill="close"``: market orders placed by ``now`` execute at this bar's close (those placed
        earlier waited for the symbol's first bar since)."""
        fills: list[Fill] = []
        if symbol in self.by_quote:
            return fills
        for order in live(self._working.get(symbol, [])):
            if order.type == OrderType.MARKET and 0 <= order.created_at <= now:
                fills.extend(self._execute(order, bar, bar.close, bar.ts_end, True))
        return fills

    def fill_quote(self, order: Order, bid: float, ask: float, ts: int, arriving: bool) -> list[Fill]:
        """Fill ``order`` against the quote ``bid``/``ask`` at ``ts`` ("With quotes" above), if it matches."""
        if not (bid > 0 and ask >= bid):
            return []
        match = quote_match(order, bid, ask, arriving)
        if match is None:
            return []
        mid = 0.5 * (bid + ask)
        quote = Bar(ts, ts, mid, math.nan, math.nan, mid, math.nan, math.nan, bid, ask)
        return self._execute(order, quote, match[0], ts, match[1])

    def _match(self, order: Order, bar: Bar) -> tuple[float, bool] | None:
        """(reference price, takes liquidity) of ``order`` on ``bar`` (``fills`` rules), or None."""
        kind = order.type
        if kind == OrderType.MARKET:  # with fill="close", one that waited for a bar fills at its close
            return None if self.fill_mode == "close" else (bar.open, True)
        side = float(order.side)
        if kind != OrderType.LIMIT and not order.triggered:
            price = stop_fill_price(bar.open, bar.high, bar.low, order.stop, side)
            if price != price:
                return None
            if kind == OrderType.STOP:
                return price, True
            order.triggered = True
            lim = order.limit
            return (price, True) if (side > 0 and price <= lim) or (side < 0 and price >= lim) else None
        price = limit_fill_price(bar.open, bar.high, bar.low, order.limit, side)
        return None if price != price else (price, False)

    def _sibling_gaps_first(self, order: Order, bar: Bar) -> bool:
        """A stop leg yields to its take-profit sibling when only the latter was gapped at the open."""
        if order.type == OrderType.LIMIT or order.triggered:
            return False
        if stop_fill_price(bar.open, bar.high, bar.low, order.stop, float(order.side)) == bar.open:
            return False
        for other in self._working.get(order.symbol, ()):
            if other is not order and other.oco_id == order.oco_id and other.is_active \
                    and other.type == OrderType.LIMIT and other.created_at <= bar.ts:
                return limit_fill_price(bar.open, bar.high, bar.low, other.limit,
                                        float(other.side)) == bar.open
        return False

    # execution ---------------------------------------------------------------------------
    def _execute(self, order: Order, bar: Bar, ref: float, ts: int, liquidity: bool) -> list[Fill]:
        if order.target_percent is not None:
            return self._execute_target(order, bar, ref, ts, order.target_percent)
        sym = order.symbol
        qty = self._round(sym, abs(order.remaining))
        if qty <= 0 and order.filled == 0:
            order.reason = self._below_one_unit(sym, abs(order.remaining))
            self._refuse(order, ts)
            return []
        qty = min(qty, self._cap(sym, bar))
        if qty <= 0:
            return []
        wanted = qty * order.side
        qty = self._lots(sym, self._leverage_limit(order, self._risk_limit(order, wanted, ref, ts), ref, ts))
        small = self._too_small(sym, qty, ref)
        if small:
            order.reason = order.reason if qty == 0 else small
        if qty == 0 or small:
            self._refuse(order, ts)
            return []
        if qty != wanted:  # a resized order is done once its resized quantity is filled
            order.quantity = order.filled + qty
        return [self._fill(order, qty, ref, bar, ts, liquidity)]

    def _execute_target(self, order: Order, bar: Bar, ref: float, ts: int, target: float) -> list[Fill]:
        """Move toward ``target`` (the order's ``target_percent``) of equity: close a reversed position
        first, then size."""
        pf, sym = self.portfolio, order.symbol
        cap = self._cap(sym, bar)
        fills: list[Fill] = []
        pos = pf.position(sym)
        if pos and (target == 0 or (pos > 0) != (target > 0)):
            q = min(abs(pos), cap)
            fills.append(self._fill(order, -math.copysign(q, pos), ref, bar, ts, True))
            cap -= q
            pos = pf.position(sym)
        if target == 0 or (pos and (pos > 0) != (target > 0)):
            order.status = OrderStatus.PARTIAL if pos else OrderStatus.FILLED
            return fills or _unchanged(order, f"no {sym} position to close")
        side = 1.0 if target > 0 else -1.0
        market = _market(ref, bar)
        price = slipped(ref, side, self.costs.price_bps(int(side), 0.0, market))
        frac = self._is_fractional(sym)
        equity = pf.cash + pos * ref + pf.others_value(sym)
        commission = self.costs.commission
        held, wanted = abs(pos), 0.0
        delta = commission.affordable(equity * abs(target) * self.budget_scale, price, frac) - held
        if abs(delta) <= DUST * held:
            delta = 0.0
        if delta < 0:
            q = self._lots(sym, min(-delta, cap))
            capped = q < -delta
            if q > 0 and not self._too_small(sym, q, ref):
                fills.append(self._fill(order, -side * q, ref, bar, ts, True))
        else:
            room = self.leverage * equity - held * ref - pf.others_gross(sym)
            wanted = self._lots(sym, delta)
            delta = self._lots(sym, min(delta, commission.affordable(room, price, frac)))
            if delta <= DUST * max(held, wanted):  # the margin room leaves float noise at most
                delta = 0.0
            q = self._lots(sym, min(delta, cap))
            capped = q < delta
            small = self._too_small(sym, q, ref) if q > 0 else ""
            if small and not fills:
                order.reason = f"{small} ({abs(target):.0%} of equity)"
                self._refuse(order, ts)
                return fills
            if q > 0 and not small:
                qty = self._risk_limit(order, side * q, ref, ts)
                if qty:
                    fills.append(self._fill(order, qty, ref, bar, ts, True))
                elif not fills:
                    self._refuse(order, ts)
                    return fills
            elif not fills and not held and not capped:
                lot = self.instruments[sym].lot_size if sym in self.instruments else None
                order.reason = target_refusal(sym, target, wanted, equity, room, price,
                                              leverage=self.leverage, fractional=bool(frac), lot=lot)
                self._refuse(order, ts, side * wanted_units(wanted, equity, target, price, self.budget_scale))
                return fills
        order.status = OrderStatus.PARTIAL if capped else OrderStatus.FILLED
        if fills or capped:
            return fills
        if wanted > 0:  # the target asks for more than the margin left allows
            lot = self.instruments[sym].lot_size if sym in self.instruments else None
            return _unchanged(order, target_refusal(sym, target, wanted, equity, room, price,
                                                    leverage=self.leverage, fractional=bool(frac), lot=lot))
        return _unchanged(order, f"already at the target ({held:g} {sym}, {abs(target):.0%} of equity)")

    def _fill(self, order: Order, qty: float, ref: float, bar: Bar, ts: int, liquidity: bool) -> Fill:
        """Book one execution of ``qty`` (signed) at reference price ``ref`` with its costs."""
        side = 1 if qty > 0 else -1
        c = self.costs.fill(side, abs(qty), _market(ref, bar), liquidity)
        fill = Fill(order.id, order.symbol, ts, qty, c.price, ref, c.commission, c.spread, c.slippage,
                    c.impact, order.tag)
        self.portfolio.apply_fill(fill, bar.high, bar.low)
        self.fills.append(fill)
        order.filled += qty
        if order.target_percent is None:
            done = abs(order.remaining) < 1e-9
            order.status = OrderStatus.FILLED if done else OrderStatus.PARTIAL
        else:
            order.quantity = order.filled
        if order.oco_id is not None:
            self._cancel_sibling(order)
        active_from = bar.ts if ts == bar.ts and ref == bar.open else bar.ts_end
        self._activate_children(order, active_from)
        if self.risk is not None and self.risk.default_stop_loss_pct is not None:
            self._guard(order, fill, active_from, self.risk)
        self._cancel_stale_exits(order)
        if self.on_fill is not None:
            self.on_fill(fill)
        return fill

    def _cap(self, symbol: str, bar: Bar) -> float:
        """Most shares one fill may trade on ``bar`` under ``max_participation`` (inf without it)."""
        if self.max_participation is None:
            return _INF
        if not bar.volume >= 0:  # no volume: nothing to take a share of (quotes never have one)
            if symbol not in self.by_quote:
                warn_once(f"max_participation cannot limit {symbol}: its bars have no volume, so its "
                          "orders fill without the cap")
            return _INF
        return self._round(symbol, self.max_participation * bar.volume)


def _after_market_orders(orders: list[Order], guard: Order) -> None:
    """Move ``guard`` after the market orders in ``orders`` (they fill at the open, before any stop)."""
    last = max((k for k, o in enumerate(orders) if o.type == OrderType.MARKET), default=-1)
    here = next((k for k, o in enumerate(orders) if o is guard), None)
    if here is not None and here < last:
        orders.insert(last, orders.pop(here))


def _market(ref: float, bar: Bar) -> MarketState:
    return MarketState(ref, bar.volume, bar.volatility, bar.bid, bar.ask)


def _priority(order: Order) -> tuple[int, int]:
    """Creation order, but a bracket's stop-loss before its take-profit (conservative)."""
    if order.oco_id is None:
        return (order.created_at, 0)
    return (order.created_at, 0 if order.type != OrderType.LIMIT else 1)



def _unchanged(order: Order, reason: str) -> list[Fill]:
    """A target order that found the position already at its target: cancelled with the reason, so
    no order is recorded as filled without a fill."""
    order.status = OrderStatus.CANCELLED
    order.reason = reason
    return []
