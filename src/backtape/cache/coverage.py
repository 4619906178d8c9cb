"""Interval arithmetic on half-open ``[start, end)`` nanosecond ranges: pure functions, no I/O.

The cache remembers *what was asked of upstream* as spans, including spans that returned no rows.
A :class:`Span` also says from where on its rows may still change (``mutable_from``): everything
before it was complete when fetched and is immutable; the tail ``[mutable_from, end)`` is the part a
freshness policy may declare stale.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

Interval = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Span:
    """A covered range ``[start, end)``, fetched at ``fetched_at``, immutable before ``mutable_from``.

    ``mutable_from`` is clamped to ``[start, end]``; ``mutable_from == end`` means fully immutable.
    """

    start: int
    end: int
    fetched_at: int
    mutable_from: int

    @property
    def immutable(self) -> bool:
        return self.mutable_from >= self.end

    @property
    def tail(self) -> Interval | None:
        """The part that may go stale, or None when the span is fully immutable."""
        return None if self.immutable else (self.mutable_from, self.end)


def make_span(start: int, end: int, fetched_at: int, final_before: int) -> Span:
    """A span whose rows with ``ts < final_before`` were complete at fetch time.

    >>> make_span(10, 20, 99, 15)
    Span(start=10, end=20, fetched_at=99, mutable_from=15)
    >>> make_span(10, 20, 99, 50).immutable
    True
    """
    return Span(start, end, fetched_at, min(max(final_before, start), end))


def normalize(intervals: Iterable[Interval]) -> list[Interval]:
    """Sort, drop empty intervals and merge overlapping or touching ones.

    >>> normalize([(5, 7), (1, 3), (3, 4), (6, 9), (10, 10)])
    [(1, 4), (5, 9)]
    """
    out: list[Interval] = []
    for s, e in sorted(i for i in intervals if i[0] < i[1]):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def subtract(request: Interval, covered: Iterable[Interval]) -> list[Interval]:
    """Parts of ``request`` not in ``covered``: the gaps to fetch, sorted and disjoint.

    Touching gaps come out as one interval (coalesced), because ``covered`` is normalized first.

    >>> subtract((0, 10), [(2, 4), (6, 7)])
    [(0, 2), (4, 6), (7, 10)]
    >>> subtract((0, 10), [(0, 10)])
    []
    """
    lo, hi = request
    gaps: list[Interval] = []
    cursor = lo
    for s, e in normalize(covered):
        if e <= cursor:
            continue
        if s >= hi:
            break
        if s > cursor:
            gaps.append((cursor, min(s, hi)))
        cursor = max(cursor, e)
        if cursor >= hi:
            break
    if cursor < hi:
        gaps.append((cursor, hi))
    return gaps


def intersect(a: Interval, b: Interval) -> Interval | None:
    """The overlap of two intervals, or None.

    >>> intersect((0, 5), (3, 9))
    (3, 5)
    >>> intersect((0, 3), (3, 9)) is None
    True
    """
    s, e = max(a[0], b[0]), min(a[1], b[1])
    return (s, e) if s < e else None


def overlapping(spans: Sequence[Span], start: int, end: int) -> Sequence[Span]:
    """The spans meeting ``[start, end)``, found by binary search (``spans`` sorted and disjoint).

    >>> overlapping([Span(0, 5, 1, 5), Span(5, 9, 1, 9), Span(12, 20, 1, 20)], 6, 12)
    [Span(start=5, end=9, fetched_at=1, mutable_from=9)]
    """
    lo = bisect.bisect_right(spans, start, key=lambda sp: sp.end)
    hi = bisect.bisect_left(spans, end, lo=lo, key=lambda sp: sp.start)
    return spans[lo:hi]


def covered_intervals(spans: Iterable[Span], is_stale: Callable[[Span], bool]) -> list[Interval]:
    """The usable part of ``spans``: whole spans, minus the tails that ``is_stale`` rejects.

    >>> spans = [Span(0, 10, 1, 10), Span(10, 20, 5, 15)]
    >>> covered_intervals(spans, lambda sp: True)
    [(0, 15)]
    >>> covered_intervals(spans, lambda sp: False)
    [(0, 20)]
    """
    out: list[Interval] = []
    for sp in spans:
        if sp.immutable or not is_stale(sp):
            out.append((sp.start, sp.end))
        elif sp.mutable_from > sp.start:
            out.append((sp.start, sp.mutable_from))
    return normalize(out)


def missing(request: Interval, spans: Sequence[Span], is_stale: Callable[[Span], bool]) -> list[Interval]:
    """Gaps of ``request`` that must be fetched: uncovered ranges plus stale tails.

    ``spans`` must be sorted and disjoint (as :func:`record` keeps them); only those meeting the
    request are looked at.

    >>> missing((0, 30), [Span(0, 10, 1, 10), Span(10, 20, 5, 15)], lambda sp: True)
    [(15, 30)]
    """
    return subtract(request, covered_intervals(overlapping(spans, *request), is_stale))


def cut(spans: Iterable[Span], hole: Interval) -> list[Span]:
    """Remove ``hole`` from every span (a span may split in two), keeping fetch facts.

    >>> cut([Span(0, 10, 1, 6)], (4, 8))
    [Span(start=0, end=4, fetched_at=1, mutable_from=4), Span(start=8, end=10, fetched_at=1, mutable_from=8)]
    """
    hs, he = hole
    out: list[Span] = []
    for sp in spans:
        if sp.end <= hs or sp.start >= he:
            out.append(sp)
            continue
        if sp.start < hs:
            out.append(Span(sp.start, hs, sp.fetched_at, min(sp.mutable_from, hs)))
        if sp.end > he:
            out.append(Span(he, sp.end, sp.fetched_at, max(sp.mutable_from, he)))
    return out


def record(spans: Iterable[Span], new: Span) -> list[Span]:
    """Spans after recording ``new``: older coverage under it is replaced, immutable neighbours merge.

    ``new`` is split into its immutable head and its mutable tail; touching immutable spans merge
    (their fetch times no longer matter; the latest is kept, so "older than" cleaning never drops
    a recent fetch). A tail stays separate: its own fetch time decides when it is stale.

    >>> record([Span(0, 10, 1, 10)], Span(10, 20, 2, 20))
    [Span(start=0, end=20, fetched_at=2, mutable_from=20)]
    >>> [(s.start, s.end, s.immutable) for s in record([Span(0, 10, 1, 10)], Span(10, 30, 3, 25))]
    [(0, 25, True), (25, 30, False)]
    """
    pieces = [new]
    if new.start < new.mutable_from < new.end:
        pieces = [Span(new.start, new.mutable_from, new.fetched_at, new.mutable_from),
                  Span(new.mutable_from, new.end, new.fetched_at, new.mutable_from)]
    merged: list[Span] = []
    for sp in sorted([*cut(spans, (new.start, new.end)), *pieces], key=lambda x: x.start):
        if merged and merged[-1].end == sp.start and merged[-1].immutable and sp.immutable:
            last = merged[-1]
            merged[-1] = Span(last.start, sp.end, max(last.fetched_at, sp.fetched_at), sp.end)
        else:
            merged.append(sp)
    return merged
