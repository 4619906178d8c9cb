"""Shared fixtures: an in-memory, call-counting DataSource and builders of realistic minute bars."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from backtape._time import NS_PER_MINUTE, check_range, to_ns
from backtape.calendars import get_calendar
from backtape.schema import conform, empty
from backtape.sources.base import DataSource, DataSourceMetadata, SourceCapabilities


class MemorySource(DataSource):
    """Serves frames held in memory and records every upstream call (kind, symbols, range)."""

    name = "memory"

    def __init__(self, bars: pl.DataFrame, *, actions: pl.DataFrame | None = None,
                 trades: pl.DataFrame | None = None, quotes: pl.DataFrame | None = None,
                 calendar: str = "XNYS", frequencies: tuple[str, ...] = ("1min", "1d")) -> None:
        self.frames = {"bars": bars, "actions": actions if actions is not None else empty("actions")}
        if trades is not None:
            self.frames["trades"] = trades
        if quotes is not None:
            self.frames["quotes"] = quotes
        self._calendar = calendar
        self._frequencies = frequencies
        self.calls: list[tuple[str, tuple[str, ...], int, int]] = []

    def _serve(self, kind: str, symbols: list[str], start, end) -> pl.DataFrame:
        s, e = check_range(start, end)
        self.calls.append((kind, tuple(symbols), s, e))
        ts = pl.col("ts").cast(pl.Int64)
        return self.frames[kind].filter(pl.col("symbol").is_in(symbols) & (ts >= s) & (ts < e))

    async def fetch(self, symbols, start, end, frequency="1d") -> pl.DataFrame:
        return self._serve("bars", symbols, start, end)

    async def fetch_trades(self, symbols, start, end) -> pl.DataFrame:
        return self._serve("trades", symbols, start, end)

    async def fetch_quotes(self, symbols, start, end) -> pl.DataFrame:
        return self._serve("quotes", symbols, start, end)

    async def fetch_corporate_actions(self, symbols, start, end) -> pl.DataFrame:
        return self._serve("actions", symbols, start, end)

    def get_metadata(self) -> DataSourceMetadata:
        kinds = frozenset(k for k in self.frames if k != "actions")
        caps = SourceCapabilities(kinds=kinds, frequencies=self._frequencies, corporate_actions=True)
        return DataSourceMetadata("memory", "test", "in-memory frames", self._calendar, caps)


def minute_bars(symbols: list[str], start: str, end: str, *, calendar: str = "XNYS", seed: int = 1,
                drop: float = 0.0) -> pl.DataFrame:
    """Random-walk 1-minute bars for every minute of every session in ``[start, end)``.

    ``drop`` removes that fraction of minutes at random (gaps); prices stay positive.
    """
    cal = get_calendar(calendar)
    s, e = to_ns(start), to_ns(end)
    lo, hi = np.searchsorted(cal.opens, s), np.searchsorted(cal.opens, e)
    minutes = np.concatenate([np.arange(o, c, NS_PER_MINUTE) for o, c in
                              zip(cal.opens[lo:hi], cal.closes[lo:hi], strict=True)])
    rng = np.random.default_rng(seed)
    frames = []
    for k, sym in enumerate(symbols):
        ts = minutes[rng.random(len(minutes)) >= drop] if drop else minutes
        close = 100.0 * (k + 1) * np.exp(np.cumsum(rng.normal(0, 5e-4, len(ts))))
        opn = np.r_[close[0], close[:-1]]
        spread = np.abs(rng.normal(0, 2e-4, len(ts))) * close
        frames.append(pl.DataFrame({
            "symbol": sym, "ts": ts, "ts_end": ts + NS_PER_MINUTE, "open": opn,
            "high": np.maximum(opn, close) + spread, "low": np.minimum(opn, close) - spread,
            "close": close, "volume": rng.integers(1, 5000, len(ts)).astype(float),
        }))
    return conform(pl.concat(frames), "bars")


@pytest.fixture(scope="session")
def memory_source():
    """The ``MemorySource`` class."""
    return MemorySource


@pytest.fixture(scope="session")
def make_minute_bars():
    """The ``minute_bars`` builder."""
    return minute_bars
