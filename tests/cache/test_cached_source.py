"""CachedDataSource answers exactly what the upstream answers, fetching each range at most once."""

from __future__ import annotations

import itertools
import tempfile

import polars as pl
import pytest
from _upstream import CountingSource
from conftest import LATE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtape._time import NS_PER_DAY, to_ns
from backtape.cache import CachedDataSource, NeverStalePolicy
from backtape.errors import DataValidationError

JAN1 = to_ns("2024-01-01")


def cached(up: CountingSource, path, **kw) -> CachedDataSource:
    kw.setdefault("freshness_policy", NeverStalePolicy())
    return CachedDataSource(up, cache_dir=path, clock=lambda: LATE, **kw)


def assert_no_refetch(up: CountingSource) -> None:
    """No (symbol, ts) row returned twice and no (symbol, frequency) range asked twice."""
    rows = pl.concat([r.select("symbol", "ts", "frequency") for r in up.returned]) if up.returned else None
    if rows is not None and rows.height:
        assert rows.filter(pl.col("frequency") != "tick").is_duplicated().sum() == 0
    asked: dict[str, list[tuple[int, int]]] = {}
    for kind, syms, s, e in up.calls:
        for sym in syms:
            asked.setdefault(f"{kind}/{sym}", []).append((s, e))
    for ivs in asked.values():
        ivs.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(ivs)), ivs


def test_sliding_window_fetches_only_new_days(tmp_path) -> None:
    up = CountingSource()
    c = cached(up, tmp_path)
    for day in range(10):
        end = JAN1 + (31 + day) * NS_PER_DAY
        got = c.fetch_sync(["AAPL"], end - 30 * NS_PER_DAY, end, "1d")
        assert got.equals(up.bars(["AAPL"], end - 30 * NS_PER_DAY, end, "1d"))
    assert len(up.calls) == 10  # the first window, then one new day per step
    assert all(e - s == NS_PER_DAY for _, _, s, e in up.calls[1:])
    assert_no_refetch(up)
    assert c.stats.requests == 10 and c.stats.misses == 1 and c.stats.partial_hits == 9


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(1, 25),
                          st.sets(st.sampled_from(["A", "B", "E"]), min_size=1),
                          st.sampled_from(["1d", "1h"])), min_size=1, max_size=6))
def test_random_request_sequences(requests) -> None:
    up = CountingSource(empty_symbols=frozenset({"E"}))
    with tempfile.TemporaryDirectory() as tmp:
        c = cached(up, tmp, memory_bytes=1_000_000)
        for offset, width, symbols, freq in requests:
            s, e = JAN1 + offset * NS_PER_DAY, JAN1 + (offset + width) * NS_PER_DAY
            got = c.fetch_sync(sorted(symbols), s, e, freq)
            assert got.equals(up.bars(sorted(symbols), s, e, freq))
        calls = len(up.calls)
        for offset, width, symbols, freq in requests:  # everything again: no upstream call
            s, e = JAN1 + offset * NS_PER_DAY, JAN1 + (offset + width) * NS_PER_DAY
            assert c.fetch_sync(sorted(symbols), s, e, freq).equals(up.bars(sorted(symbols), s, e, freq))
        assert len(up.calls) == calls
    assert_no_refetch(up)


def test_empty_ranges_are_covered(tmp_path) -> None:
    up = CountingSource()
    c = cached(up, tmp_path)
    sat, mon = to_ns("2024-01-06"), to_ns("2024-01-08")
    assert c.fetch_sync(["AAPL"], sat, mon, "1d").height == 0
    assert c.fetch_sync(["AAPL"], sat, mon, "1d").height == 0
    assert len(up.calls) == 1


def test_rows_beyond_the_asked_range_are_clipped_and_not_covered(tmp_path) -> None:
    up = CountingSource()
    up.overshoot_ns = 5 * NS_PER_DAY
    c = cached(up, tmp_path)
    s, m, e = to_ns("2024-01-10"), to_ns("2024-01-20"), to_ns("2024-01-25")
    assert c.fetch_sync(["AAPL"], s, m, "1d").equals(up.bars(["AAPL"], s, m, "1d"))
    assert [(sp.start, sp.end) for sp in c.coverage("AAPL")] == [(s, m)]
    assert c.fetch_sync(["AAPL"], s, e, "1d").equals(up.bars(["AAPL"], s, e, "1d"))
    assert up.calls[-1][2:] == (m, e)


def test_invalid_upstream_data_is_never_cached(tmp_path) -> None:
    up = CountingSource()
    up.invalid = True
    c = cached(up, tmp_path)
    with pytest.raises(DataValidationError, match="high_below_low"):
        c.fetch_sync(["AAPL"], "2024-01-01", "2024-02-01", "1d")
    assert c.coverage("AAPL") == []
    assert not list(tmp_path.rglob("*.parquet"))
    up.invalid = False
    assert c.fetch_sync(["AAPL"], "2024-01-01", "2024-02-01", "1d").height == 21
    assert len(up.calls) == 2


def test_failed_fetch_leaves_nothing_covered(tmp_path) -> None:
    up = CountingSource()
    c = cached(up, tmp_path)
    c.fetch_sync(["AAPL"], "2024-01-01", "2024-01-15", "1d")
    up.fail = True
    with pytest.raises(ConnectionError):
        c.fetch_sync(["AAPL"], "2024-01-01", "2024-02-01", "1d")
    assert [(sp.start, sp.end) for sp in c.coverage("AAPL")] == [(JAN1, to_ns("2024-01-15"))]
    up.fail = False
    assert c.fetch_sync(["AAPL"], "2024-01-01", "2024-02-01", "1d").height == 21


