"""The SQLite (WAL) coverage index: which ranges were fetched, and which Parquet files hold them.

The index is the manifest of the cache. A Parquet file is part of the cache only once a row in
``files`` names it, and coverage and file rows change together in one transaction, so a crash
between writing a file and committing leaves an orphan file that no reader looks at (``gc`` removes
it), never a covered range without its rows.

Every coverage and file row carries ``row_sum``, an xxh3 of its values, and opening the index checks
its pages (``PRAGMA integrity_check``) and every row's sum: SQLite keeps no checksums of its own, so two
flipped bytes could otherwise move a covered range silently. A damaged index raises
``CorruptCacheError``; ``maintenance.open_or_reset_index`` puts it in quarantine and starts afresh.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

from ..errors import CacheError, CorruptCacheError
from .coverage import Span

_SCHEMA = """
CREATE TABLE IF NOT EXISTS coverage (
    source TEXT NOT NULL, kind TEXT NOT NULL, symbol TEXT NOT NULL, frequency TEXT NOT NULL,
    adjustment TEXT NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
    fetched_at INTEGER NOT NULL, mutable_from INTEGER NOT NULL, row_sum TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS coverage_key ON coverage (source, kind, symbol, frequency, adjustment, end);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, source TEXT NOT NULL, kind TEXT NOT NULL, symbol TEXT NOT NULL,
    frequency TEXT NOT NULL, adjustment TEXT NOT NULL, partition TEXT NOT NULL,
    min_ts INTEGER NOT NULL, max_ts INTEGER NOT NULL, rows INTEGER NOT NULL, bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL, checksum TEXT NOT NULL DEFAULT '', row_sum TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS files_key ON files (source, kind, symbol, frequency, adjustment, partition);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (k, v) VALUES ('generation', 0);
"""

# an index with no files starts at the current partition layout; an older one has no row (layout 1)
_NEW_LAYOUT = """
INSERT OR IGNORE INTO meta (k, v) SELECT 'layout', 2 WHERE NOT EXISTS (SELECT 1 FROM files);
"""

_FILE_COLUMNS = ("path, source, kind, symbol, frequency, adjustment, partition, min_ts, max_ts, rows, "
                 "bytes, created_at, checksum")
_KEY_WHERE = "source = ? AND kind = ? AND symbol = ? AND frequency = ? AND adjustment = ?"
_SPAN_COLUMNS = "source, kind, symbol, frequency, adjustment, start, end, fetched_at, mutable_from"


@dataclass(frozen=True, slots=True, order=True)
class CacheKey:
    """What one coverage list is about: a source's rows of one kind, symbol, frequency, adjustment."""

    source: str
    kind: str
    symbol: str
    frequency: str
    adjustment: str

    def as_tuple(self) -> tuple[str, str, str, str, str]:
        return (self.source, self.kind, self.symbol, self.frequency, self.adjustment)


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One Parquet file of the cache: its relative path, partition and the ts range it holds."""

    path: str
    key: CacheKey
    partition: str
    min_ts: int
    max_ts: int
    rows: int
    bytes: int
    created_at: int
    checksum: str = ""
    """xxh3-64 of the file's bytes, hex ('' for files written before checksums)."""


@dataclass
class Change:
    """Everything one writer commits atomically: new spans per key, files added and removed."""

    spans: dict[CacheKey, list[Span]] = field(default_factory=dict)
    added: list[FileEntry] = field(default_factory=list)
    removed: list[FileEntry] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)


