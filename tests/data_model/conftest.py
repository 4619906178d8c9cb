"""Shared builders for the data-model tests: minute bars on a calendar's sessions.

They are handed out as session-scoped fixtures (test modules are imported in importlib mode, so they
cannot import this file), which also suits hypothesis.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from backtape._time import NS_PER_MINUTE, to_ns
from backtape.calendars import get_calendar
from backtape.schema import TS


def _minute_bars(ts_ns: np.ndarray | list[int], symbol: str = "X", *, base: float = 100.0) -> pl.DataFrame:
    """Canonical 1-minute bars starting at ``ts_ns``: bar k has open base+k, high +2, low -1, close +1,
    volume k+1, so every aggregate can be computed by hand."""
    ts = np.asarray(ts_ns, dtype=np.int64)
    k = np.arange(ts.size, dtype=np.float64)
    return pl.DataFrame(
        {"symbol": symbol, "ts": ts, "ts_end": ts + NS_PER_MINUTE, "open": base + k, "high": base + k + 2,
         "low": base + k - 1, "close": base + k + 1, "volume": k + 1}
    ).with_columns(pl.col("ts", "ts_end").cast(TS))


def _session_minutes(calendar: str, start: str, end: str, *, pad_minutes: int = 0) -> np.ndarray:
    """Every minute of the calendar's sessions overlapping [start, end), extended by ``pad_minutes``
    before each open and after each close (pre/post-market)."""
    cal = get_calendar(calendar)
    s = np.searchsorted(cal.closes, to_ns(start), side="right")
    e = np.searchsorted(cal.opens, to_ns(end), side="left")
    pad = pad_minutes * NS_PER_MINUTE
    spans = zip(cal.opens[s:e], cal.closes[s:e], strict=True)
    parts = [np.arange(o - pad, c + pad, NS_PER_MINUTE) for o, c in spans]
    return np.concatenate(parts)


def _utc(text: str) -> int:
    """UTC nanoseconds of an ISO string (shorthand for expected values)."""
    return to_ns(text)


DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="session")
def build() -> SimpleNamespace:
    """``build.minute_bars``, ``build.session_minutes``, ``build.utc`` and ``build.data`` (test files)."""
    return SimpleNamespace(minute_bars=_minute_bars, session_minutes=_session_minutes, utc=_utc, data=DATA)
