"""``FrameDataSource``: a ``DataSource`` over bars, trades, quotes and corporate actions in memory.

For hand-made test series, a vendor frame loaded elsewhere (backtesting.py's GOOG), or benchmarks
that must not time data generation. It serves its one bar frequency and nothing it does not hold:
trades and quotes are offered only when given (an empty frame counts as given).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from .._time import TimeLike, check_range
from ..calendars import get_calendar
from ..errors import UnsupportedDataError
from ..instruments import Instrument
from ..schema import Kind, conform, empty
from ..timeframes import Timeframe
from .base import DataSource, DataSourceMetadata, SourceCapabilities


@dataclass(frozen=True)
class FrameDataSource(DataSource):
    """Bars in the canonical schema (``backtape.schema``) at one ``frequency``, on ``calendar``;
    optionally trades and quotes (``TRADE_SCHEMA`` / ``QUOTE_SCHEMA``)."""

    bars: pl.DataFrame = field(default_factory=lambda: empty("bars"))
    actions: pl.DataFrame | None = None
    frequency: str = "1d"
    calendar_name: str = "XNYS"
    name: str = "memory"
    trades: pl.DataFrame | None = None
    quotes: pl.DataFrame | None = None
    #: per-symbol lot size and minimum order value (``DataSource.instruments``)
    rules: Mapping[str, Instrument] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bars", conform(self.bars, "bars"))
        extra: tuple[Kind, ...] = ("actions", "trades", "quotes")
        for kind in extra:
            frame = getattr(self, kind)
            if frame is not None:
                object.__setattr__(self, kind, conform(frame, kind))

    async def fetch(self, symbols: list[str], start: TimeLike, end: TimeLike,
                    frequency: str | Timeframe = "1d") -> pl.DataFrame:
        s, e = check_range(start, end)
        if Timeframe.parse(frequency) != Timeframe.parse(self.frequency):
            raise ValueError(f"{self.name}: holds {self.frequency} bars only, asked for {frequency}")
        return _between(self.bars, symbols, s, e)

    async def fetch_trades(self, symbols: list[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        return self._ticks("trades", symbols, start, end)

    async def fetch_quotes(self, symbols: list[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        return self._ticks("quotes", symbols, start, end)

    def _ticks(self, kind: str, symbols: list[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        """Held ``kind`` rows of ``symbols`` with ``start <= ts < end`` (canonical order)."""
        s, e = check_range(start, end)
        frame = getattr(self, kind)
        if frame is None:
            raise UnsupportedDataError(f"{self.name}: holds no {kind}")
        return _between(frame, symbols, s, e)

    async def fetch_corporate_actions(self, symbols: list[str], start: TimeLike,
                                      end: TimeLike) -> pl.DataFrame:
        s, e = check_range(start, end)
        return empty("actions") if self.actions is None else _between(self.actions, symbols, s, e)

    def instruments(self, symbols: Sequence[str]) -> dict[str, Instrument]:
        return {s: self.rules[s] for s in symbols if s in self.rules}

    def get_metadata(self) -> DataSourceMetadata:
        return DataSourceMetadata(
            name=self.name, source_type="memory", description="bars held in memory",
            calendar=self.calendar_name,
            capabilities=SourceCapabilities(
                kinds=frozenset({"bars"} | {k for k in ("trades", "quotes") if getattr(self, k) is not None}),
                frequencies=(self.frequency,), corporate_actions=self.actions is not None),
            details={"rows": self.bars.height, "frequency": self.frequency},
        )

    def cache_identity(self) -> str:
        """A content hash: two sources holding the same frames have the same identity."""
        digest = self.bars.hash_rows().sum()
        extra = ":".join(str(0 if f is None else int(f.hash_rows().sum()))
                         for f in (self.actions, self.trades, self.quotes))
        return f"memory:{self.frequency}:{self.bars.height}:{int(digest)}:{extra}"


def _between(frame: pl.DataFrame, symbols: list[str] | str, start: int, end: int) -> pl.DataFrame:
    """Rows of ``symbols`` with ``start <= ts < end`` (the contract's half-open range)."""
    names = [symbols] if isinstance(symbols, str) else list(symbols)
    ts = pl.col("ts").cast(pl.Int64)
    return frame.filter(pl.col("symbol").is_in(names) & (ts >= start) & (ts < end))


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
