"""Multi-timeframe views: coarser bars built from the base bars, session by session.

Rules (the same as ``backtape.aggregate``):

=====================  ==========================================================================
timeframe              bar boundaries
=====================  ==========================================================================
``Nmin`` / ``Nh``      anchored at the session open, every N minutes; never crosses a session; the
                       last bar of a session ends at the close (early closes truncate it)
``1d``                 one session: ``ts`` = open, ``ts_end`` = close
``1w``                 the sessions of one calendar week (Monday to Sunday): first open to last close
=====================  ==========================================================================

Base bars outside every session (extended hours) stay in the base series but belong to no view.
A view also remembers which base rows built each of its bars, so the current, still incomplete bar
can be rebuilt from the base rows visible at a clock (``partial_bar``).

Worked example (XNYS, 5min): base bars 14:30, 14:31 ... 14:34 UTC on 2024-01-02 form one bar with
``ts`` 14:30 and ``ts_end`` 14:35; at clock 14:33 only 14:30..14:32 are complete, so the partial bar
is open(14:30), max/min of the three, close(14:32), volume summed.
"""

from __future__ import annotations

import numpy as np

from .._time import NS_PER_DAY
from ..calendars import TradingCalendar
from ..errors import TimeframeError
from ..timeframes import Timeframe
from .store import BarSeries


def build_view(base: BarSeries, base_tf: Timeframe, tf: Timeframe, calendar: TradingCalendar) -> BarSeries:
    """The bars of ``base`` at timeframe ``tf`` (``tf`` must be a whole multiple of ``base_tf``)."""
    _check_buildable(base_tf, tf)
    sidx = calendar.session_index(base.ts)
    kept = np.flatnonzero(sidx >= 0)
    if tf == base_tf:
        if kept.size == len(base):
            return base
        return BarSeries(base.symbol, base.ts[kept], base.ts_end[kept],
                         {f: a[kept] for f, a in base.fields.items()}, kept, kept + 1)
    bin_ts, bin_end = _bins(base.ts[kept], sidx[kept], tf, calendar)
    if kept.size == 0:
        empty_i = np.empty(0, np.int64)
        return BarSeries(base.symbol, empty_i, empty_i.copy(),
                         {f: np.empty(0) for f in base.fields}, empty_i.copy(), empty_i.copy())
    first = np.flatnonzero(np.r_[True, bin_ts[1:] != bin_ts[:-1]])
    last = np.r_[first[1:], kept.size] - 1
    fields = {f: a[kept] for f, a in base.fields.items()}
    ts_end = np.maximum(bin_end[first], base.ts_end[kept][last])
    return BarSeries(base.symbol, bin_ts[first], ts_end, _reduce(fields, first), kept[first], kept[last] + 1)


def partial_bar(view: BarSeries, base: BarSeries, t: int, field: str) -> tuple[int, float] | None:
    """``(index, value)`` of ``field`` for the view's incomplete bar, from base bars with ``ts_end <= t``.

    ``None`` when the view has no incomplete bar with a visible constituent at ``t``.
    """
    if view.base_starts is None:
        return None
    nc = view.visible_count(t)
    if nc >= len(view):
        return None
    lo = int(view.base_starts[nc])
    hi = min(base.visible_count(t), int(view.base_stops[nc]))
    if hi <= lo:
        return None
    return nc, _reduce_one(base.fields, field, lo, hi)


def _reduce_one(fields: dict[str, np.ndarray], field: str, lo: int, hi: int) -> float:
    """One field of the bar made of base rows ``[lo, hi)``, by the same rules as ``_reduce``."""
    values = fields[field][lo:hi]
    if field == "open":
        return float(values[0])
    if field == "close":
        return float(values[-1])
    if field == "high":
        return float(values.max())
    if field == "low":
        return float(values.min())
    if field == "volume":
        return float(values.sum())
    volume = fields["volume"][lo:hi]
    total = float(volume.sum())
    return float((values * volume).sum()) / total if total else float("nan")


def _check_buildable(base_tf: Timeframe, tf: Timeframe) -> None:
    rank = {"min": 0, "h": 0, "d": 1, "w": 2}
    if tf.is_intraday:
        ok = base_tf.is_intraday and tf.nanos % base_tf.nanos == 0
    else:
        ok = rank[base_tf.unit] <= rank[tf.unit]
    if not ok:
        raise TimeframeError(
            f"cannot build {tf} bars from {base_tf} base bars: the timeframe must be a whole multiple "
            "of the base frequency (load 1-minute bars for intraday timeframes)"
        )


def _bins(ts: np.ndarray, sidx: np.ndarray, tf: Timeframe,
          cal: TradingCalendar) -> tuple[np.ndarray, np.ndarray]:
    """Start and nominal end of the bar each (in-session) timestamp belongs to."""
    if tf.is_intraday:
        opens, closes = cal.opens[sidx], cal.closes[sidx]
        start = opens + (ts - opens) // tf.nanos * tf.nanos
        return start, np.minimum(start + tf.nanos, closes)
    if tf.unit == "d":
        return cal.opens[sidx], cal.closes[sidx]
    weeks = (cal.labels // NS_PER_DAY + 3) // 7  # 1970-01-01 was a Thursday: weeks start Monday
    wk = weeks[sidx]
    first = np.searchsorted(weeks, wk, "left")
    last = np.searchsorted(weeks, wk, "right") - 1
    return cal.opens[first], cal.closes[last]


def _reduce(fields: dict[str, np.ndarray], starts: np.ndarray) -> dict[str, np.ndarray]:
    """OHLCV(+vwap) of the groups beginning at ``starts`` (each runs to the next start)."""
    ends = np.r_[starts[1:], len(fields["close"])] - 1
    volume = np.add.reduceat(fields["volume"], starts)
    out = {
        "open": fields["open"][starts],
        "high": np.maximum.reduceat(fields["high"], starts),
        "low": np.minimum.reduceat(fields["low"], starts),
        "close": fields["close"][ends],
        "volume": volume,
    }
    if "vwap" in fields:
        with np.errstate(invalid="ignore", divide="ignore"):
            out["vwap"] = np.add.reduceat(fields["vwap"] * fields["volume"], starts) / volume
    return out
