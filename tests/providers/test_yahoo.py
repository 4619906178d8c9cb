"""Yahoo chart API adapter against a local replay of /v8/finance/chart."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from provider_replay import FAST_RETRY, ReplayServer, Reply, Request

from backtape._time import NS_PER_SECOND, to_ns
from backtape.calendars import get_calendar
from backtape.errors import ProviderError, RateLimitError, SymbolNotFoundError, UnsupportedDataError
from backtape.sources import YahooDataSource

pytestmark = pytest.mark.network_local

NY = ZoneInfo("America/New_York")
NOT_FOUND = {"chart": {"result": None, "error": {"code": "Not Found",
                                                  "description": "No data found, symbol may be delisted"}}}


def _meta(interval: str) -> dict:
    return {"currency": "USD", "symbol": "AAPL", "exchangeName": "NMS", "instrumentType": "EQUITY",
            "gmtoffset": -18000, "timezone": "EST", "exchangeTimezoneName": "America/New_York",
            "regularMarketTime": 1704472200, "dataGranularity": interval, "range": "",
            "validRanges": ["1d", "5d", "1mo", "max"]}


def _daily() -> dict:
    sessions = get_calendar("XNYS").sessions("2024-01-02", "2024-01-06")
    stamps = [int(o) // NS_PER_SECOND for o in sessions["open"].dt.epoch("ns").to_list()]
    return {"meta": _meta("1d"), "timestamp": stamps,
            "events": {"dividends": {str(stamps[2]): {"amount": 0.24, "date": stamps[2]}},
                       "splits": {str(stamps[3]): {"date": stamps[3], "numerator": 4.0, "denominator": 1.0,
                                                   "splitRatio": "4:1"}}},
            "indicators": {"quote": [{"volume": [58414460, 58953100, None, 71983600],
                                      "open": [187.1500030517578, 184.22000122070312, 182.14999389648438,
                                               181.99000549316406],
                                      "low": [183.88999938964844, 183.42999267578125, 180.8800048828125,
                                              180.1699981689453],
                                      "high": [188.44000244140625, 185.8800018310547, 183.08999633789062,
                                               182.75999450683594],
                                      "close": [185.63999938964844, 184.25, 181.91000366699219,
                                                181.17999267578125]}],
                           "adjclose": [{"adjclose": [184.9, 183.5, 181.2, 180.5]}]}}


def _five_minute(p1: int, p2: int) -> dict:
    start = int(dt.datetime(2024, 1, 5, 9, 30, tzinfo=NY).timestamp())
    stamps = [start + 300 * i for i in range(78) if p1 <= start + 300 * i < p2]
    n = len(stamps)
    closes = [190.0 + i / 100 for i in range(n)]
    if n > 3:
        closes[3] = None  # a null inside the arrays
    return {"meta": _meta("5m"), "timestamp": stamps,
            "indicators": {"quote": [{"close": closes, "open": [190.0] * n, "high": [191.0] * n,
                                      "low": [189.0] * n, "volume": [1000] * n}]}}


def route(req: Request) -> Reply:
    symbol = req.path.rsplit("/", 1)[-1]
    if symbol != "AAPL":
        return Reply(404, NOT_FOUND)
    p1, p2 = int(req.query["period1"]), int(req.query["period2"])
    result = _daily() if req.query["interval"] == "1d" else _five_minute(p1, p2)
    return Reply(200, {"chart": {"result": [result], "error": None}})


@pytest.fixture
def server():
    with ReplayServer(route) as srv:
        yield srv


def make(server, now: str = "2024-02-01", **kw) -> YahooDataSource:
    opts = {"base_url": server.url, "requests_per_minute": None, "retry": FAST_RETRY, "timeout": 15.0,
            "clock": lambda: to_ns(now)}
    opts.update(kw)
    return YahooDataSource(**opts)


def test_daily_bars_stamped_at_open_and_nulls_dropped(server):
    bars = make(server).fetch_sync(["AAPL"], "2024-01-02", "2024-01-06", "1d")
    sessions = get_calendar("XNYS").sessions("2024-01-02", "2024-01-06")
    keep = [0, 1, 3]  # Jan 4 has a null volume: dropped, not filled
    assert bars["ts"].to_list() == [sessions["open"][i] for i in keep]
    assert bars["ts_end"].to_list() == [sessions["close"][i] for i in keep]
    assert bars["close"].to_list() == [185.63999938964844, 184.25, 181.17999267578125]
    q = server.requests[0].query
    assert (q["interval"], q["events"]) == ("1d", "div,splits")
    assert q["period1"] == str(to_ns("2024-01-02") // 10**9)


def test_adjust_all_uses_adjclose(server):
    bars = make(server, adjust="all").fetch_sync(["AAPL"], "2024-01-02", "2024-01-03", "1d")
    assert bars["close"].to_list() == [pytest.approx(184.9)]
    assert bars["open"][0] == pytest.approx(187.1500030517578 * 184.9 / 185.63999938964844)
    assert make(server).cache_identity() != make(server, adjust="all").cache_identity()


def test_unfinished_bars_are_dropped(server):
    now = "2024-01-05T18:00:00Z"  # Jan 5 session still open
    daily = make(server, now=now).fetch_sync(["AAPL"], "2024-01-02", "2024-01-06", "1d")
    assert daily["ts"].dt.epoch("ns").max() < to_ns("2024-01-05") and daily.height == 2
    intraday = make(server, now=now).fetch_sync(["AAPL"], "2024-01-05", "2024-01-06", "5min")
    assert intraday["ts_end"].max() <= dt.datetime(2024, 1, 5, 18, tzinfo=dt.UTC)
    assert intraday.height == (18 * 60 - (14 * 60 + 30)) // 5 - 1  # finished bars minus the null one


def test_intraday_nulls_and_bar_ends(server):
    bars = make(server).fetch_sync(["AAPL"], "2024-01-05", "2024-01-06", "5min")
    assert bars.height == 77
    assert bars["ts"][0] == dt.datetime(2024, 1, 5, 9, 30, tzinfo=NY)
    assert (bars["ts_end"] - bars["ts"]).dt.total_seconds().unique().to_list() == [300]


def test_corporate_actions_from_events(server):
    actions = make(server).fetch_kind_sync("actions", ["AAPL"], "2024-01-02", "2024-01-06")
    opens = get_calendar("XNYS").sessions("2024-01-02", "2024-01-06")["open"].to_list()
    assert actions.rows() == [("AAPL", opens[2], "dividend", 0.24), ("AAPL", opens[3], "split", 4.0)]


def test_unknown_symbol_is_404(server):
    with pytest.raises(SymbolNotFoundError, match="NOPE"):
        make(server).fetch_sync(["NOPE"], "2024-01-02", "2024-01-06", "1d")


def test_plain_text_429_exhausted(server):
    server.fail("/v8/finance/chart", Reply(429, "Too Many Requests", headers={"Content-Type": "text/plain"}),
                times=5)
    with pytest.raises(RateLimitError, match="Too Many Requests"):
        make(server).fetch_sync(["AAPL"], "2024-01-02", "2024-01-06", "1d")


def test_422_window_too_wide(server):
    server.fail("/v8/finance/chart", Reply(422, {"chart": {"result": None, "error": {
        "code": "Unprocessable Entity", "description": "1m data not available for startTime=1 and endTime=2. "
        "Only 8 days worth of 1m granularity data are allowed to be fetched per request."}}}))
    with pytest.raises(ProviderError, match=r"HTTP 422.*Only 8 days"):
        make(server).fetch_sync(["AAPL"], "2024-01-02", "2024-01-06", "1d")


def test_one_minute_requests_are_split_into_week_windows(server):
    make(server).fetch_sync(["AAPL"], "2024-01-01", "2024-01-20", "1min")
    assert len(server.requests) == 3
    # windows are fetched concurrently: arrival order is not fixed
    assert sorted(int(r.query["period1"]) for r in server.requests) == [
        to_ns(d) // 10**9 for d in ("2024-01-01", "2024-01-08", "2024-01-15")]


def test_unsupported(server):
    with pytest.raises(UnsupportedDataError):
        make(server).fetch_sync(["AAPL"], "2024-01-02", "2024-01-06", "4h")
    with pytest.raises(UnsupportedDataError):
        make(server, adjust="all").fetch_sync(["AAPL"], "2024-01-02", "2024-01-06", "5min")


def test_500_timeout_then_success_and_truncated(server):
    server.fail("/v8/finance/chart", Reply(500, "err"))
    server.fail("/v8/finance/chart", Reply(200, {}, delay=1.0))
    assert make(server, timeout=0.3).fetch_sync(["AAPL"], "2024-01-02", "2024-01-06", "1d").height == 3
    server.fail("/v8/finance/chart", Reply(200, b'{"chart":{"result":[{"meta":'))
    with pytest.raises(ProviderError, match=r"truncated JSON.*/v8/finance/chart/AAPL"):
        make(server).fetch_sync(["AAPL"], "2024-01-02", "2024-01-06", "1d")


def test_window_failing_mid_range(server):
    server.fail("/v8/finance/chart", Reply(500, "err"), times=10, skip=1)
    with pytest.raises(ProviderError, match="HTTP 500"):
        make(server, concurrency=1).fetch_sync(["AAPL"], "2024-01-01", "2024-01-20", "1min")
