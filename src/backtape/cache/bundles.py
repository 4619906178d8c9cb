"""Bundles: a named, incremental Parquet snapshot of bars from any source, with quality metadata.

A bundle is a cache folder of its own (``{bundles_dir}/{name}/data``) plus ``metadata.parquet``.
Ingesting goes through a ``CachedDataSource`` on that folder, so running ``ingest_to_bundle`` again
with a longer range fetches only the new part. ``BundleDataSource(name)`` reads a bundle back as a
``DataSource`` and never asks the original source.

``metadata.parquet`` holds one row per symbol: the bundle's fields repeated, then the symbol's own
row count, missing sessions (against the bundle's calendar, over the symbol's ingested range) and
invalid OHLC rows found at ingestion (left out of the bundle, counted here).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl
from filelock import FileLock

from .._async import run_sync
from .._panics import quiet_panics
from .._paths import make_folder
from .._time import TimeLike, check_range, from_ns, now_ns, to_ns
from ..calendars import get_calendar
from ..errors import (
    ConfigError,
    CorruptBundleError,
    NoDataError,
    SymbolNotFoundError,
    UnsupportedDataError,
    warn_once,
)
from ..sources.base import DataSource, DataSourceMetadata, SourceCapabilities
from ..timeframes import Timeframe
from .coverage import normalize
from .freshness import NeverStalePolicy
from .index import CacheKey, CoverageIndex
from .source import CachedDataSource

SCHEMA_VERSION = "1"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_OHLC_RULES = ("high_below_low", "high_below_open_close", "low_above_open_close")


def default_bundles_dir() -> Path:
    """``~/.backtape/bundles``: bundles' folder when none is given (a ``Workspace`` passes its own)."""
    return Path.home() / ".backtape" / "bundles"


@dataclass(frozen=True)
class SymbolQuality:
    """Quality of one symbol in a bundle."""

    symbol: str
    rows: int
    expected_sessions: int
    missing_sessions: tuple[dt.date, ...]
    ohlc_violations: int


@dataclass(frozen=True)
class BundleMetadata:
    """What a bundle holds, where it came from and how complete it is.

    ``quality_score`` (0..1) is the share of expected sessions present, lowered by the share of
    rows rejected for impossible OHLC values; ``missing_data_pct`` is the share of expected
    sessions with no bar, in percent.
    """

    name: str
    symbols: tuple[str, ...]
    start: dt.datetime
    end: dt.datetime
    frequency: str
    source_type: str
    source_identity: str
    calendar: str
    adjustment: str
    ingestion_time: dt.datetime
    row_count: int
    size_bytes: int
    quality_score: float
    missing_data_pct: float
    schema_version: str = SCHEMA_VERSION
    per_symbol: tuple[SymbolQuality, ...] = field(default=(), repr=False)
    path: Path = field(default=Path(), repr=False, compare=False)

    @classmethod
    def load(cls, name: str, bundles_dir: str | Path | None = None) -> BundleMetadata:
        """Read ``{bundles_dir}/{name}/metadata.parquet``; raises ``NoDataError`` if there is no bundle."""
        folder = _folder(name, bundles_dir)
        path = folder / "metadata.parquet"
        if not path.exists():
            raise NoDataError(f"no bundle named {name!r} in {folder.parent} (no {path.name})")
        try:
            with quiet_panics():
                df = pl.read_parquet(path)
            if "checksum" in df.columns:  # files written before checksums have none
                stored = df.get_column("checksum").unique().to_list()
                df = df.drop("checksum")
                if stored != [metadata_digest(df)]:
                    raise ValueError("checksum mismatch: the file's bytes changed after it was written")
            first = df.row(0, named=True)
            per_symbol = tuple(
                SymbolQuality(r["symbol"], r["rows"], r["expected_sessions"], tuple(r["missing_sessions"]),
                              r["ohlc_violations"])
                for r in df.iter_rows(named=True)
            )
            return cls(first["name"], tuple(df.get_column("symbol").to_list()), first["start"],
                       first["end"], first["frequency"], first["source_type"], first["source_identity"],
                       first["calendar"], first["adjustment"], first["ingestion_time"], first["row_count"],
                       first["size_bytes"], first["quality_score"], first["missing_data_pct"],
                       first["schema_version"], per_symbol, folder)
        except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError, KeyError, IndexError,
                TypeError, ValueError) as exc:  # a damaged file can make the Parquet reader panic
            raise CorruptBundleError(
                f"bundle {name!r}: {path} is unreadable ({type(exc).__name__}: {str(exc)[:120]}); run the "
                f"same `backtape ingest` again to rebuild it from the bundle's data, or delete {folder}"
            ) from exc

    def save(self) -> None:
        """Write ``metadata.parquet`` atomically (temp file and rename)."""
        rows = [{"name": self.name, "start": self.start, "end": self.end, "frequency": self.frequency,
                 "source_type": self.source_type, "source_identity": self.source_identity,
                 "calendar": self.calendar, "adjustment": self.adjustment,
                 "ingestion_time": self.ingestion_time, "row_count": self.row_count,
                 "size_bytes": self.size_bytes, "quality_score": self.quality_score,
                 "missing_data_pct": self.missing_data_pct, "schema_version": self.schema_version,
                 "symbol": q.symbol, "rows": q.rows, "expected_sessions": q.expected_sessions,
                 "missing_sessions": list(q.missing_sessions), "ohlc_violations": q.ohlc_violations}
                for q in self.per_symbol]
        df = pl.DataFrame(rows, schema_overrides={"missing_sessions": pl.List(pl.Date),
                                                  "start": pl.Datetime("us", "UTC"),
                                                  "end": pl.Datetime("us", "UTC"),
                                                  "ingestion_time": pl.Datetime("us", "UTC")})
        with tempfile.NamedTemporaryFile(dir=self.path, prefix=".metadata.", suffix=".tmp",
                                         delete=False) as fh:  # a unique name for every writer
            tmp = Path(fh.name)
        try:
            df.write_parquet(tmp)  # the digest is of the values as read back (Parquet's own types)
            stored = pl.read_parquet(tmp)
            stored.with_columns(pl.lit(metadata_digest(stored)).alias("checksum")).write_parquet(tmp)
            os.replace(tmp, self.path / "metadata.parquet")
        finally:
            tmp.unlink(missing_ok=True)

    def quality(self, symbol: str) -> SymbolQuality:
        """Quality record of ``symbol``."""
        for q in self.per_symbol:
            if q.symbol == symbol:
                return q
        raise SymbolNotFoundError(f"bundle {self.name!r} has no symbol {symbol!r}")


