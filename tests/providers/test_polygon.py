"""Polygon/Massive adapter against a local replay of its REST wire format."""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
import pytest
from polygon_fake import KEY, PolygonFake, expected_minutes
from provider_replay import FAST_RETRY, ReplayServer, Reply

from backtape._time import to_ns
from backtape.calendars import get_calendar
from backtape.errors import AuthenticationError, ConfigError, ProviderError, RateLimitError
from backtape.sources import PolygonDataSource
from backtape.workspace import Workspace

pytestmark = pytest.mark.network_local


@pytest.fixture(scope="module")
def fake() -> PolygonFake:
    return PolygonFake()


@pytest.fixture
def server(fake):
    with ReplayServer(fake) as srv:
        yield srv


def make(server, **kw) -> PolygonDataSource:
    opts = {"api_key": KEY, "base_url": server.url, "requests_per_minute": None, "retry": FAST_RETRY,
            "timeout": 15.0, "chunk_minutes": 60}
    opts.update(kw)
    return PolygonDataSource(**opts)


def test_minute_bars_follow_next_url_on_configured_base(server, fake):
    src = make(server)
    bars = src.fetch_sync(["AAPL"], "2024-01-03T14:30:00Z", "2024-01-03T21:00:00Z", "1min")
    assert bars.height == 390
    assert bars["ts"].dt.epoch("ns").to_list() == expected_minutes(fake, "AAPL")[390:780].tolist()
    assert (bars["ts_end"] - bars["ts"]).dt.total_seconds().unique().to_list() == [60]
    raw = fake.minute["AAPL"][390]
    first = bars.row(0, named=True)
    assert (first["open"], first["volume"], first["vwap"], first["transactions"]) == (
        raw["o"], raw["v"], raw["vw"], raw["n"])
    # 390 bars at 100 per page: 4 requests; pages 2-4 come from next_url (cursor only) + bearer auth
    assert len(server.requests) == 4
    assert all(r.headers.get("Authorization") == f"Bearer {KEY}" for r in server.requests)
    assert [sorted(r.query) for r in server.requests[1:]] == [["cursor"]] * 3
    assert server.requests[0].query["adjusted"] == "false"
    assert server.requests[0].query["sort"] == "asc"


def test_query_auth_is_re_added_to_every_next_url(server):
    src = make(server, auth="query")
    src.fetch_sync(["AAPL"], "2024-01-03T14:30:00Z", "2024-01-03T21:00:00Z", "1min")
    assert len(server.requests) == 4
    assert all(r.query.get("apiKey") == KEY for r in server.requests)


def test_daily_bars_are_mapped_to_sessions(server, fake):
    src = make(server)
    bars = src.fetch_sync(["AAPL", "MSFT"], "2024-01-02", "2024-01-06", "1d")
    cal = get_calendar("XNYS")
    sessions = cal.sessions("2024-01-02", "2024-01-06")
    assert bars.height == 8
    aapl = bars.filter(pl.col("symbol") == "AAPL")
    assert aapl["ts"].to_list() == sessions["open"].to_list()
    assert aapl["ts_end"].to_list() == sessions["close"].to_list()
    assert aapl["volume"].to_list() == [r["v"] for r in fake.daily["AAPL"]]


def test_adjusted_flag_is_sent_and_part_of_identity(server):
    raw, adj = make(server), make(server, adjusted=True)
    assert raw.cache_identity() != adj.cache_identity()
    assert KEY not in raw.cache_identity() and KEY not in str(raw.get_metadata())
    a = raw.fetch_sync(["AAPL"], "2024-01-03", "2024-01-04", "1d")
    b = adj.fetch_sync(["AAPL"], "2024-01-03", "2024-01-04", "1d")
    assert server.requests[-1].query["adjusted"] == "true"
    assert b["close"][0] == pytest.approx(a["close"][0] / 4)


