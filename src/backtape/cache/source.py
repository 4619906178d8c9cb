"""``CachedDataSource``: any ``DataSource`` behind a range-aware memory + disk cache.

A request ``[start, end)`` is answered in four steps:

1. compute the missing intervals per symbol from the coverage (fetched ranges, including empty
   ones; stale tails count as missing);
2. if anything is missing, take the per-key locks, recompute (another thread or process may have
   filled it meanwhile) and fetch each missing interval once, symbols with the same gap in one
   upstream call, independent gaps concurrently up to ``max_concurrency``;
3. validate, write rows durably (temp file, fsync, rename), then record coverage in one SQLite
   transaction;
4. read exactly ``[start, end)`` from memory or Parquet: the same rows the upstream returns.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from .._async import run_sync
from .._paths import expand_path, make_folder
from .._time import TimeLike, check_range, now_ns
from ..calendars import TradingCalendar, get_calendar
from ..errors import BacktapeError, CorruptCacheError, warn_once
from ..instruments import Instrument
from ..schema import Kind, empty
from ..sources.base import DataSource, DataSourceMetadata
from ..timeframes import Timeframe
from ..validation import VIOLATION_SCHEMA
from ._validate import check_upstream
from .coverage import Interval, Span, covered_intervals, make_span, missing, record
from .freshness import CacheFreshnessPolicy, FreshnessPolicyFactory, immutable_before
from .index import CacheKey, Change, FileEntry
from .locks import KeyLocks
from .maintenance import open_or_reset_index, quarantine
from .memory import MemoryLRU
from .stats import CacheStats
from .store import LAYOUT, PartitionStore, partitions, to_file_frame

DEFAULT_MEMORY_BYTES = 256 * 1024 * 1024
_NO_FREQUENCY = {"trades": "tick", "quotes": "tick", "actions": "-"}


def default_cache_dir() -> Path:
    """``~/.backtape/cache``: the folder of a cache built without one (a ``Workspace`` passes its own)."""
    return Path.home() / ".backtape" / "cache"


class CachedDataSource(DataSource):
    """Wraps ``adapter`` so every byte comes from upstream at most once (until its tail goes stale).

    >>> cached = CachedDataSource(SyntheticDataSource(seed=1), cache_dir="cache")  # doctest: +SKIP
    >>> bars = cached.fetch_sync(["AAPL"], "2024-01-01", "2024-02-01", "1d")       # doctest: +SKIP
    >>> print(cached.stats)                                                          # doctest: +SKIP

    ``freshness_policy=None`` picks one per frequency with ``FreshnessPolicyFactory``.
    ``read_ahead_bars`` widens a miss at the end of a request forward by that many bars, or with
    ``"period"`` to the end of its calendar year (daily and weekly bars, corporate actions) or month
    (intraday bars; never ticks), so that a sliding window over history costs one upstream call per
    period; never past now, never into already covered data. An upstream answer that breaks a
    validation rule raises and is not cached; with ``on_invalid="drop"`` the offending rows are left
    out (and listed in ``dropped``) and the rest is cached. ``clock`` returns now in UTC ns (tests fix it).
    ``write_hook`` is called with ``"before_rename"`` and ``"before_commit"`` during each durable
    write (fault-injection tests use it).
    """

    def __init__(self, adapter: DataSource, cache_dir: str | Path | None = None,
                 freshness_policy: CacheFreshnessPolicy | None = None,
                 memory_bytes: int = DEFAULT_MEMORY_BYTES, max_concurrency: int = 4,
                 read_ahead_bars: int | Literal["period"] = 0, *,
                 on_invalid: Literal["raise", "drop"] = "raise",
                 clock: Callable[[], int] | None = None,
                 write_hook: Callable[[str], None] | None = None) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if on_invalid not in ("raise", "drop"):
            raise ValueError(f"on_invalid must be 'raise' or 'drop', got {on_invalid!r}")
        if read_ahead_bars != "period" and not (isinstance(read_ahead_bars, int) and read_ahead_bars >= 0):
            raise ValueError(f"read_ahead_bars must be a count >= 0 or 'period', got {read_ahead_bars!r}")
        self.adapter = adapter
        self.name = adapter.name
        self.remote = adapter.remote
        self.cache_dir = expand_path(cache_dir) if cache_dir is not None else default_cache_dir()
        make_folder(self.cache_dir, "cache folder")
        self.max_concurrency = max_concurrency
        self.read_ahead_bars = read_ahead_bars
        self.on_invalid = on_invalid
        #: rows dropped by validation (``on_invalid="drop"``): rule, symbol, ts, row, detail
        self.dropped = pl.DataFrame(schema=VIOLATION_SCHEMA)
        self.stats = CacheStats()
        self._policy = freshness_policy
        self._policies: dict[str, CacheFreshnessPolicy] = {}
        self._clock = clock or now_ns
        self._hook = write_hook or (lambda stage: None)
        self._index, reset = open_or_reset_index(self.cache_dir)
        if reset is not None:
            warn_once(f"{reset}; fetching the cached data again from {adapter.name}")
        self._store = PartitionStore(self.cache_dir, pause=self._hook)
        self._memory: MemoryLRU[tuple[CacheKey, str]] = MemoryLRU(memory_bytes)
        self._locks = KeyLocks(self.cache_dir / "locks")
        self._identity = adapter.cache_identity()
        meta = adapter.get_metadata()
        self._adjustment = "adjusted" if meta.capabilities.adjusted else "raw"
        self._calendar = _calendar_or_24_7(meta.calendar)
        self._spans: dict[CacheKey, list[Span]] = {}
        if self._index.layout() < LAYOUT:
            from .maintenance import migrate_layout

            run_sync(migrate_layout(self._index, self._store, self._locks))
        self._generation = self._index.generation()
        self._state_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._flushed = CacheStats()

    # -- DataSource contract -------------------------------------------------------------------

    async def fetch(self, symbols: list[str], start: TimeLike, end: TimeLike,
                    frequency: str | Timeframe = "1d") -> pl.DataFrame:
        """Canonical bars for ``symbols`` in ``[start, end)``, from cache where possible."""
        return await self._get("bars", symbols, start, end, str(Timeframe.parse(frequency)))

    async def fetch_trades(self, symbols: list[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        """Canonical trades in ``[start, end)``, from cache where possible."""
        return await self._get("trades", symbols, start, end, _NO_FREQUENCY["trades"])

    async def fetch_quotes(self, symbols: list[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        """Canonical quotes in ``[start, end)``, from cache where possible."""
        return await self._get("quotes", symbols, start, end, _NO_FREQUENCY["quotes"])

    async def fetch_corporate_actions(self, symbols: list[str], start: TimeLike,
                                      end: TimeLike) -> pl.DataFrame:
        """Splits and dividends with ex-date in ``[start, end)``, from cache where possible."""
        return await self._get("actions", symbols, start, end, _NO_FREQUENCY["actions"])

    def get_metadata(self) -> DataSourceMetadata:
        """The adapter's metadata, with the cache folder and counters in ``details``."""
        meta = self.adapter.get_metadata()
        details = {**meta.details, "cache_dir": str(self.cache_dir), "cache_identity": self._identity,
                   "cache_stats": self.stats.as_dict()}
        return dataclasses.replace(meta, details=details)

    def cache_identity(self) -> str:
        return self._identity

    def calendar_of(self, symbol: str) -> str:
        return self.adapter.calendar_of(symbol)

    def frequency_of(self, symbol: str) -> Timeframe | None:
        return self.adapter.frequency_of(symbol)

    def instruments(self, symbols: Sequence[str]) -> dict[str, Instrument]:
        """The adapter's rules; a provider's are asked once per symbol and kept with the cache."""
        if not self.remote:
            return self.adapter.instruments(symbols)
        from .instruments import InstrumentBook

        return InstrumentBook(self.cache_dir, self._identity).get(symbols, self.adapter.instruments)

    async def aclose(self) -> None:
        """Persist this process's counters and close the adapter."""
        self.flush_stats()
        await self.adapter.aclose()

    # -- maintenance ---------------------------------------------------------------------------

    async def refresh(self, symbol: str, start: TimeLike, end: TimeLike, *, kind: Kind = "bars",
                      frequency: str | Timeframe = "1d") -> pl.DataFrame:
        """Fetch ``[start, end)`` again and atomically replace its rows and coverage; returns the rows."""
        s, e = check_range(start, end)
        freq = str(Timeframe.parse(frequency)) if kind == "bars" else _NO_FREQUENCY[kind]
        key = self._key(kind, symbol, freq)
        for attempt in range(3):
            try:
                async with self._locks.hold([key]):
                    await self._fetch_gap(kind, freq, {symbol: key}, (s, e), asyncio.Semaphore(1))
                break
            except CorruptCacheError as exc:  # the partitions it rewrites were damaged
                if attempt == 2:
                    raise
                await self._quarantine(exc.entries)
        return await self._get(kind, [symbol], s, e, freq)

    def refresh_sync(self, symbol: str, start: TimeLike, end: TimeLike, *, kind: Kind = "bars",
                     frequency: str | Timeframe = "1d") -> pl.DataFrame:
        """Synchronous :meth:`refresh`."""
        return run_sync(self.refresh(symbol, start, end, kind=kind, frequency=frequency))

    def coverage(self, symbol: str, *, kind: Kind = "bars", frequency: str | Timeframe = "1d") -> list[Span]:
        """The recorded coverage spans of one symbol (for inspection and tests)."""
        freq = str(Timeframe.parse(frequency)) if kind == "bars" else _NO_FREQUENCY[kind]
        return self._index.spans(self._key(kind, symbol, freq))

    def read_cached(self, symbols: Iterable[str] | str, start: TimeLike, end: TimeLike, *,
                    kind: Kind = "bars", frequency: str | Timeframe = "1d") -> pl.DataFrame:
        """Only what is cached in ``[start, end)``, never asking upstream (bundles read this way)."""
        s, e = check_range(start, end)
        freq = str(Timeframe.parse(frequency)) if kind == "bars" else _NO_FREQUENCY[kind]
        self._sync_generation()
        keys = {sym: self._key(kind, sym, freq) for sym in _symbols(symbols)}
        return self._read(kind, keys, s, e)[0] if keys else empty(kind)

    def flush_stats(self) -> None:
        """Add this process's counters since the last flush to the persisted totals in the index."""
        delta = self.stats.minus(self._flushed)
        counters = {k: int(v) for k, v in dataclasses.asdict(delta).items() if v}
        if counters:
            self._index.commit(Change(counters=counters))
        self._flushed = copy.copy(self.stats)

    # -- request path --------------------------------------------------------------------------

    def _key(self, kind: Kind, symbol: str, frequency: str) -> CacheKey:
        return CacheKey(self._identity, kind, symbol, frequency, self._adjustment)

    def _policy_for(self, frequency: str) -> CacheFreshnessPolicy:
        if self._policy is not None:
            return self._policy
        policy = self._policies.get(frequency)
        if policy is None:
            policy = FreshnessPolicyFactory.create_policy(self.adapter, frequency, self._calendar)
            self._policies[frequency] = policy
        return policy

    async def _get(self, kind: Kind, symbols: Iterable[str] | str, start: TimeLike, end: TimeLike,
                   frequency: str) -> pl.DataFrame:
        """``_get_once``; damaged files are quarantined (their coverage dropped) and fetched again."""
        for attempt in range(3):
            try:
                return await self._get_once(kind, symbols, start, end, frequency)
            except CorruptCacheError as exc:
                if attempt == 2:
                    raise
                await self._quarantine(exc.entries)
        raise AssertionError("unreachable")

    async def _quarantine(self, entries: list[FileEntry]) -> None:
        keys = {e.key for e in entries}
        async with self._locks.hold(keys):
            moved = quarantine(self._index, self._store, entries)
        self._sync_generation()
        if moved:
            symbols = ", ".join(sorted({k.symbol for k in keys}))
            warn_once(f"{len(moved)} damaged cache file(s) of {symbols} moved to "
                      f"{self.cache_dir / 'quarantine'}; fetching that data again from {self.adapter.name}")

    async def _get_once(self, kind: Kind, symbols: Iterable[str] | str, start: TimeLike, end: TimeLike,
                        frequency: str) -> pl.DataFrame:
        s, e = check_range(start, end)
        syms = _symbols(symbols)
        if not syms:
            return empty(kind)
        keys = {sym: self._key(kind, sym, frequency) for sym in syms}
        now = self._clock()
        stale = self._stale_test(frequency, now)
        self._sync_generation()
        gaps = {sym: missing((s, e), self._coverage(k), stale) for sym, k in keys.items()}
        if any(gaps.values()):
            async with self._locks.hold(k for sym, k in keys.items() if gaps[sym]):
                self._sync_generation()
                fresh = {sym: self._index.spans(k) for sym, k in keys.items() if gaps[sym]}
                gaps = {sym: missing((s, e), fresh[sym], stale) if sym in fresh else [] for sym in syms}
                if any(gaps.values()):
                    await self._fill(kind, frequency, keys, gaps, {sym: fresh[sym] for sym in fresh},
                                     (s, e), now)
        frame, from_memory = self._read(kind, keys, s, e)
        self._count(gaps, (s, e), from_memory)
        return frame

    def _stale_test(self, frequency: str, now: int) -> Callable[[Span], bool]:
        policy = self._policy_for(frequency)
        return lambda sp: policy.is_stale(sp.fetched_at, now)

    def _coverage(self, key: CacheKey) -> list[Span]:
        spans = self._spans.get(key)
        if spans is None:
            spans = self._index.spans(key)
            with self._state_lock:
                self._spans[key] = spans
        return spans

    def _sync_generation(self) -> None:
        """Forget memory and coverage copies when another writer changed the index."""
        gen = self._index.generation()
        if gen != self._generation:
            with self._state_lock:
                self._spans.clear()
                self._memory.clear()
                self._generation = gen

    async def _fill(self, kind: Kind, frequency: str, keys: dict[str, CacheKey],
                    gaps: dict[str, list[Interval]], spans: dict[str, list[Span]],
                    request: Interval, now: int) -> None:
        """Fetch every gap once: symbols sharing a gap share the upstream call."""
        batches: dict[Interval, list[str]] = defaultdict(list)
        for sym, sym_gaps in gaps.items():
            for gap in sym_gaps:
                batches[self._widen(kind, frequency, gap, request, spans[sym], now)].append(sym)
        sem = asyncio.Semaphore(self.max_concurrency)
        results = await asyncio.gather(
            *(self._fetch_gap(kind, frequency, {s: keys[s] for s in syms}, gap, sem)
              for gap, syms in sorted(batches.items())),
            return_exceptions=True,
        )
        for res in results:
            if isinstance(res, BaseException):
                raise res

    def _widen(self, kind: Kind, frequency: str, gap: Interval, request: Interval, spans: list[Span],
               now: int) -> Interval:
        """Read-ahead: extend a gap that ends the request by N bars, not past now or covered data."""
        a, b = gap
        if not self.read_ahead_bars or b != request[1] or b >= now or kind not in ("bars", "actions"):
            return gap
        if self.read_ahead_bars == "period":
            daily = kind == "actions" or not Timeframe.parse(frequency).is_intraday
            target = _period_end(b, "Y" if daily else "M")
        elif kind != "bars":
            return gap
        elif (tf := Timeframe.parse(frequency)).unit == "d":
            i = int(np.searchsorted(self._calendar.opens, b, side="left"))
            j = min(i + self.read_ahead_bars, len(self._calendar.opens) - 1)
            target = int(self._calendar.opens[j]) if j > i else b
        else:
            target = b + self.read_ahead_bars * tf.nanos
        later = [s for s, _ in covered_intervals(spans, lambda sp: True) if s >= b]
        return (a, max(b, min([target, now, *later])))

    async def _fetch_gap(self, kind: Kind, frequency: str, keys: dict[str, CacheKey], gap: Interval,
                         sem: asyncio.Semaphore) -> None:
        symbols = sorted(keys)
        async with sem:
            fetched_at = self._clock()
            raw = await self.adapter.fetch_kind(kind, symbols, gap[0], gap[1], frequency)
        with self._state_lock:
            self.stats.upstream_calls += 1
            self.stats.rows_fetched += raw.height
        rows, dropped = check_upstream(kind, raw, symbols, gap, self._identity, self.on_invalid)
        if dropped.height:
            with self._state_lock:
                self.dropped = pl.concat([self.dropped, dropped])
        await asyncio.to_thread(self._write, kind, frequency, keys, gap, rows, fetched_at, raw.height)

    def _write(self, kind: Kind, frequency: str, keys: dict[str, CacheKey], gap: Interval,
               rows: pl.DataFrame, fetched_at: int, upstream_rows: int) -> None:
        """Durable write of one fetched gap: files first, then coverage + manifest in one commit."""
        final_before = immutable_before(self._calendar, None if kind != "bars" else frequency, fetched_at)
        span = make_span(gap[0], gap[1], fetched_at, final_before)
        by_symbol = {sym: frame for (sym,), frame in rows.partition_by("symbol", as_dict=True).items()}
        with self._write_lock:
            change = Change(counters={"upstream_calls": 1, "rows_fetched": upstream_rows})
            for sym, key in keys.items():
                frame = to_file_frame(kind, by_symbol.get(sym, rows.clear()))
                existing = self._index.files(key, partitions(kind, gap[0], gap[1], frequency))
                added, removed = self._store.replace_range(key, gap, frame, existing)
                change.spans[key] = record(self._index.spans(key), span)
                change.added += added
                change.removed += removed
            self._hook("before_commit")
            gen = self._index.commit(change)
            self._store.delete(change.removed)
            with self._state_lock:
                touched = set(keys.values())
                self._memory.invalidate(lambda k: k[0] in touched)
                for key in touched:
                    self._spans.pop(key, None)
                if gen == self._generation + 1:
                    self._generation = gen

    def _read(self, kind: Kind, keys: dict[str, CacheKey], s: int, e: int) -> tuple[pl.DataFrame, bool]:
        """Rows of ``[s, e)`` for every symbol (sorted by symbol, ts); True if all came from memory."""
        for attempt in range(3):
            try:
                return self._read_once(kind, keys, s, e)
            except (FileNotFoundError, CorruptCacheError) as exc:
                # a concurrent compaction may have replaced a file we had listed: that is a race
                # when the index changed since, damage when it did not
                changed = self._index.generation() != self._generation
                if attempt == 2 or (isinstance(exc, CorruptCacheError) and not changed):
                    raise
                self._sync_generation()
        raise AssertionError("unreachable")

    def _read_once(self, kind: Kind, keys: dict[str, CacheKey], s: int, e: int) -> tuple[pl.DataFrame, bool]:
        parts = partitions(kind, s, e, next(iter(keys.values())).frequency if keys else "")
        pieces: list[pl.DataFrame] = []
        all_memory = True
        for sym in sorted(keys):
            key = keys[sym]
            cached = {p: self._memory.get((key, p)) for p in parts}
            frames = {p: f for p, f in cached.items() if f is not None}
            cold = [p for p in parts if p not in frames]
            if cold:
                all_memory = False
                entries = self._index.files(key, cold)
                loaded = self._store.read_partitions(kind, entries, sym)
                blank = empty(kind)
                for p in cold:
                    frames[p] = loaded.get(p, blank)
                    self._memory.put((key, p), frames[p])
                with self._state_lock:
                    self.stats.bytes_read += sum(f.bytes for f in entries)
            pieces += [piece for p in parts if (piece := _slice(frames[p], s, e)).height]
        if not pieces:
            return empty(kind), all_memory
        return (pieces[0] if len(pieces) == 1 else pl.concat(pieces, rechunk=False)), all_memory

    def _count(self, gaps: dict[str, list[Interval]], request: Interval, from_memory: bool) -> None:
        width = request[1] - request[0]
        missing_ns = [sum(b - a for a, b in g) for g in gaps.values()]
        with self._state_lock:
            self.stats.requests += 1
            if not any(missing_ns):
                if from_memory:
                    self.stats.memory_hits += 1
                else:
                    self.stats.disk_hits += 1
            elif all(m == width for m in missing_ns):
                self.stats.misses += 1
            else:
                self.stats.partial_hits += 1


