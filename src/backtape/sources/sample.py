"""The ``sample`` source: real market data shipped inside the package, for demos and offline work.

=========  ======  =========  ===================================  =====================================
symbol     kind    frequency  range                                origin
=========  ======  =========  ===================================  =====================================
AAPL IBM   bars    1d         2012-01-03 .. 2014-12-31 (XNYS)      zipline test files, raw prices
KO MSFT                                                            restored from split-adjusted ones
BRK_A ZEN  bars    1d         2014 (XNYS)                          Quandl WIKI sample, raw prices
BTC-PERP   bars    1min       2021-12-31 23:01 .. 2022-02-01 (24/7)
BTCUSDT    trades             2024-08-08 23:54 .. 2024-08-09 00:00  Binance spot, with aggressor side
BTCUSDT    quotes             same six minutes                     Binance bookTicker (receive time)
=========  ======  =========  ===================================  =====================================

Prices are raw; splits and dividends come from ``fetch_corporate_actions``. Coarser bars than a
symbol's native frequency are aggregated by session (``backtape.aggregate``). Each file's origin and
treatment is recorded in ``sample_data/manifest.json``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl

from .._time import TimeLike, check_range
from ..errors import SymbolNotFoundError
from ..schema import Kind, empty
from ..timeframes import Timeframe
from .base import DataSource, DataSourceMetadata, SourceCapabilities
from .files import CSVDataSource, FileDataSource, ParquetDataSource


def sample_data_dir() -> Path:
    """Folder of the shipped sample files inside the installed package."""
    return Path(str(resources.files("backtape") / "sample_data"))


@dataclass(frozen=True)
class _Entry:
    file: str
    kind: str
    serve: tuple[str, ...]
    options: dict[str, Any]
    origin: str
    notes: str


class SampleDataSource(DataSource):
    """Real daily equities, crypto minute bars, trades and quotes shipped with backtape.

    >>> SampleDataSource().fetch_sync("AAPL", "2014-06-01", "2014-07-01").height  # doctest: +SKIP
    21
    """

    name = "sample"

    def __init__(self) -> None:
        self._dir = sample_data_dir()
        manifest = json.loads((self._dir / "manifest.json").read_text())
        self._entries = [
            _Entry(e["file"], e["kind"], tuple(e["serve"]), e["options"], e["origin"], e.get("notes", ""))
            for e in manifest["files"]
        ]
        self._sources: dict[str, FileDataSource] = {}

    # -- routing --------------------------------------------------------------------------------
    def _source(self, entry: _Entry) -> FileDataSource:
        if entry.file not in self._sources:
            cls = ParquetDataSource if entry.file.endswith(".parquet") else CSVDataSource
            self._sources[entry.file] = cls(self._dir / entry.file, kind=entry.kind, **entry.options)
        return self._sources[entry.file]

    def _entry(self, symbol: str, kind: str) -> _Entry:
        for entry in self._entries:
            if entry.kind == kind and symbol in entry.serve:
                return entry
        known = ", ".join(self.list_symbols(kind)) or "none"
        raise SymbolNotFoundError(f"sample source has no {kind} for symbol {symbol!r}; "
                                  f"{kind} symbols: {known}")

    def list_symbols(self, kind: str | None = None) -> list[str]:
        """Symbols served, optionally of one kind (``bars``, ``trades``, ``quotes``)."""
        return sorted({s for e in self._entries if kind in (None, e.kind) for s in e.serve})

    def calendar_of(self, symbol: str) -> str:
        """Exchange calendar of ``symbol`` (``XNYS`` for equities, ``24/7`` for crypto)."""
        for entry in self._entries:
            if symbol in entry.serve:
                return str(entry.options.get("calendar", "XNYS"))
        raise SymbolNotFoundError(f"sample source has no symbol {symbol!r}; known: "
                                  f"{', '.join(self.list_symbols())}")

    def frequency_of(self, symbol: str) -> Timeframe:
        """Native bar size of ``symbol``."""
        return self._source(self._entry(symbol, "bars")).frequency_of(symbol)

    async def _gather(self, kind: Kind, symbols: list[str], start: TimeLike, end: TimeLike,
                      frequency: str | Timeframe = "1d") -> pl.DataFrame:
        check_range(start, end)
        Timeframe.parse(frequency)
        routed = [(sym, self._entry(sym, kind)) for sym in symbols]
        parts = [await self._source(entry).fetch_kind(kind, [sym], start, end, frequency)
                 for sym, entry in routed]
        if not parts:
            return empty(kind)
        return pl.concat(parts, how="diagonal_relaxed").sort(["symbol", "ts"], maintain_order=True)

    # -- DataSource -----------------------------------------------------------------------------
    async def fetch(self, symbols: list[str], start: TimeLike, end: TimeLike,
                    frequency: str | Timeframe = "1d") -> pl.DataFrame:
        return await self._gather("bars", symbols, start, end, frequency)

    async def fetch_trades(self, symbols: list[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        return await self._gather("trades", symbols, start, end)

    async def fetch_quotes(self, symbols: list[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        return await self._gather("quotes", symbols, start, end)

    async def fetch_corporate_actions(self, symbols: list[str], start: TimeLike,
                                      end: TimeLike) -> pl.DataFrame:
        check_range(start, end)
        parts = []
        for sym in symbols:
            entry = self._entry(sym, "bars") if sym in self.list_symbols("bars") else None
            if entry is None:
                self.calendar_of(sym)  # raises for unknown symbols; tick-only symbols have no actions
                continue
            parts.append(await self._source(entry).fetch_corporate_actions([sym], start, end))
        return pl.concat(parts) if parts else empty("actions")

    def describe(self) -> pl.DataFrame:
        """One row per served (symbol, kind): frequency, first and last ``ts``, rows, calendar."""
        rows = []
        for entry in self._entries:
            frame = self._source(entry).frame(entry.kind)
            for sym in entry.serve:
                part = frame.filter(pl.col("symbol") == sym)
                rows.append({
                    "symbol": sym,
                    "kind": entry.kind,
                    "frequency": str(self.frequency_of(sym)) if entry.kind == "bars" else "",
                    "first": part.get_column("ts").min(),
                    "last": part.get_column("ts").max(),
                    "rows": part.height,
                    "calendar": entry.options.get("calendar", "XNYS"),
                    "file": entry.file,
                })
        return pl.DataFrame(rows).sort("kind", "symbol")

    def get_metadata(self) -> DataSourceMetadata:
        return DataSourceMetadata(
            name=self.name,
            source_type="sample",
            description="real market data shipped with backtape (daily equities with splits and "
                        "dividends, BTC 1-minute bars, Binance trades and quotes)",
            calendar="XNYS",
            capabilities=SourceCapabilities(
                kinds=frozenset({"bars", "trades", "quotes"}),
                frequencies=("1min", "1d"),
                corporate_actions=True,
                adjusted=False,
            ),
            details={
                "folder": str(self._dir),
                "symbols": {k: self.list_symbols(k) for k in ("bars", "trades", "quotes")},
                "calendars": {s: self.calendar_of(s) for s in self.list_symbols()},
                "files": {e.file: {"origin": e.origin, "notes": e.notes} for e in self._entries},
            },
        )

    def cache_identity(self) -> str:
        """Fixed by the manifest's content: the shipped files change only with it."""
        digest = hashlib.sha256((self._dir / "manifest.json").read_bytes()).hexdigest()[:16]
        return f"sample:{digest}"

    def __repr__(self) -> str:
        return "SampleDataSource()"


__all__ = ["SampleDataSource", "sample_data_dir"]
