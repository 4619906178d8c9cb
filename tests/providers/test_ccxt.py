"""CCXT adapter: real ccxt.async_support binance pointed at a local Binance kline/exchangeInfo replay."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pytest
from provider_replay import FAST_RETRY, ReplayServer, Reply, Request

from backtape._time import to_ns
from backtape.errors import ProviderError, RateLimitError, SymbolNotFoundError
from backtape.sources import CCXTDataSource
from backtape.sources._http import RetryPolicy
from backtape.workspace import Workspace

pytestmark = pytest.mark.network_local

START_MS = to_ns("2024-01-01") // 1_000_000
N_MINUTES = 3000


def _symbol(name: str, base: str, quote: str) -> dict:
    return {"symbol": name, "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8,
            "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "MARKET"],
            "icebergAllowed": True, "ocoAllowed": True, "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000.00",
                         "tickSize": "0.01"},
                        {"filterType": "LOT_SIZE", "minQty": "0.00010", "maxQty": "9000.0",
                         "stepSize": "0.00001"},
                        {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
                         "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5}],
            "permissions": [], "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "NONE",
            "allowedSelfTradePreventionModes": ["NONE"]}


EXCHANGE_INFO = {"timezone": "UTC", "serverTime": START_MS, "rateLimits": [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}],
    "exchangeFilters": [], "symbols": [_symbol("BTCUSDT", "BTC", "USDT"), _symbol("ETHUSDT", "ETH", "USDT")]}


class BinanceFake:
    """GET /api/v3/exchangeInfo and /api/v3/klines (chronological, startTime/endTime/limit, max 1000)."""

    def __init__(self, server_cap: int = 1000) -> None:
        self.server_cap = server_cap

    def __call__(self, req: Request) -> Reply:
        headers = {"X-MBX-USED-WEIGHT-1M": "2"}
        if req.path == "/api/v3/exchangeInfo":
            return Reply(200, EXCHANGE_INFO, headers=headers)
        if req.path != "/api/v3/klines":
            return Reply(404, {"code": -1, "msg": "not found"})
        symbol = req.query["symbol"]
        if symbol not in ("BTCUSDT", "ETHUSDT"):
            return Reply(400, {"code": -1121, "msg": "Invalid symbol."})
        step = {"1m": 60_000, "1h": 3_600_000}[req.query["interval"]]
        lo = int(req.query.get("startTime", START_MS))
        hi = int(req.query.get("endTime", 2**62))
        limit = min(int(req.query.get("limit", 500)), self.server_cap)
        base = 37000.0 if symbol == "BTCUSDT" else 2200.0
        rows = []
        t = max(START_MS, lo + (-(lo - START_MS)) % step)
        while t <= hi and t < START_MS + N_MINUTES * 60_000 and len(rows) < limit:
            k = (t - START_MS) // step
            o = base + k * 0.5
            rows.append([t, f"{o:.8f}", f"{o + 2:.8f}", f"{o - 1:.8f}", f"{o + 0.25:.8f}", f"{1.5 + k:.8f}",
                         t + step - 1, "0.55490906", 40, "10.92900000", "0.27336462", "0"])
            t += step
        return Reply(200, rows, headers=headers)


@pytest.fixture
def server():
    with ReplayServer(BinanceFake()) as srv:
        yield srv


def make(server, **kw) -> CCXTDataSource:
    opts = {"base_url": server.url,
            "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False},
            "enable_rate_limit": False,
            "retry": FAST_RETRY, "timeout": 15.0, "clock": lambda: to_ns("2024-02-01")}
    opts.update(kw)
    return CCXTDataSource("binance", **opts)


def klines(server) -> list[Request]:
    return [r for r in server.requests if r.path == "/api/v3/klines"]


def test_markets_first_then_windows_by_since(server):
    src = make(server)
    bars = src.fetch_sync(["BTC/USDT"], "2024-01-01", "2024-01-02T02:00:00Z", "1min")
    assert server.requests[0].path == "/api/v3/exchangeInfo"
    assert bars.height == 1560
    assert bars["open"][0] == 37000.0 and bars["close"][1] == 37000.75 and bars["volume"][2] == 3.5
    assert (bars["ts_end"] - bars["ts"]).dt.total_seconds().unique().to_list() == [60]
    starts = sorted(int(r.query["startTime"]) for r in klines(server))
    assert starts == [START_MS, START_MS + 60_000_000]  # two 1000-bar windows
    assert all(r.query["symbol"] == "BTCUSDT" and r.query["interval"] == "1m" for r in klines(server))


def test_window_pages_by_since_when_server_caps_rows():
    with ReplayServer(BinanceFake(server_cap=300)) as srv:
        bars = make(srv).fetch_sync(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-01-01T10:00:00Z", "1min")
        assert bars.height == 1200
        assert bars.filter(bars["symbol"] == "ETH/USDT")["open"][0] == 2200.0
        assert len(klines(srv)) == 2 * 2  # 600 minutes each at 300 rows per page, paged by since


def test_markets_are_loaded_once_per_source(server):
    src = make(server)
    src.fetch_sync(["BTC/USDT"], "2024-01-01", "2024-01-01T01:00:00Z", "1min")
    src.fetch_sync(["BTC/USDT"], "2024-01-01T01:00:00Z", "2024-01-01T02:00:00Z", "1h")
    assert [r.path for r in server.requests].count("/api/v3/exchangeInfo") == 1


def test_instrument_rules_come_from_the_exchange_filters(server):
    from backtape import Instrument

    rules = make(server).instruments(["BTC/USDT", "DOGE/EUR"])
    assert rules == {"BTC/USDT": Instrument(lot_size=0.00001, min_notional=5.0, min_quantity=0.0001)}


def test_a_cached_backtest_trades_whole_lots_and_asks_for_markets_once(server, tmp_path):
    from backtape.cache import CachedDataSource
    from backtape.engine.run import run_backtest

    for _ in range(2):  # the second run: bars and rules both from the cache, no request at all
        before = len(server.requests)
        cached = CachedDataSource(make(server, calendar="24/7"), tmp_path)
        res = run_backtest("equal_weight", "BTC/USDT", "2024-01-01", "2024-01-03", "1h", cached,
                           params={"rebalance": 6})
        q = res.fills["quantity"].to_numpy()
        assert q.size and all(abs(x * 1e5 - round(x * 1e5)) < 1e-6 for x in q)
    assert len(server.requests) == before


def test_unfinished_bar_is_dropped(server):
    src = make(server, clock=lambda: to_ns("2024-01-01T00:10:30Z"))
    bars = src.fetch_sync(["BTC/USDT"], "2024-01-01", "2024-01-01T01:00:00Z", "1min")
    assert bars.height == 10


def test_unknown_symbol(server):
    with pytest.raises(SymbolNotFoundError, match="DOGE/EUR"):
        make(server).fetch_sync(["DOGE/EUR"], "2024-01-01", "2024-01-02", "1h")


@dataclass(frozen=True)
class _Recording(RetryPolicy):
    """Retry policy that records the Retry-After it is given and waits nothing."""

    asked: list = field(default_factory=list)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        self.asked.append(retry_after)
        return 0.0


THROTTLED = {"code": -1003, "msg": "Too much request weight used; current limit is 6000 request weight "
                                   "per 1 MINUTE. Please use WebSocket Streams for live updates to avoid "
                                   "polling the API."}


def test_429_418_retried_after_retry_after_then_rate_limit_error(server):
    policy = _Recording(attempts=3, max_retry_after=60.0)
    server.fail("/api/v3/klines", Reply(429, THROTTLED, headers={"Retry-After": "7"}))
    server.fail("/api/v3/klines", Reply(418, THROTTLED, headers={"Retry-After": "12"}))
    bars = make(server, retry=policy).fetch_sync(["BTC/USDT"], "2024-01-01", "2024-01-01T01:00:00Z", "1min")
    assert bars.height == 60
    assert policy.asked == [7.0, 12.0]  # each wait is the one its own response asked for
    server.fail("/api/v3/klines", Reply(429, THROTTLED, headers={"Retry-After": "3"}), times=10)
    with pytest.raises(RateLimitError, match="rate limited") as info:
        make(server, retry=policy).fetch_sync(["BTC/USDT"], "2024-01-01", "2024-01-01T01:00:00Z", "1min")
    assert info.value.retry_after == 3.0


def test_429_without_retry_after_backs_off(server):
    policy = _Recording(attempts=3)
    server.fail("/api/v3/klines", Reply(429, THROTTLED))
    make(server, retry=policy).fetch_sync(["BTC/USDT"], "2024-01-01", "2024-01-01T01:00:00Z", "1min")
    assert policy.asked == [None]


def test_retry_after_longer_than_the_client_waits_raises_at_once(server):
    server.fail("/api/v3/klines", Reply(418, THROTTLED, headers={"Retry-After": "7200"}), times=10)
    with pytest.raises(RateLimitError, match="7200 s") as info:
        make(server).fetch_sync(["BTC/USDT"], "2024-01-01", "2024-01-01T01:00:00Z", "1min")
    assert info.value.retry_after == 7200.0
    assert len(klines(server)) == 1  # no retry against a ban


def test_500_and_timeout_then_success(server):
    server.fail("/api/v3/klines", Reply(500, "Internal error"))
    server.fail("/api/v3/klines", Reply(200, [], delay=1.0))
    bars = make(server, timeout=0.3).fetch_sync(["BTC/USDT"], "2024-01-01", "2024-01-01T01:00:00Z", "1min")
    assert bars.height == 60


def test_truncated_json_is_provider_error(server):
    server.fail("/api/v3/klines", Reply(200, b'[[1704067200000,"37000.0","37002.0"'))
    with pytest.raises(ProviderError, match="truncated JSON"):
        make(server).fetch_sync(["BTC/USDT"], "2024-01-01", "2024-01-01T01:00:00Z", "1min")


def test_window_failing_mid_range(server):
    server.fail("startTime=1704127200000", Reply(503, "down"), times=10)
    with pytest.raises(ProviderError):
        make(server).fetch_sync(["BTC/USDT"], "2024-01-01", "2024-01-02T02:00:00Z", "1min")


def test_exchange_keys_from_env_never_logged(server, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("BINANCE_API_KEY", "binanceKEYvalue123")
    monkeypatch.setenv("BINANCE_API_SECRET", "binanceSECRETvalue456")
    server.fail("/api/v3/klines", Reply(503, "echo binanceKEYvalue123"), times=10)
    opts = {"base_url": server.url, "enable_rate_limit": False, "retry": FAST_RETRY, "timeout": 15.0,
            "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}}
    src = Workspace().source("ccxt", cache=False, exchange="binance", **opts)  # keys from the environment
    with pytest.raises(ProviderError) as info:
        src.fetch_sync(["BTC/USDT"], "2024-01-01", "2024-01-01T01:00:00Z", "1min")
    for text in (str(info.value), caplog.text, str(src.get_metadata()), src.cache_identity()):
        assert "binanceKEYvalue123" not in text and "binanceSECRETvalue456" not in text
