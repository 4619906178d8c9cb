"""Counters of a ``CachedDataSource``: how requests were answered and what upstream was asked."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class CacheStats:
    """Request outcomes and upstream traffic of one cached source (this process).

    * ``memory_hits``: answered from memory, no disk read and no upstream call
    * ``disk_hits``: answered from cache files, no upstream call
    * ``partial_hits``: part of the range came from the cache, the rest from upstream
    * ``misses``: nothing of the range was usable, all of it came from upstream
    """

    requests: int = 0
    memory_hits: int = 0
    disk_hits: int = 0
    partial_hits: int = 0
    misses: int = 0
    upstream_calls: int = 0
    rows_fetched: int = 0
    bytes_read: int = 0

    @property
    def hit_rate(self) -> float:
        """Share of requests answered without any upstream call (0 when there were none)."""
        return (self.memory_hits + self.disk_hits) / self.requests if self.requests else 0.0

    def as_dict(self) -> dict[str, float]:
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "hit_rate": self.hit_rate}

    def minus(self, other: CacheStats) -> CacheStats:
        """Counter differences ``self - other`` (what happened since ``other`` was copied)."""
        return CacheStats(*(getattr(self, f.name) - getattr(other, f.name) for f in fields(self)))

    def __str__(self) -> str:
        rows = [(f.name.replace("_", " "), f"{getattr(self, f.name):,}") for f in fields(self)]
        rows.append(("hit rate", f"{self.hit_rate:.1%}"))
        width = max(len(name) for name, _ in rows)
        vwidth = max(len(v) for _, v in rows)
        return "\n".join(f"{name:<{width}}  {value:>{vwidth}}" for name, value in rows)
