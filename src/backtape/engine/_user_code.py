"""Exceptions raised by a user's strategy, reported as one line naming its file, line and bar time."""

from __future__ import annotations

import inspect
import traceback

from .._time import format_ns
from ..errors import BacktapeError, HistoryWindowStartsBeforeData, StrategyError
from .strategy import Strategy


def strategy_error(exc: BaseException, strategy: Strategy, now: int | None) -> StrategyError | None:
    """``exc`` as a ``StrategyError`` when it passed through the strategy's own source file (``now``:
    the bar's time; ``None`` for a vector form, which sees every bar at once).

    ``None`` when it did not (a fault of backtape itself, left as it is) or when it already is a
    ``BacktapeError`` (its message names the input), except a history window reaching before the
    data, which is the strategy's to fix by declaring its warm-up.
    """
    history = isinstance(exc, HistoryWindowStartsBeforeData)
    if isinstance(exc, BacktapeError | KeyboardInterrupt) and not history:
        return None
    try:
        source = inspect.getsourcefile(type(strategy))
    except TypeError:
        return None
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == source]
    if not frames:
        return None
    at = frames[-1]
    name = type(strategy).__name__
    hint = (f"; declare `warmup = N` on {name} (the bars of history it reads) so that they are "
            "loaded before the start, or on_bar waits for them") if history else ""
    when = "" if now is None else f" at {format_ns(now)}"
    return StrategyError(f"{type(exc).__name__} in {name}.{at.name} ({at.filename}:{at.lineno}){when}: "
                         f"{exc}{hint}")