def ingest_to_bundle(bundle_name: str, symbols: Iterable[str] | str, start: TimeLike, end: TimeLike,
                     frequency: str | Timeframe = "1d", *, source: DataSource,
                     bundles_dir: str | Path | None = None,
                     progress: Callable[[str, int, int], None] | None = None) -> BundleMetadata:
    """Fetch bars of ``symbols`` in ``[start, end)`` from ``source`` into the bundle ``bundle_name``.

    Incremental: what the bundle already holds is not fetched again. ``progress(symbol, done,
    total)`` is called after each symbol. Returns (and saves) the updated ``BundleMetadata``.

    >>> meta = ingest_to_bundle("demo", ["AAPL"], "2024-01-01", "2024-07-01", "1d",
    ...                         source=SyntheticDataSource(seed=1))              # doctest: +SKIP
    """
    return run_sync(_ingest(bundle_name, symbols, start, end, frequency, source, bundles_dir, progress))


async def _ingest(name: str, symbols: Iterable[str] | str, start: TimeLike, end: TimeLike,
                  frequency: str | Timeframe, source: DataSource, bundles_dir: str | Path | None,
                  progress: Callable[[str, int, int], None] | None) -> BundleMetadata:
    s, e = check_range(start, end)
    freq = str(Timeframe.parse(frequency))
    syms = [symbols] if isinstance(symbols, str) else list(symbols)
    syms = [x.strip() for sym in syms for x in sym.split(",") if x.strip()]
    if not syms:
        raise ConfigError(f"bundle {name!r}: no symbols to ingest")
    folder = _folder(name, bundles_dir)
    previous = _previous(name, bundles_dir, rebuild=True)
    held = ({(previous.frequency, previous.source_identity)} if previous is not None
            else {(k.frequency, k.source) for k in _stored_keys(folder)})
    for have_freq, have_source in held - {(freq, source.cache_identity())}:
        raise ConfigError(f"bundle {name!r} holds {have_freq} bars from {have_source!r}; cannot add "
                          f"{freq} bars from {source.cache_identity()!r} (use another bundle name)")
    make_folder(folder, "bundle folder")
    cached = CachedDataSource(source, cache_dir=folder / "data", on_invalid="drop", memory_bytes=0)
    for i, sym in enumerate(syms, 1):
        await cached.fetch([sym], s, e, freq)
        if progress is not None:
            progress(sym, i, len(syms))
    # the data is in the bundle's cache (safe for concurrent writers); the metadata is read, merged
    # and written under the bundle's lock, so concurrent ingests never drop each other's symbols
    with FileLock(folder / ".ingest.lock"):
        return _record(name, folder, s, e, freq, syms, source, cached.dropped, bundles_dir)


