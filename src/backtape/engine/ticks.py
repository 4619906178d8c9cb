"""Trades and quotes in the event engine: what a strategy receives and how the engine streams them.

Subscribing
-----------
A strategy receives ticks when its ``get_data_requirements()`` declares ``DataRequirement("trades")``
and/or ``DataRequirement("quotes")`` (or, keeping the default bars, it lists the kinds in its
``subscribe`` class attribute). Each trade then calls ``on_trade(ctx, trade)`` with a ``Trade``,
each quote ``on_quote(ctx, quote)`` with a ``Quote``; ``ctx.quote(symbol)``, ``ctx.last_trade(symbol)``
and ``ctx.delta(symbol)`` read the latest of each.

Order of events
---------------
Ticks are streamed with ``DataPortal.iter_ticks(..., follow_clock=True)`` and dispatched in time
order across symbols, with the merge's tie rule (``backtape.ticks.merge``): at equal ``ts`` trades
come before quotes (then the run's symbol order, then the source's order), so a quote stamped at a
trade's instant is not visible to that trade (nor to its Lee-Ready side). Before each clock step
``t`` (a bar end) every event with ``ts < t`` is dispatched; an event at exactly ``t`` belongs to
the next bar and comes after ``on_bar`` at ``t``. While an event is dispatched the portal clock and
``ctx.now`` are its ``ts``, so ``ctx.history``/``ctx.spot`` stay point in time. Ticks after the last
clock step are not dispatched (nothing could be booked after the last equity point).

Delta
-----
Trades are classified by ``backtape.ticks.TickClassifier`` (Lee-Ready against the quotes strictly
before each trade, tick rule without quotes) in the order they are dispatched, so ``Trade.side``
and ``Trade.cum_delta`` equal ``classify_trades`` plus ``cumulative_delta`` on the same trades and
quotes from the run start. The engine applies no clock alignment: quotes are used as the source
stamps them (a feed stamped on a receive clock should be shifted in the source first).

Tick-only clock
---------------
A strategy that declares ticks but no bars runs on a clock of its own: the ends of the run
frequency's windows (intraday windows anchored at the Unix epoch and kept where they touch a
session of the calendar; ``"1d"`` the session closes) inside ``(start, end]``, plus ``end`` itself.
``on_bar`` runs at each step (a timer), equity is recorded there with positions marked at the last
trade (the quote mid when only quotes are subscribed); ``ctx.history``/``ctx.spot`` have no bars.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import polars as pl

from .._time import NS_PER_MINUTE
from ..calendars import TradingCalendar
from ..errors import ConfigError
from ..portal.requirements import DataRequirement
from ..timeframes import Timeframe
from ._quotes import QuoteDesk

if TYPE_CHECKING:
    from .engine import _Run


class Trade(NamedTuple):
    """One trade as a strategy sees it (``ts`` in UTC ns).

    ``side``: Lee-Ready classification, +1 buyer-initiated, -1 seller-initiated, 0 undecided;
    ``cum_delta``: the symbol's signed volume since the run started, this trade included.
    """

    symbol: str
    ts: int
    price: float
    size: float
    side: int
    cum_delta: float


class Quote(NamedTuple):
    """One top-of-book update (``ts`` in UTC ns; a missing price or size is NaN)."""

    symbol: str
    ts: int
    bid: float
    ask: float
    bid_size: float
    ask_size: float

    @property
    def mid(self) -> float:
        return 0.5 * (self.bid + self.ask)


def subscriptions(requirements: list[DataRequirement]) -> tuple[tuple[str, ...], bool]:
    """The tick kinds a strategy declared (merge order: trades, quotes) and whether it wants bars."""
    kinds = {r.kind for r in requirements}
    return tuple(k for k in ("trades", "quotes") if k in kinds), "bars" in kinds or not requirements


def tick_clock(calendar: TradingCalendar, frequency: str, start: int, end: int) -> np.ndarray:
    """Clock steps of a tick-only run (module docstring): window ends in ``(start, end]`` plus ``end``."""
    tf = Timeframe.parse(frequency)
    if tf.is_intraday:
        f = tf.nanos
        steps = np.arange((start // f + 1) * f, end + 1, f, dtype=np.int64)
        if steps.size and not calendar.is_24_7:
            touches = (calendar.session_index(steps - 1) >= 0) | (calendar.session_index(steps - f) >= 0)
            steps = steps[touches]
    elif tf == Timeframe.parse("1d"):
        closes = calendar.closes
        steps = closes[(closes > start) & (closes <= end)].astype(np.int64)
    else:
        raise ConfigError(f"a tick-only run steps at intraday windows or '1d' sessions, not {tf}")
    if not steps.size or steps[-1] < end:
        steps = np.append(steps, np.int64(end))
    return steps


class TickFeed:
    """Streams one run's trades and quotes and dispatches them event by event (module docstring).

    Events are pulled from the portal streams a *window* of time at a time (the window widens or
    narrows to hold about ``target_rows`` events), classified in one pass and turned into ``Trade``
    and ``Quote`` tuples; ``advance`` then reveals them one by one. Reading ahead is internal to the
    engine, like its pre-loaded bars: no strategy code runs while the portal clock is moved ahead
    to pull a window, and every callback sees the clock at its own event.
    """

    target_rows = 50_000

    def __init__(self, run: _Run, kinds: tuple[str, ...], latency: int, tick_only: bool) -> None:
        from ..ticks import TickClassifier
        from .strategy import Strategy

        self._run = run
        self.kinds = kinds
        portal = run.portal
        self._streams = [portal.iter_ticks(s, run.start, run.end, kinds, follow_clock=True)
                         for s in run.symbols]
        self._classifier = TickClassifier() if "trades" in kinds else None
        self.quotes: dict[str, Quote] = {}
        self.trades: dict[str, Trade] = {}
        self.desk = QuoteDesk(run.broker, self.quotes, latency) if "quotes" in kinds else None
        self._mark = tick_only  # tick-only symbols are marked to market by their ticks
        self._mark_mid = tick_only and "trades" not in kinds
        own = type(run.strategy)
        self._on_trade = run.strategy.on_trade if own.on_trade is not Strategy.on_trade else None
        self._on_quote = run.strategy.on_quote if own.on_quote is not Strategy.on_quote else None
        self._pulled_to = run.start  # events before this instant have been pulled
        self._span = NS_PER_MINUTE
        self._ts: list[int] = []
        self._events: list[Trade | Quote] = []
        self._i = 0
        self.events = 0

    def delta(self, symbol: str) -> float:
        """Cumulative delta of ``symbol`` at the clock (0.0 before its first trade)."""
        last = self.trades.get(symbol)
        return 0.0 if last is None else last.cum_delta

    def advance(self, bound: int) -> float:
        """Dispatch every event with ``ts < bound``; the notional traded by quote fills meanwhile."""
        traded = 0.0
        while True:
            if self._i >= len(self._ts) and not self._refill(bound):
                break
            stop = bisect_left(self._ts, bound, self._i)
            if stop > self._i:
                traded += self._dispatch(self._i, stop)
                self._i = stop
            if stop < len(self._ts):
                break
        desk = self.desk
        if desk is not None:
            traded += desk.arrive(bound)
            desk.expire(bound)
        return traded

    def _refill(self, bound: int) -> bool:
        """Pull the next window of events (at least up to ``bound``); False when none are left."""
        run = self._run
        portal, saved = run.portal, run.portal.clock_ns
        parts: list[pl.DataFrame] = []
        while not parts and self._pulled_to < run.end:
            upto = min(max(self._pulled_to, bound) + self._span, run.end)
            portal.set_clock(upto - 1)  # the streams yield events with ts < upto
            parts = [pl.concat(got) for got in ([b for b in stream] for stream in self._streams) if got]
            self._pulled_to = upto
            if not parts:
                self._span *= 2
        if saved is not None:
            portal.set_clock(saved)
        if not parts:
            self._ts, self._events, self._i = [], [], 0
            return False
        frame = parts[0] if len(parts) == 1 else pl.concat(parts).sort(
            pl.col("ts"), pl.col("kind").to_physical(), maintain_order=True)  # trades first at equal ts
        if frame.height < self.target_rows // 2:
            self._span *= 2
        elif frame.height > self.target_rows * 2:
            self._span = max(self._span // 2, 1)
        is_quote = frame.get_column("kind").to_physical().cast(pl.Boolean)
        trades, quotes = self._trade_events(frame, is_quote), self._quote_events(frame.filter(is_quote))
        self._events = [next(quotes) if q else next(trades) for q in is_quote.to_list()]
        self._ts = _ns(frame)
        self._i = 0
        return True

    def _dispatch(self, lo: int, hi: int) -> float:
        """Reveal events ``lo:hi`` of the window: clock, state, quote fills, then the callback."""
        run, ctx, desk = self._run, self._run.ctx, self.desk
        set_clock = run.portal.set_clock
        on_trade, on_quote = self._on_trade, self._on_quote
        last_trade, last_quote = self.trades, self.quotes
        mark, mark_mid = self._mark, self._mark_mid
        prices, lots = run.portfolio.prices, run.portfolio._lots
        resting = desk.resting if desk is not None else {}
        traded = 0.0
        for ev in self._events[lo:hi]:
            ts, sym = ev.ts, ev.symbol
            if desk is not None and desk.pending:
                traded += desk.arrive(ts)
            set_clock(ts)
            run.now = ts
            if isinstance(ev, Quote):
                last_quote[sym] = ev
                if mark_mid and ev.bid > 0 and ev.ask >= ev.bid:
                    _mark_price(prices, lots, sym, ev.mid)
                if desk is not None and resting.get(sym):
                    traded += desk.on_quote(ev)
                if on_quote is not None:
                    on_quote(ctx, ev)
            else:
                last_trade[sym] = ev
                if mark:
                    _mark_price(prices, lots, sym, ev.price)
                if on_trade is not None:
                    on_trade(ctx, ev)
        self.events += hi - lo
        return traded

    def _trade_events(self, frame: pl.DataFrame, is_quote: pl.Series) -> Iterator[Trade]:
        """``Trade`` tuples of the frame's trades, classified in stream order."""
        if self._classifier is None or bool(is_quote.all()):
            return iter(())
        c = self._classifier.update(frame)
        return map(Trade._make, zip(c.get_column("symbol").to_list(), _ns(c), _floats(c, "price"),
                                    _floats(c, "size"), c.get_column("side").to_list(),
                                    c.get_column("cum_delta").to_list(), strict=True))

    @staticmethod
    def _quote_events(q: pl.DataFrame) -> Iterator[Quote]:
        """``Quote`` tuples of the frame's quotes."""
        return map(Quote._make, zip(q.get_column("symbol").to_list(), _ns(q), _floats(q, "bid"),
                                    _floats(q, "ask"), _floats(q, "bid_size"), _floats(q, "ask_size"),
                                    strict=True))


def _mark_price(prices: dict[str, float], lots: dict, symbol: str, price: float) -> None:
    """Mark a tick-only symbol at ``price`` and widen its open lots' excursions."""
    prices[symbol] = price
    for lot in lots.get(symbol, ()):
        if price > lot.high:
            lot.high = price
        elif price < lot.low:
            lot.low = price


def _ns(frame: pl.DataFrame) -> list[int]:
    return frame.get_column("ts").to_physical().to_list()


def _floats(frame: pl.DataFrame, column: str) -> list[float]:
    s = frame.get_column(column)
    return (s.fill_null(math.nan) if s.null_count() else s).to_list()
