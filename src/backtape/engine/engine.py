"""``BacktestEngine``: builds the portal, pre-loads once, and drives a clock over bar ends.

Per clock step ``t`` (the end of one or more bars), in this order:

0. with a tick subscription, every trade and quote stamped before ``t`` is dispatched to
   ``on_trade``/``on_quote`` in time order and quote-filled orders are matched
   (``backtape.engine.ticks``, ``backtape.engine._quotes``);
1. the portal's clock moves to ``t``;
2. corporate actions whose ex-date session opened by ``t`` are applied (splits scale positions and
   working orders, cash dividends are credited or, for shorts, debited); a dividend going ex inside
   a bar of several sessions waits for that bar's fills (``backtape.actions``);
3. for each symbol whose bar ended at ``t``: working orders are matched against that bar
   (``backtape.engine.broker``), symbols in the order given; then every such symbol is marked at
   its close (so a fill at the open never values the other holdings at this bar's closes);
4. equity is recorded, the strategy's ``on_bar`` runs and may place orders;
5. with ``fill="close"``, its market orders execute at the close of that same bar.

Prices are raw (as traded); strategies read history through the portal, adjusted as of the clock.
A strategy declaring ticks but no bars runs on the tick-only clock of ``backtape.engine.ticks``.
"""

from __future__ import annotations

import functools
import gc
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._time import TimeLike, check_range, format_ns
from ..errors import BacktapeError, ConfigError, NoDataError
from ..options import TradingOptions, trading_options
from ..portal import DataPortal
from ..sources.base import DataSource
from ._actions import apply_action
from ._indicators import make_indicator
from ._report import build_result, warn_refused
from ._timeline import advance_window, open_window, ready_step
from ._user_code import strategy_error
from .broker import Bar, Broker
from .orders import Fill, Order, TimeInForce
from .portfolio import Portfolio
from .result import BacktestResult
from .strategy import Context, Indicator, Strategy
from .ticks import TickFeed, subscriptions
from .windows import PriceLog, SymbolBars, plan_windows

log = logging.getLogger("backtape.backtest")


def one_calendar(calendars: dict[str, str]) -> str | None:
    """The one calendar every symbol of a run trades on (``None``: no symbols). Bars are built from
    that calendar's sessions, so symbols of two calendars (a stock and a 24/7 coin) are refused
    with a ``ConfigError`` naming them, never run with one of them silently dropped."""
    first: dict[str, str] = {}
    for sym, name in calendars.items():
        first.setdefault(name, sym)
    if len(first) > 1:
        (a, ca), (b, cb) = ((sym, name) for name, sym in list(first.items())[:2])
        raise ConfigError(f"{a} trades on the {ca} calendar and {b} on {cb}: a run takes symbols of one "
                          "calendar (its bars are built from that calendar's sessions); run them separately")
    return next(iter(first), None)


def resolve_source(source: DataSource | str, **options: Any) -> DataSource:
    """A ``DataSource`` from an instance or a registered name built from explicit ``options``.

    No configuration is read here: ``backtape.run_backtest`` and ``Workspace.run_backtest`` resolve
    names through the workspace (provider keys, the cache) before calling the engine.
    """
    if isinstance(source, DataSource):
        return source
    from ..sources import get_source

    return get_source(source, **options)


