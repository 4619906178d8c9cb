"""Indicators over the loaded bars, computed so that every value is what the strategy could know.

Prices in the portal are raw and adjusted on read as of the clock. An indicator computed once over
the whole series would see every split (and, in total-return mode, dividend) of the run, including
future ones, and a level-based rule (``close > 100``) would then read the future. So the series is
cut at each corporate action's ex-date: the values of the bars between two ex-dates are computed on
the history adjusted as of those bars (the portal's ``get_bars`` with the clock on the segment's
last bar). For a causal function that is exactly the value the strategy would get by recomputing it
every bar, at the cost of one call per segment.

``check_causal`` then recomputes the function on prefixes: any difference means it reads later
bars, which raises ``LookAheadError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from ..errors import BacktapeError, LookAheadError
from .strategy import Indicator
from .windows import indicator_portal

if TYPE_CHECKING:
    from .engine import _Run


def point_in_time(portal: Any, fn: Callable[..., np.ndarray], args: tuple, kwargs: dict, symbol: str,
                  field: str, frequency: str, action_ts: list[int], label: str) -> np.ndarray:
    """``fn`` over ``symbol``'s ``field``, each segment between ex-dates adjusted as of itself."""
    series = portal.bars(symbol, frequency)
    if field not in series.fields:
        raise BacktapeError(f"indicator {label}: unknown field {field!r}; have {', '.join(series.fields)}")
    ts, ts_end, n = series.ts, series.ts_end, len(series.ts)
    cuts = sorted({int(i) for i in np.searchsorted(ts, np.asarray(action_ts, dtype=np.int64), "left")
                   if 0 < i < n})
    out = np.empty(n)
    saved = portal.clock_ns
    try:
        lo = 0
        for hi in (*cuts, n):
            if hi <= lo:
                continue
            clock = int(ts_end[hi - 1])
            portal.set_clock(clock)
            values = portal.get_bars(symbol, int(ts[0]), clock, frequency, fields=(field,))[field]
            part = _call(fn, values, args, kwargs, label)
            out[lo:hi] = part[lo:hi]
            lo = hi
    finally:
        if saved is not None:
            portal.set_clock(saved)
    return out


def _call(fn: Callable[..., np.ndarray], values: np.ndarray, args: tuple, kwargs: dict,
          label: str) -> np.ndarray:
    out = np.asarray(fn(values, *args, **kwargs), dtype=np.float64)
    if out.shape != values.shape:
        raise BacktapeError(f"indicator {label} returned shape {out.shape}, expected {values.shape}")
    return out


def check_causal(fn: Callable[..., np.ndarray], args: tuple, kwargs: dict, values: np.ndarray,
                 full: np.ndarray, label: str, first: int) -> None:
    """Recompute on two prefixes; any difference means the indicator reads the future."""
    n = len(values)
    for cut in sorted({max(first + (n - first) // 3, 2), max(first + 2 * (n - first) // 3, 2)}):
        if cut >= n:
            continue
        part = np.asarray(fn(values[:cut], *args, **kwargs), dtype=np.float64)
        if part.shape != (cut,):
            raise BacktapeError(f"indicator {label} returned shape {part.shape}, expected ({cut},)")
        a, b = part, full[:cut]
        same = (a == b) | (np.isnan(a) & np.isnan(b)) | np.isclose(a, b, rtol=1e-9, atol=0)
        if not same.all():
            bad = int(np.flatnonzero(~same)[0])
            raise LookAheadError(
                f"indicator {label} uses data after its bar: its value at bar {bad} changes when the bars "
                f"from {cut} on are removed")


def make_indicator(run: _Run, fn: Callable[..., np.ndarray], args: tuple, kwargs: dict, symbol: str,
                   field: str, name: str | None) -> Indicator:
    """``fn`` over the run's bars of ``symbol``, point in time (``_indicators``), look-ahead checked;
    a streamed run computes it on a one-symbol portal over the whole run (``windows``)."""
    if symbol not in run.symbols:
        raise BacktapeError(f"indicator for {symbol!r}, which is not in this backtest")
    if run.tick_only:
        raise BacktapeError("indicators need bars; this run has a tick-only clock (no bars declared)")
    j = run.symbols.index(symbol)
    label = name if name else str(getattr(fn, "__name__", "indicator"))
    portal = indicator_portal(run, symbol) if run.bounds else run.portal
    actions = [int(t) for t in portal.get_corporate_actions(symbol)["ts"].cast(pl.Int64)] \
        if run.bounds else [a[0] for a in run._all_actions if a[1] == symbol]
    full = point_in_time(portal, fn, args, kwargs, symbol, field, run.frequency, actions, label)
    saved = portal.clock_ns
    portal.set_clock(run.end)
    series = portal.bars(symbol, run.frequency)
    values = portal.get_bars(symbol, int(series.ts[0]) if len(series) else run.start, run.end,
                             run.frequency, fields=(field,))[field]
    portal.set_clock(run.now if saved is None else saved)
    last = full if not actions else point_in_time(portal, fn, args, kwargs, symbol, field,
                                                   run.frequency, [], label)
    check_causal(fn, args, kwargs, values, last, label, int(series.ts.searchsorted(run.start, "left")))
    indicator = Indicator(run, j, full, label)
    if run.bounds:
        indicator.rebase(run.offsets[j], len(run.bars[j]["ts"]))
        run._indicators.append(indicator)
    return indicator
