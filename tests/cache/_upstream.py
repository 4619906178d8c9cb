"""A deterministic, counting in-memory upstream for cache tests (also imported by subprocesses)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import polars as pl

from backtape._time import check_range
from backtape.calendars import get_calendar
from backtape.schema import conform
from backtape.sources.base import DataSource, DataSourceMetadata, SourceCapabilities
from backtape.timeframes import Timeframe


def _price(symbol: str, ts: np.ndarray) -> np.ndarray:
    seed = int(hashlib.sha1(symbol.encode()).hexdigest()[:8], 16) % 1000
    return 50.0 + seed / 10.0 + (ts // 60_000_000_000 % 997) / 100.0


class CountingSource(DataSource):
    """Bars (any frequency, on ``calendar`` sessions) and trades; every answer depends only on the
    symbol and timestamps. Records each call in ``calls`` and, when ``log`` is set, appends a JSON
    line per call to that file (shared between processes).

    ``bump`` shifts every price (an upstream revision); ``empty_symbols`` never have rows; ``fail``
    makes the next calls raise; ``overshoot_ns`` returns
    rows beyond the asked range; ``invalid`` returns a bar with high < low; ``delay`` sleeps per call.
    """

    name = "counting"
    remote = True  # stands in for a network provider: its open tail can go stale

    def __init__(self, calendar: str = "XNYS", *, log: str | Path | None = None, delay: float = 0.0,
                 empty_symbols: frozenset[str] = frozenset(), identity: str = "counting") -> None:
        self.cal_name = calendar
        self.cal = get_calendar(calendar)
        self.calls: list[tuple[str, tuple[str, ...], int, int]] = []
        self.returned: list[pl.DataFrame] = []
        self.log = Path(log) if log else None
        self.delay = delay
        self.empty_symbols = empty_symbols
        self.identity = identity
        self.fail = False
        self.overshoot_ns = 0
        self.invalid = False
        self.bump = 0.0

    def cache_identity(self) -> str:
        return self.identity

    def get_metadata(self) -> DataSourceMetadata:
        caps = SourceCapabilities(kinds=frozenset({"bars", "trades"}), frequencies=("*",))
        return DataSourceMetadata(self.name, "test", "counting test upstream", self.cal_name, caps)

    def bars(self, symbols: list[str], s: int, e: int, frequency: str) -> pl.DataFrame:
        """The true answer for a request (no counting)."""
        tf = Timeframe.parse(frequency)
        lo = int(np.searchsorted(self.cal.closes, s, side="right"))
        hi = int(np.searchsorted(self.cal.opens, e, side="left"))
        opens, closes = self.cal.opens[lo:hi], self.cal.closes[lo:hi]
        if tf.is_intraday:
            pieces = [(np.arange(o, c, tf.nanos, dtype=np.int64), c)
                      for o, c in zip(opens, closes, strict=True)]
            none = np.empty(0, np.int64)
            starts = np.concatenate([p for p, _ in pieces]) if pieces else none
            ends = np.concatenate([np.minimum(p + tf.nanos, c) for p, c in pieces]) if pieces else none
        else:
            starts, ends = opens, closes
        keep = (starts >= s) & (starts < e)
        starts, ends = starts[keep], ends[keep]
        frames = []
        for sym in sorted(symbols):
            if sym in self.empty_symbols:
                continue
            p = _price(sym, starts) + self.bump
            frames.append(pl.DataFrame({
                "symbol": [sym] * len(starts), "ts": starts, "ts_end": ends, "open": p, "high": p + 1.0,
                "low": p - 1.0, "close": p + 0.5, "volume": np.full(len(starts), 100.0),
            }))
        if not frames:
            return conform(pl.DataFrame(schema={"symbol": pl.String, "ts": pl.Int64, "ts_end": pl.Int64,
                                                "open": pl.Float64, "high": pl.Float64, "low": pl.Float64,
                                                "close": pl.Float64, "volume": pl.Float64}), "bars")
        return conform(pl.concat(frames), "bars")

    def trades(self, symbols: list[str], s: int, e: int) -> pl.DataFrame:
        """True trades: three per minute inside sessions, two of them sharing a timestamp."""
        minutes = self.bars(symbols, s, e, "1min")
        out = minutes.select("symbol", "ts", pl.col("close").alias("price")).with_columns(
            pl.lit(10.0).alias("size"))
        out = pl.concat([out, out.with_columns(pl.col("size") + 1),
                         out.with_columns(pl.col("ts") + pl.duration(seconds=30, time_unit="ns"))])
        out = out.sort("symbol", "ts", maintain_order=True)
        ts = pl.col("ts").dt.epoch("ns")
        return conform(out.filter((ts >= s) & (ts < e)), "trades")

    async def _record(self, kind: str, symbols: list[str], s: int, e: int) -> None:
        self.calls.append((kind, tuple(sorted(symbols)), s, e))
        if self.log is not None:
            line = json.dumps({"kind": kind, "symbols": sorted(symbols), "start": s, "end": e,
                               "pid": os.getpid()})
            with open(self.log, "a") as fh:
                fh.write(line + "\n")
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise ConnectionError("upstream unavailable (test)")

    async def fetch(self, symbols, start, end, frequency="1d") -> pl.DataFrame:
        s, e = check_range(start, end)
        await self._record(f"bars/{Timeframe.parse(frequency)}", symbols, s, e)
        out = self.bars(symbols, s, e + self.overshoot_ns, str(frequency))
        if self.overshoot_ns:
            out = pl.concat([self.bars(symbols, s - self.overshoot_ns, s, str(frequency)), out])
        if self.invalid and out.height:
            out = out.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(pl.col("low") - 1)
                                   .otherwise(pl.col("high")).alias("high"))
        self.returned.append(out.with_columns(pl.lit(str(Timeframe.parse(frequency))).alias("frequency")))
        return out

    async def fetch_trades(self, symbols, start, end) -> pl.DataFrame:
        s, e = check_range(start, end)
        await self._record("trades", symbols, s, e)
        out = self.trades(symbols, s, e)
        self.returned.append(out.select("symbol", "ts", pl.lit("tick").alias("frequency")))
        return out
