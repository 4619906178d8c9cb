"""The run's timeline, window by window: each symbol's bars and rows, the clock steps, the row of each
symbol's bar at each step, and the first step the strategy has its warm-up history.

An unstreamed run is one window (``open_window(run, -1)``); a streamed one moves on with
``advance_window`` (``backtape.engine.windows`` says what is kept). Called once per window, never per bar.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .._time import format_ns
from ..errors import NoDataError
from ._actions import scheduled_actions
from ._report import warn_warmup
from .ticks import tick_clock
from .windows import SymbolBars, keep_rows, window_bars

if TYPE_CHECKING:
    from .engine import _Run


def open_window(run: _Run, w: int) -> None:
    """Arrays per symbol (raw bars at the run frequency) and the clock steps of window ``w + 1``
    (``-1``: the first; one window holds the whole run when there are no ``bounds``)."""
    t_lo = run.bounds[w] if w >= 0 else -(2**62)
    run.t_hi = t_hi = run.bounds[w + 1] if w + 1 < len(run.bounds) else 2**62
    run.bars = [window_bars(run, j, t_lo, t_hi) for j in range(len(run.first_row))]
    ends = [b["ts_end"][b["lo"]:b["hi"]] for b in run.bars]
    if run.tick_only:
        run.clock = tick_clock(run.portal.calendar, run.frequency, run.start, run.end)
    elif len(ends) == 1:
        run.clock = ends[0]
    else:
        run.clock = np.unique(np.concatenate(ends))
    if w < 0 and not run.tick_only and not run.bounds and not len(run.clock):
        raise NoDataError(f"no {run.frequency} bars for {', '.join(run.symbols)} between "
                          f"{format_ns(run.start)} and {format_ns(run.end)}")
    n = len(run.clock)
    # row of each symbol's bar ending at each step (-1 when it has none), and its last visible row
    run.row_at = []
    for j, b in enumerate(run.bars):
        row = np.full(n, -1, dtype=np.int64)
        own = np.arange(b["lo"], b["hi"])
        row[np.searchsorted(run.clock, b["ts_end"][b["lo"]:b["hi"]])] = own
        run.row_at.append(row)
        lo, hi = b["lo"], b["hi"]
        if hi > lo:  # first close, its end, last close, first start, last end: buy and hold, spans
            held = run.held[j]
            first = held if held is not None else (float(b["close"][lo]), int(b["ts_end"][lo]), 0.0,
                                                   int(b["ts"][lo]), 0)
            last = float(b["close"][hi - 1]), int(b["ts_end"][hi - 1])
            run.held[j] = (first[0], first[1], last[0], first[3], last[1])
    if w < 0:
        run.rows = [b["first"] - 1 for b in run.bars]
        run._since = [b["first"] for b in run.bars]
    run.vol = [_volatility(b) if run.costs.needs_volatility else None for b in run.bars]
    run._actions = scheduled_actions(run)
    run._sessions = run.portal.calendar.closes
    if run.prices is not None:
        run.prices.add(run, t_lo, t_hi)


def advance_window(run: _Run, w: int) -> None:
    """Release what window ``w`` no longer needs, load window ``w + 1`` (``windows.keep_rows``)."""
    for j in range(len(run.bars)):
        run._flush_extremes(j, run.rows[j])
    keep, dropped = keep_rows(run, run.bounds[w])
    run.portal.advance(run.bounds[w + 1] if w + 1 < len(run.bounds) else run.end, keep)
    for j, d in enumerate(dropped):
        run.offsets[j] += d
        run.rows[j] -= d
        run._since[j] -= d
    open_window(run, w)
    for ind in run._indicators:
        ind.rebase(run.offsets[ind._slot], len(run.bars[ind._slot]["ts"]))


def ready_step(run: _Run) -> int:
    """First clock step with ``strategy.warmup`` bars of history for every symbol that has bars.

    The portal loads that history before ``start`` when the data has them; when it does not, the
    strategy is first called once it exists (said once), so strategies never guard on it. A
    streamed run gets ``-1`` when the first window does not settle it (it is then loaded whole).
    """
    need, n = int(run.strategy.warmup), len(run.clock)
    if need <= 1 or run.tick_only:
        return 0
    firsts = [int(np.argmax(row >= need - 1)) if (row >= need - 1).any() else n
              for row in run.row_at if (row >= 0).any()]
    if run.bounds and (len(firsts) < len(run.row_at) or max(firsts, default=n) >= n):
        return -1
    ready = max(firsts, default=0)
    if ready:
        warn_warmup(run.strategy.name, need, run.frequency, int(run.clock[ready]) if ready < n else None)
    return ready


def _volatility(b: SymbolBars, window: int = 20) -> np.ndarray:
    """Std of the previous ``window`` close-to-close returns, known at each bar's close."""
    close = b["close"]
    ret = np.empty_like(close)
    ret[0] = np.nan
    ret[1:] = close[1:] / close[:-1] - 1.0
    out = np.full_like(close, np.nan)
    if len(close) > window:
        windows = np.lib.stride_tricks.sliding_window_view(ret[1:], window)
        out[window:] = windows.std(axis=1, ddof=1)
    return out