class BacktestEngine:
    """The event-driven engine: ``options`` (``TradingOptions``) are the defaults of every ``run``.

    >>> engine = BacktestEngine(TradingOptions(cash=50_000), source="sample")      # doctest: +SKIP
    >>> engine.run(SmaCrossover(), "AAPL", "2012-01-01", "2015-01-01").metrics     # doctest: +SKIP
    """

    name = "event"

    def __init__(self, options: TradingOptions | None = None, *, source: DataSource | str = "sample",
                 window_sessions: int | None = None, **overrides: Any) -> None:
        self.source = source
        self.options = trading_options(options, **overrides)
        #: sessions per streamed window: ``None`` by size (``backtape.engine.windows``), 0 never
        self.window_sessions = window_sessions

    def run(self, strategy: Strategy, symbols: Sequence[str] | str, start: TimeLike, end: TimeLike,
            frequency: str = "1d", *, source: DataSource | str | None = None,
            options: TradingOptions | None = None,
            progress: Callable[[int, int], None] | None = None, **overrides: Any) -> BacktestResult:
        """Backtest ``strategy`` on ``symbols`` over ``[start, end)`` with bars of ``frequency``.

        ``options`` replaces the engine's; keyword ``overrides`` change single options of it.
        """
        opts = (options or self.options).replace(**overrides)
        names = [s.strip() for s in symbols.split(",")] if isinstance(symbols, str) else list(symbols)
        s_ns, e_ns = check_range(start, end)
        src = resolve_source(source if source is not None else self.source)
        t0 = time.perf_counter()
        log.info("backtest start", extra={"event": "backtest.start", "strategy": strategy.name,
                                          "parameters": strategy.parameters, "symbols": names,
                                          "start": format_ns(s_ns), "end": format_ns(e_ns),
                                          "frequency": frequency})
        try:
            run = _Run(strategy, names, s_ns, e_ns, frequency, src, opts, self.window_sessions)
            run.execute(progress)
            result = run.result(time.perf_counter() - t0)
        except Exception as exc:
            log.error("backtest error", extra={"event": "backtest.error", "strategy": strategy.name,
                                               "error": str(exc)})
            raise
        warn_refused(result)
        log.info("backtest complete", extra={
            "event": "backtest.complete", "strategy": strategy.name, "parameters": strategy.parameters,
            "symbols": names, "start": format_ns(s_ns), "end": format_ns(e_ns), "frequency": frequency,
            "duration_s": result.duration_s, "rejections": result.rejections.height,
            **{k: result.metrics.get(k) for k in ("final_equity", "total_return", "sharpe", "max_drawdown",
                                                   "trades")}})
        return result


