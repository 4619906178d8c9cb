"""The strategy API: subclass ``Strategy`` and react to bars through a ``Context``.

``initialize(ctx)`` runs once before the first bar; ``on_bar(ctx)`` after every bar end (the clock
is that bar's ``ts_end``, so the bar just completed is the newest visible one); ``on_fill(ctx,
fill)`` for each execution; ``on_end(ctx)`` once after the last bar. Strategies that subscribe to
ticks also get ``on_trade(ctx, trade)`` and ``on_quote(ctx, quote)`` between bar ends, in time order
(``backtape.engine.ticks``). Everything a strategy reads goes through the portal, as of the clock.

Indicators computed over the whole loaded series (``ctx.indicator``) are exposed point in time:
``ind[-1]`` is the value at the current bar, ``ind[-2]`` the one before; positive indices and the
future do not exist. The engine checks each indicator for look-ahead by recomputing it on a prefix.

Position sizing: the order helpers take explicit quantities or all-in targets (the built-in
strategies use ``order_target_percent``, so they stay all-in). To size an entry by risk, run with a
``RiskManager`` that has a sizer and call ``ctx.order_sized(symbol, side, stop=...)`` (or
``ctx.size(...)`` for the quantity alone)::

    from backtape.risk import FixedFractional, RiskManager

    class Breakout(Strategy):
        def on_bar(self, ctx):
            price = ctx.spot("AAPL")
            if not ctx.position("AAPL") and price > self.level:
                ctx.order_sized("AAPL", +1, stop=0.95 * price)   # lose at most 1% of equity to the stop

    run_backtest(Breakout(), "AAPL", "2012-01-01", "2015-01-01",
                 risk=RiskManager(sizer=FixedFractional(0.01), max_position_pct=0.5))
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict, Unpack

import numpy as np

from ..errors import BacktapeError, HistoryWindowStartsBeforeData, LookAheadError, OrderError, ParameterError
from ..portal.requirements import DataRequirement
from ..schema import TickKind
from .orders import Fill, Order, OrderType, TimeInForce

if TYPE_CHECKING:
    from ..portal import DataPortal
    from .engine import _Run
    from .ticks import Quote, Trade


class Strategy:
    """Base class of event-driven strategies.

    Parameters are keyword arguments declared in ``params`` (class-level defaults) and become
    attributes. The portal is injected by the engine (or passed as ``portal=``) before
    ``initialize``.
    """

    params: ClassVar[dict[str, Any]] = {}
    #: bars of history the strategy needs before its first decision (its warm-up)
    warmup: int = 0
    #: the same, by the name of the vector form (``backtape.vector.form``): the larger of the two counts
    required_history: int = 0
    #: tick kinds ("trades", "quotes") streamed to ``on_trade``/``on_quote`` besides the bars
    subscribe: ClassVar[tuple[TickKind, ...]] = ()

    def __init__(self, portal: DataPortal | None = None, **params: Any) -> None:
        unknown = set(params) - set(self.params)
        if unknown:
            known = ", ".join(sorted(self.params)) or "none"
            raise ParameterError(f"{type(self).__name__}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                                 f"known: {known}")
        for key, value in params.items():
            _check_type(type(self).__name__, key, value, self.params[key])
        self.portal = portal
        self.parameters: dict[str, Any] = {**self.params, **params}
        for key, value in self.parameters.items():
            setattr(self, key, value)
        if self.required_history > self.warmup:
            self.warmup = int(self.required_history)

    @property
    def name(self) -> str:
        return type(self).__name__

    #: the run's bar frequency, set by the engine before data is loaded
    frequency: str = "1d"

    def get_data_requirements(self) -> list[DataRequirement]:
        """Bars at the run frequency with ``warmup`` bars of lookback, and the ``subscribe`` tick kinds;
        override to ask for more (declare ticks without bars for a tick-only clock)."""
        return [DataRequirement("bars", self.frequency, self.warmup),
                *(DataRequirement(kind, self.frequency, 0) for kind in self.subscribe)]

    def initialize(self, ctx: Context) -> None:
        """Called once before the first bar."""

    def on_bar(self, ctx: Context) -> None:
        """Called after each bar completes."""

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        """Called for each execution of this strategy's orders."""

    def on_trade(self, ctx: Context, trade: Trade) -> None:
        """Called for each trade of a subscribed symbol (``backtape.engine.ticks.Trade``)."""

    def on_quote(self, ctx: Context, quote: Quote) -> None:
        """Called for each quote of a subscribed symbol (``backtape.engine.ticks.Quote``)."""

    def on_end(self, ctx: Context) -> None:
        """Called after the last bar."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.parameters.items())
        return f"{self.name}({args})"


class Indicator:
    """A precomputed series revealed up to the current bar: ``ind[-1]`` now, ``ind[-k]`` k-1 bars ago.

    ``_offset`` is the run's row of the engine's row 0 (non-zero once a streamed run released bars);
    ``_items`` holds the values from there as Python floats, cheaper to index one at a time.
    """

    __slots__ = ("_items", "_offset", "_rows", "_run", "_slot", "name", "values")

    def __init__(self, run: _Run, slot: int, values: np.ndarray, name: str) -> None:
        self._run, self._slot, self.values, self.name = run, slot, values, name
        self._rows = run.rows  # the engine updates this list in place, bar by bar
        self._offset = 0
        self._items = values.tolist()

    def rebase(self, offset: int, count: int) -> None:
        """The engine's rows now start at the run's row ``offset`` and number ``count``."""
        self._offset = offset
        self._items = self.values[offset:offset + count].tolist()

    def __getitem__(self, key: int) -> float:
        if type(key) is int and key < 0:
            i = self._rows[self._slot] + 1 + key
            if i >= 0:
                return self._items[i]
            i += self._offset
            return float(self.values[i]) if i >= 0 else math.nan
        raise LookAheadError(f"indicator {self.name}: use negative indices (ind[-1] is the current bar)")

    def __len__(self) -> int:
        return int(self._run.rows[self._slot]) + 1 + self._offset

    def to_numpy(self) -> np.ndarray:
        """The values up to and including the current bar (a view)."""
        return self.values[: self._run.rows[self._slot] + 1 + self._offset]


class OrderOptions(TypedDict, total=False):
    """Keyword options of ``Context.order`` (and of ``buy``, ``sell``, ``order_target``...)."""

    limit: float | None
    stop: float | None
    tif: str
    tag: str


class Context:
    """What a strategy sees and does at each bar: clock, data (via the portal), account, orders.

    Time and data (all point in time: nothing after the clock is visible)
        ``now`` clock in UTC ns · ``clock`` the same as a datetime · ``bar_index`` steps so far ·
        ``symbols`` · ``frequency`` · ``history(symbols, bar_count, field)`` past bars as an array ·
        ``spot(symbol, field)`` the latest bar's value · ``indicator(fn, *args)`` a series computed
        once, read as ``ind[-1]`` · ``quote``/``last_trade``/``delta`` in tick runs · ``portal``.
    Account
        ``cash`` · ``equity`` · ``position(symbol)`` · ``positions`` (non-zero ones) ·
        ``state`` (a dict kept between bars for your own values).
    Orders
        ``order(symbol, quantity, limit=, stop=, tif=)`` · ``buy``/``sell`` (all-in without a
        quantity) · ``close(symbol)`` · ``order_target(symbol, quantity)`` ·
        ``order_target_value(symbol, cash)`` · ``order_target_percent(symbol, fraction)`` ·
        ``bracket(symbol, quantity, stop_loss=, take_profit=)`` · ``size(symbol, side, stop=)`` and
        ``order_sized(...)`` (the run's ``RiskManager`` sizer) · ``cancel(order)`` · ``open_orders()``.
    Output
        ``record(name=value, ...)`` values per bar, returned as columns of ``result.records``.
    """

    def __init__(self, run: _Run) -> None:
        self._run = run
        self.portal = run.portal
        self.symbols: list[str] = list(run.symbols)
        self.frequency: str = run.frequency
        self.state: dict[str, Any] = {}

    # time and data ---------------------------------------------------------------------
    @property
    def now(self) -> int:
        """The clock in UTC nanoseconds (the end of the bar just completed)."""
        return self._run.now

    @property
    def clock(self) -> dt.datetime | None:
        """The clock as a UTC datetime (the portal's view of ``now``)."""
        return self.portal.clock

    @property
    def bar_index(self) -> int:
        """Number of clock steps before this one."""
        return self._run.step

    def history(self, symbols: str | Sequence[str], bar_count: int, field: str = "close",
                frequency: str | None = None) -> np.ndarray:
        """The last ``bar_count`` complete bars' ``field`` (1-D for one symbol, bars x symbols else)."""
        names = [symbols] if isinstance(symbols, str) else list(symbols)
        freq = frequency or self.frequency
        seen = self._run.history_counts  # a streamed run keeps this many bars of look-back
        if seen.get(freq, 0) < bar_count:
            seen[freq] = bar_count
        try:
            out = self.portal.get_history_window(names, self._run.now, bar_count, freq, field)
        except HistoryWindowStartsBeforeData as exc:
            if not self._run.bounds:
                raise
            raise HistoryWindowStartsBeforeData(
                f"{exc}; this run is streamed in windows and keeps before each one only the declared "
                f"look-back and the largest history asked so far: declare warmup = {bar_count} on the "
                "strategy (or run with BacktestEngine(window_sessions=0))",
                first_valid_end=exc.first_valid_end) from None
        return out[:, 0] if isinstance(symbols, str) else out

    def spot(self, symbol: str, field: str = "close") -> float:
        """The latest complete bar's ``field`` for ``symbol``."""
        return self.portal.get_spot_value(symbol, field, self._run.now)

    def quote(self, symbol: str | None = None) -> Quote | None:
        """The prevailing quote of ``symbol`` (bid, ask, sizes, ts), None before its first one."""
        return self._feed("quotes").quotes.get(symbol or self.symbols[0])

    def last_trade(self, symbol: str | None = None) -> Trade | None:
        """The latest trade of ``symbol`` (with its side and cumulative delta), None before the first."""
        return self._feed("trades").trades.get(symbol or self.symbols[0])

    def delta(self, symbol: str | None = None) -> float:
        """Cumulative delta (buyer- minus seller-initiated volume) of ``symbol`` since the run start."""
        return self._feed("trades").delta(symbol or self.symbols[0])

    def _feed(self, kind: str):
        feed = self._run.feed
        if feed is None or kind not in feed.kinds:
            raise BacktapeError(f"no {kind} in this run: declare DataRequirement({kind!r}) or "
                                f"subscribe = ({kind!r},) in the strategy")
        return feed

    def indicator(self, fn: Callable[..., np.ndarray], *args: Any, symbol: str | None = None,
                  field: str = "close", name: str | None = None, **kwargs: Any) -> Indicator:
        """Compute ``fn(values, *args, **kwargs)`` once over the loaded bars; read it point in time."""
        return self._run.make_indicator(fn, args, kwargs, symbol or self.symbols[0], field, name)

    # account ---------------------------------------------------------------------------
    @property
    def cash(self) -> float:
        """Cash in the account now (after commissions; negative when buying on margin)."""
        return self._run.portfolio.cash

    @property
    def equity(self) -> float:
        """Cash plus every position at its latest price."""
        return self._run.portfolio.equity

    def position(self, symbol: str | None = None) -> float:
        """Signed quantity held in ``symbol`` (the first symbol by default); 0 when flat."""
        return self._run.portfolio.position(symbol or self.symbols[0])

    @property
    def positions(self) -> dict[str, float]:
        """Every non-zero position, symbol -> signed quantity."""
        return {s: q for s, q in self._run.portfolio.positions.items() if q}

    # orders ----------------------------------------------------------------------------
    def order(self, symbol: str, quantity: float, *, limit: float | None = None, stop: float | None = None,
              tif: str = "gtc", tag: str = "") -> Order:
        """Market, limit, stop or stop-limit order for a signed ``quantity``."""
        kind = (OrderType.STOP_LIMIT if limit is not None and stop is not None else OrderType.LIMIT
                if limit is not None else OrderType.STOP if stop is not None else OrderType.MARKET)
        return self._run.submit(Order(symbol, float(quantity), kind, limit, stop, TimeInForce(tif), tag=tag))

    def buy(self, symbol: str | None = None, quantity: float | None = None,
            **kw: Unpack[OrderOptions]) -> Order:
        """Buy ``quantity`` (all-in at market when omitted)."""
        return self._side(symbol, quantity, 1.0, kw)

    def sell(self, symbol: str | None = None, quantity: float | None = None,
             **kw: Unpack[OrderOptions]) -> Order:
        """Sell ``quantity`` (all-in short at market when omitted)."""
        return self._side(symbol, quantity, -1.0, kw)

    def _side(self, symbol: str | None, quantity: float | None, side: float, kw: OrderOptions) -> Order:
        symbol = symbol or self.symbols[0]
        if quantity is not None:
            return self.order(symbol, side * abs(quantity), **kw)
        if kw.get("limit") is not None or kw.get("stop") is not None:
            raise BacktapeError("an all-in order (no quantity) is a market order: give quantity= with "
                                "limit= or stop=")
        return self.order_target_percent(symbol, side, tif=kw.get("tif", "gtc"), tag=kw.get("tag", ""))

    def close(self, symbol: str | None = None, tag: str = "") -> Order | None:
        """Flatten ``symbol`` at market (``None`` when already flat)."""
        symbol = symbol or self.symbols[0]
        qty = self.position(symbol)
        return self.order(symbol, -qty, tag=tag) if qty else None

    def size(self, symbol: str | None = None, side: int = 1, *, stop: float | None = None) -> float:
        """Signed quantity the run's ``RiskManager`` sizer gives a new ``side`` (+1/-1) position.

        Inputs, all as of the clock: equity; the latest price (quote mid or last trade in tick
        runs, else the latest close); ``stop`` (else the default stop-loss, else the sizer's own
        assumption); for sizers with a ``volatility_window`` (``VolatilityTarget``), the std of the
        last ``window`` close-to-close returns of ``ctx.history`` and the run's bars per year.
        Whole shares (rounded down) unless the asset allows fractions; limits apply at the fill.
        """
        symbol = symbol or self.symbols[0]
        risk = self._run.broker.risk
        if risk is None or risk.sizer is None:
            raise BacktapeError("sizing needs a RiskManager with a sizer, e.g. "
                                "run_backtest(..., risk=RiskManager(sizer=FixedFractional(0.01)))")
        if side not in (1, -1):
            raise OrderError(f"side must be +1 (long) or -1 (short), got {side!r}")
        price = self._price(symbol)
        if stop is not None and not (stop - price) * side < 0:
            raise OrderError(f"stop {stop} of a {'long' if side > 0 else 'short'} {symbol} entry must be "
                             f"{'below' if side > 0 else 'above'} the price {price}")
        window = int(getattr(risk.sizer, "volatility_window", 0) or 0)
        volatility = None
        if window > 0:
            closes = self.history(symbol, window + 1, "close")
            volatility = float(np.std(closes[1:] / closes[:-1] - 1.0, ddof=1))
        qty = risk.position_size(self.equity, price, side=side, stop_price=stop, volatility=volatility,
                                 periods_per_year=self._run.periods_per_year)
        if not qty > 0 or not math.isfinite(qty):
            return 0.0
        return side * (qty if self._run.fractional(symbol) else float(math.floor(qty + 1e-9)))

    def order_sized(self, symbol: str | None = None, side: int = 1, *, stop: float | None = None,
                    take_profit: float | None = None, limit: float | None = None,
                    tag: str = "") -> Order | None:
        """Enter ``side`` with the quantity of :meth:`size`; with ``stop``/``take_profit`` as a bracket.

        ``None`` when the size rounds to zero (too little equity or too wide a stop).
        """
        symbol = symbol or self.symbols[0]
        qty = self.size(symbol, side, stop=stop)
        if not qty:
            return None
        if stop is None and take_profit is None:
            return self.order(symbol, qty, limit=limit, tag=tag)
        return self.bracket(symbol, qty, stop_loss=stop, take_profit=take_profit, limit=limit, tag=tag)

    def _price(self, symbol: str) -> float:
        """Latest price of ``symbol``: quote mid or last trade when ticks stream, else the latest close."""
        feed = self._run.feed
        if feed is not None:
            quote = feed.quotes.get(symbol)
            if quote is not None and 0 < quote.bid <= quote.ask:
                return quote.mid
            trade = feed.trades.get(symbol)
            if trade is not None:
                return trade.price
        return self.spot(symbol)

    def enter(self, symbol: str, percent: float, *, tag: str = "") -> Order | None:
        """Act on an entry signal: move to ``percent`` of equity (negative: short) unless already on
        that side; there the run's ``repeat_signals`` option decides: ``"ignore"`` (backtape, vectorbt)
        does nothing, ``"reenter"`` (backtesting.py) closes the position and opens it again."""
        held = self.position(symbol)
        if held and (held > 0) == (percent > 0):
            if self._run.options.repeat_signals != "reenter":
                return None
            self.close(symbol, tag=tag)
        return self.order_target_percent(symbol, percent, tag=tag)

    def order_target_percent(self, symbol: str, percent: float, *, tif: str = "gtc", tag: str = "") -> Order:
        """Move the position to ``percent`` of equity, sized at the fill price (whole shares)."""
        order = Order(symbol, 0.0, OrderType.MARKET, tif=TimeInForce(tif), target_percent=float(percent),
                      tag=tag)
        return self._run.submit(order)

    def order_target_value(self, symbol: str, value: float, **kw: Unpack[OrderOptions]) -> Order | None:
        """Move the position to ``value`` in cash terms at the latest close (``None`` when already there)."""
        price = self.spot(symbol)
        target = value / price
        return self.order_target(symbol, math.copysign(math.floor(abs(target) + 1e-9), target)
                                 if not self._run.fractional(symbol) else target, **kw)

    def order_target(self, symbol: str, quantity: float, **kw: Unpack[OrderOptions]) -> Order | None:
        """Move the position to ``quantity`` shares (``None`` when already there)."""
        delta = quantity - self.position(symbol)
        return self.order(symbol, delta, **kw) if delta else None

    def bracket(self, symbol: str, quantity: float, *, stop_loss: float | None = None,
                take_profit: float | None = None, limit: float | None = None, tag: str = "") -> Order:
        """Entry with a stop-loss and/or take-profit that activate when it fills (one cancels the other)."""
        entry = Order(symbol, float(quantity), OrderType.LIMIT if limit is not None else OrderType.MARKET,
                      limit_price=limit, tag=tag)
        oco = entry.id
        if stop_loss is not None:
            entry.children.append(Order(symbol, -float(quantity), OrderType.STOP, stop_price=stop_loss,
                                        oco_id=oco, tag=f"{tag}:stop_loss" if tag else "stop_loss"))
        if take_profit is not None:
            entry.children.append(Order(symbol, -float(quantity), OrderType.LIMIT, limit_price=take_profit,
                                        oco_id=oco, tag=f"{tag}:take_profit" if tag else "take_profit"))
        return self._run.submit(entry)

    def cancel(self, order: Order | int) -> bool:
        """Cancel a working order; False when it had already filled, expired or been cancelled."""
        return self._run.broker.cancel(order if isinstance(order, int) else order.id)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Working orders (of ``symbol``, or all), not yet filled, cancelled or expired."""
        return self._run.broker.working(symbol)

    def record(self, **values: float) -> None:
        """Record values at this bar, e.g. ``ctx.record(fast=f[-1], slow=s[-1])``: ``result.records``
        has one row per bar and one column per name (null at bars that did not record it)."""
        self._run.record(values)


def _check_type(strategy: str, name: str, value: Any, default: Any) -> None:
    """A parameter whose default is a number (or bool) must be given a number (or bool)."""
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif isinstance(default, int):  # a count of bars or symbols: 2.5 is refused, not truncated to 2
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value).is_integer()
        kind = "a whole number"
    elif isinstance(default, float):
        ok, kind = isinstance(value, numbers.Real) and not isinstance(value, bool), "a number"
    else:
        return
    if not ok:
        hint = f"; a default of {float(default)!r} takes fractions" if kind == "a whole number" else ""
        raise ParameterError(f"{strategy}: parameter {name} must be {kind} (default {default!r}), "
                             f"got {value!r}{hint}")
