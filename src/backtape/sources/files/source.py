"""Files as a ``DataSource``: one file or a folder of files, read once and served from memory.

Each file is parsed (``parse.parse_file``) on first use; two files may not give the same symbol
over overlapping times. Bars coarser than a symbol's native size are aggregated by session, and
a week or month running past ``end`` is left out rather than built from sessions after ``end``
(``timeframes.last_bar_end``; the engines leave such a bar out of a run the same way).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

import polars as pl

from ..._paths import expand_path
from ..._time import TimeLike, check_range
from ...calendars import get_calendar
from ...errors import ConfigError, DataFormatError, SymbolNotFoundError, UnsupportedDataError
from ...schema import SCHEMAS, TS, conform, empty
from ...timeframes import Timeframe, last_bar_end
from ...validation import QualityReport, sort_by_symbol_ts
from ..base import DataSource, DataSourceMetadata, SourceCapabilities
from .options import FileOptions
from .parse import ParsedFile, parse_file
from .reading import is_parquet


class FileDataSource(DataSource):
    """Files or a folder of files, read once on first use and served from memory."""

    _default_globs: tuple[str, ...] = ()

    def __init__(self, path: str | Path, **options: Any) -> None:
        self.path = expand_path(path)
        self.options = FileOptions.from_kwargs(options)
        if not self.path.exists():
            raise DataFormatError(f"{self.path}: no such file or folder")
        self._loaded: dict[str, pl.DataFrame] | None = None
        self._actions = empty("actions")
        self._frequencies: dict[str, Timeframe] = {}
        self._aggregated: dict[tuple[str, str], pl.DataFrame] = {}
        self._reports: dict[Path, QualityReport] = {}

    # -- loading ------------------------------------------------------------------------------
    def files(self) -> list[Path]:
        """The files this source reads, sorted by name."""
        if self.path.is_file():
            return [self.path]
        globs = (self.options.glob,) if self.options.glob else self._default_globs
        found = sorted({p for g in globs for p in self.path.glob(g) if p.is_file()})
        if not found:
            raise DataFormatError(f"{self.path}: no files matching {', '.join(globs)}")
        return found

    def _load(self) -> dict[str, pl.DataFrame]:
        if self._loaded is not None:
            return self._loaded
        by_kind: dict[str, list[pl.DataFrame]] = {}
        actions = []
        spans: dict[tuple[str, str], tuple[Path, Any, Any]] = {}
        for path in self.files():
            parsed = parse_file(path, self.options)
            self._reports[path] = parsed.report
            _check_overlap(spans, parsed)
            by_kind.setdefault(parsed.kind, []).append(parsed.data)
            actions.append(parsed.actions)
            if parsed.frequency is not None:
                for sym in parsed.data.get_column("symbol").unique().to_list():
                    known = self._frequencies.setdefault(sym, parsed.frequency)
                    if known != parsed.frequency:
                        raise DataFormatError(f"{path}: symbol {sym!r} has {parsed.frequency} bars here "
                                              f"but {known} bars in another file")
        self._loaded = {
            kind: sort_by_symbol_ts(pl.concat(frames, how="diagonal_relaxed"))
            for kind, frames in by_kind.items()
        }
        self._actions = conform(pl.concat(actions), "actions").unique(maintain_order=True)
        return self._loaded

    def file_reports(self) -> dict[Path, QualityReport]:
        """Quality report of each file as written: violations in file order, ``row``/``ref`` 0-based
        file rows, ``line``/``ref_line`` CSV file lines (header counted; null for Parquet),
        ``unsorted`` and exact-repeat ``duplicate`` entries included although loading repaired them."""
        self._load()
        return dict(self._reports)

    def symbols(self, kind: str = "bars") -> list[str]:
        """Symbols with data of ``kind`` in the files."""
        frame = self._load().get(kind)
        return [] if frame is None else frame.get_column("symbol").unique().sort().to_list()

    def frequency_of(self, symbol: str) -> Timeframe:
        """Native bar size of ``symbol`` in the files."""
        self._load()
        if symbol not in self._frequencies:
            raise SymbolNotFoundError(self._unknown([symbol], "bars"))
        return self._frequencies[symbol]

    def frame(self, kind: str) -> pl.DataFrame:
        """Every row of ``kind`` (canonical columns, then extras when ``keep_extra``)."""
        frame = self._load().get(kind)
        if frame is None:
            raise UnsupportedDataError(f"{self.path}: no {kind} in these files "
                                       f"(found: {', '.join(sorted(self._load())) or 'nothing'})")
        return frame

    # -- requests -----------------------------------------------------------------------------
    def _unknown(self, missing: list[str], kind: str) -> str:
        known = ", ".join(self.symbols(kind)) or "none"
        return f"symbol(s) {', '.join(missing)} not found in {self.path} ({kind}); known: {known}"

    def _select(self, kind: str, symbols: list[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        s, e = check_range(start, end)
        frame = self.frame(kind)
        missing = [sym for sym in symbols if sym not in set(self.symbols(kind))]
        if missing:
            raise SymbolNotFoundError(self._unknown(missing, kind))
        return _slice(frame, symbols, s, e)

    async def fetch(self, symbols: list[str], start: TimeLike, end: TimeLike,
                    frequency: str | Timeframe = "1d") -> pl.DataFrame:
        tf = Timeframe.parse(frequency)
        s, e = check_range(start, end)
        bars = self._select("bars", symbols, s, e)  # checks symbols
        parts = []
        for sym in symbols:
            native = self._frequencies[sym]
            if native == tf:
                parts.append(bars.filter(pl.col("symbol") == sym))
            else:
                coarser = _slice(self._coarser(sym, native, tf), [sym], s, e)
                limit = last_bar_end(get_calendar(self.options.session_calendar), tf, e)
                whole = pl.col("ts_end").cast(pl.Int64) <= limit if limit is not None else pl.lit(True)
                parts.append(coarser.filter(whole))
        if not parts:
            return empty("bars")
        return pl.concat(parts, how="diagonal_relaxed").sort(["symbol", "ts"], maintain_order=True)

    def _coarser(self, symbol: str, native: Timeframe, tf: Timeframe) -> pl.DataFrame:
        key = (symbol, str(tf))
        if key not in self._aggregated:
            self._aggregated[key] = aggregate_to(
                self.frame("bars").filter(pl.col("symbol") == symbol), native, tf,
                self.options.session_calendar, f"{self.path} symbol {symbol!r}")
        return self._aggregated[key]

    async def fetch_trades(self, symbols: list[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        return self._select("trades", symbols, start, end)

    async def fetch_quotes(self, symbols: list[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        return self._select("quotes", symbols, start, end)

    async def fetch_corporate_actions(self, symbols: list[str], start: TimeLike,
                                      end: TimeLike) -> pl.DataFrame:
        s, e = check_range(start, end)
        known = {sym for kind in self._load() for sym in self.symbols(kind)}
        missing = [sym for sym in symbols if sym not in known]
        if missing:
            raise SymbolNotFoundError(self._unknown(missing, "bars"))
        return _slice(self._actions, symbols, s, e)

    # -- description ----------------------------------------------------------------------------
    def get_metadata(self) -> DataSourceMetadata:
        loaded = self._load()
        freqs = sorted({str(f) for f in self._frequencies.values()})
        return DataSourceMetadata(
            name=self.name,
            source_type="local",
            description=f"{type(self).__name__} reading {self.path}",
            calendar=self.options.session_calendar,
            capabilities=SourceCapabilities(
                kinds=frozenset(loaded),
                frequencies=tuple(freqs),
                corporate_actions=self._actions.height > 0,
                adjusted=self.options.adjusted is True,
            ),
            details={"path": str(self.path), "files": len(self.files()),
                     "symbols": {k: self.symbols(k) for k in loaded},
                     "adjusted": self.options.adjusted},
        )

    def cache_identity(self) -> str:
        """Name, path, options and each file's size and modification time."""
        stamp = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in self.files()]
        digest = hashlib.sha256(f"{self.options.identity()}|{stamp}".encode()).hexdigest()[:16]
        return f"{self.name}:{self.path.resolve()}:{digest}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