class _Run:
    """The state of one backtest while it runs (engine internals)."""

    # the current window's, set by ``_timeline.open_window``
    t_hi: int
    bars: list[SymbolBars]  # per symbol, its raw bars at the run frequency
    clock: np.ndarray  # the window's clock steps (bar ends); the whole run's after the loop
    row_at: list[np.ndarray]  # per symbol, the row of its bar ending at each step (-1: none)
    rows: list[int]  # per symbol, its last visible row
    vol: list[np.ndarray | None]  # per symbol, the cost model's rolling volatility when it needs one
    _since: list[int]  # per symbol, the first row not yet folded into the lots' excursions
    _actions: list[tuple[int, str, str, float]]  # the window's corporate actions (``_actions``)
    _sessions: np.ndarray  # session closes (DAY orders expire at them)

    def __init__(self, strategy: Strategy, symbols: list[str], start: int, end: int, frequency: str,
                 source: DataSource, opts: TradingOptions, window_sessions: int | None = 0) -> None:
        self.strategy, self.symbols, self.start, self.end = strategy, symbols, start, end
        self._symbol_set = frozenset(symbols)
        self.frequency = frequency
        self.source = source
        calendars = {sym: source.calendar_of(sym) for sym in symbols}
        opts = opts.for_symbols(calendars, source.instruments(symbols))
        self.options = opts
        self.fill_mode = opts.fill
        self.portal = DataPortal(source, calendar=one_calendar(calendars), adjustment=opts.adjustment,
                                 dividends=opts.dividends)
        strategy.frequency = frequency
        if strategy.portal is None:
            strategy.portal = self.portal
        kinds, wants_bars = subscriptions(list(strategy.get_data_requirements()))
        self.tick_only = bool(kinds) and not wants_bars
        # streamed windows (backtape.engine.windows): boundaries, and per symbol the rows released
        self.bounds = [] if kinds else plan_windows(self.portal.calendar, frequency, len(symbols), start, end,
                                                    window_sessions)
        self.offsets = [0] * len(symbols)
        self._all_actions: list[tuple[int, str, str, float]] = []  # the run's, from _actions
        self.history_counts: dict[str, int] = {}
        self.indicator_data: tuple[str, DataPortal] | None = None
        self._indicators: list[Indicator] = []
        self.prices = PriceLog(frequency) if self.bounds else None
        self.portal.load_data(start, end, symbols, requirements=[strategy],
                              until=self.bounds[0] if self.bounds else None)
        self.portfolio = Portfolio(self.portal, opts.cash)
        fractional = opts.fractional
        if isinstance(fractional, str):
            raise AssertionError("fractional='auto' is resolved by for_symbols above")
        self.broker = Broker(self.portal, self.portfolio, costs=opts.cost_engine(), risk=opts.risk,
                             fill=opts.fill, max_participation=opts.max_participation,
                             leverage=opts.leverage, fractional=fractional, instruments=opts.instruments,
                             on_fill=self._on_fill, budget_scale=opts.budget_scale)
        self._fractional = fractional
        self.costs = self.broker.costs
        self.ctx = Context(self)
        self.now = start
        self.step = 0
        self.feed: TickFeed | None = None
        if kinds:
            if "quotes" in kinds:
                self.broker.by_quote = frozenset(symbols)
            self.feed = TickFeed(self, kinds, opts.latency, self.tick_only)
            self.broker.desk = self.feed.desk
        self._records: dict[str, dict[int, Any]] = {}  # name -> {clock step: value}
        self._fills_this_step: list[Fill] = []
        self.first_row = [int(self.portal.bars(sym, frequency).ts.searchsorted(start, "left"))
                          for sym in ([] if self.tick_only else symbols)]
        self.held: list[tuple[float, int, float, int, int] | None] = [None] * len(self.first_row)
        open_window(self, -1)
        if self.bounds and ready_step(self) == -1:  # ready only known from later windows: load whole
            self.bounds, self.prices = [], None
            self.portal.load_data(start, end, symbols, requirements=[strategy])
            open_window(self, -1)

    # the loop --------------------------------------------------------------------------
    def execute(self, progress: Callable[[int, int], None] | None) -> None:
        """Run the clock loop; an exception from the strategy's own code becomes a ``StrategyError``."""
        try:
            self._execute(progress)
        except Exception as exc:
            error = strategy_error(exc, self.strategy, self.now)
            if error is None:
                raise
            raise error from exc

    def _execute(self, progress: Callable[[int, int], None] | None) -> None:
        """Initialize, the clock loop over each window (``_steps``), then the end of the run."""
        strategy, ctx = self.strategy, self.ctx
        self.portal.set_clock(self.start)
        strategy.initialize(ctx)
        ready = ready_step(self)
        n0 = len(self.clock)
        span = (self.end - self.start) / (self.bounds[0] - self.start) if self.bounds else 1.0
        total = max(int(n0 * span), 1)  # steps, estimated from the first window when streamed
        self._a_i, self._tick, self._every = 0, 0 if progress is not None else total, max(total // 100, 1)
        equity: list[float] = []
        exposed: list[bool] = []
        traded: list[float] = []
        clocks = []
        for w in range(-1, len(self.bounds)):
            if w >= 0:
                advance_window(self, w)
            clocks.append(self.clock)
            self._steps(len(equity), ready, equity, exposed, traded, progress, total)
        n = len(equity)
        self.clock = clocks[0] if len(clocks) == 1 else np.concatenate(clocks)
        if not n and not self.tick_only:
            raise NoDataError(f"no {self.frequency} bars for {', '.join(self.symbols)} between "
                              f"{format_ns(self.start)} and {format_ns(self.end)}")
        if self.bounds:
            from ..portal.spans import warn_short

            warn_short(self.portal.calendar, [(s, h[3], h[4]) if h else (s, -1, -1)
                                              for s, h in zip(self.symbols, self.held, strict=True)],
                       self.start, self.end)
        strategy.on_end(ctx)
        if self.options.finalize_trades and equity:
            equity[-1], traded[-1] = self._finalize(self.rows, traded[-1])
        for j in range(len(self.bars)):
            self._flush_extremes(j, self.rows[j])
        self.equity = np.array(equity)
        self.exposed = np.array(exposed, dtype=np.bool_)
        self.traded = np.array(traded)
        if progress is not None:
            progress(n, n)

    def _steps(self, k0: int, ready: int, equity_out: list[float], exposed_out: list[bool],
               traded_out: list[float], progress: Callable[[int, int], None] | None, total: int) -> None:
        """The clock loop of one window, steps ``k0...`` (module docstring, steps 1-5). Hot: Python
        lists, no per-bar allocation."""
        ctx, portal, pf, broker = self.ctx, self.portal, self.portfolio, self.broker
        n = len(self.clock)
        clock = self.clock.tolist()
        equity, exposed, traded = [0.0] * n, [False] * n, [0.0] * n
        on_bar = self.strategy.on_bar
        ready -= k0
        actions, a_i, n_actions = self._actions, self._a_i, len(self._actions)
        syms, rows = self.symbols, self.rows
        cols = [(j, syms[j], self.row_at[j].tolist(), self.bars[j]["close"].tolist())
                for j in range(len(self.bars))]
        positions, prices, working = pf.positions, pf.prices, broker._working
        flush = self._flush_extremes
        feed = self.feed
        close_fill = self.fill_mode == "close"
        peak = pf.peak_equity
        keep = self._halt_keep()  # the drawdown halt trips when equity <= peak * keep
        floor = peak * keep
        every = self._every
        tick = self._tick - k0
        gc.freeze()  # the heap and the run's big lists as they are now are never rescanned by the
        try:  # collections the loop's allocations trigger (a full one measured 0.14 s mid-run)
            for k in range(n):
                t = clock[k]
                if feed is not None:
                    traded[k] += feed.advance(t)
                self.now = t
                self.step = k0 + k
                portal._clock = t  # DataPortal.set_clock without the call: once per step
                a_0 = a_i
                while a_i < n_actions and actions[a_i][0] <= t:
                    if actions[a_i][2] != "dividend_in":
                        apply_action(self, *actions[a_i])
                    a_i += 1
                if working:  # the broker's book holds only symbols with orders
                    pf.hold_prices()  # prices change only at the marks below
                    due = []
                    for j, sym, row_at, _ in cols:
                        r = row_at[k]
                        if r < 0:
                            continue
                        rows[j] = r
                        if working.get(sym):
                            flush(j, r - 1)
                            due.append((sym, self._bar(j, r)))
                    for sym, bar in broker.fill_order(due, t, at_close=False):
                        for fill in broker.process_bar(sym, bar):
                            traded[k] += abs(fill.quantity) * fill.price
                    pf.release_prices()
                    for _, sym, row_at, closes in cols:  # marks after every fill: no fill sizes with a close
                        r = row_at[k]
                        if r >= 0:
                            prices[sym] = closes[r]
                else:  # nothing to fill: advance and mark in one pass
                    for j, sym, row_at, closes in cols:
                        r = row_at[k]
                        if r >= 0:
                            rows[j] = r
                            prices[sym] = closes[r]
                if a_i != a_0:  # dividends going ex inside the bar: on what its fills left
                    for a in range(a_0, a_i):
                        if actions[a][2] == "dividend_in":
                            apply_action(self, *actions[a])
                if k >= ready:
                    on_bar(ctx)
                if close_fill and working:
                    pf.hold_prices()
                    due = []
                    for j, sym, row_at, _ in cols:
                        r = row_at[k]
                        if r >= 0 and working.get(sym):
                            flush(j, r)
                            due.append((sym, self._bar(j, r)))
                    for sym, bar in broker.fill_order(due, t, at_close=True):
                        for fill in broker.fill_at_close(sym, bar, t):
                            traded[k] += abs(fill.quantity) * fill.price
                    pf.release_prices()
                eq = pf.cash
                held = False
                for s, q in positions.items():
                    if q:
                        eq += q * prices[s]
                        held = True
                equity[k] = eq
                exposed[k] = held
                if eq > peak:
                    peak = pf.peak_equity = eq
                    floor = peak * keep
                elif eq <= floor:
                    broker.halted = True
                    floor = -math.inf
                if k == tick and progress is not None:
                    progress(k0 + k, max(total, k0 + k + 1))
                    tick += every
        finally:
            gc.unfreeze()
        self._a_i, self._tick = a_i, tick + k0
        equity_out += equity
        exposed_out += exposed
        traded_out += traded

    def _finalize(self, rows: list[int], traded: float) -> tuple[float, float]:
        """``finalize_trades``: every open position closed on its last bar; the last step's equity
        (now cash) and traded value. As backtesting.py re-runs its broker on the last bar, the fill
        is at that bar's open, or with ``fill="close"`` at the previous bar's close (and time)."""
        for j, sym in enumerate(self.symbols[:len(self.bars)]):
            r, b = rows[j], self.bars[j]
            if r < b["first"]:
                continue
            prev = self.fill_mode == "close" and r > 0
            price, ts = (b["close"][r - 1], b["ts_end"][r - 1]) if prev else (b["open"][r], b["ts"][r])
            for fill in self.broker.finalize(sym, self._bar(j, r), self.now, float(price), int(ts)):
                traded += abs(fill.quantity) * fill.price
        return self.portfolio.equity, traded

    def _halt_keep(self) -> float:
        """``1 - max_drawdown_halt`` of the risk manager, or ``-inf`` when there is no halt."""
        risk = self.broker.risk
        if risk is None or risk.max_drawdown_halt is None:
            return -math.inf
        return 1.0 - risk.max_drawdown_halt

    @functools.cached_property
    def periods_per_year(self) -> float:
        """Bars per year of this run's frequency on its calendar (for annualizing volatility)."""
        from ..analytics import periods_per_year

        return periods_per_year(calendar=self.portal.calendar.name, frequency=self.frequency)

    def _flush_extremes(self, j: int, upto: int) -> None:
        """Fold the highs and lows of rows ``(last flush, upto]`` into the open lots' excursions.

        The loop does not touch lots bar by bar; this runs before anything changes them (a fill, a
        split) and at the end, so every lot sees exactly the bars it was open through.
        """
        since = self._since[j]
        self._since[j] = upto + 1
        sym = self.symbols[j]
        if upto < since or not self.portfolio._lots.get(sym):
            return
        b = self.bars[j]
        self.portfolio.mark_extremes(sym, float(b["high"][since:upto + 1].max()),
                                     float(b["low"][since:upto + 1].min()))

    def _bar(self, j: int, r: int) -> Bar:
        b = self.bars[j]
        vol = self.vol[j]
        return Bar(int(b["ts"][r]), int(b["ts_end"][r]), b["open"][r], b["high"][r], b["low"][r],
                   b["close"][r], b["volume"][r], math.nan if vol is None else vol[r])

    # services for the context ---------------------------------------------------------
    def submit(self, order: Order) -> Order:
        if order.symbol not in self._symbol_set:
            raise BacktapeError(f"order for {order.symbol!r}, which is not in this backtest "
                                f"({', '.join(self.symbols)})")
        session_close = None
        if order.tif == TimeInForce.DAY:
            closes = self._sessions
            i = int(closes.searchsorted(self.now, "right"))
            session_close = int(closes[i]) if i < len(closes) else None
        order = self.broker.submit(order, self.now, session_close)
        desk = self.feed.desk if self.feed is not None else None
        if order.symbol in self.broker.by_quote and desk is not None:
            desk.accept(order)
        return order

    def fractional(self, symbol: str) -> bool:
        return self.broker._is_fractional(symbol)

    def record(self, values: dict[str, float]) -> None:
        step = self.step
        for name, value in values.items():
            self._records.setdefault(name, {})[step] = value

    def make_indicator(self, fn: Callable[..., np.ndarray], args: tuple, kwargs: dict, symbol: str,
                       field: str, name: str | None) -> Indicator:
        """``fn`` over the run's bars of ``symbol`` (``_indicators.make_indicator``)."""
        return make_indicator(self, fn, args, kwargs, symbol, field, name)

    def _on_fill(self, fill: Fill) -> None:
        self.strategy.on_fill(self.ctx, fill)

    # results ---------------------------------------------------------------------------
    def result(self, duration: float) -> BacktestResult:
        return build_result(self, duration)
