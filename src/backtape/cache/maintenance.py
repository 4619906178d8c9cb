"""Cache upkeep without a source: on-disk summary and cleaning by age or total size.

Cleaning removes rows and their coverage together (one index transaction per key, under that key's
lock), so a cleaned range is simply fetched again on the next request.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .._async import run_sync
from .._time import now_ns
from ..errors import CacheError, CorruptCacheError, warn_once
from .coverage import cut
from .index import CacheKey, Change, CoverageIndex, FileEntry
from .locks import KeyLocks
from .store import LAYOUT, PartitionStore, empty_part, partition_unit, partitions


@dataclass
class CleanReport:
    """What ``clean_cache`` removed."""

    spans: int = 0
    files: int = 0
    rows: int = 0
    bytes: int = 0
    orphans: int = 0


def open_index(cache_dir: str | Path) -> CoverageIndex:
    """The index of an existing cache folder (raises ``CacheError`` if there is none, and
    ``CorruptCacheError`` naming the repair if it is damaged)."""
    path = Path(cache_dir) / "index.sqlite"
    if Path(cache_dir).exists() and not Path(cache_dir).is_dir():
        raise CacheError(f"cache folder {cache_dir} is a file, not a folder; give a folder path")
    if not path.exists():
        raise CacheError(f"no cache at {cache_dir}: {path} does not exist")
    try:
        return CoverageIndex(path)
    except CorruptCacheError as exc:
        raise CorruptCacheError(f"{exc}; run `backtape cache verify --repair` (its data is fetched again "
                                "when next asked for)", []) from exc


def open_or_reset_index(cache_dir: Path) -> tuple[CoverageIndex, str | None]:
    """The cache's index; a damaged one is moved to ``quarantine/`` with its WAL and replaced by an
    empty index, so every range is fetched again. Returns the index and, after a reset, what was wrong.
    """
    path = cache_dir / "index.sqlite"
    try:
        return CoverageIndex(path), None
    except CorruptCacheError as exc:
        folder = cache_dir / "quarantine"
        folder.mkdir(exist_ok=True)
        stamp = uuid.uuid4().hex[:8]
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.replace(cache_dir / f"index.sqlite{suffix}", folder / f"{stamp}-index.sqlite{suffix}")
        return CoverageIndex(path), f"{exc}: moved to {folder}, an empty index started"


def cache_summary(cache_dir: str | Path) -> tuple[list[dict], dict[str, int]]:
    """Per (source, kind): entries, spans, files, rows, bytes; plus the persisted counters."""
    index = open_index(cache_dir)
    try:
        return index.summary(), index.counters()
    finally:
        index.close()


def clean_cache(cache_dir: str | Path, *, older_than_ns: int | None = None, max_bytes: int | None = None,
                now: int | None = None) -> CleanReport:
    """Drop coverage fetched more than ``older_than_ns`` ago, then whole keys, least recently
    fetched first, until the files total at most ``max_bytes``; finally delete orphan files."""
    return run_sync(_clean(Path(cache_dir), older_than_ns, max_bytes, now_ns() if now is None else now))


async def _clean(root: Path, older_than_ns: int | None, max_bytes: int | None, now: int) -> CleanReport:
    index = open_index(root)
    store = PartitionStore(root)
    locks = KeyLocks(root / "locks")
    report = CleanReport()
    try:
        if older_than_ns is not None:
            cutoff = now - older_than_ns
            for key in index.cache_keys():
                async with locks.hold([key]):
                    for sp in [sp for sp in index.spans(key) if sp.fetched_at < cutoff]:
                        _remove_range(index, store, key, (sp.start, sp.end), report)
        if max_bytes is not None:
            files = index.all_files()
            total = sum(f.bytes for f in files)
            newest = {k: max((sp.fetched_at for sp in index.spans(k)), default=0) for k in index.cache_keys()}
            for key in sorted(newest, key=lambda k: newest[k]):
                if total <= max_bytes:
                    break
                async with locks.hold([key]):
                    freed = _remove_key(index, store, key, report)
                total -= freed
        report.orphans = store.gc({f.path for f in index.all_files()})
    finally:
        index.close()
    return report


def _remove_range(index: CoverageIndex, store: PartitionStore, key: CacheKey, gap: tuple[int, int],
                  report: CleanReport) -> None:
    existing = index.files(key, partitions(key.kind, *gap, key.frequency))
    try:
        added, removed = store.replace_range(key, gap, empty_part(key.kind), existing)
    except CorruptCacheError as exc:  # damaged files go to quarantine; the rest is cleaned as asked
        quarantine(index, store, exc.entries)
        existing = index.files(key, partitions(key.kind, *gap, key.frequency))
        added, removed = store.replace_range(key, gap, empty_part(key.kind), existing)
    index.commit(Change(spans={key: cut(index.spans(key), gap)}, added=added, removed=removed))
    store.delete(removed)
    report.spans += 1
    report.files += len(removed) - len(added)
    report.rows += sum(f.rows for f in removed) - sum(f.rows for f in added)
    report.bytes += sum(f.bytes for f in removed) - sum(f.bytes for f in added)


def _remove_key(index: CoverageIndex, store: PartitionStore, key: CacheKey, report: CleanReport) -> int:
    files = index.files(key)
    report.spans += len(index.spans(key))
    index.commit(Change(spans={key: []}, removed=files))
    store.delete(files)
    freed = sum(f.bytes for f in files)
    report.files += len(files)
    report.rows += sum(f.rows for f in files)
    report.bytes += freed
    return freed


async def migrate_layout(index: CoverageIndex, store: PartitionStore, locks: KeyLocks) -> int:
    """Rewrite every key whose files follow an older partition layout; returns how many keys.

    Each key is rewritten under its lock in one commit (new files, then the index), so a crash leaves
    either layout whole; unlisted new files are removed by ``gc``. Coverage does not change.
    """
    moved = 0
    for key in index.cache_keys():
        unit = partition_unit(key.kind, key.frequency)
        if all(f.partition.startswith(f"{unit}=") for f in index.files(key)):
            continue
        async with locks.hold([key]):
            files = index.files(key)
            if all(f.partition.startswith(f"{unit}=") for f in files):
                continue
            rows = store.read(key.kind, files)
            added = [store.write(key, part, frame)
                     for part, frame in store.split(key.kind, rows, key.frequency).items()]
            index.commit(Change(added=added, removed=files))
            store.delete(files)
            moved += 1
    index.set_layout(LAYOUT)
    return moved


def quarantine(index: CoverageIndex, store: PartitionStore, entries: list[FileEntry]) -> list[FileEntry]:
    """Move the still-listed, still-damaged ``entries`` to ``{root}/quarantine`` and drop their rows'
    coverage, in one commit, so the next request fetches that range again; returns those moved.

    The caller holds the keys' locks.
    """
    by_key: dict[CacheKey, list[FileEntry]] = {}
    for e in entries:
        by_key.setdefault(e.key, []).append(e)
    moved: list[FileEntry] = []
    spans = {}
    for key, bad in by_key.items():
        listed = {f.path: f for f in index.files(key)}
        damaged = store.verify([listed[e.path] for e in bad if e.path in listed])
        if not damaged:
            continue
        kept = index.spans(key)
        for e in damaged:
            kept = cut(kept, (e.min_ts, e.max_ts + 1))
        spans[key] = kept
        moved += damaged
    if not moved:
        return moved
    folder = store.root / "quarantine"
    folder.mkdir(exist_ok=True)
    for e in moved:
        with contextlib.suppress(OSError):  # a deleted file has nothing to keep
            os.replace(store.root / e.path, folder / f"{uuid.uuid4().hex[:8]}-{Path(e.path).name}")
    index.commit(Change(spans=spans, removed=moved))
    return moved


@dataclass
class VerifyReport:
    """What ``verify_cache`` found: files checked, the damaged ones, and whether they were repaired."""

    checked: int = 0
    damaged: list[FileEntry] = field(default_factory=list)
    repaired: bool = False


def verify_cache(cache_dir: str | Path, *, repair: bool = False) -> VerifyReport:
    """Check every file the index lists (checksum, or readability for files without one).

    With ``repair`` the damaged files are quarantined and their coverage dropped, so the next
    request fetches that data again.
    """
    return run_sync(_verify(Path(cache_dir), repair))


async def _verify(root: Path, repair: bool) -> VerifyReport:
    if repair and (root / "index.sqlite").exists():
        index, reset = open_or_reset_index(root)
        index.close()
        if reset is not None:
            warn_once(f"{reset}; the cached data is fetched again when next asked for")
    index = open_index(root)
    store = PartitionStore(root)
    try:
        files = index.all_files()
        report = VerifyReport(checked=len(files), damaged=store.verify(files))
        if repair and report.damaged:
            async with KeyLocks(root / "locks").hold({e.key for e in report.damaged}):
                quarantine(index, store, report.damaged)
            report.repaired = True
        return report
    finally:
        index.close()