def _check_overlap(spans: dict[tuple[str, str], tuple[Path, Any, Any]], parsed: ParsedFile) -> None:
    """Refuse two files giving the same symbol over overlapping times (ambiguous rows)."""
    ranges = parsed.data.group_by("symbol").agg(lo=pl.col("ts").min(), hi=pl.col("ts").max())
    for sym, lo, hi in ranges.iter_rows():
        key = (parsed.kind, sym)
        if key in spans:
            other, olo, ohi = spans[key]
            if lo <= ohi and olo <= hi:
                raise DataFormatError(f"{parsed.path}: {parsed.kind} of symbol {sym!r} overlap those in "
                                      f"{other} ({lo} .. {hi}); pass glob=... or symbol_pattern=...")
            spans[key] = (parsed.path, min(lo, olo), max(hi, ohi))
        else:
            spans[key] = (parsed.path, lo, hi)


def _slice(frame: pl.DataFrame, symbols: list[str], s: int, e: int) -> pl.DataFrame:
    start, end = pl.lit(s).cast(TS), pl.lit(e).cast(TS)
    return frame.filter(pl.col("symbol").is_in(symbols) & (pl.col("ts") >= start) & (pl.col("ts") < end))


def aggregate_to(bars: pl.DataFrame, native: Timeframe, tf: Timeframe, calendar: str,
                 what: str) -> pl.DataFrame:
    """Aggregate ``bars`` of size ``native`` to the coarser ``tf`` with ``backtape.aggregate``."""
    if tf.nanos < native.nanos:
        raise UnsupportedDataError(f"{what}: has {native} bars; cannot serve finer {tf} bars")
    from ...aggregation import aggregate  # imported on use: the aggregation kernels are heavy

    return aggregate(bars.select(SCHEMAS["bars"].names()), tf, calendar=calendar)


