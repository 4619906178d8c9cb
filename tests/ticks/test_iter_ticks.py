"""``DataPortal.iter_ticks`` / ``iter_classified``: streamed output equals the whole-range merge,
memory stays bounded (batch size, chunks held, fetches ahead), the tie rule holds across chunk
boundaries, and nothing after the clock is ever yielded."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtape._time import NS_PER_HOUR, NS_PER_MINUTE, NS_PER_SECOND, check_range, to_ns
from backtape.errors import ConfigError, LookAheadError
from backtape.portal import DataPortal, DataRequirement
from backtape.schema import TS, conform, empty
from backtape.sources.base import DataSource, DataSourceMetadata, SourceCapabilities
from backtape.sources.sample import SampleDataSource
from backtape.sources.synthetic import SyntheticDataSource
from backtape.ticks import classify_trades, cumulative_delta, merge_streams


class _Recording(DataSource):
    """Wraps a source: records every tick fetch and keeps a weak reference to each frame it returns."""

    name = "recording"

    def __init__(self, inner: DataSource) -> None:
        self.inner = inner
        self.calls: list[tuple[str, int, int]] = []
        self.rows: list[int] = []
        self.frames: list[tuple[str, weakref.ref]] = []

    async def fetch(self, symbols, start, end, frequency="1d") -> pl.DataFrame:
        return await self.inner.fetch(symbols, start, end, frequency)

    async def _ticks(self, kind: str, symbols, start, end) -> pl.DataFrame:
        s, e = check_range(start, end)
        self.calls.append((kind, s, e))
        frame = await self.inner.fetch_kind(kind, symbols, start, end)
        self.rows.append(frame.height)
        self.frames.append((kind, weakref.ref(frame)))
        return frame

    async def fetch_trades(self, symbols, start, end) -> pl.DataFrame:
        return await self._ticks("trades", symbols, start, end)

    async def fetch_quotes(self, symbols, start, end) -> pl.DataFrame:
        return await self._ticks("quotes", symbols, start, end)

    def get_metadata(self) -> DataSourceMetadata:
        return self.inner.get_metadata()

    def live_frames(self) -> dict[str, int]:
        """Frames returned by this source still referenced somewhere, per kind."""
        gc.collect()
        out = {"trades": 0, "quotes": 0}
        for kind, ref in self.frames:
            out[kind] += ref() is not None
        return out


class _Frames(DataSource):
    """Serves fixed trades and quotes frames, 24/7, half-open ranges on ``ts``."""

    name = "frames"

    def __init__(self, trades: pl.DataFrame, quotes: pl.DataFrame) -> None:
        self.frames = {"trades": trades, "quotes": quotes}

    def _serve(self, kind: str, symbols, start, end) -> pl.DataFrame:
        s, e = check_range(start, end)
        ts = pl.col("ts").dt.epoch("ns")
        return self.frames[kind].filter(pl.col("symbol").is_in(list(symbols)) & (ts >= s) & (ts < e))

    async def fetch(self, symbols, start, end, frequency="1min") -> pl.DataFrame:
        return empty("bars")

    async def fetch_trades(self, symbols, start, end) -> pl.DataFrame:
        return self._serve("trades", symbols, start, end)

    async def fetch_quotes(self, symbols, start, end) -> pl.DataFrame:
        return self._serve("quotes", symbols, start, end)

    def get_metadata(self) -> DataSourceMetadata:
        caps = SourceCapabilities(kinds=frozenset({"bars", "trades", "quotes"}), frequencies=("1min",))
        return DataSourceMetadata("frames", "test", "in-memory frames", "24/7", caps)


BTC_START, BTC_END = to_ns("2024-08-08T23:50Z"), to_ns("2024-08-09T00:05Z")


def _portal(source: DataSource, clock: int) -> DataPortal:
    portal = DataPortal(source, calendar="24/7")
    portal.set_clock(clock)
    return portal


def _whole(source: DataSource, symbol: str, start: int, end: int) -> pl.DataFrame:
    trades = source.fetch_kind_sync("trades", symbol, start, end)
    quotes = source.fetch_kind_sync("quotes", symbol, start, end)
    return merge_streams(trades, quotes)


@pytest.fixture(scope="module")
def btc_merged() -> pl.DataFrame:
    return _whole(SampleDataSource(), "BTCUSDT", BTC_START, BTC_END)


def test_binance_sample_streams_exactly_the_whole_merge_in_small_batches(btc_merged) -> None:
    source = _Recording(SampleDataSource())
    stream = _portal(source, BTC_END).iter_ticks("BTCUSDT", BTC_START, BTC_END, batch_rows=1_000,
                                                 chunk="1min")
    batches = list(stream)
    assert btc_merged.height > 30_000
    assert pl.concat(batches).equals(btc_merged)
    assert stream.max_batch_rows == max(b.height for b in batches) == 1_000
    assert stream.done
    # one fetch per kind per minute of the range, none repeated
    assert stream.chunks_fetched == len(source.calls) == 2 * 15
    assert len(set(source.calls)) == len(source.calls)


def test_memory_is_bounded_chunks_are_fetched_on_demand_and_released(btc_merged) -> None:
    source = _Recording(SampleDataSource())
    stream = _portal(source, BTC_END).iter_ticks("BTCUSDT", BTC_START, BTC_END, batch_rows=1_000,
                                                 chunk="1min")
    seen = 0
    for batch in stream:
        seen += 1
        last = int(batch["ts"].dt.epoch("ns")[-1])
        # at most one non-empty chunk per kind fetched past the minute of the batch's last event
        # (empty chunks are skipped over: the merge must see the next event of each kind)
        ahead = [k for (k, s, _), n in zip(source.calls, source.rows, strict=True)
                 if n and s > last // NS_PER_MINUTE * NS_PER_MINUTE]
        assert ahead.count("trades") <= 1 and ahead.count("quotes") <= 1, ahead
        if seen % 10 == 0:
            live = source.live_frames()
            assert live["trades"] <= 2 and live["quotes"] <= 2, live
    assert seen >= btc_merged.height // 1_000
    del stream
    assert source.live_frames() == {"trades": 0, "quotes": 0}


def test_liquid_chunks_shrink_towards_chunk_rows_and_output_is_unchanged(btc_merged) -> None:
    source = _Recording(SampleDataSource())
    stream = _portal(source, BTC_END).iter_ticks("BTCUSDT", BTC_START, BTC_END, batch_rows=4_000,
                                                 chunk="1h", chunk_rows=3_000)
    assert pl.concat(list(stream)).equals(btc_merged)
    spans = [e - s for k, s, e in source.calls if k == "trades"]
    assert spans[0] >= 10 * NS_PER_MINUTE  # the first chunk is the hour (cut at the range)
    assert min(spans) < 5 * NS_PER_MINUTE  # then shorter chunks once a chunk held too many rows
    rows = [ref for k, ref in source.frames if k == "trades"]
    assert len(rows) == len(spans)


def test_synthetic_ticks_over_two_days_equal_the_whole_merge() -> None:
    source = SyntheticDataSource(seed=3, calendar="24/7", trades_per_minute=5, quotes_per_minute=9)
    start, end = to_ns("2024-03-09T22:00Z"), to_ns("2024-03-11T01:00Z")
    expected = _whole(source, "ETH", start, end)
    stream = _portal(source, end).iter_ticks("ETH", start, end, batch_rows=7_777, chunk="1d")
    got = pl.concat(list(stream))
    assert got.height == expected.height == 27 * 60 * (5 + 9)
    assert got.equals(expected)
    assert stream.max_batch_rows == 7_777
    assert stream.chunks_fetched == 2 * 3  # 22:00-24:00, 2024-03-10, 00:00-01:00; per kind


def test_trades_only_and_quotes_only_streams() -> None:
    source = SyntheticDataSource(seed=1, calendar="24/7")
    start, end = to_ns("2024-01-01"), to_ns("2024-01-01T03:00Z")
    portal = _portal(source, end)
    trades = pl.concat(list(portal.iter_ticks("X", start, end, ("trades",), batch_rows=999, chunk="1h")))
    expected = merge_streams(source.fetch_kind_sync("trades", "X", start, end), empty("quotes"))
    assert trades.equals(expected)
    quotes = pl.concat(list(portal.iter_ticks("X", start, end, ["quotes"], chunk="1h")))
    assert set(quotes["kind"].cast(pl.String).unique()) == {"quote"}
    assert quotes.height == source.fetch_kind_sync("quotes", "X", start, end).height
    with pytest.raises(ConfigError, match="kinds"):
        portal.iter_ticks("X", start, end, ("bars",))


def _tie_frames(stamps: list[int], kinds: list[bool]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Trades and quotes on the given (sorted) stamps; ``kinds[i]`` True = trade. Prices identify rows."""
    ts = np.array(stamps, dtype=np.int64)
    is_trade = np.array(kinds, dtype=bool)
    n = np.arange(len(ts), dtype=np.float64)
    trades = pl.DataFrame({"symbol": "T", "ts": ts[is_trade], "price": 100 + n[is_trade],
                           "size": 1.0 + n[is_trade]}).with_columns(pl.col("ts").cast(TS))
    quotes = pl.DataFrame({"symbol": "T", "ts": ts[~is_trade], "bid": 99.5 + n[~is_trade],
                           "ask": 100.5 + n[~is_trade], "bid_size": 1.0, "ask_size": 1.0}
                          ).with_columns(pl.col("ts").cast(TS))
    return conform(trades, "trades"), conform(quotes, "quotes")


