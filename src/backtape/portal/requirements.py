"""Declared data requirements, merged into one fetch plan per kind.

A ``DataRequirement`` says: "I need ``lookback`` bars of ``frequency`` before any clock I am asked at"
(for trades and quotes, ``lookback`` units of ``frequency`` of session time). Lookbacks are counted on
the exchange calendar: 390 one-minute bars before a Monday 10:00 open reach back into Friday's
session, never into the weekend.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..calendars import TradingCalendar
from ..errors import ConfigError, UnsupportedDataError
from ..sources.base import ANY_FREQUENCY, SourceCapabilities
from ..timeframes import DAILY, MINUTE, Timeframe, builds

DataKind = Literal["bars", "trades", "quotes"]
KINDS: tuple[str, ...] = ("bars", "trades", "quotes")


@dataclass(frozen=True, slots=True)
class DataRequirement:
    """What one consumer needs: a kind, a frequency and a lookback in bars of that frequency.

    >>> DataRequirement("bars", "5min", lookback=30)
    DataRequirement(kind='bars', frequency='5min', lookback=30)
    """

    kind: DataKind = "bars"
    frequency: str = "1min"
    lookback: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"DataRequirement kind {self.kind!r}: use one of {', '.join(KINDS)}")
        object.__setattr__(self, "frequency", str(Timeframe.parse(self.frequency)))
        lookback = self.lookback
        if isinstance(lookback, bool) or not isinstance(lookback, int | np.integer) or lookback < 0:
            raise ConfigError(f"DataRequirement lookback must be a non-negative bar count, got {lookback!r}")
        object.__setattr__(self, "lookback", int(self.lookback))

    @property
    def timeframe(self) -> Timeframe:
        return Timeframe.parse(self.frequency)


@dataclass
class FetchPlan:
    """One upstream fetch: a kind at its base frequency over ``[start, end)`` for every symbol."""

    kind: str
    frequency: Timeframe
    start: int
    end: int
    owners: list[tuple[str, DataRequirement]] = field(default_factory=list)


def collect_requirements(items: Iterable[object]) -> list[tuple[str, DataRequirement]]:
    """``(owner, requirement)`` pairs from requirements and from objects with ``get_data_requirements()``."""
    out: list[tuple[str, DataRequirement]] = []
    for item in items:
        if isinstance(item, DataRequirement):
            out.append(("portal", item))
            continue
        getter = getattr(item, "get_data_requirements", None)
        if getter is None:
            raise ConfigError(
                f"requirements: {item!r} is neither a DataRequirement nor has get_data_requirements()"
            )
        owner = str(getattr(item, "name", None) or type(item).__name__)
        for req in getter():
            if not isinstance(req, DataRequirement):
                raise ConfigError(f"{owner}.get_data_requirements() returned {req!r}, not a DataRequirement")
            out.append((owner, req))
    return out


def base_frequency(frequencies: Iterable[Timeframe], caps: SourceCapabilities, source: str) -> Timeframe:
    """The one bar frequency fetched upstream: the coarsest the source serves that aggregates into
    every needed one (an hourly file serves 1h, 1d, 1w, 1mo... from its 1h bars).

    A source serving any size natively is asked for daily bars when every need is daily or longer,
    else 1-minute ones.
    """
    tfs = list(frequencies) or [MINUTE]
    if caps.frequencies == ANY_FREQUENCY:
        return DAILY if all(not tf.is_intraday for tf in tfs) else MINUTE
    served = sorted({Timeframe.parse(f) for f in caps.frequencies}, key=lambda tf: tf.nanos)
    fitting = [b for b in served if all(builds(b, tf) for tf in tfs)]
    if fitting:
        return fitting[-1]
    need = ", ".join(sorted({str(t) for t in tfs}))
    have = " or ".join(str(b) for b in served) or "no"
    raise UnsupportedDataError(
        f"source {source!r} serves {have} bars; cannot make {need} bars from {have} bars: use a finer "
        "source or a timeframe that is a whole multiple of the served one"
    )


def lookback_start(calendar: TradingCalendar, start: int, tf: Timeframe, bars: int) -> int:
    """Earliest instant such that ``bars`` bars of ``tf`` lie between it and ``start`` on the calendar.

    Above the intraday, the answer is the first open of the period ``bars`` whole periods before the
    one not complete at ``start`` (``Nd`` counts N sessions, ``Nw``/``Nmo``/``Nq``/``Ny`` calendar
    periods, as ``aggregation.period_keys`` numbers them), so the first loaded bar is a whole one.

    Example (XNYS): 60 one-minute bars before 2024-01-03 14:40 UTC (10 minutes after the open) are
    10 bars that day plus the last 50 minutes of 2024-01-02, so the answer is 2024-01-02 20:10 UTC.
    """
    if bars <= 0:
        return start
    opens, closes = calendar.opens, calendar.closes
    if not tf.is_intraday:  # whole periods, numbered as the aggregation numbers them
        from ..aggregation import period_keys

        key = period_keys(calendar, tf)
        i = int(closes.searchsorted(start, "right"))  # sessions complete at start
        current = int(key[i]) if i < key.size else int(key[-1]) + 1  # the first period not complete
        return int(opens[int(key.searchsorted(current - bars, "left"))])
    i = int(opens.searchsorted(start, "right")) - 1
    remaining = bars
    while i >= 0:
        o, c = int(opens[i]), int(closes[i])
        # complete bars before start: all of a closed session (the last may be short), else whole bars
        count = -(-(c - o) // tf.nanos) if start >= c else max(start - o, 0) // tf.nanos
        if count >= remaining:
            return o + (count - remaining) * tf.nanos
        remaining -= count
        i -= 1
    return int(opens[0])


def plan_fetches(
    requirements: list[tuple[str, DataRequirement]],
    calendar: TradingCalendar,
    start: int,
    end: int,
    caps: SourceCapabilities,
    source: str,
) -> dict[str, FetchPlan]:
    """Merge requirements into one plan per kind, reaching back by the largest calendar lookback."""
    plans: dict[str, FetchPlan] = {}
    bar_tfs = [r.timeframe for _, r in requirements if r.kind == "bars"]
    for owner, req in requirements:
        if req.kind != "bars" and req.kind not in caps.kinds:
            raise UnsupportedDataError(f"{owner} needs {req.kind}; source {source!r} does not provide them")
        freq = base_frequency(bar_tfs, caps, source) if req.kind == "bars" else req.timeframe
        plan = plans.setdefault(req.kind, FetchPlan(req.kind, freq, start, end))
        plan.start = min(plan.start, lookback_start(calendar, start, req.timeframe, req.lookback))
        plan.owners.append((owner, req))
    return plans