def _record(name: str, folder: Path, s: int, e: int, freq: str, syms: list[str], source: DataSource,
            dropped: pl.DataFrame, bundles_dir: str | Path | None) -> BundleMetadata:
    """Merge this ingest into the bundle's metadata (quality of every symbol) and save it."""
    previous = _previous(name, bundles_dir, rebuild=True)
    meta = source.get_metadata()
    old = {q.symbol: q for q in (previous.per_symbol if previous else ())}
    new_violations = _ohlc_violations(dropped)
    reader = CachedDataSource(source, cache_dir=folder / "data", freshness_policy=NeverStalePolicy(),
                              memory_bytes=0)
    # every symbol with data in the bundle is listed, even when the metadata was lost or unreadable
    stored = {k.symbol for k in _stored_keys(folder) if k.kind == "bars" and k.frequency == freq}
    all_symbols = sorted(set(old) | set(syms) | stored)
    spans = [sp for sym in stored - set(old) for sp in reader.coverage(sym, frequency=freq)]
    qualities = [_quality(reader, sym, freq, _calendar_name(meta.calendar),
                          (old[sym].ohlc_violations if sym in old else 0) + new_violations.get(sym, 0))
                 for sym in all_symbols]
    lo = min([s] + ([to_ns(previous.start)] if previous else []) + [sp.start for sp in spans])
    hi = max([e] + ([to_ns(previous.end)] if previous else []) + [sp.end for sp in spans])
    expected = sum(q.expected_sessions for q in qualities)
    missing = sum(len(q.missing_sessions) for q in qualities)
    rows = sum(q.rows for q in qualities)
    bad = sum(q.ohlc_violations for q in qualities)
    present_share = (expected - missing) / expected if expected else 0.0
    clean_share = rows / (rows + bad) if rows + bad else 1.0
    result = BundleMetadata(
        name=name, symbols=tuple(all_symbols), start=from_ns(lo), end=from_ns(hi), frequency=freq,
        source_type=meta.source_type, source_identity=source.cache_identity(),
        calendar=_calendar_name(meta.calendar),
        adjustment="adjusted" if meta.capabilities.adjusted else "raw", ingestion_time=from_ns(now_ns()),
        row_count=rows, size_bytes=_size(folder / "data"),
        quality_score=round(present_share * clean_share, 6),
        missing_data_pct=round(100.0 * missing / expected, 4) if expected else 100.0,
        per_symbol=tuple(qualities), path=folder,
    )
    result.save()
    return result


def _calendar_name(name: str) -> str:
    """Canonical calendar name (``NYSE`` -> ``XNYS``)."""
    return get_calendar(name).name


class _BundleOrigin(DataSource):
    """Stands in for a bundle's original source: same identity and calendar, never fetches."""

    name = "bundle"

    def __init__(self, meta: BundleMetadata) -> None:
        self.meta = meta

    async def fetch(self, symbols, start, end, frequency="1d") -> pl.DataFrame:
        raise NoDataError(f"bundle {self.meta.name!r} is read-only")

    def cache_identity(self) -> str:
        return self.meta.source_identity

    def get_metadata(self) -> DataSourceMetadata:
        caps = SourceCapabilities(frequencies=(self.meta.frequency,),
                                  adjusted=self.meta.adjustment == "adjusted")
        return DataSourceMetadata("bundle", "bundle", f"bundle {self.meta.name}", self.meta.calendar, caps,
                                  {"bundle": self.meta.name, "origin": self.meta.source_type})


class BundleDataSource(DataSource):
    """A bundle read as a ``DataSource``: bars of its frequency, only what was ingested.

    >>> bars = BundleDataSource("demo").fetch_sync("AAPL", "2024-01-01", "2024-02-01")  # doctest: +SKIP
    """

    name = "bundle"

    def __init__(self, name: str, bundles_dir: str | Path | None = None) -> None:
        self.metadata = BundleMetadata.load(name, bundles_dir)
        origin = _BundleOrigin(self.metadata)
        self._origin = origin
        self._cache = CachedDataSource(origin, cache_dir=self.metadata.path / "data",
                                       freshness_policy=NeverStalePolicy())

    async def fetch(self, symbols: list[str], start: TimeLike, end: TimeLike,
                    frequency: str | Timeframe = "1d") -> pl.DataFrame:
        """Bundle bars of ``symbols`` in ``[start, end)``; the frequency must be the bundle's."""
        freq = str(Timeframe.parse(frequency))
        if freq != self.metadata.frequency:
            raise UnsupportedDataError(
                f"bundle {self.metadata.name!r} holds {self.metadata.frequency} bars, not {freq}")
        wanted = [symbols] if isinstance(symbols, str) else list(symbols)
        unknown = sorted(set(wanted) - set(self.metadata.symbols))
        if unknown:
            raise SymbolNotFoundError(f"bundle {self.metadata.name!r} has no symbol(s) {unknown}")
        return self._cache.read_cached(wanted, start, end, frequency=freq)

    def cache_identity(self) -> str:
        return f"bundle:{self.metadata.name}"

    def get_metadata(self) -> DataSourceMetadata:
        meta = self._origin.get_metadata()
        return replace(meta, name=self.metadata.name,
                       details={**meta.details, "path": str(self.metadata.path),
                                "quality_score": self.metadata.quality_score})


