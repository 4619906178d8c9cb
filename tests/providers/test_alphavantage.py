"""Alpha Vantage adapter against a local replay (HTTP 200 for everything, string values, ET keys)."""
# ruff: noqa: E501  (provider message bodies are kept verbatim)

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

import pytest
from provider_replay import FAST_RETRY, ReplayServer, Reply, Request

from backtape.calendars import get_calendar
from backtape.errors import (
    AuthenticationError,
    ProviderError,
    RateLimitError,
    SymbolNotFoundError,
    UnsupportedDataError,
)
from backtape.sources import AlphaVantageDataSource
from backtape.workspace import Workspace

pytestmark = pytest.mark.network_local

KEY = "AVKEYSECRET12345"
NY = ZoneInfo("America/New_York")
INVALID_KEY = {"Error Message": "the parameter apikey is invalid or missing. Please claim your free API key on "
                                "(https://www.alphavantage.co/support/#api-key). It should take less than 20 "
                                "seconds."}
INVALID_CALL = {"Error Message": "Invalid API call. Please retry or visit the documentation "
                                 "(https://www.alphavantage.co/documentation/) for TIME_SERIES_DAILY."}
BURST = {"Information": "Thank you for using Alpha Vantage! Please consider spreading out your free API "
                        "requests more sparingly (1 request per second). You may subscribe to any of the "
                        "premium plans at https://www.alphavantage.co/premium/ to lift the free key rate limit "
                        "(25 requests per day), raise the per-second burst limit, and instantly unlock all "
                        "premium endpoints"}
DAILY_QUOTA = {"Information": "Thank you for using Alpha Vantage! Our standard API rate limit is 25 requests per "
                              "day. Please subscribe to any of the premium plans at "
                              "https://www.alphavantage.co/premium/ to instantly remove all daily rate limits."}
PREMIUM = {"Information": "Thank you for using Alpha Vantage! This is a premium endpoint. You may subscribe to "
                          "any of the premium plans at https://www.alphavantage.co/premium/ to instantly unlock "
                          "all premium endpoints"}


def _daily(adjusted: bool) -> dict:
    days = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
    series = {}
    for i, d in enumerate(reversed(days)):  # newest first, as served
        rec = {"1. open": f"{160 + i:.4f}", "2. high": f"{162 + i:.4f}", "3. low": f"{159 + i:.4f}",
               "4. close": f"{161 + i}.0"}
        if adjusted:
            rec.update({"5. adjusted close": f"{(161 + i) / 2}", "6. volume": str(4053093 + i),
                        "7. dividend amount": "1.6600" if d == "2024-01-03" else "0.0000",
                        "8. split coefficient": "2.0" if d == "2024-01-04" else "1.0"})
        else:
            rec["5. volume"] = str(4053093 + i)
        series[d] = rec
    info = "Daily Time Series with Splits and Dividend Events" if adjusted else \
        "Daily Prices (open, high, low, close) and Volumes"
    return {"Meta Data": {"1. Information": info, "2. Symbol": "IBM", "3. Last Refreshed": days[-1],
                          "4. Output Size": "Full size", "5. Time Zone": "US/Eastern"},
            "Time Series (Daily)": series}


def _intraday(month: str) -> dict:
    day = {"2024-01": dt.date(2024, 1, 31), "2024-02": dt.date(2024, 2, 1)}.get(month)
    series = {}
    if day is not None:
        t = dt.datetime(day.year, day.month, day.day, 19, 55)
        while t.hour >= 4:
            if t.minute != 50:  # bars without trades are absent
                series[t.strftime("%Y-%m-%d %H:%M:%S")] = {
                    "1. open": "248.3900", "2. high": "248.3900", "3. low": "248.2100", "4. close": "248.3000",
                    "5. volume": "86"}
            t -= dt.timedelta(minutes=5)
    return {"Meta Data": {"1. Information": "Intraday (5min) open, high, low, close prices and volume",
                          "2. Symbol": "IBM", "3. Last Refreshed": "2024-02-01 19:55:00", "4. Interval": "5min",
                          "5. Output Size": "Full size", "6. Time Zone": "US/Eastern"},
            "Time Series (5min)": series}


def route(req: Request) -> Reply:
    q = req.query
    if q.get("apikey") != KEY:
        return Reply(200, INVALID_KEY)
    if q.get("symbol") != "IBM":
        return Reply(200, INVALID_CALL)
    if q["function"] == "TIME_SERIES_DAILY":
        return Reply(200, _daily(False))
    if q["function"] == "TIME_SERIES_DAILY_ADJUSTED":
        return Reply(200, _daily(True))
    if q["function"] == "TIME_SERIES_INTRADAY":
        return Reply(200, _intraday(q["month"]))
    return Reply(200, INVALID_CALL)


@pytest.fixture
def server():
    with ReplayServer(route) as srv:
        yield srv


def make(server, **kw) -> AlphaVantageDataSource:
    opts = {"api_key": KEY, "base_url": server.url, "requests_per_minute": None, "retry": FAST_RETRY,
            "timeout": 15.0}
    opts.update(kw)
    return AlphaVantageDataSource(**opts)


def test_daily_string_values_map_to_sessions(server):
    bars = make(server).fetch_sync(["IBM"], "2024-01-02", "2024-01-06", "1d")
    sessions = get_calendar("XNYS").sessions("2024-01-02", "2024-01-06")
    assert bars["ts"].to_list() == sessions["open"].to_list()
    assert bars["ts_end"].to_list() == sessions["close"].to_list()
    assert bars["close"].to_list() == [164.0, 163.0, 162.0, 161.0]
    assert bars["volume"].to_list() == [4053096.0, 4053095.0, 4053094.0, 4053093.0]
    q = server.requests[0].query
    assert (q["function"], q["outputsize"], q["symbol"]) == ("TIME_SERIES_DAILY", "full", "IBM")