def test_symbols_sharing_a_gap_share_one_call(tmp_path) -> None:
    up = CountingSource()
    c = cached(up, tmp_path)
    feb, mar = to_ns("2024-02-01"), to_ns("2024-03-01")
    c.fetch_sync(["A"], JAN1, feb, "1d")
    got = c.fetch_sync(["B", "A", "C"], JAN1, mar, "1d")
    assert got.equals(up.bars(["A", "B", "C"], JAN1, mar, "1d"))
    # B and C miss the same (coalesced) interval: one call; A misses only February
    assert sorted(up.calls[1:]) == [("bars/1d", ("A",), feb, mar), ("bars/1d", ("B", "C"), JAN1, mar)]


def test_read_ahead_widens_forward_but_never_past_now(tmp_path) -> None:
    up = CountingSource()
    c = cached(up, tmp_path / "a", read_ahead_bars=5)
    c.fetch_sync(["AAPL"], "2024-01-02", "2024-01-10", "1d")
    c.fetch_sync(["AAPL"], "2024-01-10", "2024-01-17", "1d")  # served by the read-ahead
    assert len(up.calls) == 1
    # five sessions read ahead: Jan 10, 11, 12, 16 (15th is a holiday), 17; the widened end is the
    # open of the next one
    assert up.calls[0][3] == to_ns("2024-01-18T14:30Z")
    now = to_ns("2024-01-11T12:00Z")
    near = CachedDataSource(up, cache_dir=tmp_path / "b", read_ahead_bars=50, clock=lambda: now,
                            freshness_policy=NeverStalePolicy())
    near.fetch_sync(["AAPL"], "2024-01-02", "2024-01-10", "1d")
    assert up.calls[-1][3] == now


def test_memory_then_disk_hits(tmp_path) -> None:
    up = CountingSource()
    c = cached(up, tmp_path)
    c.fetch_sync(["AAPL"], "2024-01-01", "2024-03-01", "1min")
    c.fetch_sync(["AAPL"], "2024-01-05", "2024-02-03", "1min")
    assert c.stats.memory_hits == 1 and c.stats.bytes_read > 0
    cold = cached(up, tmp_path, memory_bytes=0)
    got = cold.fetch_sync(["AAPL"], "2024-01-05", "2024-02-03", "1min")
    assert got.equals(up.bars(["AAPL"], to_ns("2024-01-05"), to_ns("2024-02-03"), "1min"))
    assert cold.stats.disk_hits == 1 and cold.stats.upstream_calls == 0
    assert "hit rate" in str(cold.stats) and cold.stats.hit_rate == 1.0
    assert len(up.calls) == 1


def test_trades_keep_event_order_across_day_partitions(tmp_path) -> None:
    up = CountingSource()
    c = cached(up, tmp_path)
    s, m, e = to_ns("2024-01-02T20:00Z"), to_ns("2024-01-03T15:00Z"), to_ns("2024-01-03T16:00Z")
    got = c.fetch_kind_sync("trades", ["AAPL", "MSFT"], s, m)
    assert got.equals(up.trades(["AAPL", "MSFT"], s, m))
    got = c.fetch_kind_sync("trades", ["AAPL", "MSFT"], s, e)
    assert got.equals(up.trades(["AAPL", "MSFT"], s, e))
    days = sorted({p.parent.name for p in tmp_path.rglob("*.parquet")})
    assert days == ["day=2024-01-02", "day=2024-01-03"]
    assert_no_refetch(up)


def test_metadata_delegates_with_cache_details(tmp_path) -> None:
    up = CountingSource()
    c = cached(up, tmp_path)
    meta = c.get_metadata()
    assert meta.name == "counting" and meta.details["cache_dir"] == str(tmp_path)
    assert c.cache_identity() == up.cache_identity()
    c.fetch_sync(["AAPL"], "2024-01-01", "2024-01-05", "1d")
    c.flush_stats()
    assert c._index.counters()["upstream_calls"] == 2  # one from the write, one from the flush


def test_drop_mode_caches_the_valid_rows_and_reports_the_rest(tmp_path) -> None:
    up = CountingSource()
    up.invalid = True
    c = cached(up, tmp_path, on_invalid="drop")
    got = c.fetch_sync(["AAPL"], "2024-01-01", "2024-02-01", "1d")
    assert got.height == 20 and set(c.dropped.get_column("rule")) == {"high_below_low",
                                                                      "high_below_open_close"}
    assert c.read_cached(["AAPL"], "2023-12-01", "2024-03-01").equals(got)
    assert len(up.calls) == 1


def test_corporate_actions_ranges_are_cached_even_when_empty(tmp_path) -> None:
    c = cached(CountingSource(), tmp_path)
    got = c.fetch_kind_sync("actions", ["AAPL"], "2020-01-01", "2024-01-01")
    assert got.height == 0 and got.columns == ["symbol", "ts", "action", "value"]
    assert [(sp.start, sp.end) for sp in c.coverage("AAPL", kind="actions")] == [
        (to_ns("2020-01-01"), to_ns("2024-01-01"))]
    assert c.stats.upstream_calls == 1
    c.fetch_kind_sync("actions", ["AAPL"], "2021-01-01", "2022-01-01")
    assert c.stats.upstream_calls == 1 and c.stats.memory_hits == 1
