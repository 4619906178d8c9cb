"""Alpaca adapter against a local replay of Market Data v2 (stocks)."""

from __future__ import annotations

import base64
import datetime as dt
import logging

import numpy as np
import polars as pl
import pytest
from provider_replay import FAST_RETRY, ReplayServer, Reply, Request, price_path, session_minutes

from backtape._time import to_ns
from backtape.calendars import get_calendar
from backtape.errors import AuthenticationError, ConfigError, ProviderError, SymbolNotFoundError
from backtape.sources import AlpacaDataSource
from backtape.workspace import Workspace

pytestmark = pytest.mark.network_local

KEY_ID, SECRET = "PKTESTKEYID0001", "alpacaSecretValue/0123456789"


#: UTC nanoseconds of each timestamp text: recorded exactly when the fake writes the text (so serving
#: a request costs no parsing: a fake slow enough to time the client out makes it retry), parsed once
#: otherwise (the adapter's query bounds).
_NS: dict[str, int] = {}


def _iso(ns: int, digits: int) -> str:
    base = dt.datetime.fromtimestamp(ns // 10**9, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{ns % 10**9:09d}"[:digits]
    text = base + (f".{frac}" if digits else "") + "Z"
    unit = 10 ** (9 - digits)
    _NS[text] = ns // unit * unit
    return text


def _parse(text: str) -> int:
    ns = _NS.get(text)
    if ns is None:
        parsed = pl.Series([text]).str.to_datetime(time_unit="ns", time_zone="UTC").dt.epoch("ns")
        ns = _NS[text] = int(parsed[0])
    return ns


def _distinct(requests: list[Request]) -> list[Request]:
    """The requests with different queries, in order (a retried request repeats its query)."""
    return list({r.raw_query: r for r in requests}.values())


class AlpacaFake:
    """Serves /v2/stocks/bars (multi) and /v2/stocks/{symbol}/{trades,quotes} (single)."""

    def __init__(self, symbols=("AAPL", "MSFT")) -> None:
        minutes = session_minutes("2024-01-02", "2024-01-06")
        self.bars: dict[str, dict[str, list[dict]]] = {"1Min": {}, "1Day": {}}
        self.trades: dict[str, list[dict]] = {}
        self.quotes: dict[str, list[dict]] = {}
        self.sip_forbidden: dict | None = None
        ny = dt.timezone(dt.timedelta(hours=-5))
        for sym in symbols:
            px = price_path(sym, len(minutes))
            self.bars["1Min"][sym] = [
                {"t": _iso(int(t), 0), "o": float(px[i]), "h": float(px[i]) + 0.1, "l": float(px[i]) - 0.1,
                 "c": float(px[i]), "v": 100 + i, "n": 5, "vw": float(px[i])} for i, t in enumerate(minutes)]
            days = sorted({dt.datetime.fromtimestamp(t / 1e9, ny).date() for t in minutes})
            self.bars["1Day"][sym] = [
                {"t": f"{d.isoformat()}T05:00:00Z", "o": 10.0, "h": 11.0, "l": 9.0, "c": 10.5,
                 "v": 2_000_000 + i, "n": 900, "vw": 10.2} for i, d in enumerate(days)]
            # 9, 6, 2 and 0 fractional digits all occur on the wire
            self.trades[sym] = [
                {"t": _iso(int(t) + 123_456_789 * (k + 1) % 10**9, (9, 6, 2, 0)[i % 4]), "x": "V",
                 "p": float(px[i]), "s": 10 + k, "c": ["@", "I"] if k else ["@"], "i": 1000 + 2 * i + k,
                 "z": "C"} for i, t in enumerate(minutes) for k in (0, 1)]
            self.quotes[sym] = [
                {"t": _iso(int(t) + 59_000, 9), "ax": "K", "ap": float(px[i]) + 0.02, "as": 1, "bx": "Q",
                 "bp": float(px[i]) - 0.02, "bs": 4, "c": ["R"], "z": "C"} for i, t in enumerate(minutes)]

    def __call__(self, req: Request) -> Reply:
        headers = {k.lower(): v for k, v in req.headers.items()}
        if headers.get("apca-api-key-id") != KEY_ID or headers.get("apca-api-secret-key") != SECRET:
            return Reply(401, {"message": "forbidden."})
        if req.query.get("feed") == "sip" and self.sip_forbidden is not None:
            return Reply(403, self.sip_forbidden)
        rate = {"X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "199", "X-RateLimit-Reset": "1704300000"}
        lo, hi = _parse(req.query["start"]), _parse(req.query["end"])
        limit = int(req.query.get("limit", 1000))
        offset = int(base64.b64decode(req.query["page_token"]).decode()) if "page_token" in req.query else 0
        parts = req.path.strip("/").split("/")
        if parts == ["v2", "stocks", "bars"]:
            symbols = sorted(req.query["symbols"].split(","))
            if any(not s.isalpha() for s in symbols):
                return Reply(422, {"code": 42210000, "message": f"invalid symbol: {symbols[0]}"})
            table = self.bars[req.query["timeframe"]]
            flat = [(s, r) for s in symbols for r in table.get(s, []) if lo <= _parse(r["t"]) <= hi]
            chunk = flat[offset:offset + limit]
            body: dict = {"bars": {}}
            for s, r in chunk:
                body["bars"].setdefault(s, []).append(r)
        else:
            sym, kind = parts[2], parts[3]
            rows = [r for r in getattr(self, kind).get(sym, []) if lo <= _parse(r["t"]) <= hi]
            chunk = rows[offset:offset + limit]
            body = {kind: chunk or None, "symbol": sym}
            flat = rows
        more = offset + limit < len(flat)
        body["next_page_token"] = base64.b64encode(str(offset + limit).encode()).decode() if more else None
        return Reply(200, body, headers=rate)


@pytest.fixture(scope="module")
def fake() -> AlpacaFake:
    return AlpacaFake()


@pytest.fixture
def server(fake):
    fake.sip_forbidden = None
    with ReplayServer(fake) as srv:
        yield srv


def make(server, **kw) -> AlpacaDataSource:
    opts = {"api_key": KEY_ID, "secret_key": SECRET, "base_url": server.url, "requests_per_minute": None,
            "retry": FAST_RETRY, "timeout": 15.0, "chunk_minutes": 30}
    opts.update(kw)
    return AlpacaDataSource(**opts)


def test_multi_symbol_pages_merge_per_symbol(server, fake):
    src = make(server, page_limit=500)
    bars = src.fetch_sync(["MSFT", "AAPL"], "2024-01-03T14:30:00Z", "2024-01-03T21:00:00Z", "1min")
    assert bars.height == 780
    assert bars.group_by("symbol").len().sort("symbol")["len"].to_list() == [390, 390]
    aapl = bars.filter(pl.col("symbol") == "AAPL")
    assert aapl["close"].to_list() == [r["c"] for r in fake.bars["1Min"]["AAPL"][390:780]]
    assert (aapl["ts_end"] - aapl["ts"]).dt.total_seconds().unique().to_list() == [60]
    first, second = _distinct(server.requests)
    assert second.query == {**first.query, "page_token": second.query["page_token"]}  # identical + token
    assert first.query["timeframe"] == "1Min" and first.query["symbols"] == "MSFT,AAPL"
    assert first.query["start"] == "2024-01-03T14:30:00.000000000Z"
    assert first.query["end"] == "2024-01-03T20:59:59.999999999Z"


def test_daily_bars_map_to_sessions(server):
    bars = make(server).fetch_sync(["AAPL"], "2024-01-02", "2024-01-06", "1d")
    sessions = get_calendar("XNYS").sessions("2024-01-02", "2024-01-06")
    assert bars["ts"].to_list() == sessions["open"].to_list()
    assert bars["ts_end"].to_list() == sessions["close"].to_list()
    assert bars["transactions"].to_list() == [900] * 4


def test_trades_nine_digit_timestamps_are_exact(server, fake):
    src = make(server)
    trades = src.fetch_kind_sync("trades", ["AAPL"], "2024-01-03T14:30:00Z", "2024-01-03T15:30:00Z")
    expected = sorted(_parse(r["t"]) for r in fake.trades["AAPL"]
                      if to_ns("2024-01-03T14:30:00Z") <= _parse(r["t"]) < to_ns("2024-01-03T15:30:00Z"))
    assert trades["ts"].dt.epoch("ns").to_list() == expected
    assert 1704292320123456789 in expected  # nine digits survived
    assert set(trades["conditions"].to_list()) == {"@", "@,I"}
    assert trades["exchange"].unique().to_list() == ["V"]
    assert all(r.path == "/v2/stocks/AAPL/trades" for r in server.requests)
    assert len(_distinct(server.requests)) == 2  # two 30-minute windows, asked concurrently


def test_quotes(server):
    quotes = make(server).fetch_kind_sync("quotes", ["MSFT"], "2024-01-03T14:30:00Z", "2024-01-03T14:35:00Z")
    assert quotes.height == 5
    row = quotes.select("bid_exchange", "ask_exchange", "bid_size", "ask_size").row(0)
    assert row == ("Q", "K", 4.0, 1.0)
    assert quotes["ts"].dt.epoch("ns")[0] == to_ns("2024-01-03T14:30:00Z") + 59_000


def test_empty_single_symbol_result_is_null(server):
    trades = make(server).fetch_kind_sync("trades", ["ZZZZ"], "2024-01-03T14:30:00Z", "2024-01-03T15:00:00Z")
    assert trades.height == 0 and "size" in trades.columns


def test_invalid_symbol(server):
    with pytest.raises(SymbolNotFoundError, match="invalid symbol"):
        make(server).fetch_sync(["BRK.B"], "2024-01-03", "2024-01-04", "1d")


@pytest.mark.parametrize("body", [
    {"message": "subscription does not permit querying recent SIP data"},
    {"code": 42210000, "message": "subscription does not permit querying recent SIP data"},
])
def test_sip_entitlement_403(server, fake, body):
    fake.sip_forbidden = body
    with pytest.raises(AuthenticationError, match="does not permit querying recent SIP"):
        make(server, feed="sip").fetch_sync(["AAPL"], "2024-01-03", "2024-01-04", "1d")
    assert make(server, feed="iex").fetch_sync(["AAPL"], "2024-01-03", "2024-01-04", "1d").height == 1
    assert server.requests[-1].query["feed"] == "iex"


def test_feed_and_adjustment_in_identity(server):
    assert make(server, feed="sip").cache_identity() != make(server, feed="iex").cache_identity()
    assert make(server).cache_identity() != make(server, adjustment="all").cache_identity()
    with pytest.raises(ConfigError, match="unknown feed"):
        make(server, feed="nasdaq")


def test_bad_keys(server):
    with pytest.raises(AuthenticationError) as info:
        make(server, secret_key="wrongSecretValue99").fetch_sync(["AAPL"], "2024-01-03", "2024-01-04", "1d")
    assert "wrongSecretValue99" not in str(info.value) and info.value.status == 401


def test_keys_from_environment(server, monkeypatch):
    monkeypatch.setenv("APCA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    src = Workspace().source("alpaca", cache=False, base_url=server.url, requests_per_minute=None)
    assert src.fetch_sync(["AAPL"], "2024-01-03", "2024-01-04", "1d").height == 1


def test_429_then_500_then_success(server):
    server.fail("/v2/stocks/bars",
                Reply(429, {"message": "too many requests."}, headers={"Retry-After": "0.1"}))
    server.fail("/v2/stocks/bars", Reply(502, "bad gateway"))
    assert make(server).fetch_sync(["AAPL"], "2024-01-03", "2024-01-04", "1d").height == 1
    assert len(server.requests) == 3


def test_timeout_then_truncated_json(server):
    server.fail("/v2/stocks/bars", Reply(200, {"bars": {}}, delay=1.0))
    server.fail("/v2/stocks/bars", Reply(200, b'{"bars": {"AAPL": [{"t": "2024-01-03T05:00:00Z", "o": 1'))
    with pytest.raises(ProviderError, match="truncated JSON"):
        make(server, timeout=0.3).fetch_sync(["AAPL"], "2024-01-03", "2024-01-04", "1d")


def test_page_failing_mid_range(server):
    server.fail("page_token=", Reply(500, "boom"), times=10)
    with pytest.raises(ProviderError, match="HTTP 500"):
        make(server, page_limit=100).fetch_sync(["AAPL"], "2024-01-03", "2024-01-04", "1min")


def test_secrets_never_logged(server, caplog):
    caplog.set_level(logging.DEBUG)
    server.fail("/v2/stocks/bars", Reply(503, f"echoing {SECRET}"), times=5)
    with pytest.raises(ProviderError) as info:
        make(server).fetch_sync(["AAPL"], "2024-01-03", "2024-01-04", "1d")
    for text in (caplog.text, str(info.value), repr(info.value), str(make(server).get_metadata())):
        assert SECRET not in text and KEY_ID not in text
    assert np.any(["HTTP Request" in m for m in caplog.messages])
