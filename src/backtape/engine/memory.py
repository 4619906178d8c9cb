"""``FrameDataSource``: a ``DataSource`` over bars (and corporate actions) already in memory.

For hand-made test series, a vendor frame loaded elsewhere (backtesting.py's GOOG), or benchmarks
that must not time data generation. It serves its one bar frequency and nothing it does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from .._time import TimeLike, check_range
from ..calendars import get_calendar
from ..schema import conform, empty
from ..sources.base import DataSource, DataSourceMetadata, SourceCapabilities
from ..timeframes import Timeframe


@dataclass(frozen=True)
class FrameDataSource(DataSource):
    """Bars in the canonical schema (``backtape.schema``) at one ``frequency``, on ``calendar``."""

    bars: pl.DataFrame = field(default_factory=lambda: empty("bars"))
    actions: pl.DataFrame | None = None
    frequency: str = "1d"
    calendar_name: str = "XNYS"
    name: str = "memory"

    def __post_init__(self) -> None:
        object.__setattr__(self, "bars", conform(self.bars, "bars"))
        if self.actions is not None:
            object.__setattr__(self, "actions", conform(self.actions, "actions"))

    async def fetch(self, symbols: list[str], start: TimeLike, end: TimeLike,
                    frequency: str | Timeframe = "1d") -> pl.DataFrame:
        s, e = check_range(start, end)
        if Timeframe.parse(frequency) != Timeframe.parse(self.frequency):
            raise ValueError(f"{self.name}: holds {self.frequency} bars only, asked for {frequency}")
        names = [symbols] if isinstance(symbols, str) else list(symbols)
        ts = pl.col("ts").cast(pl.Int64)
        return self.bars.filter(pl.col("symbol").is_in(names) & (ts >= s) & (ts < e))

    async def fetch_corporate_actions(self, symbols: list[str], start: TimeLike,
                                      end: TimeLike) -> pl.DataFrame:
        s, e = check_range(start, end)
        if self.actions is None:
            return empty("actions")
        ts = pl.col("ts").cast(pl.Int64)
        return self.actions.filter(pl.col("symbol").is_in(list(symbols)) & (ts >= s) & (ts < e))

    def get_metadata(self) -> DataSourceMetadata:
        return DataSourceMetadata(
            name=self.name, source_type="memory", description="bars held in memory",
            calendar=self.calendar_name,
            capabilities=SourceCapabilities(frequencies=(self.frequency,),
                                            corporate_actions=self.actions is not None),
            details={"rows": self.bars.height, "frequency": self.frequency},
        )

    def cache_identity(self) -> str:
        """A content hash: two sources holding the same frames have the same identity."""
        digest = self.bars.hash_rows().sum()
        extra = 0 if self.actions is None else int(self.actions.hash_rows().sum())
        return f"memory:{self.frequency}:{self.bars.height}:{int(digest)}:{extra}"


def daily_bars(symbol: str, ohlcv: list[tuple[float, ...]] | np.ndarray, first_session: TimeLike,
               calendar: str = "XNYS") -> pl.DataFrame:
    """Canonical daily bars from rows of ``(open, high, low, close[, volume])`` on consecutive sessions."""
    rows = np.asarray(ohlcv, dtype=np.float64)
    cal = get_calendar(calendar)
    sessions = cal.sessions(first_session, np.datetime64("2100-01-01", "ns")).head(len(rows))
    if sessions.height < len(rows):
        raise ValueError(f"calendar {calendar} has only {sessions.height} sessions after {first_session}")
    volume = rows[:, 4] if rows.shape[1] > 4 else np.full(len(rows), 1_000_000.0)
    utc = pl.Datetime("ns", "UTC")
    frame = pl.DataFrame({
        "symbol": [symbol] * len(rows),
        "ts": sessions["open"].cast(pl.Int64).cast(utc), "ts_end": sessions["close"].cast(pl.Int64).cast(utc),
        "open": rows[:, 0], "high": rows[:, 1], "low": rows[:, 2], "close": rows[:, 3], "volume": volume,
    })
    return conform(frame, "bars")