def test_trades_keep_exact_nanoseconds_and_come_oldest_first(server, fake):
    src = make(server)
    trades = src.fetch_kind_sync("trades", ["AAPL"], "2024-01-03T14:30:00Z", "2024-01-03T15:30:00Z")
    expected = [r for r in fake.trades["AAPL"]
                if to_ns("2024-01-03T14:30:00Z") <= r["sip_timestamp"] < to_ns("2024-01-03T15:30:00Z")]
    assert trades.height == len(expected) == 120
    assert trades["ts"].dt.epoch("ns").to_list() == [r["sip_timestamp"] for r in expected]
    assert trades["ts"].dt.epoch("ns")[0] % 1000 == 581  # exact, not float-rounded
    assert trades["conditions"].to_list()[:2] == ["37", "12,41"]
    assert trades["exchange"].to_list()[:2] == ["11", "12"]
    assert trades["size"].to_list()[:2] == [2.5, 100.0]
    assert all(r.query.get("order") == "asc" for r in server.requests if "cursor" not in r.query)


def test_newest_first_pages_are_sorted():
    with ReplayServer(PolygonFake(symbols=("AAPL",), ignore_order=True)) as srv:
        trades = make(srv).fetch_kind_sync("trades", ["AAPL"], "2024-01-03T14:30:00Z", "2024-01-03T15:30:00Z")
    ts = trades["ts"].dt.epoch("ns").to_numpy()
    assert trades.height == 120 and (np.diff(ts) > 0).all()


def test_quotes(server, fake):
    src = make(server)
    quotes = src.fetch_kind_sync("quotes", ["MSFT"], "2024-01-03T14:30:00Z", "2024-01-03T14:40:00Z")
    assert quotes.height == 10
    row = quotes.row(0, named=True)
    raw = next(r for r in fake.quotes["MSFT"] if r["sip_timestamp"] >= to_ns("2024-01-03T14:30:00Z"))
    assert (row["bid"], row["ask"], row["bid_size"], row["bid_exchange"]) == (
        raw["bid_price"], raw["ask_price"], raw["bid_size"], "11")
    assert quotes["ts"].dt.epoch("ns")[0] == raw["sip_timestamp"]


def test_tick_chunks_are_fetched_concurrently_in_windows(server):
    progress: list[tuple[int, int]] = []
    src = make(server, chunk_minutes=5, progress=lambda done, total: progress.append((done, total)))
    src.fetch_kind_sync("trades", ["AAPL"], "2024-01-03T14:30:00Z", "2024-01-03T15:00:00Z")
    windows = {(r.query["timestamp.gte"], r.query["timestamp.lt"]) for r in server.requests
               if "timestamp.gte" in r.query}
    assert len(windows) == 6
    assert progress == [(i, 6) for i in range(1, 7)]


def test_liquidity_estimate_sizes_chunks(server):
    src = make(server, chunk_minutes=None)  # daily volume ~1.5e7 in the fake -> 5-minute chunks
    src.fetch_kind_sync("trades", ["AAPL"], "2024-01-05T14:30:00Z", "2024-01-05T15:00:00Z")
    assert any("/range/1/day/" in p for p in server.paths())
    assert src.avg_volume["AAPL"] > 10_000_000
    assert len([r for r in server.requests if "timestamp.gte" in r.query]) == 6


def test_empty_result_has_no_results_key(server):
    bars = make(server).fetch_sync(["NOPE"], "2024-01-03", "2024-01-04", "1min")
    assert bars.height == 0 and bars.schema == make(server).fetch_sync(
        ["AAPL"], "2024-01-03", "2024-01-04", "1d").schema


def test_corporate_actions(server):
    actions = make(server).fetch_kind_sync("actions", ["AAPL"], "2024-01-02", "2024-01-06")
    cal = get_calendar("XNYS")
    assert actions["action"].to_list() == ["dividend", "split"]
    assert actions["value"].to_list() == [0.24, 4.0]
    opens = cal.sessions("2024-01-03", "2024-01-05")["open"].to_list()
    assert actions["ts"].to_list() == opens


def test_bad_key_is_authentication_error_without_the_key(server):
    src = make(server, api_key="pk_WRONG_abcdef123", auth="query")
    with pytest.raises(AuthenticationError) as info:
        src.fetch_sync(["AAPL"], "2024-01-03", "2024-01-04", "1d")
    assert "Unknown API Key" in str(info.value) and info.value.status == 401
    assert "pk_WRONG_abcdef123" not in str(info.value)
    assert len(server.requests) == 1  # never retried