BASE = to_ns("2024-05-01")


@settings(max_examples=40, deadline=None)
@given(
    offsets=st.lists(st.sampled_from([0, 1, 59, 60, 61, 119, 120, 121, 180]), min_size=1, max_size=60),
    data=st.data(),
    batch_rows=st.integers(1, 7),
)
def test_tie_rule_holds_across_chunk_and_batch_boundaries(offsets, data, batch_rows) -> None:
    # stamps pile up exactly on the 1-minute chunk boundaries (60 s, 120 s, 180 s)
    stamps = sorted(BASE + o * NS_PER_SECOND for o in offsets)
    kinds = data.draw(st.lists(st.booleans(), min_size=len(stamps), max_size=len(stamps)))
    trades, quotes = _tie_frames(stamps, kinds)
    source = _Frames(trades, quotes)
    end = BASE + 4 * NS_PER_MINUTE
    portal = _portal(source, end)
    got = list(portal.iter_ticks("T", BASE, end, batch_rows=batch_rows, chunk="1min"))
    merged = merge_streams(trades, quotes)
    assert pl.concat(got).equals(merged) if got else merged.height == 0
    # the rule itself: within equal timestamps every trade precedes every quote
    for _, group in merged.group_by("ts", maintain_order=True):
        k = group["kind"].cast(pl.String).to_list()
        assert k == sorted(k, key=lambda x: x != "trade")
    # and streamed classification equals the whole-range classifier
    streamed = list(portal.iter_classified("T", BASE, end, batch_rows=batch_rows, chunk="1min"))
    whole = cumulative_delta(classify_trades(trades, quotes))
    if trades.height:
        out = pl.concat(streamed)
        assert out["side"].to_list() == whole["side"].to_list()
        assert out["cum_delta"].to_list() == pytest.approx(whole["cum_delta"].to_list())


