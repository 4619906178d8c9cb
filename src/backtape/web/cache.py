"""What the dashboard builds once and hands out again: full reports and the plotly.js bundle.

A stored run or optimization never changes, so its report (~25 ms of CPU for a 3-year daily run)
is kept, keyed by its id and the time it was written (a deleted id may come back as another row); the least
recently used go first once the cache holds ``max_bytes``. plotly.js (4.8 MB) is read once and also
kept gzip-compressed, with an ``ETag``, so a browser fetches it once and then revalidates for nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path


class PageCache:
    """Rendered documents by key, least recently used dropped beyond ``max_bytes`` in all."""

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()  # the start-up warm-up fills it from its own thread

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            body = self._items.get(key)
            if body is not None:
                self._items.move_to_end(key)
            return body

    def put(self, key: Hashable, body: bytes) -> None:
        with self._lock:
            if key in self._items:
                self._size -= len(self._items.pop(key))
            self._items[key] = body
            self._size += len(body)
            while self._size > self.max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class StaticAsset:
    """A file held in memory, raw and gzip-compressed, with its content hash as ``ETag``."""

    raw: bytes
    gzipped: bytes
    etag: str

    @classmethod
    def read(cls, path: Path) -> StaticAsset:
        raw = path.read_bytes()
        return cls(raw, gzip.compress(raw, 6, mtime=0), f'"{hashlib.sha256(raw).hexdigest()[:32]}"')
