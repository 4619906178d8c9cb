"""Freshness policies: when the open tail of cached data must be fetched again.

Only the tail can go stale. When a range is fetched at time ``f``, every row with ``ts`` before the
close of the last session closed at ``f`` was complete and is immutable (:func:`immutable_before`).
The rest, the tail, is what a policy judges, given the fetch time and now:

=========================  ===================================================================
policy                     the tail fetched at ``f`` is stale at ``now`` when
=========================  ===================================================================
``NeverStalePolicy``       never (static files, synthetic data, frozen bundles)
``TTLFreshnessPolicy``     ``now - f > ttl`` (24/7 markets)
``MarketCloseFreshness``   a session closed in ``(f, now]`` (daily bars: stale after the close)
``HybridFreshnessPolicy``  a session closed in ``(f, now]``, or the market is open at ``now``
                           and ``now - f > ttl`` (intraday bars during trading hours)
=========================  ===================================================================
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

from .._time import NS_PER_HOUR, NS_PER_SECOND, TimeLike, to_ns
from ..calendars import TradingCalendar, get_calendar
from ..sources import registry
from ..sources.base import DataSource
from ..timeframes import Timeframe


def immutable_before(calendar: TradingCalendar, frequency: str | None, fetched_at: int) -> int:
    """The ``ts`` before which rows fetched at ``fetched_at`` are complete and can never change.

    That is the close of the last session closed at fetch time; for weekly bars, a week earlier
    (the bar of a week in progress starts before that close but is not complete).

    >>> cal = get_calendar("24/7")
    >>> immutable_before(cal, "1h", to_ns("2024-01-02T13:00:00Z")) == to_ns("2024-01-02")
    True
    """
    i = calendar.last_closed_session(fetched_at)
    if i < 0:
        return int(calendar.opens[0]) if len(calendar.opens) else fetched_at
    boundary = int(calendar.closes[i])
    if frequency and frequency not in ("tick", "-") and (tf := Timeframe.parse(frequency)).per_year:
        boundary -= tf.nanos  # a week-or-longer bar is closed only once its whole period is
    return boundary


class CacheFreshnessPolicy(abc.ABC):
    """Decides whether the mutable tail of a cached range, fetched at ``fetched_at``, is stale at ``now``."""

    @abc.abstractmethod
    def is_stale(self, fetched_at: int, now: int) -> bool:
        """True when the tail must be fetched again."""

    def is_fresh(self, fetched_at: TimeLike, now: TimeLike) -> bool:
        """Opposite of :meth:`is_stale`, accepting any time-like values."""
        return not self.is_stale(to_ns(fetched_at), to_ns(now))


@dataclass(frozen=True)
class NeverStalePolicy(CacheFreshnessPolicy):
    """The tail never goes stale: for sources whose data cannot change."""

    def is_stale(self, fetched_at: int, now: int) -> bool:
        return False


@dataclass(frozen=True)
class TTLFreshnessPolicy(CacheFreshnessPolicy):
    """The tail is stale once it is older than ``ttl_seconds``."""

    ttl_seconds: float = 3600.0

    def is_stale(self, fetched_at: int, now: int) -> bool:
        return now - fetched_at > int(self.ttl_seconds * NS_PER_SECOND)


@dataclass(frozen=True)
class MarketCloseFreshnessPolicy(CacheFreshnessPolicy):
    """The tail is stale once a session of ``calendar`` has closed since it was fetched."""

    calendar: str = "XNYS"

    def is_stale(self, fetched_at: int, now: int) -> bool:
        cal = get_calendar(self.calendar)
        return cal.last_closed_session(now) > cal.last_closed_session(fetched_at)


@dataclass(frozen=True)
class HybridFreshnessPolicy(CacheFreshnessPolicy):
    """Market-close rule, plus a TTL while the market is open (intraday bars keep arriving)."""

    calendar: str = "XNYS"
    ttl_seconds: float = 300.0

    def is_stale(self, fetched_at: int, now: int) -> bool:
        if MarketCloseFreshnessPolicy(self.calendar).is_stale(fetched_at, now):
            return True
        return get_calendar(self.calendar).is_open(now) and \
            now - fetched_at > int(self.ttl_seconds * NS_PER_SECOND)


class FreshnessPolicyFactory:
    """Picks the policy that fits a source, a bar frequency and a calendar."""

    @staticmethod
    def create_policy(source: DataSource | str, frequency: str | Timeframe | None,
                      calendar: str | TradingCalendar | None = None) -> CacheFreshnessPolicy:
        """Local sources (not ``remote``: files, sample, synthetic, bundles) never go stale; 24/7
        markets use a TTL of one bar (at least a minute,
        an hour for daily bars); daily and weekly bars on exchanges go stale at the close; intraday
        bars and ticks on exchanges use the hybrid rule with a TTL of one bar.

        >>> FreshnessPolicyFactory.create_policy("polygon", "1d", "XNYS")
        MarketCloseFreshnessPolicy(calendar='XNYS')
        """
        if isinstance(source, str):
            remote = source not in registry or registry.spec(source).remote
        else:
            remote = source.remote
        if not remote:
            return NeverStalePolicy()
        if calendar is None:
            calendar = "XNYS" if isinstance(source, str) else source.calendar
        cal_name = calendar.name if isinstance(calendar, TradingCalendar) else get_calendar(calendar).name
        tf = None if frequency in (None, "tick", "-") else Timeframe.parse(frequency)
        bar_seconds = tf.nanos / NS_PER_SECOND if tf is not None and tf.is_intraday else 60.0
        if cal_name == "24/7":
            ttl = bar_seconds if tf is None or tf.is_intraday else NS_PER_HOUR / NS_PER_SECOND
            return TTLFreshnessPolicy(max(ttl, 60.0))
        if tf is not None and not tf.is_intraday:
            return MarketCloseFreshnessPolicy(cal_name)
        return HybridFreshnessPolicy(cal_name, max(bar_seconds, 60.0))
