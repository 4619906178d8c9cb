"""Time helpers: every timestamp inside backtape is UTC, nanoseconds since the epoch (int64).

Inputs may be ``datetime`` (aware or naive = UTC), ``date`` (midnight UTC), ISO strings, pandas
Timestamps, numpy datetime64 or integers already in nanoseconds.
"""

from __future__ import annotations

import datetime as dt
from typing import TypeAlias

import numpy as np

from .errors import InvalidRangeError

#: a point in time as callers give it (a pandas ``Timestamp`` is a ``datetime``)
TimeLike: TypeAlias = dt.datetime | dt.date | str | int | np.integer | np.datetime64

NS_PER_SECOND = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_SECOND
NS_PER_HOUR = 60 * NS_PER_MINUTE
NS_PER_DAY = 24 * NS_PER_HOUR
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def to_ns(value: TimeLike, *, name: str = "timestamp") -> int:
    """Convert a time-like value to UTC nanoseconds since the epoch.

    >>> to_ns("2024-01-02T14:30:00Z")
    1704205800000000000
    """
    if isinstance(value, bool):
        raise InvalidRangeError(f"{name}: {value!r} is not a time")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[ns]").astype(np.int64))
    if isinstance(value, dt.datetime) and hasattr(value, "value"):  # a pandas Timestamp: exact ns
        return int(value.value)  # UTC nanoseconds when aware, the wall time read as UTC when naive
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidRangeError(
                f"{name}: cannot parse {value!r}; write an ISO date or time such as "
                "'2024-01-02' or '2024-01-02T14:30:00Z'"
            ) from None
        value = parsed
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        delta = value - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * NS_PER_SECOND + delta.microseconds * 1000
    if isinstance(value, dt.date):
        return to_ns(dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC), name=name)
    raise InvalidRangeError(f"{name}: {value!r} ({type(value).__name__}) is not a time")


def from_ns(ns: int) -> dt.datetime:
    """UTC-aware datetime for a nanosecond timestamp (microsecond precision)."""
    return _EPOCH + dt.timedelta(microseconds=int(ns) // 1000)


def check_range(start: TimeLike, end: TimeLike) -> tuple[int, int]:
    """Validate a half-open ``[start, end)`` range and return it in nanoseconds."""
    for name, value in (("start", start), ("end", end)):
        _not_a_date_number(value, name)
    s, e = to_ns(start, name="start"), to_ns(end, name="end")
    if s >= e:
        raise InvalidRangeError(
            f"impossible range: start {format_ns(s)} is not before end {format_ns(e)}"
        )
    return s, e


def _not_a_date_number(value: TimeLike, name: str) -> None:
    """An integer such as ``20120101`` is a date written as a number, not the nanoseconds since 1970
    it would otherwise be read as (20 ms after the epoch: a range silently starting in 1970)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 10**7 <= value < 10**8:
        return
    text = str(int(value))
    try:
        day = dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return
    raise InvalidRangeError(f"{name}: {text} reads as {text} ns after 1970; write the date as "
                            f"'{day.isoformat()}' (an integer time is nanoseconds since the epoch)")


def format_ns(ns: int) -> str:
    """Readable ISO form of a nanosecond timestamp, for messages."""
    d = from_ns(ns)
    if ns % NS_PER_DAY == 0:
        return d.strftime("%Y-%m-%d")
    frac = ns % NS_PER_SECOND
    return d.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac:09d}Z" if frac else "Z")


def now_ns() -> int:
    """Current wall-clock time in UTC nanoseconds."""
    return to_ns(dt.datetime.now(dt.UTC))
