"""Every provider end to end through ``CachedDataSource``: a repeat costs 0 HTTP requests, a range
that fails mid-way is not cached as covered, and no key ever lands in the cache folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from polygon_fake import KEY as POLYGON_KEY
from polygon_fake import PolygonFake
from provider_replay import FAST_RETRY, ReplayServer, Reply
from test_alpaca import KEY_ID as ALPACA_KEY_ID
from test_alpaca import SECRET as ALPACA_SECRET
from test_alpaca import AlpacaFake
from test_alphavantage import KEY as AV_KEY
from test_alphavantage import route as av_route
from test_ccxt import BinanceFake
from test_yahoo import route as yahoo_route

from backtape._time import to_ns
from backtape.cache import CachedDataSource
from backtape.errors import ProviderError
from backtape.sources import (
    AlpacaDataSource,
    AlphaVantageDataSource,
    CCXTDataSource,
    PolygonDataSource,
    YahooDataSource,
)

pytestmark = pytest.mark.network_local


@dataclass
class Case:
    """A provider, its replay route, a request that takes several HTTP calls, and where to break it."""

    route: Callable
    build: Callable[[str], object]
    request: tuple
    fail_on: str
    secrets: tuple[str, ...]
    fail_skip: int = 1


CASES = {
    "polygon": Case(
        PolygonFake(symbols=("AAPL",), page_size=100),
        lambda url: PolygonDataSource(api_key=POLYGON_KEY, base_url=url, auth="query",
                                      requests_per_minute=None, retry=FAST_RETRY, timeout=15.0),
        ("bars", ["AAPL"], "2024-01-03T14:30:00Z", "2024-01-03T21:00:00Z", "1min"),
        "cursor=", (POLYGON_KEY,)),
    "polygon-trades": Case(
        PolygonFake(symbols=("AAPL",), page_size=50),
        lambda url: PolygonDataSource(api_key=POLYGON_KEY, base_url=url, requests_per_minute=None,
                                      retry=FAST_RETRY, timeout=15.0, chunk_minutes=15),
        ("trades", ["AAPL"], "2024-01-03T14:30:00Z", "2024-01-03T15:30:00Z", None),
        "/v3/trades", (POLYGON_KEY,), 2),
    "alpaca": Case(
        AlpacaFake(symbols=("AAPL", "MSFT")),
        lambda url: AlpacaDataSource(api_key=ALPACA_KEY_ID, secret_key=ALPACA_SECRET, base_url=url,
                                     requests_per_minute=None, retry=FAST_RETRY, timeout=15.0,
                                     page_limit=300),
        ("bars", ["AAPL", "MSFT"], "2024-01-03T14:30:00Z", "2024-01-03T21:00:00Z", "1min"),
        "page_token=", (ALPACA_KEY_ID, ALPACA_SECRET)),
    "alphavantage": Case(
        av_route,
        lambda url: AlphaVantageDataSource(api_key=AV_KEY, base_url=url, requests_per_minute=None,
                                           retry=FAST_RETRY, timeout=15.0),
        ("bars", ["IBM"], "2024-01-31T09:00:00Z", "2024-02-02T06:00:00Z", "5min"),
        "month=", (AV_KEY,)),
    "yahoo": Case(
        yahoo_route,
        lambda url: YahooDataSource(base_url=url, requests_per_minute=None, retry=FAST_RETRY, timeout=15.0,
                                    clock=lambda: to_ns("2024-02-01")),
        ("bars", ["AAPL"], "2024-01-01", "2024-01-20", "1min"),
        "/v8/finance/chart", ()),
    "ccxt": Case(
        BinanceFake(),
        lambda url: CCXTDataSource("binance", base_url=url, enable_rate_limit=False, retry=FAST_RETRY,
                                   timeout=15.0, options={"fetchMarkets": {"types": ["spot"]},
                                                         "fetchCurrencies": False},
                                   clock=lambda: to_ns("2024-02-01")),
        ("bars", ["BTC/USDT"], "2024-01-01", "2024-01-02T02:00:00Z", "1min"),
        "startTime=", ()),
}


def _fetch(source, request: tuple):
    kind, symbols, start, end, frequency = request
    return source.fetch_kind_sync(kind, symbols, start, end, frequency or "1d")


def _all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("name", list(CASES))
def test_second_request_makes_no_http_requests(name, tmp_path):
    case = CASES[name]
    with ReplayServer(case.route) as server:
        cached = CachedDataSource(case.build(server.url), cache_dir=tmp_path / "cache")
        first = _fetch(cached, case.request)
        sent = len(server.requests)
        assert first.height > 0 and sent >= 2
        second = _fetch(cached, case.request)
        assert len(server.requests) == sent  # 0 HTTP requests the second time
        assert second.equals(first)
        direct = _fetch(case.build(server.url), case.request)
        assert direct.equals(first)  # the cache returns exactly what the provider returns
    blob = _all_bytes(tmp_path / "cache")
    for secret in case.secrets:
        assert secret.encode() not in blob
        assert secret not in str(cached.get_metadata())


@pytest.mark.parametrize("name", list(CASES))
def test_mid_range_failure_caches_nothing_of_that_range(name, tmp_path):
    case = CASES[name]
    with ReplayServer(case.route) as server:
        cached = CachedDataSource(case.build(server.url), cache_dir=tmp_path / "cache")
        server.fail(case.fail_on, Reply(500, "boom"), times=100, skip=case.fail_skip)
        with pytest.raises(ProviderError) as info:
            _fetch(cached, case.request)
        for secret in case.secrets:
            assert secret not in str(info.value)
        server.clear_faults()
        before = len(server.requests)
        healed = _fetch(cached, case.request)
        refetched = len(server.requests) - before
        fresh = _fetch(case.build(server.url), case.request)
        fresh_count = len(server.requests) - before - refetched
        assert healed.equals(fresh)
        assert refetched >= fresh_count - (1 if name == "ccxt" else 0)  # markets may be cached per source
