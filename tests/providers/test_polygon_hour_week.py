"""Polygon hour and week aggregates: request paths, window stamps, and values against the base bars."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from polygon_fake import KEY, NY, PolygonFake
from provider_replay import FAST_RETRY, ReplayServer

from backtape.cache import CachedDataSource
from backtape.calendars import get_calendar
from backtape.sources import PolygonDataSource

pytestmark = pytest.mark.network_local


@pytest.fixture(scope="module")
def fake() -> PolygonFake:
    return PolygonFake(symbols=("AAPL",), start="2024-01-02", end="2024-01-20", page_size=50,
                       ticks=False)


def make(url: str) -> PolygonDataSource:
    return PolygonDataSource(api_key=KEY, base_url=url, requests_per_minute=None, retry=FAST_RETRY,
                             timeout=15.0)


@pytest.mark.parametrize(("frequency", "hours", "per_day"), [("1h", 1, 7), ("2h", 2, 4)])
def test_hour_bars(fake, frequency, hours, per_day):
    with ReplayServer(fake) as server:
        bars = make(server.url).fetch_sync(["AAPL"], "2024-01-03", "2024-01-05", frequency)
        assert {r.path.split("/range/")[1].rsplit("/", 2)[0] for r in server.requests} == {f"{hours}/hour"}
    assert bars.height == 2 * per_day
    assert (bars["ts_end"] - bars["ts"]).dt.total_hours().unique().to_list() == [hours]
    minutes = pl.DataFrame(fake.minute["AAPL"]).with_columns(
        pl.from_epoch("t", time_unit="ms").dt.replace_time_zone("UTC").alias("ts"))
    first = bars.row(0, named=True)
    # the 09:00 New York window holds the session's first minutes (09:30 onwards), aligned on the hour
    assert first["ts"] == dt.datetime(2024, 1, 3, 9, tzinfo=NY)
    inside = minutes.filter((pl.col("ts") >= first["ts"]) & (pl.col("ts") < first["ts_end"]))
    assert inside["ts"][0] == dt.datetime(2024, 1, 3, 9, 30, tzinfo=NY)
    assert first["volume"] == pytest.approx(inside["v"].sum())
    assert (first["open"], first["close"]) == (inside["o"][0], inside["c"][-1])
    assert first["high"] == inside["h"].max() and first["transactions"] == inside["n"].sum()


def test_week_bars_span_their_sessions(fake, tmp_path):
    with ReplayServer(fake) as server:
        cached = CachedDataSource(make(server.url), cache_dir=tmp_path / "cache")
        bars = cached.fetch_sync(["AAPL"], "2024-01-01", "2024-01-20", "1w")
        sent = len(server.requests)
        assert cached.fetch_sync(["AAPL"], "2024-01-01", "2024-01-20", "1w").equals(bars)
        assert len(server.requests) == sent  # through the cache, the repeat is free
        # from/to are New York dates: 2024-01-01T00:00Z is still Dec 31 there
        assert server.requests[0].path.endswith("/range/1/week/2023-12-31/2024-01-19")
    sessions = get_calendar("XNYS").sessions("2024-01-01", "2024-01-20")
    opens, closes = sessions["open"].to_list(), sessions["close"].to_list()
    # Jan 1 and Jan 15 are holidays: weeks of 4, 5 and 4 sessions
    assert bars["ts"].to_list() == [opens[0], opens[4], opens[9]]
    assert bars["ts_end"].to_list() == [closes[3], closes[8], closes[12]]
    daily = fake.daily["AAPL"]
    assert bars["volume"].to_list() == pytest.approx([sum(r["v"] for r in daily[a:b])
                                                      for a, b in ((0, 4), (4, 9), (9, 13))])
    assert bars["open"].to_list() == [daily[0]["o"], daily[4]["o"], daily[9]["o"]]
    assert bars["close"].to_list() == [daily[3]["c"], daily[8]["c"], daily[12]["c"]]
