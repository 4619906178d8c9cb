"""Per-key locks shared by threads (a process-wide lock table) and processes (lock files).

A writer holds the locks of every key it will fetch, taken in sorted order so that two writers
never wait on each other crosswise. Readers take no lock: they only read files the index lists.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

from filelock import FileLock

from .index import CacheKey

_TABLE: dict[tuple[str, str], threading.Lock] = {}
_TABLE_LOCK = threading.Lock()


def _thread_lock(folder: Path, name: str) -> threading.Lock:
    with _TABLE_LOCK:
        return _TABLE.setdefault((str(folder), name), threading.Lock())


def lock_name(key: CacheKey) -> str:
    """A short file name for ``key`` (a hash: keys may hold any characters)."""
    return hashlib.sha1("\x1f".join(key.as_tuple()).encode()).hexdigest()[:24]


class KeyLocks:
    """Exclusive locks on cache keys under ``folder``, usable from async code without blocking the loop."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    @asynccontextmanager
    async def hold(self, keys: Iterable[CacheKey]) -> AsyncIterator[None]:
        """Hold the locks of ``keys`` (deduplicated, in sorted order) for the ``async with`` body."""
        names = sorted({lock_name(k) for k in keys})
        taken: list[Callable[[], object]] = []
        try:
            for name in names:
                tlock = _thread_lock(self.folder, name)
                await _acquire(tlock.acquire, tlock.release)
                taken.append(tlock.release)
                flock = FileLock(self.folder / f"{name}.lock", thread_local=False)
                await _acquire(flock.acquire, flock.release)
                taken.append(flock.release)
            yield
        finally:
            for release in reversed(taken):
                release()


async def _acquire(acquire: Callable[[], object], release: Callable[[], object]) -> None:
    """Block in a worker thread until ``acquire()`` returns; if the waiting task is cancelled, the
    lock is released as soon as the thread gets it, so a cancelled request never keeps a lock."""
    fut = asyncio.ensure_future(asyncio.to_thread(acquire))
    try:
        await asyncio.shield(fut)
    except asyncio.CancelledError:
        fut.add_done_callback(lambda f: None if f.cancelled() or f.exception() else release())
        raise