def scan_bundles(bundles_dir: str | Path | None = None) -> tuple[list[BundleMetadata], dict[str, str]]:
    """Every bundle in ``bundles_dir`` by name, and the unreadable ones with what is wrong."""
    root = Path(bundles_dir) if bundles_dir is not None else default_bundles_dir()
    good: list[BundleMetadata] = []
    bad: dict[str, str] = {}
    if not root.is_dir():
        return good, bad
    for p in sorted(root.iterdir()):
        if not (p / "metadata.parquet").exists():
            continue
        try:
            good.append(BundleMetadata.load(p.name, root))
        except (CorruptBundleError, ConfigError) as exc:
            bad[p.name] = str(exc)
    return good, bad


def list_bundles(bundles_dir: str | Path | None = None) -> list[BundleMetadata]:
    """Metadata of every readable bundle in ``bundles_dir``, by name (one warning per unreadable one)."""
    good, bad = scan_bundles(bundles_dir)
    for message in bad.values():
        warn_once(message)
    return good


def _folder(name: str, bundles_dir: str | Path | None) -> Path:
    if not _NAME.fullmatch(name):
        raise ConfigError(f"invalid bundle name {name!r}: use letters, digits, '.', '_' and '-' "
                          "(starting with a letter or digit)")
    return (Path(bundles_dir) if bundles_dir is not None else default_bundles_dir()) / name


def _previous(name: str, bundles_dir: str | Path | None, *, rebuild: bool = False) -> BundleMetadata | None:
    """The bundle's metadata; ``None`` for a new bundle or, with ``rebuild``, an unreadable one (the
    ingest then rebuilds it from the data, which keeps its own checksums)."""
    try:
        return BundleMetadata.load(name, bundles_dir)
    except NoDataError:
        return None
    except CorruptBundleError:
        if not rebuild:
            raise
        warn_once(f"bundle {name!r}: {_folder(name, bundles_dir) / 'metadata.parquet'} is unreadable; "
                  "this ingest rebuilds it from the bundle's data (invalid OHLC rows counted before are "
                  "forgotten)")
        return None


def _stored_keys(folder: Path) -> list[CacheKey]:
    """Keys with data in the bundle's cache folder (none when it has no index yet)."""
    path = folder / "data" / "index.sqlite"
    if not path.exists():
        return []
    index = CoverageIndex(path)
    try:
        return index.cache_keys()
    finally:
        index.close()


def _ohlc_violations(dropped: pl.DataFrame) -> dict[str, int]:
    """Rows per symbol rejected for an impossible OHLC combination (a row counts once)."""
    bad = dropped.filter(pl.col("rule").is_in(_OHLC_RULES)).unique(["symbol", "ts"])
    return dict(bad.group_by("symbol").len().iter_rows())


def _quality(reader: CachedDataSource, symbol: str, freq: str, calendar: str,
             violations: int) -> SymbolQuality:
    """Rows and missing sessions of ``symbol`` over its ingested ranges."""
    cal = get_calendar(calendar)
    covered = normalize((sp.start, sp.end) for sp in reader.coverage(symbol, frequency=freq))
    rows = 0
    expected = 0
    missing: list[dt.date] = []
    for a, b in covered:
        bars = reader.read_cached([symbol], a, b, frequency=freq)
        rows += bars.height
        lo = int(np.searchsorted(cal.opens, a, side="left"))
        hi = int(np.searchsorted(cal.opens, b, side="left"))
        opens, closes, labels = cal.opens[lo:hi], cal.closes[lo:hi], cal.labels[lo:hi]
        expected += len(opens)
        ts = bars.get_column("ts").to_physical().to_numpy()
        ts_end = bars.get_column("ts_end").to_physical().to_numpy()
        j = np.searchsorted(ts, closes, side="left") - 1  # last bar starting before each close
        present = (j >= 0) & (ts_end[np.clip(j, 0, None)] > opens) if len(ts) else np.zeros(len(opens), bool)
        missing += [from_ns(int(x)).date() for x in labels[~present]]
    return SymbolQuality(symbol, rows, expected, tuple(missing), violations)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*.parquet"))


def metadata_digest(df: pl.DataFrame) -> str:
    """xxh3 of the metadata's values in a canonical text form (stable across library versions)."""
    import json

    import xxhash

    text = json.dumps(df.to_dicts(), default=str, sort_keys=True)
    return xxhash.xxh3_64_hexdigest(text.encode())
