"""The memory tier: a thread-safe LRU of Polars frames bounded by their estimated size in bytes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import polars as pl

K = TypeVar("K", bound=Hashable)


class MemoryLRU(Generic[K]):
    """Least-recently-used frames whose total ``estimated_size()`` stays within ``capacity`` bytes.

    A frame larger than the whole capacity is not kept (it would evict everything for nothing).
    ``capacity=0`` disables the tier.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"memory_bytes must be >= 0, got {capacity}")
        self.capacity = capacity
        self._items: OrderedDict[K, tuple[pl.DataFrame, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        """Bytes currently held."""
        return self._size

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> pl.DataFrame | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: K, frame: pl.DataFrame) -> None:
        nbytes = max(int(frame.estimated_size()), 64)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= old[1]
            if nbytes > self.capacity:
                return
            self._items[key] = (frame, nbytes)
            self._size += nbytes
            while self._size > self.capacity:
                _, (_, evicted) = self._items.popitem(last=False)
                self._size -= evicted

    def invalidate(self, predicate: Callable[[K], bool]) -> int:
        """Drop every entry whose key satisfies ``predicate``; returns how many."""
        with self._lock:
            doomed = [k for k in self._items if predicate(k)]
            for k in doomed:
                self._size -= self._items.pop(k)[1]
            return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0
