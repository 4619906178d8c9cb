"""Time windows for tick aggregates: epoch-anchored intraday buckets or exchange sessions."""

from __future__ import annotations

import numpy as np
import polars as pl

from ..calendars import get_calendar
from ..errors import DataValidationError, TimeframeError
from ..schema import TS
from ..timeframes import Timeframe


def window_bounds(
    df: pl.DataFrame, window: str | Timeframe, calendar: str | None = None
) -> pl.DataFrame:
    """``df`` with ``_w_start``/``_w_end`` columns: the window ``[start, end)`` of each row's ``ts``.

    Intraday windows (``"1min"``, ``"5min"``, ``"1h"``) are anchored at the Unix epoch, so UTC
    minute and hour boundaries. ``"1d"`` is one exchange session of ``calendar`` (default ``24/7``:
    UTC midnight to midnight); an event outside every session is an error, not dropped.
    """
    tf = Timeframe.parse(window)
    ts = df.get_column("ts").to_physical().to_numpy()
    if tf.is_intraday:
        start = ts - ts % tf.nanos
        end = start + tf.nanos
    elif tf.unit == "d":
        cal = get_calendar(calendar or "24/7")
        idx = cal.session_index(ts)
        if ts.shape[0] and bool((idx < 0).any()):
            row = int(np.argmax(idx < 0))
            raise DataValidationError(
                f"{df['symbol'][row]} at {df['ts'][row]} (row {row}) lies outside every "
                f"{calendar or '24/7'} session; choose the calendar of the instrument",
                [{"rule": "outside_session", "row": row, "symbol": df["symbol"][row]}],
            )
        start = cal.opens[idx]
        end = cal.closes[idx]
    else:
        raise TimeframeError(f"tick windows are intraday or '1d' (one session), not {tf}")
    return df.with_columns(pl.Series("_w_start", start).cast(TS), pl.Series("_w_end", end).cast(TS))
