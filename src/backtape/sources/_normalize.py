"""Provider-agnostic normalisation: vendor date stamps to exchange sessions, RFC 3339 to exact ns.

Vendors stamp daily bars in different ways (midnight New York, session open, a bare date); backtape
stamps a daily bar at its session's open and ends it at the close. These helpers do that mapping
once, raising a clear error when a vendor date is not a session of the calendar.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from ..calendars import get_calendar
from ..errors import DataFormatError
from ..schema import TS, TickKind, conform, empty

NEW_YORK = "America/New_York"


def local_date_labels(ts_ns: Sequence[int] | np.ndarray, tz: str = NEW_YORK) -> np.ndarray:
    """Midnight-UTC label (int ns) of each instant's calendar date in time zone ``tz``."""
    series = pl.Series("t", np.asarray(ts_ns, dtype=np.int64)).cast(TS)
    dates = series.dt.convert_time_zone(tz).dt.date()
    return dates.cast(pl.Datetime("ns")).cast(pl.Int64).to_numpy()


def date_labels(dates: Sequence[str]) -> np.ndarray:
    """Midnight-UTC labels (int ns) of ``YYYY-MM-DD`` strings."""
    return pl.Series("d", list(dates), dtype=pl.String).str.to_date("%Y-%m-%d").cast(
        pl.Datetime("ns")).cast(pl.Int64).to_numpy()


def sessions_for_labels(
    labels: np.ndarray, calendar: str, *, provider: str, symbol: str
) -> tuple[np.ndarray, np.ndarray]:
    """Open and close (int ns) of the session labelled by each date; error if a date is no session."""
    cal = get_calendar(calendar)
    idx = np.searchsorted(cal.labels, labels)
    inside = idx < len(cal.labels)
    ok = inside & (cal.labels[np.clip(idx, 0, len(cal.labels) - 1)] == labels)
    if not ok.all():
        bad = pl.Series([int(labels[int(np.argmin(ok))])]).cast(pl.Datetime("ns")).dt.date()[0]
        raise DataFormatError(
            f"{provider}: {symbol} has a daily bar dated {bad}, which is not a {cal.name} session; "
            "pass calendar= matching the instrument's exchange"
        )
    return cal.opens[idx], cal.closes[idx]


def week_bounds(
    week_start_ns: np.ndarray, calendar: str, *, provider: str, symbol: str
) -> tuple[np.ndarray, np.ndarray]:
    """First session open and last session close within 7 days from each week stamp."""
    cal = get_calendar(calendar)
    lo = np.searchsorted(cal.opens, week_start_ns, side="left")
    hi = np.searchsorted(cal.opens, week_start_ns + 7 * 86_400 * 10**9, side="left") - 1
    if (hi < lo).any():
        raise DataFormatError(f"{provider}: {symbol} has a weekly bar with no {cal.name} session")
    return cal.opens[lo], cal.closes[hi]


def session_of_instants(
    ts_ns: np.ndarray, calendar: str, *, provider: str, symbol: str
) -> tuple[np.ndarray, np.ndarray]:
    """Open and close of the session containing (or, if between sessions, starting at) each instant."""
    cal = get_calendar(calendar)
    idx = np.searchsorted(cal.closes, ts_ns, side="right")
    if (idx >= len(cal.opens)).any():
        raise DataFormatError(f"{provider}: {symbol} has a bar beyond the {cal.name} calendar")
    return cal.opens[idx], cal.closes[idx]


def rfc3339_to_ns(values: Sequence[str]) -> pl.Series:
    """Parse RFC 3339 strings with 0-9 fractional digits exactly to UTC ns (never via float)."""
    series = pl.Series("t", list(values), dtype=pl.String)
    return series.str.to_datetime(time_unit="ns", time_zone="UTC").cast(pl.Int64)


def bars_in_range(frame: pl.DataFrame, start_ns: int, end_ns: int) -> pl.DataFrame:
    """Canonical bars with ``start_ns <= ts < end_ns`` and unique ``(symbol, ts)``."""
    out = conform(frame, "bars")
    lo, hi = pl.lit(start_ns).cast(TS), pl.lit(end_ns).cast(TS)
    out = out.filter((pl.col("ts") >= lo) & (pl.col("ts") < hi))
    return out.unique(["symbol", "ts"], keep="last", maintain_order=True)


def ticks_in_range(frame: pl.DataFrame, kind: TickKind, start_ns: int, end_ns: int) -> pl.DataFrame:
    """Canonical trades or quotes with ``start_ns <= ts < end_ns``, order of equal stamps kept."""
    out = conform(frame, kind)
    lo, hi = pl.lit(start_ns).cast(TS), pl.lit(end_ns).cast(TS)
    return out.filter((pl.col("ts") >= lo) & (pl.col("ts") < hi))


def actions_frame(
    symbols: Sequence[str], labels: np.ndarray, actions: Sequence[str], values: Sequence[float],
    calendar: str, start_ns: int, end_ns: int,
) -> pl.DataFrame:
    """Canonical corporate actions: each ex-date (a midnight-UTC label) stamped at the open of that
    session, or of the next one when the vendor dates it on a non-trading day; kept if in range."""
    if len(symbols) == 0:
        return empty("actions")
    cal = get_calendar(calendar)
    idx = np.searchsorted(cal.labels, np.asarray(labels, dtype=np.int64), side="left")
    if (idx >= len(cal.opens)).any():
        raise DataFormatError(f"corporate action dated beyond the {cal.name} calendar")
    frame = pl.DataFrame({
        "symbol": pl.Series(list(symbols), dtype=pl.String),
        "ts": pl.Series(cal.opens[idx]).cast(TS),
        "action": pl.Series(list(actions), dtype=pl.String),
        "value": pl.Series(list(values), dtype=pl.Float64),
    })
    lo, hi = pl.lit(start_ns).cast(TS), pl.lit(end_ns).cast(TS)
    return conform(frame.filter((pl.col("ts") >= lo) & (pl.col("ts") < hi)), "actions")