class CSVDataSource(FileDataSource):
    """CSV files (optionally gzip): ``CSVDataSource("data/daily", calendar="XNYS")``."""

    name = "csv"
    _default_globs = ("*.csv", "*.csv.gz", "*.txt", "*.txt.gz")


class ParquetDataSource(FileDataSource):
    """Parquet files: ``ParquetDataSource("bars.parquet")``; same options as CSV."""

    name = "parquet"
    _default_globs = ("*.parquet", "*.pq")


def source_for(path: str | Path, **options: Any) -> FileDataSource:
    """The source reading ``path``: Parquet for a Parquet file, else CSV (a folder reads CSV files)."""
    p = expand_path(path)
    if p.is_file() and is_parquet(p):
        return ParquetDataSource(p, **options)
    return CSVDataSource(p, **options)


def read_bars(path: str | Path, **options: Any) -> pl.DataFrame:
    """Every bar of a CSV/Parquet file or folder as canonical bars, validated in file order.

    Invalid rows raise ``DataValidationError`` naming file, line, symbol, timestamp and rule;
    ``on_invalid="drop"`` skips them and ``"warn"`` keeps them, each with a ``DataQualityWarning``.

    >>> read_bars("AAPL_1d.csv", calendar="XNYS")  # doctest: +SKIP
    """
    return source_for(path, **{**options, "kind": options.get("kind", "bars")}).frame("bars")


def read_ticks(path: str | Path, kind: Literal["trades", "quotes"], **options: Any) -> pl.DataFrame:
    """Every trade or quote of a file or folder as canonical rows (``keep_extra`` keeps vendor columns).

    Rows are validated in file order like ``read_bars`` (``on_invalid="raise"|"drop"|"warn"``).
    """
    if kind not in ("trades", "quotes"):
        raise ConfigError(f"read_ticks: kind must be 'trades' or 'quotes', got {kind!r}")
    return source_for(path, **{**options, "kind": kind}).frame(kind)
