"""Freshness: only the open tail goes stale; policies judged with a fixed "now"; forced refresh."""

from __future__ import annotations

import polars as pl
from _upstream import CountingSource

from backtape._time import to_ns
from backtape.cache import (
    CachedDataSource,
    FreshnessPolicyFactory,
    HybridFreshnessPolicy,
    MarketCloseFreshnessPolicy,
    NeverStalePolicy,
    TTLFreshnessPolicy,
)
from backtape.cache.freshness import immutable_before
from backtape.calendars import get_calendar

# Tuesday 2024-03-05: NYSE opens 14:30Z, closes 21:00Z
MORNING, NOON, EVENING = to_ns("2024-03-05T15:00Z"), to_ns("2024-03-05T18:00Z"), to_ns("2024-03-05T22:00Z")


def test_ttl_policy() -> None:
    p = TTLFreshnessPolicy(ttl_seconds=60)
    assert not p.is_stale(MORNING, MORNING + 60 * 10**9)
    assert p.is_stale(MORNING, MORNING + 61 * 10**9)
    assert p.is_fresh("2024-03-05T15:00Z", "2024-03-05T15:00:30Z")


def test_market_close_policy_goes_stale_after_the_close() -> None:
    p = MarketCloseFreshnessPolicy("XNYS")
    assert not p.is_stale(MORNING, NOON)
    assert p.is_stale(MORNING, EVENING)
    assert not p.is_stale(EVENING, to_ns("2024-03-06T15:00Z"))  # next session still open


def test_hybrid_policy_uses_a_ttl_while_open() -> None:
    p = HybridFreshnessPolicy("XNYS", ttl_seconds=300)
    assert not p.is_stale(MORNING, MORNING + 299 * 10**9)
    assert p.is_stale(MORNING, MORNING + 301 * 10**9)
    weekend = to_ns("2024-03-09T12:00Z")
    assert not p.is_stale(weekend, weekend + 3600 * 10**9)  # closed market: nothing new
    assert p.is_stale(MORNING, EVENING)
    assert not NeverStalePolicy().is_stale(0, 10**19)


def test_factory_picks_by_source_frequency_and_calendar() -> None:
    f = FreshnessPolicyFactory.create_policy
    assert f("polygon", "1d", "XNYS") == MarketCloseFreshnessPolicy("XNYS")
    assert f("polygon", "5min", "NYSE") == HybridFreshnessPolicy("XNYS", 300.0)
    assert f("ccxt", "1h", "24/7") == TTLFreshnessPolicy(3600.0)
    assert f("ccxt", "1d", "24/7") == TTLFreshnessPolicy(3600.0)
    assert f("ccxt", "1min", "24/7") == TTLFreshnessPolicy(60.0)
    assert f("synthetic", "1min", "XNYS") == NeverStalePolicy()
    assert f(CountingSource(), "1d", None) == MarketCloseFreshnessPolicy("XNYS")


def test_immutable_boundary_is_the_last_close_at_fetch_time() -> None:
    cal = get_calendar("XNYS")
    assert immutable_before(cal, "1d", NOON) == to_ns("2024-03-04T21:00Z")
    assert immutable_before(cal, "1d", EVENING) == to_ns("2024-03-05T21:00Z")


def test_only_the_tail_is_refetched_when_stale(tmp_path) -> None:
    up = CountingSource()
    now = [NOON]
    c = CachedDataSource(up, cache_dir=tmp_path, clock=lambda: now[0])
    start, end = to_ns("2024-02-01"), to_ns("2024-03-06")
    c.fetch_sync(["AAPL"], start, end, "1d")
    head, tail = c.coverage("AAPL")  # history up to yesterday's close, and the open tail
    assert head.immutable and (tail.start, tail.end) == (to_ns("2024-03-04T21:00Z"), end)
    assert not tail.immutable
    now[0] = NOON + 3600 * 10**9  # same session: still fresh under the market-close rule
    c.fetch_sync(["AAPL"], start, end, "1d")
    assert len(up.calls) == 1
    up.bump = 1.0  # the vendor completes today's bar differently
    now[0] = EVENING
    got = c.fetch_sync(["AAPL"], start, end, "1d")
    assert len(up.calls) == 2 and up.calls[1][2:] == (to_ns("2024-03-04T21:00Z"), end)
    truth = pl.concat([CountingSource().bars(["AAPL"], start, to_ns("2024-03-05"), "1d"),
                       up.bars(["AAPL"], to_ns("2024-03-05"), end, "1d")])
    assert got.equals(truth)  # history kept, today's bar replaced, no duplicate
    # history up to today's close is immutable now; after it only the (empty) future remains open
    assert [(sp.end, sp.immutable) for sp in c.coverage("AAPL")] == [
        (to_ns("2024-03-05T21:00Z"), True), (end, False)]
    c.fetch_sync(["AAPL"], start, end, "1d")
    assert len(up.calls) == 2


def test_refresh_replaces_rows_and_coverage(tmp_path) -> None:
    up = CountingSource()
    c = CachedDataSource(up, cache_dir=tmp_path, freshness_policy=NeverStalePolicy())
    start, mid, end = to_ns("2024-01-01"), to_ns("2024-01-10"), to_ns("2024-01-20")
    c.fetch_sync(["AAPL"], start, end, "1d")
    up.bump = 2.0
    refreshed = c.refresh_sync("AAPL", mid, end, frequency="1d")
    assert refreshed.equals(up.bars(["AAPL"], mid, end, "1d"))
    again = CachedDataSource(up, cache_dir=tmp_path, freshness_policy=NeverStalePolicy())
    got = again.fetch_sync(["AAPL"], start, end, "1d")
    assert got.equals(pl.concat([CountingSource().bars(["AAPL"], start, mid, "1d"), refreshed]))
    assert len(up.calls) == 2
