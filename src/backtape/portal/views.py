"""Multi-timeframe views: coarser bars built from the base bars with ``backtape.aggregate``'s rules.

Binning is ``backtape.aggregation.session_bins`` and reduction ``backtape.aggregation.reduce_runs``, so a
view's bars are exactly ``aggregate(base, tf, calendar)``'s (intraday bars anchored at the session
open and cut at the close or an intraday break, ``1d`` = one session, ``1w`` = the sessions of an ISO
week). Base bars outside every session (extended hours, breaks) stay in the base series but belong to
no view. What this module adds is the mapping back to base rows: each view bar remembers the
half-open range of base rows that built it, so the current, still incomplete bar can be rebuilt from
the base rows visible at a clock (``partial_bar``).

Split-adjusted views are built from base bars already adjusted as of the clock (the portal passes
an adjusted base series), so a weekly bar spanning a split reduces prices that are all on one
basis: its high is not the pre-split high left unadjusted.

The engines' raw bars put a bar that holds a split on one basis too, the post-split one its close
trades at (``split_inside_bars``): the engines apply a split before matching the bar whose end is at
or after its ex-date, so the bar's open fill and stop triggers must already be in post-split units.

Worked example (XNYS, 5min): base bars 14:30, 14:31 ... 14:34 UTC on 2024-01-02 form one bar with
``ts`` 14:30 and ``ts_end`` 14:35; at clock 14:33 only 14:30..14:32 are complete, so the partial bar
is open(14:30), max/min of the three, close(14:32), volume summed.
"""

from __future__ import annotations

import numpy as np

from ..aggregation import reduce_runs, session_bins
from ..calendars import TradingCalendar
from ..errors import TimeframeError
from ..timeframes import Timeframe, builds
from ._search import last_at_or_before
from .store import PRICE_FIELDS, BarSeries


def build_view(base: BarSeries, base_tf: Timeframe, tf: Timeframe, calendar: TradingCalendar) -> BarSeries:
    """The bars of ``base`` at timeframe ``tf`` (``tf`` must be a whole multiple of ``base_tf``).

    A base bar that overruns its bin (a vendor's hour bar ending after an early close) extends the
    view bar's ``ts_end``, so the view bar is never visible before all of its base bars are.
    """
    _check_buildable(base_tf, tf)
    if len(base) == 0:
        none = np.empty(0, np.int64)
        return BarSeries(base.symbol, none, none, {f: np.empty(0) for f in base.fields}, none, none)
    bin_ts, bin_end, keep = session_bins(calendar, base.ts, tf)
    kept = np.flatnonzero(keep)
    if tf == base_tf and kept.size == len(base):
        return base
    fields = {f: a[kept] for f, a in base.fields.items()}
    if tf == base_tf:
        return BarSeries(base.symbol, base.ts[kept], base.ts_end[kept], fields, kept, kept + 1)
    bin_ts, bin_end = bin_ts[kept], bin_end[kept]
    first = np.flatnonzero(np.r_[True, bin_ts[1:] != bin_ts[:-1]])
    last = np.r_[first[1:], kept.size] - 1
    ts_end = np.maximum(bin_end[first], base.ts_end[kept][last])
    return BarSeries(base.symbol, bin_ts[first], ts_end, _reduce(fields, first), kept[first], kept[last] + 1)


def split_inside_bars(base: BarSeries, view: BarSeries, split_ts: np.ndarray,
                      ratio: np.ndarray) -> BarSeries:
    """``base`` with the rows of a view bar that precede a split inside it (the bar starts before the
    ex-date and ends at or after it) in post-split units: prices / ratio, volume x ratio. Only bars of
    several sessions can hold one; ``base`` itself when none does."""
    starts = view.base_starts
    if starts is None or not len(split_ts):
        return base
    scale = np.ones(len(base))
    for t, r in zip(split_ts.tolist(), ratio.tolist(), strict=True):
        i = int(np.searchsorted(view.ts, t, "right")) - 1
        if i < 0 or t > view.ts_end[i]:
            continue
        lo, at = int(starts[i]), int(np.searchsorted(base.ts, t, "left"))
        scale[lo:at] *= r
    if (scale == 1.0).all():
        return base
    fields = {k: a / scale if k in PRICE_FIELDS else a * scale if k == "volume" else a
              for k, a in base.fields.items()}
    return BarSeries(base.symbol, base.ts, base.ts_end, fields, base.base_starts, base.base_stops)


def partial_bar(view: BarSeries, base: BarSeries, t: int, field: str, nc: int) -> float | None:
    """``field`` of the view's incomplete bar ``nc`` (the first not complete at ``t``), from its base
    bars with ``ts_end <= t``; ``None`` when there is no such bar or none of its base bars is visible.
    """
    starts, stops = view.base_starts, view.base_stops
    if starts is None or stops is None or nc >= len(view):
        return None
    lo = int(starts[nc])
    hi = min(last_at_or_before(base.ts_end, t, lo) + 1, int(stops[nc]))
    if hi <= lo:
        return None
    return _reduce_one(base.fields, field, lo, hi)


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
    price = np.where(np.isnan(values), fields["close"][lo:hi], values)
    return float((price * volume).sum()) / total if total else float("nan")


def _check_buildable(base_tf: Timeframe, tf: Timeframe) -> None:
    """Raise ``TimeframeError`` unless ``base_tf`` bars aggregate into ``tf`` bars (``timeframes.builds``)."""
    if not builds(base_tf, tf):
        raise TimeframeError(
            f"cannot build {tf} bars from {base_tf} base bars: the timeframe must be a whole multiple "
            "of the base frequency (load 1-minute bars for intraday timeframes)"
        )


def _reduce(fields: dict[str, np.ndarray], starts: np.ndarray) -> dict[str, np.ndarray]:
    """OHLCV (+vwap when the base has one) of the runs beginning at ``starts``."""
    ohlc = (fields["open"], fields["high"], fields["low"], fields["close"])
    volume = fields["volume"]
    vwap = fields.get("vwap")
    price = fields["close"] if vwap is None else np.where(np.isnan(vwap), fields["close"], vwap)
    out = reduce_runs(starts, ohlc, volume, price * volume)
    if vwap is None:
        del out["vwap"]
    return out
