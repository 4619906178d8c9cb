"""Parquet partitions of the cache: hive-style paths, atomic file writes, range replacement, compaction.

Layout (readable as is by Polars ``scan_parquet(hive_partitioning=True)`` and DuckDB)::

    {root}/{kind}/source={id}/symbol={sym}/frequency={f}/adjustment={a}/month=2024-01/part-<uuid>.parquet

Partitions suit the rows they hold: ``month=2024-01`` for bars under an hour, ``year=2024`` for
hour bars, ``decade=2020`` for daily and longer bars (a decade of daily bars is ~2,500 rows: 500
symbols x 20 years are ~1,500 files, not 120,000), ``day=2024-01-02`` for trades and quotes and
``year=2024`` for actions. Caches written with the older month-only bar layout are rewritten once
(``cache.maintenance.migrate_layout``).

Path values are percent-encoded by :func:`encode_component` (a long source identity is shortened
to its name and a hash by :func:`source_component`), so no symbol can name a parent folder,
a separator or a reserved device name, and no two symbols collide even on case-insensitive disks.
Files hold every column but ``symbol`` (it is in the path) sorted by ``ts``. A file becomes visible to
backtape only when the index lists it; temporary files start with ``.`` and end in ``.tmp`` so that
``**/*.parquet`` globs never see them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import polars as pl
import xxhash

from .._panics import quiet_panics
from .._time import NS_PER_DAY, NS_PER_HOUR, now_ns
from ..errors import CacheError, CorruptCacheError
from ..schema import SCHEMAS, Kind, conform
from ..timeframes import Timeframe
from .index import CacheKey, FileEntry

#: a partition holding more files than this is rewritten as one file on the next write
COMPACT_AT = 8
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_MAX_COMPONENT = 240
_PARTITION_UNIT = {"bars": "month", "trades": "day", "quotes": "day", "actions": "year"}
#: version of the partition layout; 2 = bar partitions sized by frequency
LAYOUT = 2
_STRFTIME = {"month": "%Y-%m", "day": "%Y-%m-%d", "year": "%Y"}
#: bars are read far more often than written and are small: stored without compression (parquet's
#: encodings still apply), which reads ~40% faster than lz4; ticks are large and stay compressed
_COMPRESSION: dict[str, Literal["uncompressed", "lz4"]] = {
    "bars": "uncompressed", "actions": "uncompressed", "trades": "lz4", "quotes": "lz4"}


def encode_component(value: str) -> str:
    """Percent-encode ``value`` for one path component: only ``A-Z 0-9 - _`` stay literal.

    Lower-case letters are encoded too, so ``aapl`` and ``AAPL`` never share a folder on
    case-insensitive file systems; dots are encoded, so ``..`` is just ``%2E%2E``.

    >>> encode_component("BTC/USD")
    'BTC%2FUSD'
    >>> encode_component("../x")
    '%2E%2E%2F%78'
    """
    if not value:
        raise CacheError("cannot store an empty symbol or source name in the cache")
    out = "".join(ch if ch in _SAFE else "".join(f"%{b:02X}" for b in ch.encode()) for ch in value)
    if len(out) > _MAX_COMPONENT:
        raise CacheError(f"name {value[:40]!r}... is too long to store in the cache ({len(value)} chars)")
    return out


def source_component(identity: str) -> str:
    """Folder value of a source identity: encoded, or when too long its name and a hash.

    Identities may list every option of a source; the index keeps the full text.

    >>> source_component("synthetic:v1:" + "x" * 300).startswith(encode_component("synthetic") + "-")
    True
    """
    try:
        return encode_component(identity)
    except CacheError:
        digest = hashlib.sha256(identity.encode()).hexdigest()[:24]
        return f"{encode_component(identity.split(':', 1)[0][:30])}-{digest.upper()}"


def decode_component(text: str) -> str:
    """Inverse of :func:`encode_component`."""
    raw = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "%":
            raw.append(int(text[i + 1:i + 3], 16))
            i += 3
        else:
            raw.extend(text[i].encode())
            i += 1
    return raw.decode()


def partition_unit(kind: str, frequency: str = "") -> str:
    """``month``, ``year`` or ``decade`` for bars by their frequency; ``day`` or ``year`` otherwise."""
    if kind != "bars" or not frequency:
        return _PARTITION_UNIT[kind]
    tf = Timeframe.parse(frequency)
    if tf.is_intraday:
        return "month" if tf.nanos < NS_PER_HOUR else "year"
    return "decade"


def partitions(kind: str, start: int, end: int, frequency: str = "") -> list[str]:
    """Partition names (``month=2024-01``...) overlapping ``[start, end)``, in order.

    >>> partitions("bars", 1704067200000000000, 1709251200000000000, "1min")  # 2024-01-01 .. 03-01
    ['month=2024-01', 'month=2024-02']
    >>> partitions("bars", 1704067200000000000, 1709251200000000000, "1d")
    ['decade=2020']
    """
    unit = partition_unit(kind, frequency)
    day = dt.date(1970, 1, 1) + dt.timedelta(days=start // NS_PER_DAY)
    last = dt.date(1970, 1, 1) + dt.timedelta(days=(end - 1) // NS_PER_DAY)
    out: list[str] = []
    if unit == "day":
        while day <= last:
            out.append(f"day={day:%Y-%m-%d}")
            day += dt.timedelta(days=1)
    elif unit == "month":
        y, m = day.year, day.month
        while (y, m) <= (last.year, last.month):
            out.append(f"month={y:04d}-{m:02d}")
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    elif unit == "decade":
        out = [f"decade={y}" for y in range(day.year // 10 * 10, last.year + 1, 10)]
    else:
        out = [f"year={y}" for y in range(day.year, last.year + 1)]
    return out


def file_schema(kind: str) -> pl.Schema:
    """Schema of a stored file: the canonical schema without ``symbol``."""
    return pl.Schema({k: v for k, v in SCHEMAS[kind].items() if k != "symbol"})


def empty_part(kind: str) -> pl.DataFrame:
    return pl.DataFrame(schema=file_schema(kind))


class PartitionStore:
    """Reads and writes the Parquet files under ``root``; never touches the index itself.

    ``pause`` is called with a stage name (``"before_rename"``) around the durable-write steps; the
    cache uses it for crash tests.
    """

    def __init__(self, root: str | Path, pause: Callable[[str], None] | None = None) -> None:
        self.root = Path(root)
        self._pause = pause or (lambda stage: None)

    def directory(self, key: CacheKey, partition: str) -> Path:
        return (self.root / key.kind / f"source={source_component(key.source)}"
                / f"symbol={encode_component(key.symbol)}" / f"frequency={encode_component(key.frequency)}"
                / f"adjustment={encode_component(key.adjustment)}" / partition)

    def split(self, kind: str, rows: pl.DataFrame, frequency: str = "") -> dict[str, pl.DataFrame]:
        """Rows (file schema, sorted by ts) grouped by partition name."""
        if rows.height == 0:
            return {}
        unit = partition_unit(kind, frequency)
        if unit == "decade":
            label = (pl.col("ts").dt.year() // 10 * 10).cast(pl.String)
        else:
            label = pl.col("ts").dt.strftime(_STRFTIME[unit])
        keyed = rows.with_columns(label.alias("__part"))
        return {f"{unit}={name}": frame.drop("__part")
                for (name,), frame in keyed.partition_by("__part", as_dict=True, maintain_order=True).items()}

    def write(self, key: CacheKey, partition: str, frame: pl.DataFrame) -> FileEntry:
        """Write ``frame`` durably as a new part file: temp file, fsync, rename, fsync the folder."""
        folder = self.directory(key, partition)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{uuid.uuid4().hex}.parquet"
        tmp = folder / f".{name}.tmp"
        try:
            frame.write_parquet(tmp, compression=_COMPRESSION[key.kind], statistics=True)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
                fh.seek(0)
                checksum = file_checksum(fh.read())
            self._pause("before_rename")
            os.replace(tmp, folder / name)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise CacheError(f"cannot write cache file in {folder}: {exc}") from exc
        _fsync_dir(folder)
        ts = frame.get_column("ts").dt.epoch("ns").to_numpy()
        rel = (folder / name).relative_to(self.root).as_posix()
        return FileEntry(rel, key, partition, int(ts.min()), int(ts.max()), frame.height,
                         (folder / name).stat().st_size, now_ns(), checksum)

    def verify(self, entries: list[FileEntry]) -> list[FileEntry]:
        """The ``entries`` whose file is missing, unreadable or fails its checksum (files written
        before checksums are checked by reading them)."""
        bad = []
        for e in entries:
            path = self.root / e.path
            try:
                data = path.read_bytes()
                if e.checksum:
                    ok = file_checksum(data) == e.checksum
                else:
                    with quiet_panics():
                        ok = pl.read_parquet(path).height == e.rows
            except (OSError, pl.exceptions.PolarsError, pl.exceptions.PanicException):
                ok = False
            if not ok:
                bad.append(e)
        return bad

    def _checked(self, entries: list[FileEntry]) -> list[Path]:
        """Paths of ``entries`` after verifying them; raises ``CorruptCacheError`` naming the bad ones."""
        bad = self.verify(entries)
        if bad:
            names = ", ".join(e.path for e in bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            raise CorruptCacheError(f"{len(bad)} cache file(s) under {self.root} are damaged ({names}); "
                                    f"run `backtape cache verify --repair`", bad)
        return [self.root / e.path for e in entries]

    def read(self, kind: str, entries: list[FileEntry]) -> pl.DataFrame:
        """The rows of ``entries`` (all of one key), concatenated and sorted by ``ts`` (stable)."""
        if not entries:
            return empty_part(kind)
        paths = self._checked(entries)
        if len(entries) == 1:
            return pl.read_parquet(paths[0])
        # files that do not overlap in time, read in time order, are already sorted (the usual case:
        # one file per month partition); overlapping appends keep their order and get a stable sort
        ordered = sorted(entries, key=lambda e: (e.min_ts, e.max_ts))
        if all(a.max_ts < b.min_ts for a, b in itertools.pairwise(ordered)):
            return pl.read_parquet([self.root / e.path for e in ordered], schema=file_schema(kind))
        frame = pl.read_parquet([self.root / e.path for e in entries], schema=file_schema(kind))
        return frame.sort("ts", maintain_order=True)

    def read_partitions(self, kind: str, entries: list[FileEntry], symbol: str) -> dict[str, pl.DataFrame]:
        """Canonical frames (with ``symbol``) per partition of ``entries``, read in one parallel scan."""
        if not entries:
            return {}
        frame = pl.read_parquet(self._checked(entries), schema=file_schema(kind))
        expected = sum(e.rows for e in entries)
        if frame.height != expected:
            raise CacheError(f"cache files of {symbol!r} under {self.root} hold {frame.height} rows where "
                             f"the index lists {expected}: the folder was changed by hand; delete it")
        frame = frame.with_columns(pl.lit(symbol, pl.String).alias("symbol")).select(list(SCHEMAS[kind]))
        pieces: dict[str, list[pl.DataFrame]] = {}
        offset = 0
        for e in entries:  # read_parquet keeps file order: each file is a contiguous slice
            pieces.setdefault(e.partition, []).append(frame.slice(offset, e.rows))
            offset += e.rows
        return {part: group[0] if len(group) == 1 else pl.concat(group).sort("ts", maintain_order=True)
                for part, group in pieces.items()}

    def replace_range(self, key: CacheKey, gap: tuple[int, int], rows: pl.DataFrame,
                      existing: list[FileEntry]) -> tuple[list[FileEntry], list[FileEntry]]:
        """Write files so that the rows of ``key`` in ``gap`` become ``rows``; returns (added, removed).

        ``rows`` (file schema, all inside ``gap``) go to new files; partitions whose files overlap
        ``gap`` are rewritten without their old rows there; partitions with many small files are
        compacted into one. ``existing`` must list every file of the partitions involved.
        """
        a, b = gap
        new_parts = self.split(key.kind, rows, key.frequency)
        overlapping = {f.path for f in existing if f.max_ts >= a and f.min_ts < b}
        involved = set(new_parts) | {f.partition for f in existing if f.path in overlapping}
        added: list[FileEntry] = []
        removed: list[FileEntry] = []
        for part in sorted(involved):
            in_part = [f for f in existing if f.partition == part]
            new = new_parts.get(part, empty_part(key.kind))
            compact = len(in_part) + 1 > COMPACT_AT
            rewrite = in_part if compact else [f for f in in_part if f.path in overlapping]
            if rewrite:
                old = self.read(key.kind, rewrite).filter((pl.col("ts").dt.epoch("ns") < a)
                                                          | (pl.col("ts").dt.epoch("ns") >= b))
                new = pl.concat([old, new]).sort("ts", maintain_order=True)
                removed += rewrite
            if new.height:
                added.append(self.write(key, part, new))
        return added, removed

    def delete(self, entries: list[FileEntry]) -> None:
        """Remove files that the index no longer lists (after the commit that dropped them)."""
        for e in entries:
            (self.root / e.path).unlink(missing_ok=True)

    def gc(self, listed: set[str], *, min_age_s: float = 3600.0) -> int:
        """Delete unlisted part files and temp files older than ``min_age_s``; returns how many.

        Younger unlisted files may belong to a writer between rename and commit, so they stay.
        """
        cutoff = time.time() - min_age_s
        removed = 0
        for kind in _PARTITION_UNIT:
            base = self.root / kind
            if not base.is_dir():
                continue
            for path in base.rglob("*"):
                if not path.is_file():
                    continue
                rel = path.relative_to(self.root).as_posix()
                is_tmp = path.name.startswith(".") and path.name.endswith(".tmp")
                if (is_tmp or (path.suffix == ".parquet" and rel not in listed)) \
                        and path.stat().st_mtime < cutoff:
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed


def file_checksum(data: bytes) -> str:
    """xxh3-64 of a file's bytes as hex: fast enough to check every file on every disk read."""
    return xxhash.xxh3_64_hexdigest(data)


def to_file_frame(kind: Kind, df: pl.DataFrame) -> pl.DataFrame:
    """Canonical rows of one symbol as stored: canonical dtypes, no ``symbol`` column."""
    return conform(df, kind).drop("symbol")


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