def test_missing_key_is_config_error(monkeypatch):
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    monkeypatch.delenv("MASSIVE_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="POLYGON_API_KEY"):
        PolygonDataSource()


def test_key_and_base_url_from_environment(server, monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", KEY)
    monkeypatch.setenv("POLYGON_BASE_URL", server.url)
    src = Workspace().source("polygon", cache=False, requests_per_minute=None)
    assert src.fetch_sync(["AAPL"], "2024-01-03", "2024-01-04", "1d").height == 1


def test_not_authorized_body_with_http_200(fake):
    with ReplayServer(fake) as srv:
        srv.fail("/v2/aggs", Reply(200, {"status": "NOT_AUTHORIZED", "request_id": "x",
                                         "message": "You are not entitled to this data."}))
        with pytest.raises(AuthenticationError, match="not entitled"):
            make(srv).fetch_sync(["AAPL"], "2024-01-03", "2024-01-04", "1d")


def test_429_with_retry_after_then_success(server):
    server.fail("/v2/aggs", Reply(429, {"status": "ERROR", "request_id": "x",
                                        "error": "You've exceeded the maximum requests per minute"},
                                  headers={"Retry-After": "0.2"}))
    bars = make(server).fetch_sync(["AAPL"], "2024-01-03", "2024-01-04", "1d")
    assert bars.height == 1 and len(server.requests) == 2


def test_429_exhausted_is_rate_limit_error(server):
    server.fail("/v2/aggs", Reply(429, "", headers={"Retry-After": "0"}), times=10)
    with pytest.raises(RateLimitError) as info:
        make(server).fetch_sync(["AAPL"], "2024-01-03", "2024-01-04", "1d")
    assert info.value.status == 429 and info.value.retry_after == 0
    assert len(server.requests) == FAST_RETRY.attempts


def test_long_retry_after_fails_fast(server):
    server.fail("/v2/aggs", Reply(429, "", headers={"Retry-After": "3600"}), times=10)
    with pytest.raises(RateLimitError) as info:
        make(server).fetch_sync(["AAPL"], "2024-01-03", "2024-01-04", "1d")
    assert info.value.retry_after == 3600 and len(server.requests) == 1


def test_500_then_success(server):
    server.fail("/v2/aggs", Reply(500, "internal error"))
    assert make(server).fetch_sync(["AAPL"], "2024-01-03", "2024-01-04", "1d").height == 1


def test_timeout_then_success(server):
    server.fail("/v2/aggs", Reply(200, {"status": "OK"}, delay=1.0))
    bars = make(server, timeout=0.3).fetch_sync(["AAPL"], "2024-01-03", "2024-01-04", "1d")
    assert bars.height == 1


def test_timeouts_exhausted(server):
    server.fail("/v2/aggs", Reply(200, {"status": "OK"}, delay=0.6), times=3)
    with pytest.raises(ProviderError, match="timed out"):
        make(server, timeout=0.2).fetch_sync(["AAPL"], "2024-01-03", "2024-01-04", "1d")


def test_truncated_json_names_the_url_without_key(server):
    server.fail("/v2/aggs", Reply(200, b'{"status":"OK","results":[{"o":1.0,"h"'))
    with pytest.raises(ProviderError) as info:
        make(server, auth="query").fetch_sync(["AAPL"], "2024-01-03", "2024-01-04", "1d")
    text = str(info.value)
    assert "truncated JSON" in text and "/v2/aggs/ticker/AAPL/range/1/day/" in text
    assert KEY not in text and "apiKey=***" in text


def test_page_failing_mid_range_raises_and_returns_nothing(server):
    server.fail("cursor=", Reply(500, "boom"), times=100, skip=1)  # page 3 of the range always fails
    with pytest.raises(ProviderError, match="HTTP 500"):
        make(server).fetch_sync(["AAPL"], "2024-01-03T14:30:00Z", "2024-01-03T21:00:00Z", "1min")


def test_secrets_never_in_logs_or_errors(server, caplog):
    caplog.set_level(logging.DEBUG)
    server.fail("/v2/aggs", Reply(503, "unavailable"), times=10)
    src = make(server, auth="query")
    with pytest.raises(ProviderError) as info:
        src.fetch_sync(["AAPL"], "2024-01-03", "2024-01-04", "1d")
    assert "HTTP Request" in caplog.text  # httpx logged the URL...
    assert KEY not in caplog.text  # ...with the key redacted
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    assert KEY not in str(src.get_metadata()) and KEY not in src.cache_identity()
