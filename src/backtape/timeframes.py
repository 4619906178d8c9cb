"""The ``Timeframe`` type: one parser for every bar size backtape understands.

=========  ===========================================  ==========================
written    meaning                                       kind
=========  ===========================================  ==========================
``Nmin``   N minutes (``1min 5min 15min 30min 90min``)   intraday, session-anchored
``Nh``     N hours (``1h 4h``)                           intraday, session-anchored
``Nd``     N exchange sessions (``1d 2d 5d``)              sessions, counted from the
                                                        calendar's first session
``Nw``     the sessions of N ISO weeks (``1w 2w``)         sessions
``Nmo``    the sessions of N calendar months (``1mo``)     sessions
``Nq``     the sessions of N calendar quarters (``1q``)    sessions
``Ny``     the sessions of N calendar years (``1y``)       sessions
=========  ===========================================  ==========================

Months, quarters and years must divide a year or a decade (``1mo 2mo 3mo 4mo 6mo 12mo``, ``1q 2q 4q``,
``1y 2y 5y 10y``), so every period starts at a calendar boundary (``10y`` bars are decades, 2010-2019).
Above the day, bars are calendar-true: a month bar holds that month's sessions, opens at its first
session's open and ends (``ts_end``) at its last session's close. ``1m`` and ``1M`` are rejected:
they mean minute to some users and month to others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ._time import NS_PER_DAY, NS_PER_HOUR, NS_PER_MINUTE
from .errors import TimeframeError

if TYPE_CHECKING:
    import numpy as np

    from .calendars import TradingCalendar

Unit = Literal["min", "h", "d", "w", "mo", "q", "y"]

_ALIASES: dict[str, Unit] = {
    "min": "min", "mins": "min", "minute": "min", "minutes": "min", "t": "min",
    "h": "h", "hr": "h", "hour": "h", "hours": "h",
    "d": "d", "day": "d", "days": "d",
    "w": "w", "wk": "w", "week": "w", "weeks": "w",
    "mo": "mo", "mon": "mo", "month": "mo", "months": "mo",
    "q": "q", "qtr": "q", "quarter": "q", "quarters": "q",
    "y": "y", "yr": "y", "year": "y", "years": "y",
}
_PATTERN = re.compile(r"^\s*(\d*)\s*([A-Za-z]+)\s*$")
_YEAR_NS = int(365.2425 * NS_PER_DAY)
_UNIT_NS = {"min": NS_PER_MINUTE, "h": NS_PER_HOUR, "d": NS_PER_DAY, "w": 7 * NS_PER_DAY,
            "mo": _YEAR_NS // 12, "q": _YEAR_NS // 4, "y": _YEAR_NS}
_LONGEST = 100 * _YEAR_NS
_PER_YEAR = {"w": 52.0, "mo": 12.0, "q": 4.0, "y": 1.0}
MONTHS = {"mo": 1, "q": 3, "y": 12}
_WHOLE = {"mo": (1, 2, 3, 4, 6, 12), "q": (1, 2, 4), "y": (1, 2, 5, 10)}
_WHOLE_TEXT = {"mo": "months must divide a year (1mo 2mo 3mo 4mo 6mo 12mo)",
               "q": "quarters must divide a year (1q 2q 4q)",
               "y": "years must divide a decade (1y 2y 5y 10y)"}
"""Calendar months in one unit of the month-based timeframes."""


@dataclass(frozen=True, order=True, slots=True)
class Timeframe:
    """A bar size: ``n`` minutes, hours, sessions (``d``), weeks, months, quarters or years."""

    n: int
    unit: Unit

    @classmethod
    def parse(cls, value: str | Timeframe) -> Timeframe:
        """Parse ``'5min'``, ``'1h'``, ``'1d'``, ``'1w'``, ``'1mo'``, ``'1q'``, ``'1y'`` (or ``'daily'``)."""
        if isinstance(value, Timeframe):
            return value
        if not isinstance(value, str):
            raise TimeframeError(f"timeframe must be a string such as '5min', got {value!r}")
        text = value.strip()
        special = {"daily": "1d", "weekly": "1w", "hourly": "1h", "minutely": "1min", "monthly": "1mo",
                   "quarterly": "1q", "yearly": "1y", "annual": "1y"}
        text = special.get(text.lower(), text)
        m = _PATTERN.match(text)
        if not m:
            raise TimeframeError(_help(value))
        count_text, unit_text = m.groups()
        if unit_text in ("m", "M"):
            n = count_text or "1"
            raise TimeframeError(
                f"timeframe {value!r} is ambiguous (minutes or months?): write '{n}min' for "
                f"{n} minute(s) or '{n}mo' for {n} month(s)"
            )
        unit = _ALIASES.get(unit_text.lower())
        if unit is None:
            raise TimeframeError(_help(value))
        n = int(count_text) if count_text else 1
        if n <= 0:
            raise TimeframeError(f"timeframe {value!r}: the count must be positive")
        if n * _UNIT_NS[unit] > _LONGEST:
            raise TimeframeError(f"timeframe {value!r} is longer than 100 years; use a shorter one")
        if unit in _WHOLE and n not in _WHOLE[unit]:
            raise TimeframeError(
                f"timeframe {value!r} is not supported: {_WHOLE_TEXT[unit]} (longer periods would be "
                "anchored at an arbitrary year); use one of those or a shorter timeframe"
            )
        if unit == "min" and n % 60 == 0:
            unit, n = "h", n // 60
        return cls(n, unit)

    @property
    def is_intraday(self) -> bool:
        """True for minute and hour bars (anchored at the session open)."""
        return self.unit in ("min", "h")

    @property
    def nanos(self) -> int:
        """Nominal length in nanoseconds (a session or a week is nominal, not exact)."""
        return self.n * _UNIT_NS[self.unit]

    @property
    def per_year(self) -> float | None:
        """Bars per year of a week-or-longer timeframe (52/n, 12/n, 4/n, 1/n); None below a week."""
        per = _PER_YEAR.get(self.unit)
        return None if per is None else per / self.n

    @property
    def minutes(self) -> int:
        """Nominal length in minutes."""
        return self.nanos // NS_PER_MINUTE

    def __str__(self) -> str:
        return f"{self.n}{self.unit}"


def calendar_periods(days: np.ndarray, tf: Timeframe) -> np.ndarray:
    """The number of the ``tf`` period (``Nw``, ``Nmo``, ``Nq``, ``Ny``) holding each day (days since
    1970-01-01): ISO weeks (1970-01-05 was a Monday) and calendar months, counted from 1970."""
    import numpy as np

    day = np.asarray(days, dtype=np.int64)
    if tf.unit == "w":
        return (day + 3) // 7 // tf.n
    if tf.unit not in MONTHS:
        raise TimeframeError(f"{tf} is not a calendar period: use weeks, months, quarters or years")
    month = day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return month // (MONTHS[tf.unit] * tf.n)


def builds(base: Timeframe, tf: Timeframe) -> bool:
    """Whether bars of ``base`` aggregate into whole ``tf`` bars: intraday ones need an intraday base
    dividing them; longer ones an intraday or one-session base, or one of their unit dividing them
    (``2w`` from ``1w``, ``1y`` from ``1q`` or ``1mo``, ``4d`` from ``2d``)."""
    if tf.is_intraday:
        return base.is_intraday and tf.nanos % base.nanos == 0
    if base.is_intraday or base == DAILY:
        return True
    if base.unit in MONTHS and tf.unit in MONTHS:
        return (MONTHS[tf.unit] * tf.n) % (MONTHS[base.unit] * base.n) == 0
    return base.unit == tf.unit and tf.n % base.n == 0


def last_bar_end(calendar: TradingCalendar, tf: Timeframe, end: int) -> int | None:
    """The latest ``ts_end`` of a ``tf`` bar in a range ending at ``end``, or ``None`` when starting
    before ``end`` is enough (intraday and one-session bars).

    A bar of several sessions (``5d``, ``1w``, ``1mo``...) is in the range when its last session
    opens before ``end``, as a ``1d`` bar is when its session does: a week or month running past
    ``end`` is left out rather than built from sessions after it.
    """
    if tf.is_intraday or tf == DAILY:
        return None
    k = int(calendar.opens.searchsorted(end, "left")) - 1
    return int(calendar.closes[k]) if k >= 0 else int(calendar.opens[0])


MINUTE = Timeframe(1, "min")
DAILY = Timeframe(1, "d")


def _help(value: object) -> str:
    return (
        f"cannot parse timeframe {value!r}: write a count and a unit, e.g. "
        "'1min', '5min', '15min', '30min', '1h', '4h', '1d', '5d', '1w', '1mo', '1q' or '1y'"
    )