def test_iter_classified_on_the_binance_sample_equals_whole_range_classification() -> None:
    source = SampleDataSource()
    portal = _portal(source, BTC_END)
    trades = source.fetch_kind_sync("trades", "BTCUSDT", BTC_START, BTC_END)
    quotes = source.fetch_kind_sync("quotes", "BTCUSDT", BTC_START, BTC_END)
    whole = cumulative_delta(classify_trades(trades, quotes))
    got = pl.concat(list(portal.iter_classified("BTCUSDT", BTC_START, BTC_END, batch_rows=2_000,
                                                chunk="1min")))
    assert got.height == whole.height == trades.height
    assert got["side"].to_list() == whole["side"].to_list()
    assert got["cum_delta"][-1] == pytest.approx(whole["cum_delta"][-1])
    ticked = pl.concat(list(portal.iter_classified("BTCUSDT", BTC_START, BTC_END, quotes=False)))
    assert ticked["side"].to_list() == classify_trades(trades, empty("quotes"))["side"].to_list()


def test_no_look_ahead(btc_merged) -> None:
    source = SampleDataSource()
    clock = to_ns("2024-08-08T23:57:00Z")
    portal = _portal(source, clock)
    with pytest.raises(LookAheadError, match="clock"):
        portal.iter_ticks("BTCUSDT", BTC_START, clock + 2)
    # end=None: through the clock, events stamped at the clock itself included (as get_ticks)
    upto = pl.concat(list(portal.iter_ticks("BTCUSDT", BTC_START, batch_rows=3_000, chunk="1min")))
    ts = pl.col("ts").dt.epoch("ns")
    assert upto.equals(btc_merged.filter(ts <= clock))
    assert upto.equals(pl.concat(list(portal.iter_ticks("BTCUSDT", BTC_START, clock + 1))))


