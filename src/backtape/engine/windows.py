"""Streaming a long run through the event engine in windows of sessions (bounded memory).

A run whose bars would not fit comfortably in memory (more than ``STREAM_ABOVE`` estimated bars, an
intraday frequency) is cut at session opens into windows of about ``WINDOW_BARS`` bars, whole calendar
months when that is a month or more (100 symbols x 390 minutes: one month per window). The portal
loads the first window (``load_data(..., until=)``) and, window by window, the next one
(``DataPortal.advance``), keeping of the previous bars only what the strategy can still read:

* the declared look-back (``warmup``, ``get_data_requirements``) counted on the calendar;
* the largest ``ctx.history`` count asked so far, per frequency, plus two bars;
* 22 bars when the cost model needs the rolling volatility of the last 20 returns;
* each symbol's last two processed bars (the close-fill and ``finalize_trades`` need them).

Window ``w`` runs the clock steps ``t`` (bar ends) with ``bounds[w-1] <= t < bounds[w]``: every bar
ending there has started before ``bounds[w]``, so it is loaded. Indicators are computed once over a
symbol's whole run (a one-symbol portal, released after) so they are the same numbers as unstreamed.
What stays whole: the equity curve (one value per step), indicator values (8 bytes per bar) and, for
the report, prices at one bar per session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypedDict

import numpy as np
import polars as pl

from ..calendars import TradingCalendar
from ..portal import DataPortal
from ..portal.adjustments import Adjustments
from ..portal.requirements import DataRequirement, plan_fetches
from ..portal.store import BarStore
from ..timeframes import Timeframe, last_bar_end

if TYPE_CHECKING:
    from .engine import _Run

#: runs estimated above this many bars are streamed (when not forced either way)
STREAM_ABOVE = 3_000_000
#: bars per window aimed at (symbols x bars per session x sessions)
WINDOW_BARS = 1_000_000
_FAR = 2**62


class SymbolBars(TypedDict):
    """One symbol's raw bars as loaded for the window: its run's first row ``first`` (negative once
    released), the rows ``[lo, hi)`` whose bar ends fall in this window."""

    ts: np.ndarray
    ts_end: np.ndarray
    first: int
    lo: int
    hi: int
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


def plan_windows(calendar: TradingCalendar, frequency: str, n_symbols: int, start: int, end: int,
                 sessions: int | None) -> list[int]:
    """Window boundaries (session opens strictly inside ``(start, end)``); ``[]`` for one window.

    ``sessions``: ``None`` streams only intraday runs estimated above ``STREAM_ABOVE`` bars, ``0``
    never streams, ``N`` forces windows of ``N`` sessions (intraday and daily runs only: coarser
    bars are built from whole weeks or months and stay in one window).
    """
    tf = Timeframe.parse(frequency)
    if sessions == 0 or not (tf.is_intraday or tf == Timeframe(1, "d")):
        return []
    opens, closes = calendar.opens, calendar.closes
    i0, i1 = int(closes.searchsorted(start, "right")), int(opens.searchsorted(end, "left"))
    if i1 - i0 < 2:
        return []
    if sessions is None:
        if not tf.is_intraday:
            return []
        per_session = float(np.median(closes[i0:i1] - opens[i0:i1])) / tf.nanos
        per_day = n_symbols * max(per_session, 1.0)
        if per_day * (i1 - i0) <= STREAM_ABOVE:
            return []
        sessions = max(int(WINDOW_BARS // per_day), 1)
        if sessions >= 15:  # whole calendar months: a cache's monthly files are each read once
            months = opens[i0:i1].astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
            firsts = np.flatnonzero(np.diff(months)) + 1
            step = max(round(sessions / 21), 1)
            return [int(t) for t in opens[i0 + firsts[step - 1::step]] if start < t < end]
    return [int(t) for t in opens[i0 + sessions:i1:sessions] if start < t < end]


def window_bars(run: _Run, j: int, t_lo: int, t_hi: int) -> SymbolBars:
    """Symbol ``j``'s loaded raw bars and its rows for the window of steps ``[t_lo, t_hi)``."""
    series = run.portal.bars(run.symbols[j], run.frequency)
    first = run.first_row[j] - run.offsets[j]
    lo = max(first, int(series.ts_end.searchsorted(t_lo, "left")))
    hi = min(int(series.ts.searchsorted(run.end, "left")), int(series.ts_end.searchsorted(t_hi, "left")))
    limit = last_bar_end(run.portal.calendar, Timeframe.parse(run.frequency), run.end)
    if limit is not None:  # a week or month running past end is not in the run
        hi = min(hi, int(series.ts_end.searchsorted(limit, "right")))
    f = series.fields
    return SymbolBars(ts=series.ts, ts_end=series.ts_end, first=first, lo=lo, hi=max(hi, lo),
                      open=f["open"], high=f["high"], low=f["low"], close=f["close"], volume=f["volume"])