def _period_end(t: int, unit: str) -> int:
    """Start (UTC ns) of the calendar year (``"Y"``) or month (``"M"``) after the one holding ``t``."""
    period = np.datetime64(t, "ns").astype(f"datetime64[{unit}]") + 1
    return int(period.astype("datetime64[ns]").astype(np.int64))


def _slice(frame: pl.DataFrame, s: int, e: int) -> pl.DataFrame:
    """Rows of a ts-sorted frame with ``s <= ts < e`` (binary search on a zero-copy view)."""
    if frame.height == 0:
        return frame
    ts = frame.get_column("ts").to_physical().to_numpy()
    if ts[0] >= s and ts[-1] < e:
        return frame
    lo, hi = np.searchsorted(ts, [s, e], side="left")
    return frame.slice(int(lo), int(hi - lo))


def _symbols(symbols: Iterable[str] | str) -> list[str]:
    if isinstance(symbols, str):
        symbols = symbols.split(",")
    out: list[str] = []
    for sym in symbols:
        if not isinstance(sym, str) or not sym.strip():
            raise BacktapeError(f"invalid symbol {sym!r}: symbols are non-empty strings")
        if sym.strip() not in out:
            out.append(sym.strip())
    return out


def _calendar_or_24_7(name: str) -> TradingCalendar:
    try:
        return get_calendar(name)
    except BacktapeError:
        return get_calendar("24/7")
