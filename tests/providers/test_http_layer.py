"""The shared HTTP layer: Retry-After, backoff, token bucket, bounded concurrency, chunking, redaction."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time

import pytest
from provider_replay import FAST_RETRY, ReplayServer, Reply

from backtape import _secrets
from backtape._time import NS_PER_MINUTE, to_ns
from backtape.errors import AuthenticationError, ProviderError, SymbolNotFoundError
from backtape.sources._http import (
    HttpClient,
    RateLimiter,
    RetryPolicy,
    chunk_minutes_for_volume,
    gather_limited,
    parse_retry_after,
    rebase,
    tick_chunks,
)


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0


def test_backoff_grows_with_jitter_and_is_capped():
    policy = RetryPolicy(backoff=1.0, max_backoff=8.0)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (5, 8.0)]:
        delays = {policy.delay(attempt, None) for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays) and len(delays) > 1
    assert policy.delay(3, 2.5) == 2.5  # Retry-After wins


def test_token_bucket_reserves_at_the_configured_rate():
    limiter = RateLimiter(requests_per_minute=60, burst=2)  # one per second after a burst of two
    waits = [limiter._reserve() for _ in range(4)]
    assert waits[0] == 0 and waits[1] == 0
    assert waits[2] == pytest.approx(1.0, abs=0.05) and waits[3] == pytest.approx(2.0, abs=0.05)
    assert RateLimiter(None)._reserve  # unlimited limiter never waits
    asyncio.run(RateLimiter(None).acquire())


def test_rebase_keeps_path_and_query_on_the_configured_base():
    nxt = "https://api.massive.com/v3/trades/AAPL?cursor=abc%3D"
    assert rebase(nxt, "http://127.0.0.1:9/") == "http://127.0.0.1:9/v3/trades/AAPL?cursor=abc%3D"
    assert rebase(nxt, "https://proxy.example/polygon") == "https://proxy.example/polygon/v3/trades/AAPL?cursor=abc%3D"


def test_gather_limited_bounds_in_flight_reports_progress_and_cancels_on_failure():
    state = {"now": 0, "peak": 0, "cancelled": 0}
    seen: list[tuple[int, int]] = []

    async def job(i: int):
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        try:
            await asyncio.sleep(0.01 if i != 3 else 0.0)
            if i == 3:
                raise ProviderError("chunk 3 failed")
            await asyncio.sleep(0.05)
            return i
        except asyncio.CancelledError:
            state["cancelled"] += 1
            raise
        finally:
            state["now"] -= 1

    ok = asyncio.run(gather_limited([lambda i=i: job(i) for i in (0, 1, 2)], limit=2,
                                    progress=lambda d, t: seen.append((d, t))))
    assert ok == [0, 1, 2] and state["peak"] == 2 and seen[-1] == (3, 3)
    with pytest.raises(ProviderError, match="chunk 3"):
        asyncio.run(gather_limited([lambda i=i: job(i) for i in range(8)], limit=5))
    assert state["cancelled"] >= 1 and state["now"] == 0


def test_tick_chunks_cover_the_range_exactly_once():
    start, end = to_ns("2024-01-05T12:00:00Z"), to_ns("2024-01-09T03:00:00Z")
    chunks = tick_chunks(start, end, 5)
    assert chunks[0][0] == start and chunks[-1][1] == end
    assert all(a < b for a, b in chunks)
    assert all(chunks[i][1] == chunks[i + 1][0] for i in range(len(chunks) - 1))
    dense = [c for c in chunks if c[1] - c[0] <= 5 * NS_PER_MINUTE]
    # 04:00-20:00 ET (16 h) on Jan 5 (from 12:00Z = 07:00 ET: 13 h) and Jan 8 (16 h) in 5-minute windows
    assert len(dense) == (13 + 16) * 12
    assert len(tick_chunks(start, end, 15, "24/7")) == -(-(end - start) // (15 * NS_PER_MINUTE))


def test_chunk_minutes_follow_seed_liquidity_tiers():
    assert [chunk_minutes_for_volume(v) for v in (5e7, 2e6, 5e5, None)] == [5, 10, 15, 15]


def test_redact_params_headers_and_registered_values():
    _secrets.register("s3cr3t-value-42")
    text = ("GET http://h/q?function=X&apikey=ABCDEF123&symbol=IBM apiKey=zz9 "
            "{'APCA-API-SECRET-KEY': 'topsecret'} Authorization: Bearer tok123 s3cr3t-value-42")
    out = _secrets.redact(text)
    for secret in ("ABCDEF123", "zz9", "topsecret", "tok123", "s3cr3t-value-42"):
        assert secret not in out
    assert "symbol=IBM" in out and "function=X" in out


def test_log_filter_redacts_records(caplog):
    caplog.set_level(logging.INFO)
    _secrets.install_log_filter()
    logging.getLogger("httpx").info("HTTP Request: GET %s", "http://h/x?apiKey=LEAKY&y=1")
    assert "LEAKY" not in caplog.text and "y=1" in caplog.text


def test_error_mapping_and_short_body():
    def route(req):
        code = int(req.path.strip("/"))
        return Reply(code, "x" * 5000)

    async def run():
        client = HttpClient("demo", server.url, auth_params={"token": "T0KEN-SECRET"},
                            secrets=["T0KEN-SECRET"], retry=FAST_RETRY, timeout=15.0)
        out = {}
        for code, kwargs in ((401, {}), (403, {}), (404, {"symbol": "ZZZ"}), (404, {}), (400, {})):
            try:
                await client.get_json(f"/{code}", **kwargs)
            except (ProviderError, SymbolNotFoundError) as exc:
                out[(code, bool(kwargs))] = exc
        return out

    with ReplayServer(route) as server:
        errors = asyncio.run(run())
    assert isinstance(errors[(401, False)], AuthenticationError)
    assert isinstance(errors[(403, False)], AuthenticationError)
    assert isinstance(errors[(404, True)], SymbolNotFoundError)
    assert type(errors[(404, False)]) is ProviderError and errors[(400, False)].status == 400
    assert len(errors[(400, False)].body) == 200
    assert all("T0KEN-SECRET" not in str(e) for e in errors.values())


@pytest.mark.parametrize(("name", "options"), [
    ("polygon", {"api_key": "pk_REGISTRY_0001"}),
    ("alpaca", {"api_key": "PKREGISTRY0001", "secret_key": "alpacaREGISTRYsecret"}),
    ("alphavantage", {"api_key": "AVREGISTRY0001"}),
    ("yahoo", {}),
    ("ccxt", {"exchange": "binance"}),
])
def test_registry_builds_every_provider_with_secret_free_identity(name, options):
    from backtape.sources import get_source

    a = get_source(name, base_url="http://127.0.0.1:1", **options)
    b = get_source(name, base_url="https://mirror.example", **options)
    assert a.cache_identity() == b.cache_identity()  # the base URL is where, not what
    assert a.cache_identity().startswith(name)
    meta = a.get_metadata()
    assert meta.name == name and meta.capabilities.kinds
    for secret in options.values():
        if secret != "binance":
            assert secret not in a.cache_identity() and secret not in str(meta)
