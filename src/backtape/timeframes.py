"""The ``Timeframe`` type: one parser for every bar size backtape understands.

=========  ===========================================  ==========================
written    meaning                                       kind
=========  ===========================================  ==========================
``Nmin``   N minutes (``1min 5min 15min 30min 90min``)   intraday, session-anchored
``Nh``     N hours (``1h 4h``)                           intraday, session-anchored
``1d``     one exchange session                          session
``1w``     the sessions of one calendar week              sessions
=========  ===========================================  ==========================

``1m`` and ``1M`` are rejected: they mean minute to some users and month to others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ._time import NS_PER_DAY, NS_PER_HOUR, NS_PER_MINUTE
from .errors import TimeframeError

Unit = Literal["min", "h", "d", "w"]

_ALIASES: dict[str, Unit] = {
    "min": "min", "mins": "min", "minute": "min", "minutes": "min", "t": "min",
    "h": "h", "hr": "h", "hour": "h", "hours": "h",
    "d": "d", "day": "d", "days": "d",
    "w": "w", "wk": "w", "week": "w", "weeks": "w",
}
_PATTERN = re.compile(r"^\s*(\d*)\s*([A-Za-z]+)\s*$")
_UNIT_NS = {"min": NS_PER_MINUTE, "h": NS_PER_HOUR, "d": NS_PER_DAY, "w": 7 * NS_PER_DAY}


@dataclass(frozen=True, order=True, slots=True)
class Timeframe:
    """A bar size: ``n`` units of minutes, hours, sessions (``d``) or weeks (``w``)."""

    n: int
    unit: Unit

    @classmethod
    def parse(cls, value: str | Timeframe) -> Timeframe:
        """Parse ``'5min'``, ``'1h'``, ``'1d'``, ``'1w'`` (also ``'minute'``, ``'daily'``...)."""
        if isinstance(value, Timeframe):
            return value
        if not isinstance(value, str):
            raise TimeframeError(f"timeframe must be a string such as '5min', got {value!r}")
        text = value.strip()
        special = {"daily": "1d", "weekly": "1w", "hourly": "1h", "minutely": "1min"}
        text = special.get(text.lower(), text)
        m = _PATTERN.match(text)
        if not m:
            raise TimeframeError(_help(value))
        count_text, unit_text = m.groups()
        if unit_text in ("m", "M"):
            n = count_text or "1"
            raise TimeframeError(
                f"timeframe {value!r} is ambiguous (minutes or months?): write '{n}min' for "
                f"{n} minute(s); months are not a bar size"
            )
        unit = _ALIASES.get(unit_text.lower())
        if unit is None:
            raise TimeframeError(_help(value))
        n = int(count_text) if count_text else 1
        if n <= 0:
            raise TimeframeError(f"timeframe {value!r}: the count must be positive")
        if unit == "min" and n % 60 == 0:
            unit, n = "h", n // 60
        if unit in ("d", "w") and n != 1:
            raise TimeframeError(
                f"timeframe {value!r}: only '1d' (one session) and '1w' are supported at daily scale"
            )
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
    def minutes(self) -> int:
        """Nominal length in minutes."""
        return self.nanos // NS_PER_MINUTE

    def __str__(self) -> str:
        return f"{self.n}{self.unit}"


MINUTE = Timeframe(1, "min")
DAILY = Timeframe(1, "d")


def _help(value: object) -> str:
    return (
        f"cannot parse timeframe {value!r}: write a count and a unit, e.g. "
        "'1min', '5min', '15min', '30min', '1h', '4h', '1d' or '1w'"
    )
