"""What a workspace's cache and bundles hold, per source, symbol and frequency, read without writing.

Coverage comes from the cache's own manifest (``index.sqlite``: spans asked of upstream, and the
Parquet files holding rows) opened read-only. For each key the page shows covered ranges, ranges
covered but holding no rows (asked for, upstream returned nothing), gaps between covered ranges and
tails that the source's freshness policy says would be fetched again now.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._time import NS_PER_DAY
from ..cache.bundles import BundleMetadata, list_bundles
from ..cache.coverage import Interval, Span, normalize, subtract
from ..cache.freshness import CacheFreshnessPolicy, FreshnessPolicyFactory, NeverStalePolicy
from ..errors import BacktapeError
from ..timeframes import Timeframe

#: a stretch without rows inside covered data counts as "empty" only beyond this many bars (and a week):
#: shorter ones are weekends, holidays and partition edges
EMPTY_MIN_BARS = 10


@dataclass
class KeyCoverage:
    """One (store, source, kind, symbol, frequency, adjustment) line of the coverage timeline."""

    store: str
    source: str
    kind: str
    symbol: str
    frequency: str
    adjustment: str
    covered: list[Interval] = field(default_factory=list)
    empty: list[Interval] = field(default_factory=list)
    gaps: list[Interval] = field(default_factory=list)
    stale: list[Interval] = field(default_factory=list)
    rows: int = 0
    files: int = 0
    bytes: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    newest_fetch: int | None = None

    @property
    def label(self) -> str:
        return f"{self.store} · {self.source.split(':', 1)[0]} · {self.symbol} · {self.frequency}"

    def timeline_row(self) -> dict[str, Any]:
        return {"label": self.label, "covered": self.covered, "empty": self.empty, "gaps": self.gaps,
                "stale": self.stale}


def _connect(path: Path) -> sqlite3.Connection:
    """``index.sqlite`` opened read-only (``mode=ro``): the dashboard never writes to a cache."""
    try:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
    except sqlite3.Error as exc:
        raise BacktapeError(f"cannot read the cache index {path}: {exc}") from exc


def _policy(source: str, frequency: str, frozen: bool) -> CacheFreshnessPolicy:
    if frozen:
        return NeverStalePolicy()
    try:
        return FreshnessPolicyFactory.create_policy(source.split(":", 1)[0], frequency)
    except BacktapeError:
        return NeverStalePolicy()


def _bar_ns(frequency: str) -> int:
    try:
        return Timeframe.parse(frequency).nanos
    except (BacktapeError, ValueError):
        return NS_PER_DAY


def index_coverage(index_path: Path, store: str, now: int, *, frozen: bool = False) -> list[KeyCoverage]:
    """Every key of the cache manifest at ``index_path`` with its coverage, gaps, empty ranges and
    stale tails at ``now``; ``frozen`` (bundles) means nothing goes stale. Missing index -> ``[]``."""
    if not index_path.exists():
        return []
    con = _connect(index_path)
    try:
        spans: dict[tuple[str, ...], list[Span]] = {}
        for *key, start, end, fetched, mutable in con.execute(
                "SELECT source, kind, symbol, frequency, adjustment, start, end, fetched_at, mutable_from "
                "FROM coverage ORDER BY start"):
            spans.setdefault(tuple(key), []).append(Span(start, end, fetched, mutable))
        hulls: dict[tuple[str, ...], list[tuple[int, int, int, int]]] = {}
        for *key, mn, mx, rows, size in con.execute(
                "SELECT source, kind, symbol, frequency, adjustment, min_ts, max_ts, rows, bytes FROM files"):
            hulls.setdefault(tuple(key), []).append((mn, mx, rows, size))
    except sqlite3.Error as exc:
        raise BacktapeError(f"cannot read the cache index {index_path}: {exc}") from exc
    finally:
        con.close()
    out = []
    for key in sorted(set(spans) | set(hulls)):
        out.append(_key_coverage(store, key, spans.get(key, []), hulls.get(key, []), now, frozen))
    return out


def _key_coverage(store: str, key: tuple[str, ...], spans: list[Span], files: list[tuple[int, int, int, int]],
                  now: int, frozen: bool) -> KeyCoverage:
    source, kind, symbol, frequency, adjustment = key
    kc = KeyCoverage(store, source, kind, symbol, frequency, adjustment)
    kc.covered = normalize((s.start, s.end) for s in spans)
    kc.gaps = [(a[1], b[0]) for a, b in zip(kc.covered, kc.covered[1:], strict=False)]
    tolerance = max(7 * NS_PER_DAY, EMPTY_MIN_BARS * _bar_ns(frequency))
    with_rows = normalize((mn - tolerance, mx + tolerance) for mn, mx, _, _ in files)
    kc.empty = [iv for c in kc.covered for iv in subtract(c, with_rows) if iv[1] - iv[0] > tolerance]
    policy = _policy(source, frequency, frozen)
    kc.stale = normalize(s.tail for s in spans if s.tail is not None and policy.is_stale(s.fetched_at, now))
    kc.rows = sum(f[2] for f in files)
    kc.files = len(files)
    kc.bytes = sum(f[3] for f in files)
    kc.first_ts = min((f[0] for f in files), default=None)
    kc.last_ts = max((f[1] for f in files), default=None)
    kc.newest_fetch = max((s.fetched_at for s in spans), default=None)
    return kc


def bundle_index(meta: BundleMetadata) -> Path:
    """Where a bundle keeps its cache manifest."""
    return meta.path / "data" / "index.sqlite"


@dataclass
class DataOverview:
    """The data page: coverage of the cache and of every bundle, and the bundles' quality."""

    keys: list[KeyCoverage]
    bundles: list[BundleMetadata]
    problems: list[str]


def data_overview(cache_dir: Path | None, bundles_dir: Path | None, now: int) -> DataOverview:
    """Read the workspace's cache and bundles; an unreadable part becomes a line in ``problems``."""
    keys: list[KeyCoverage] = []
    problems: list[str] = []
    if cache_dir is not None:
        try:
            keys += index_coverage(cache_dir / "index.sqlite", "cache", now)
        except BacktapeError as exc:
            problems.append(str(exc))
    bundles: list[BundleMetadata] = []
    if bundles_dir is not None:
        try:
            bundles = list_bundles(bundles_dir)
        except (BacktapeError, OSError) as exc:
            problems.append(f"cannot read bundles in {bundles_dir}: {exc}")
    for meta in bundles:
        try:
            keys += index_coverage(bundle_index(meta), f"bundle {meta.name}", now, frozen=True)
        except BacktapeError as exc:
            problems.append(str(exc))
    return DataOverview(keys, bundles, problems)