def test_daily_adjusted_scales_prices(server):
    bars = make(server, adjusted=True).fetch_sync(["IBM"], "2024-01-02", "2024-01-03", "1d")
    assert server.requests[0].query["function"] == "TIME_SERIES_DAILY_ADJUSTED"
    assert bars["close"].to_list() == [82.0] and bars["open"].to_list() == [163.0 / 2]
    assert make(server).cache_identity() != make(server, adjusted=True).cache_identity()


def test_intraday_months_and_eastern_bar_starts(server):
    bars = make(server).fetch_sync(["IBM"], "2024-01-31T09:00:00Z", "2024-02-02T06:00:00Z", "5min")
    # one request per month, sent concurrently: they may arrive in either order
    assert sorted({r.query["month"] for r in server.requests}) == ["2024-01", "2024-02"]
    assert all(r.query["outputsize"] == "full" and r.query["interval"] == "5min" for r in server.requests)
    first = bars.row(0, named=True)
    assert first["ts"] == dt.datetime(2024, 1, 31, 4, 0, tzinfo=NY)  # 04:00 ET = 09:00Z, a bar start
    assert (first["ts_end"] - first["ts"]) == dt.timedelta(minutes=5)
    last = bars.row(-1, named=True)
    assert last["ts"] == dt.datetime(2024, 2, 1, 19, 55, tzinfo=NY)
    assert bars.height == 2 * (16 * 12 - 16)  # 04:00..19:55 without the :50 bars


def test_corporate_actions_from_daily_adjusted(server):
    actions = make(server).fetch_kind_sync("actions", ["IBM"], "2024-01-02", "2024-01-06")
    assert actions["action"].to_list() == ["dividend", "split"]
    assert actions["value"].to_list() == [1.66, 2.0]
    assert actions["ts"][0] == dt.datetime(2024, 1, 3, 9, 30, tzinfo=NY)


def test_unsupported_frequency(server):
    with pytest.raises(UnsupportedDataError, match="alphavantage serves"):
        make(server).fetch_sync(["IBM"], "2024-01-02", "2024-01-06", "2h")


def test_invalid_key_with_http_200(server):
    with pytest.raises(AuthenticationError, match="apikey is invalid") as info:
        make(server, api_key="WRONGKEY99").fetch_sync(["IBM"], "2024-01-02", "2024-01-06", "1d")
    assert "WRONGKEY99" not in str(info.value)


def test_unknown_symbol(server):
    with pytest.raises(SymbolNotFoundError, match="'NOPE'"):
        make(server).fetch_sync(["NOPE"], "2024-01-02", "2024-01-06", "1d")


def test_burst_limit_is_retried(server):
    server.fail("TIME_SERIES_DAILY", Reply(200, BURST))
    src = make(server, retry=FAST_RETRY.__class__(attempts=3, backoff=0.01, max_retry_after=0.05))
    assert src.fetch_sync(["IBM"], "2024-01-02", "2024-01-06", "1d").height == 4
    assert len(server.requests) == 2


def test_legacy_note_is_retried(server):
    server.fail("TIME_SERIES_DAILY", Reply(200, {"Note": "Thank you for using Alpha Vantage! Our standard API "
                                                         "call frequency is 5 calls per minute and 500 calls "
                                                         "per day."}))
    src = make(server, retry=FAST_RETRY.__class__(attempts=3, backoff=0.01, max_retry_after=0.05))
    assert src.fetch_sync(["IBM"], "2024-01-02", "2024-01-06", "1d").height == 4


def test_daily_quota_is_not_retried(server):
    server.fail("TIME_SERIES_DAILY", Reply(200, DAILY_QUOTA), times=5)
    with pytest.raises(RateLimitError, match="daily quota"):
        make(server).fetch_sync(["IBM"], "2024-01-02", "2024-01-06", "1d")
    assert len(server.requests) == 1


def test_premium_endpoint(server):
    server.fail("TIME_SERIES_DAILY_ADJUSTED", Reply(200, PREMIUM))
    with pytest.raises(AuthenticationError, match="premium endpoint"):
        make(server, adjusted=True).fetch_sync(["IBM"], "2024-01-02", "2024-01-06", "1d")


def test_500_timeout_then_success(server):
    server.fail("TIME_SERIES_DAILY", Reply(500, "oops"))
    server.fail("TIME_SERIES_DAILY", Reply(200, {}, delay=1.0))
    assert make(server, timeout=0.3).fetch_sync(["IBM"], "2024-01-02", "2024-01-06", "1d").height == 4


def test_month_failing_mid_range(server):
    server.fail("month=2024-02", Reply(200, b'{"Meta Data": {"1. Information": "Intra'), times=5)
    with pytest.raises(ProviderError, match="truncated JSON") as info:
        make(server).fetch_sync(["IBM"], "2024-01-31", "2024-02-02", "5min")
    assert KEY not in str(info.value) and "apikey=***" in str(info.value)


def test_key_in_query_never_logged(server, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("ALPHAVANTAGE_API_KEY", KEY)
    server.fail("TIME_SERIES_DAILY", Reply(503, "busy"), times=5)
    with pytest.raises(ProviderError) as info:
        Workspace().source("alphavantage", cache=False, base_url=server.url, requests_per_minute=None,
                           retry=FAST_RETRY).fetch_sync(["IBM"], "2024-01-02", "2024-01-06", "1d")
    assert "apikey=" in caplog.text and KEY not in caplog.text
    assert KEY not in str(info.value)
