"""Interval arithmetic: worked examples and properties against a brute-force point model."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from backtape.cache.coverage import (
    Span,
    covered_intervals,
    cut,
    make_span,
    missing,
    normalize,
    record,
    subtract,
)

intervals = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)).map(lambda t: (min(t), max(t))),
                     max_size=8)


def points(ivs) -> set[int]:
    return {p for s, e in ivs for p in range(s, e)}


def test_normalize_merges_touching_and_overlapping() -> None:
    assert normalize([(5, 7), (1, 3), (3, 4), (6, 9), (10, 10)]) == [(1, 4), (5, 9)]
    assert normalize([]) == []


def test_subtract_examples() -> None:
    assert subtract((0, 10), [(2, 4), (6, 7)]) == [(0, 2), (4, 6), (7, 10)]
    assert subtract((0, 10), [(0, 10)]) == []
    assert subtract((3, 5), [(0, 3), (5, 9)]) == [(3, 5)]
    assert subtract((0, 10), [(-5, 2), (2, 4), (8, 20)]) == [(4, 8)]


@given(st.tuples(st.integers(0, 40), st.integers(1, 20)).map(lambda t: (t[0], t[0] + t[1])), intervals)
def test_subtract_matches_point_model(request, covered) -> None:
    gaps = subtract(request, covered)
    assert points(gaps) == points([request]) - points(covered)
    assert gaps == normalize(gaps)  # disjoint, sorted, touching gaps coalesced


def test_stale_tail_is_missing_but_immutable_head_is_not() -> None:
    spans = [make_span(0, 10, 1, 100), make_span(10, 20, 5, 15)]
    assert spans[1] == Span(10, 20, 5, 15)
    assert covered_intervals(spans, lambda sp: True) == [(0, 15)]
    assert missing((0, 30), spans, lambda sp: True) == [(15, 30)]
    assert missing((0, 30), spans, lambda sp: False) == [(20, 30)]


def test_cut_splits_and_keeps_fetch_facts() -> None:
    assert cut([Span(0, 10, 1, 6)], (4, 8)) == [Span(0, 4, 1, 4), Span(8, 10, 1, 8)]
    assert cut([Span(0, 10, 1, 10)], (20, 30)) == [Span(0, 10, 1, 10)]


def test_record_merges_immutable_neighbours_and_replaces_overlap() -> None:
    assert record([Span(0, 10, 1, 10)], Span(10, 20, 2, 20)) == [Span(0, 20, 2, 20)]
    got = record([Span(0, 10, 1, 10), Span(10, 20, 1, 12)], Span(12, 30, 3, 25))
    assert got == [Span(0, 25, 3, 25), Span(25, 30, 3, 25)]
    # a mutable tail is not merged with a later fetch: it keeps its own fetch time
    assert record([Span(0, 10, 1, 5)], Span(10, 20, 2, 20)) == [Span(0, 10, 1, 5), Span(10, 20, 2, 20)]


@given(st.lists(st.tuples(st.integers(0, 40), st.integers(1, 10), st.integers(0, 12)), max_size=10))
def test_record_covers_exactly_the_union(ops) -> None:
    spans: list[Span] = []
    union: list[tuple[int, int]] = []
    for t, (s, w, m) in enumerate(ops):
        spans = record(spans, make_span(s, s + w, t, s + m))
        union.append((s, s + w))
        assert points([(sp.start, sp.end) for sp in spans]) == points(union)
        assert all(a.end <= b.start for a, b in itertools.pairwise(spans))
        assert all(sp.start <= sp.mutable_from <= sp.end for sp in spans)