def keep_rows(run: _Run, t_next: int) -> tuple[dict[str, int], list[int]]:
    """Per symbol, the first base row the next window (steps from ``t_next``) may still read (module
    doc), and how many of the run's bars (rows of ``portal.bars``) that releases. A cut falls on the
    first base row of a bar, so bars built from several base rows are never cut in half."""
    reqs = [*run.strategy.get_data_requirements(),
            *(DataRequirement("bars", f, n + 2) for f, n in run.history_counts.items())]
    tf = Timeframe.parse(run.frequency)
    bars = [r.lookback + 2 for r in reqs if r.kind == "bars" and r.timeframe == tf]
    need = max([22 if run.costs.needs_volatility else 2, *bars])
    plan = plan_fetches([("engine", r) for r in reqs], run.portal.calendar, t_next, run.end,
                        run.source.capabilities, run.source.name).get("bars")
    since = t_next if plan is None else plan.start
    keep, dropped = {}, []
    for j, sym in enumerate(run.symbols):
        view = run.portal.bars(sym, run.frequency)
        cut = max(min(int(view.ts.searchsorted(since, "left")), len(view) - need, run.rows[j] - 1), 0)
        starts = view.base_starts
        keep[sym] = cut if starts is None else int(starts[cut]) if cut < len(view) else \
            len(run.portal.store.series(sym))
        dropped.append(cut)
    return keep, dropped


def indicator_portal(run: _Run, symbol: str) -> DataPortal:
    """A portal holding ``symbol``'s bars over the whole run, loaded as the run's first window was
    (same requirements, so the same first bar): an indicator over it equals the unstreamed one."""
    held = run.indicator_data
    if held is not None and held[0] == symbol:
        return held[1]
    portal = DataPortal(run.source, calendar=run.portal.calendar, adjustment=run.options.adjustment,
                        dividends=run.options.dividends)
    portal.load_data(run.start, run.end, [symbol], requirements=[run.strategy], until=run.end)
    portal.set_clock(run.end)
    run.indicator_data = (symbol, portal)
    return portal


class PriceLog:
    """The prices a streamed run keeps for its report: raw bars at one per session (the run's own
    when daily), window by window, adjusted at the end as ``_report`` adjusts an unstreamed run's."""

    def __init__(self, frequency: str) -> None:
        tf = Timeframe.parse(frequency)
        self.frequency = frequency if not tf.is_intraday else "1d"
        self.parts: list[pl.DataFrame] = []

    def add(self, run: _Run, t_lo: int, t_hi: int) -> None:
        """The bars ending in ``[max(start, t_lo), min(end, t_hi))`` (the last window through ``end``)."""
        hi_side: Literal["left", "right"] = "right" if t_hi >= _FAR else "left"
        for sym in run.symbols:
            bars = run.portal.bars(sym, self.frequency)
            lo = int(bars.ts_end.searchsorted(max(run.start, t_lo), "left"))
            hi = int(bars.ts_end.searchsorted(min(run.end, t_hi), hi_side))
            if hi <= lo:
                continue
            cols = {f: bars.fields[f][lo:hi] for f in ("open", "high", "low", "close", "volume")}
            self.parts.append(pl.DataFrame({"symbol": pl.Series([sym]).new_from_index(0, hi - lo),
                                            "ts": bars.ts[lo:hi], "ts_end": bars.ts_end[lo:hi], **cols}))

    def frame(self, run: _Run) -> pl.DataFrame | None:
        """``symbol``, ``ts`` (bar end), OHLC and ``adj_close`` (as of the last clock), or ``None``."""
        if not self.parts:
            return None
        store = BarStore(pl.concat(self.parts), list(run.symbols))
        adj = Adjustments(run.portal.get_corporate_actions(), store, run.options.adjustment,
                          run.options.dividends)
        clock = run.portal.clock_ns or run.end
        out = []
        for sym in store.symbols:
            series = store.series(sym)
            if not len(series):
                continue
            close = adj.adjusted_series(series, adj.epoch(sym, clock)).fields["close"]
            out.append(pl.DataFrame({
                "symbol": pl.Series([sym]).new_from_index(0, len(series)),
                "ts": pl.Series(series.ts_end).cast(pl.Datetime("ns", "UTC")),
                **{f: series.fields[f] for f in ("open", "high", "low", "close")}, "adj_close": close}))
        return pl.concat(out) if out else None
