"""Streaming trades and quotes out of the portal: chunked fetches, k-way time merge, bounded memory.

``DataPortal.iter_ticks`` returns a ``TickStream``. Iterating it yields batches of
``backtape.ticks.MERGED_SCHEMA`` (every trade and quote column plus ``kind``) in time order, with the
merge's tie rule: a trade and a quote with the same ``ts`` come trade first, so a consumer applying
quotes as they arrive judges each trade only by quotes strictly before it.

Memory
------
Each kind is fetched from the portal's source one *chunk* of time at a time (a UTC day by default),
only when the merge needs it. A chunk with more than ``chunk_rows`` rows (a liquid symbol) makes the
next chunks shorter, down to one minute, so each fetch stays near that size. At any moment the
stream holds at most two chunks per kind (the one being cut into batches and the merge's pending
remainder) and yields batches of at most ``batch_rows`` rows. Ticks that ``load_data`` already
pre-loaded for the whole range are sliced from memory instead of fetched again.

Clock
-----
Nothing after the portal's clock is ever yielded (to order events the merge may fetch up to one
non-empty chunk per kind past the last event it yields, never past ``end``). By default the whole
range must already be known at the call: ``LookAheadError`` when its last instant (``end`` - 1 ns)
is after the clock; ``end=None`` means "up to and including the clock", like ``get_ticks``.

An engine that advances the clock while consuming passes ``follow_clock=True``: each pass over the
stream yields the events up to the clock *at that moment* and stops; after the engine moves the
clock, the next pass continues where the last one stopped (``stream.done`` tells whether ``end``
was reached):

>>> ticks = portal.iter_ticks("BTCUSDT", start, end, follow_clock=True)   # doctest: +SKIP
>>> for t in step_ends:
...     portal.set_clock(t)
...     for batch in ticks:
...         dispatch(batch)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from .._async import run_sync
from .._time import NS_PER_DAY, NS_PER_MINUTE, format_ns
from ..errors import ConfigError, LookAheadError
from ..schema import TickKind, empty

if TYPE_CHECKING:
    from ..ticks import TickClassifier
    from .portal import DataPortal

TICK_KINDS: tuple[str, ...] = ("trades", "quotes")
#: Default chunk: one UTC day per fetch.
DEFAULT_CHUNK = NS_PER_DAY


class TickStream:
    """Time-ordered batches of one symbol's trades and/or quotes over ``[start, end)`` (see module doc).

    Build it with ``DataPortal.iter_ticks``. ``chunks_fetched`` counts source calls, ``max_batch_rows``
    the largest batch yielded so far.
    """

    def __init__(self, portal: DataPortal, symbol: str, start: int, end: int, kinds: tuple[str, ...], *,
                 batch_rows: int, chunk: int, chunk_rows: int, follow_clock: bool) -> None:
        bad = [k for k in kinds if k not in TICK_KINDS]
        if bad or not kinds or len(set(kinds)) != len(kinds):
            raise ConfigError(f"iter_ticks kinds {kinds!r}: give 'trades' and/or 'quotes', each once")
        if batch_rows < 1 or chunk < NS_PER_MINUTE or chunk_rows < 1:
            raise ConfigError("iter_ticks: batch_rows and chunk_rows must be >= 1, chunk at least 1 minute")
        self.symbol = symbol
        self.start, self.end = start, end
        self.kinds = kinds
        self.batch_rows = batch_rows
        self.follow_clock = follow_clock
        self.chunks_fetched = 0
        self.max_batch_rows = 0
        self._portal = portal
        self._chunk = chunk
        self._chunk_rows = chunk_rows
        from ..ticks import iter_merged  # numba kernels: loaded when ticks are first streamed

        self._merged: Iterator[pl.DataFrame] = iter_merged(
            self._batches("trades") if "trades" in kinds else iter(()),
            self._batches("quotes") if "quotes" in kinds else iter(()))
        self._pending: pl.DataFrame | None = None
        self.done = False

    def __iter__(self) -> Iterator[pl.DataFrame]:
        """Yield the remaining batches known at the clock (all of them unless ``follow_clock``)."""
        while not self.done:
            batch = self._next_batch()
            if batch is None:
                return
            self.max_batch_rows = max(self.max_batch_rows, batch.height)
            yield batch

    def _next_batch(self) -> pl.DataFrame | None:
        """The next batch of at most ``batch_rows`` events at or before the clock; ``None`` to pause."""
        while self._pending is None or self._pending.height == 0:
            nxt = next(self._merged, None)
            if nxt is None:
                self.done = True
                return None
            self._pending = nxt
        pending = self._pending
        n = min(pending.height, self.batch_rows)
        clock = self._portal.clock_ns
        if clock is not None and self.follow_clock:
            ts = pending.get_column("ts").to_physical()
            if ts[n - 1] > clock:
                n = int(np.searchsorted(ts.to_numpy(), clock, "right"))
                if n == 0:
                    return None
        out = pending.slice(0, n)
        self._pending = pending.slice(n)
        return out

    def _batches(self, kind: TickKind) -> Iterator[pl.DataFrame]:
        """Time-ordered batches of ``kind``: fetch one chunk, cut it, release it, fetch the next."""
        lo, span = self.start, self._chunk
        while lo < self.end:
            hi = min(_chunk_end(lo, span), self.end)
            frame = self._load(kind, lo, hi)
            if frame.height > self._chunk_rows and span > NS_PER_MINUTE:
                # liquid symbol: aim the next chunks at ``chunk_rows`` rows
                scaled = (hi - lo) * self._chunk_rows // frame.height
                span = max(NS_PER_MINUTE, scaled // NS_PER_MINUTE * NS_PER_MINUTE)
            elif frame.height < self._chunk_rows // 4 and span < self._chunk:
                span = min(self._chunk, span * 2)
            for offset in range(0, frame.height, self.batch_rows):
                yield frame.slice(offset, self.batch_rows)
            del frame
            lo = hi

    def _load(self, kind: TickKind, lo: int, hi: int) -> pl.DataFrame:
        """``kind`` rows of the symbol with ``lo <= ts < hi``, time-ordered (stable for equal ``ts``)."""
        portal = self._portal
        store = portal._ticks.get(kind)
        plan = portal._plans.get(kind)
        loaded = portal._store is not None and self.symbol in portal._store
        if store is not None and plan is not None and loaded and plan.start <= lo and hi <= plan.end:
            frame = store.between(self.symbol, lo, hi - 1)
        else:
            self.chunks_fetched += 1
            frame = run_sync(portal.source.fetch_kind(kind, [self.symbol], lo, hi))
            if frame.height and frame.get_column("symbol").n_unique() > 1:
                frame = frame.filter(pl.col("symbol") == self.symbol)
        if frame.height and not frame.get_column("ts").is_sorted():
            frame = frame.sort("ts", maintain_order=True)
        return frame if frame.height else empty(kind)


def _chunk_end(lo: int, span: int) -> int:
    """End of the chunk starting at ``lo``: the next multiple of ``span`` (UTC days for 1 day)."""
    return (lo // span + 1) * span


def classified(stream: TickStream, classifier: TickClassifier | None = None) -> Iterator[pl.DataFrame]:
    """Classified trades (``side``, ``delta``, ``cum_delta``) of each batch of ``stream``."""
    from ..ticks import TickClassifier

    clf = classifier or TickClassifier()
    for batch in stream:
        out = clf.update(batch)
        if out.height:
            yield out


def resolve_end(now: int, end: int | None, follow_clock: bool) -> int:
    """``end`` of a tick range (``None`` = through the clock); ``LookAheadError`` if not yet known."""
    if end is None:
        return now + 1
    if not follow_clock and end - 1 > now:
        raise LookAheadError(
            f"iter_ticks up to {format_ns(end)} (exclusive) but the clock is {format_ns(now)}; pass "
            "end <= clock + 1 ns, end=None, or follow_clock=True to stream as the clock advances"
        )
    return end