def test_follow_clock_yields_only_up_to_the_moving_clock_and_resumes() -> None:
    source = SyntheticDataSource(seed=5, calendar="24/7", trades_per_minute=4, quotes_per_minute=6)
    start, end = to_ns("2024-02-01"), to_ns("2024-02-01T02:00Z")
    expected = _whole(source, "Z", start, end)
    portal = _portal(source, start)
    stream = portal.iter_ticks("Z", start, end, batch_rows=50, chunk="1h", follow_clock=True)
    parts = []
    ts = pl.col("ts").dt.epoch("ns")
    for step in range(1, 25):
        clock = start + step * 5 * NS_PER_MINUTE + 17
        portal.set_clock(clock)
        got = list(stream)
        assert all(int(b["ts"].dt.epoch("ns").max()) <= clock for b in got)
        parts.extend(got)
        assert pl.concat(parts).equals(expected.filter(ts <= clock))
        assert stream.done == (clock >= end)
    assert stream.done and pl.concat(parts).equals(expected)


def test_preloaded_ticks_are_sliced_from_memory_not_fetched_again() -> None:
    inner = SyntheticDataSource(seed=2, calendar="24/7")
    source = _Recording(inner)
    start, end = to_ns("2024-06-03T10:00Z"), to_ns("2024-06-03T14:00Z")
    portal = DataPortal(source)
    portal.load_data(start, end, ["Q"], [DataRequirement("trades", "1min", 0),
                                         DataRequirement("quotes", "1min", 0)])
    assert portal.store.rows == 0  # tick requirements only: no bars fetched
    fetched = len(source.calls)
    portal.set_clock(end)
    stream = portal.iter_ticks("Q", start, end, batch_rows=10_000, chunk="1h")
    got = pl.concat(list(stream))
    assert stream.chunks_fetched == 0 and len(source.calls) == fetched == 2
    assert got.equals(_whole(inner, "Q", start, end))
    # a range reaching outside what was loaded goes to the source
    before = portal.iter_ticks("Q", start - NS_PER_HOUR, end, chunk="1h")
    assert pl.concat(list(before)).equals(_whole(inner, "Q", start - NS_PER_HOUR, end))
    assert before.chunks_fetched == 2  # only the 09:00 hour, per kind; the rest is in memory


def test_a_symbol_not_preloaded_is_fetched_even_inside_the_loaded_range() -> None:
    inner = SyntheticDataSource(seed=4, calendar="24/7")
    source = _Recording(inner)
    start, end = to_ns("2024-06-03T10:00Z"), to_ns("2024-06-03T11:00Z")
    portal = DataPortal(source)
    portal.load_data(start, end, ["Q"], [DataRequirement("trades", "1min", 0)])
    portal.set_clock(end)
    stream = portal.iter_ticks("OTHER", start, end, ("trades",))
    got = pl.concat(list(stream))
    assert stream.chunks_fetched == 1
    assert got.height == inner.fetch_kind_sync("trades", "OTHER", start, end).height > 0


def test_a_kind_the_source_lacks_is_refused_at_the_call() -> None:
    from backtape.errors import UnsupportedDataError

    class _TradesOnly(_Frames):
        def get_metadata(self) -> DataSourceMetadata:
            caps = SourceCapabilities(kinds=frozenset({"bars", "trades"}), frequencies=("1min",))
            return DataSourceMetadata("trades-only", "test", "trades only", "24/7", caps)

    trades, quotes = _tie_frames([BASE, BASE + 1], [True, True])
    portal = _portal(_TradesOnly(trades, quotes), BASE + NS_PER_MINUTE)
    with pytest.raises(UnsupportedDataError, match="does not provide quotes"):
        portal.iter_ticks("T", BASE, BASE + 10)
    assert pl.concat(list(portal.iter_ticks("T", BASE, BASE + 10, ("trades",)))).height == 2