class CoverageIndex:
    """Thread-safe access to ``index.sqlite`` (one connection per thread, WAL, full fsync)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        con = self._con()
        try:
            con.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} {_NEW_LAYOUT} COMMIT;")
            # an index from before checksums: its files and rows have none ('')
            for table, column in (("files", "checksum"), ("files", "row_sum"), ("coverage", "row_sum")):
                if column not in _columns(con, table):
                    with self._tx() as tx:
                        if column not in _columns(tx, table):
                            tx.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")
            self._check()
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:  # bytes that are not UTF-8 text
            self.close()
            if isinstance(exc, sqlite3.DatabaseError) and not _damaged(exc):
                raise
            raise CorruptCacheError(f"cache index {self.path} is damaged ({exc})", []) from exc
        except CorruptCacheError:
            self.close()
            raise

    def _check(self) -> None:
        """Raise ``CorruptCacheError`` unless every page and every row's sum is intact."""
        con = self._con()
        pages = con.execute("PRAGMA integrity_check").fetchone()[0]
        if pages != "ok":
            raise CorruptCacheError(f"cache index {self.path} is damaged ({pages})", [])
        for table, columns in (("coverage", _SPAN_COLUMNS), ("files", _FILE_COLUMNS)):
            for row in con.execute(f"SELECT row_sum, {columns} FROM {table} WHERE row_sum != ''"):
                if row[0] != _row_sum(row[1:]):
                    raise CorruptCacheError(f"cache index {self.path} is damaged (a {table} row does "
                                            "not match its sum)", [])

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            try:
                con = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
                con.execute("PRAGMA journal_mode=WAL")
                con.execute("PRAGMA synchronous=FULL")
                con.execute("PRAGMA busy_timeout=60000")
            except UnicodeDecodeError as exc:  # a damaged header can garble SQLite's own answer
                raise CorruptCacheError(f"cache index {self.path} is damaged ({exc})", []) from exc
            except sqlite3.DatabaseError as exc:
                if _damaged(exc):
                    raise CorruptCacheError(f"cache index {self.path} is damaged ({exc})", []) from exc
                raise CacheError(f"cache index {self.path} is unusable: {exc}") from exc
            self._local.con = con
        return con

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def generation(self) -> int:
        """A counter bumped by every commit (from any process): cheap change detection."""
        return int(self._con().execute("SELECT v FROM meta WHERE k = 'generation'").fetchone()[0])

    def layout(self) -> int:
        """Partition layout the files follow (``cache.store.LAYOUT`` once migrated)."""
        row = self._con().execute("SELECT v FROM meta WHERE k = 'layout'").fetchone()
        return int(row[0]) if row else 1

    def set_layout(self, version: int) -> None:
        with self._tx() as con:
            con.execute("INSERT INTO meta (k, v) VALUES ('layout', ?) ON CONFLICT(k) DO UPDATE SET v = ?",
                        (version, version))

    def spans(self, key: CacheKey, start: int | None = None, end: int | None = None) -> list[Span]:
        """The coverage of ``key`` sorted by start; only spans meeting ``[start, end)`` if given."""
        sql = f"SELECT start, end, fetched_at, mutable_from FROM coverage WHERE {_KEY_WHERE}"
        args: list = list(key.as_tuple())
        if start is not None and end is not None:
            sql += " AND end > ? AND start < ?"
            args += [start, end]
        rows = self._con().execute(sql + " ORDER BY start", args).fetchall()
        return [Span(*r) for r in rows]

    def files(self, key: CacheKey, partitions: Iterable[str] | None = None) -> list[FileEntry]:
        """Files of ``key`` (optionally only in ``partitions``), oldest first."""
        sql = f"SELECT {_FILE_COLUMNS} FROM files WHERE {_KEY_WHERE}"
        args: list = list(key.as_tuple())
        if partitions is not None:
            parts = list(partitions)
            sql += f" AND partition IN ({','.join('?' * len(parts))})"
            args += parts
        rows = self._con().execute(sql + " ORDER BY created_at, path", args).fetchall()
        return [_entry(r) for r in rows]

    def all_files(self) -> list[FileEntry]:
        return [_entry(r) for r in self._con().execute(f"SELECT {_FILE_COLUMNS} FROM files ORDER BY path")]

    def cache_keys(self) -> list[CacheKey]:
        """Every key with coverage or files."""
        rows = self._con().execute(
            "SELECT source, kind, symbol, frequency, adjustment FROM coverage UNION "
            "SELECT source, kind, symbol, frequency, adjustment FROM files"
        ).fetchall()
        return sorted(CacheKey(*r) for r in rows)

    def commit(self, change: Change) -> int:
        """Apply ``change`` in one transaction; returns the generation (bumped if spans or files change)."""
        with self._tx() as con:
            for key, spans in change.spans.items():
                con.execute(f"DELETE FROM coverage WHERE {_KEY_WHERE}", key.as_tuple())
                rows = [(*key.as_tuple(), s.start, s.end, s.fetched_at, s.mutable_from) for s in spans]
                con.executemany(f"INSERT INTO coverage ({_SPAN_COLUMNS}, row_sum) VALUES "
                                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [(*r, _row_sum(r)) for r in rows])
            con.executemany("DELETE FROM files WHERE path = ?", [(f.path,) for f in change.removed])
            added = [(f.path, *f.key.as_tuple(), f.partition, f.min_ts, f.max_ts, f.rows, f.bytes,
                      f.created_at, f.checksum) for f in change.added]
            con.executemany(f"INSERT INTO files ({_FILE_COLUMNS}, row_sum) VALUES "
                            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [(*r, _row_sum(r)) for r in added])
            con.executemany(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                list(change.counters.items()),
            )
            if change.spans or change.added or change.removed:
                con.execute("UPDATE meta SET v = v + 1 WHERE k = 'generation'")
            return int(con.execute("SELECT v FROM meta WHERE k = 'generation'").fetchone()[0])

    def counters(self) -> dict[str, int]:
        return dict(self._con().execute("SELECT name, value FROM counters ORDER BY name").fetchall())

    def summary(self) -> list[dict]:
        """Per source and kind: keys, coverage spans, files, rows and bytes on disk."""
        con = self._con()
        out: dict[tuple[str, str], dict] = {}
        for source, kind, keys, spans, oldest, newest in con.execute(
            "SELECT source, kind, COUNT(DISTINCT symbol || '|' || frequency || '|' || adjustment), "
            "COUNT(*), MIN(fetched_at), MAX(fetched_at) FROM coverage GROUP BY source, kind"
        ):
            out[(source, kind)] = {"source": source, "kind": kind, "entries": keys, "spans": spans,
                                   "files": 0, "rows": 0, "bytes": 0, "oldest_fetch": oldest,
                                   "newest_fetch": newest}
        for source, kind, files, rows, size in con.execute(
            "SELECT source, kind, COUNT(*), SUM(rows), SUM(bytes) FROM files GROUP BY source, kind"
        ):
            row = out.setdefault((source, kind), {"source": source, "kind": kind, "entries": 0,
                                                  "spans": 0, "oldest_fetch": None, "newest_fetch": None})
            row.update(files=files, rows=int(rows or 0), bytes=int(size or 0))
        return [out[k] for k in sorted(out)]

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None


def _entry(row: tuple) -> FileEntry:
    path, source, kind, symbol, frequency, adjustment, partition, mn, mx, rows, size, created, check = row
    return FileEntry(path, CacheKey(source, kind, symbol, frequency, adjustment), partition,
                     mn, mx, rows, size, created, check)


def _columns(con: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in con.execute(f"PRAGMA table_info({table})")}


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    """Whether ``exc`` says the file's bytes are wrong (not a lock, a permission or a full disk)."""
    return not isinstance(exc, sqlite3.OperationalError) or "decode" in str(exc)


def _row_sum(values: tuple) -> str:
    """xxh3-64 (hex) of one row's values, as stored."""
    return xxhash.xxh3_64_hexdigest("\x1f".join(map(str, values)).encode())
