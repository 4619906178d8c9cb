"""Data that covers less than the requested range: one warning instead of a silently shorter run.

A symbol's bars are short at an end when whole sessions of its calendar lie inside ``[start, end)``
before its first bar or after its last one (a holiday or weekend at either end is not a gap).

=================  =============================================================================
case               what is said
=================  =============================================================================
starts late        ``AAPL from 2014-01-02`` (sessions from ``start`` to the first bar missing)
ends early         ``AAPL until 2014-12-31`` (sessions after the last bar up to ``end`` missing)
no bars at all     ``AAPL none`` (no bar inside the range)
=================  =============================================================================
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .._time import format_ns
from ..calendars import TradingCalendar
from ..errors import warn_once
from .store import BarSeries


def series_spans(series: Iterable[BarSeries], start: int, end: int) -> list[tuple[str, int, int]]:
    """``(symbol, first bar's ts, last bar's ts_end)`` of the bars inside ``[start, end)``, -1s for none."""
    out = []
    for bars in series:
        lo = int(np.searchsorted(bars.ts, start, "left"))
        hi = int(np.searchsorted(bars.ts_end, end, "right"))
        inside = (int(bars.ts[lo]), int(bars.ts_end[hi - 1])) if hi > lo else (-1, -1)
        out.append((bars.symbol, *inside))
    return out


def short_spans(calendar: TradingCalendar, spans: Iterable[tuple[str, int, int]], start: int,
                end: int) -> list[str]:
    """What is missing, symbols grouped: ``"AAPL, KO until 2014-12-31"``, ``"IBM from 2013-05-01"``,
    ``"MSFT: no bars"``, for ``(symbol, first ts, last ts_end)`` spans of bars inside ``[start, end)``
    that leave whole sessions of the range uncovered."""
    opens, closes = calendar.opens, calendar.closes
    groups: dict[str, list[str]] = {}
    for sym, first, last in spans:
        if first < 0:
            groups.setdefault("no bars", []).append(sym)
            continue
        if int(np.searchsorted(opens, start, "left")) < int(np.searchsorted(closes, first, "right")):
            groups.setdefault(f"from {format_ns(first)[:10]}", []).append(sym)
        if int(np.searchsorted(opens, last, "left")) < int(np.searchsorted(closes, end, "right")):
            groups.setdefault(f"until {format_ns(last)[:10]}", []).append(sym)
    return [f"{', '.join(syms)}{': ' if what == 'no bars' else ' '}{what}" for what, syms in groups.items()]


def warn_short(calendar: TradingCalendar, spans: Iterable[tuple[str, int, int]], start: int,
               end: int) -> None:
    """One warning naming every symbol whose bars cover less than ``[start, end)`` (module doc); none
    when no symbol has a bar in the range, which the caller reports as its one error."""
    spans = list(spans)
    if all(first < 0 for _, first, _ in spans):
        return
    short = short_spans(calendar, spans, start, end)
    if short:
        warn_once(f"bars cover less than the requested {format_ns(start)[:10]} to {format_ns(end)[:10]}: "
                  f"{'; '.join(short)}; the run is shorter for them")
