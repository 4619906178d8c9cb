"""Storage: path encoding, hive layout read by DuckDB and Polars, compaction, the memory LRU."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest
from _upstream import CountingSource
from conftest import LATE
from hypothesis import given
from hypothesis import strategies as st

from backtape._time import NS_PER_DAY, to_ns
from backtape.cache import CachedDataSource, NeverStalePolicy
from backtape.cache.memory import MemoryLRU
from backtape.cache.store import COMPACT_AT, decode_component, encode_component
from backtape.errors import CacheError


def cached(up, path, **kw) -> CachedDataSource:
    return CachedDataSource(up, cache_dir=path, clock=lambda: LATE, freshness_policy=NeverStalePolicy(), **kw)


@given(st.text(min_size=1, max_size=20))
def test_encoding_is_reversible_and_path_safe(symbol) -> None:
    enc = encode_component(symbol)
    assert decode_component(enc) == symbol
    assert set(enc) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_%")


def test_names_too_long_for_a_path_are_refused() -> None:
    with pytest.raises(CacheError, match="too long"):
        encode_component("x" * 100)


def test_hostile_symbols_stay_inside_the_cache_and_never_collide(tmp_path) -> None:
    up = CountingSource()
    root = tmp_path / "cache"
    c = cached(up, root)
    hostile = ["../x", "a/b", "CON", "aux", "ü€", "..", "aapl", "AAPL", "x\\y", "%41"]
    got = c.fetch_sync(hostile, "2024-01-02", "2024-01-05", "1d")
    assert got.equals(up.bars(hostile, to_ns("2024-01-02"), to_ns("2024-01-05"), "1d"))
    files = list(tmp_path.rglob("*.parquet"))
    assert len(files) == len(hostile)
    assert all(f.resolve().is_relative_to(root.resolve()) for f in files)
    symbol_dirs = {p.name for f in files for p in f.parents if p.name.startswith("symbol=")}
    assert len(symbol_dirs) == len(hostile)
    assert not (tmp_path / "x").exists()


def test_duckdb_and_polars_read_the_cache_folder(tmp_path) -> None:
    up = CountingSource()
    c = cached(up, tmp_path)
    symbols = ["AAPL", "BTC/USD"]
    c.fetch_sync(symbols, "2024-01-01", "2024-03-01", "1d")
    truth = up.bars(symbols, to_ns("2024-01-01"), to_ns("2024-03-01"), "1d")
    lazy = pl.scan_parquet(tmp_path / "bars" / "**" / "*.parquet", hive_partitioning=True)
    via_polars = lazy.select(truth.columns).sort("symbol", "ts").collect()
    assert via_polars.equals(truth)
    glob = (tmp_path / "bars" / "**" / "*.parquet").as_posix()
    via_duck = duckdb.sql(f"SELECT symbol, decade, count(*) AS n FROM read_parquet('{glob}', "
                          "hive_partitioning = true) GROUP BY ALL ORDER BY ALL").fetchall()
    assert via_duck == [("AAPL", 2020, 41), ("BTC/USD", 2020, 41)]  # daily bars: one file a decade


def test_small_appended_files_are_compacted(tmp_path) -> None:
    up = CountingSource("24/7")
    c = cached(up, tmp_path)
    start = to_ns("2024-01-01")
    for day in range(20):  # twenty one-day appends into the January partition
        c.fetch_sync(["BTC"], start + day * NS_PER_DAY, start + (day + 1) * NS_PER_DAY, "1h")
    files = list((tmp_path / "bars").rglob("*.parquet"))
    assert 1 <= len(files) <= COMPACT_AT
    assert len(c._index.files(c._key("bars", "BTC", "1h"))) == len(files)
    fresh = cached(up, tmp_path, memory_bytes=0)
    got = fresh.fetch_sync(["BTC"], start, start + 20 * NS_PER_DAY, "1h")
    assert got.equals(up.bars(["BTC"], start, start + 20 * NS_PER_DAY, "1h"))
    assert got.height == 480


def test_lru_is_bounded_in_bytes_and_evicts_least_recent() -> None:
    frame = pl.DataFrame({"x": range(1000)})  # 8000 bytes
    size = int(frame.estimated_size())
    lru = MemoryLRU(capacity=3 * size)
    for k in "abc":
        lru.put(k, frame)
    assert lru.get("a") is not None  # a is now the most recent
    lru.put("d", frame)
    assert lru.get("b") is None and lru.get("a") is not None and lru.get("d") is not None
    assert lru.size <= 3 * size and len(lru) == 3
    lru.put("huge", pl.DataFrame({"x": range(10_000)}))  # larger than the capacity: not kept
    assert lru.get("huge") is None and len(lru) == 3
    assert lru.invalidate(lambda k: k in ("a", "c")) == 2 and lru.size == size


def test_memory_is_invalidated_on_write(tmp_path) -> None:
    up = CountingSource()
    c = cached(up, tmp_path)
    c.fetch_sync(["AAPL"], "2024-01-01", "2024-01-10", "1d")
    assert len(c._memory) == 1
    c.fetch_sync(["MSFT"], "2024-01-01", "2024-01-10", "1d")
    c.fetch_sync(["AAPL"], "2024-01-10", "2024-01-20", "1d")  # writes AAPL's January partition
    keys = {k[0].symbol for k in c._memory._items}
    assert keys == {"AAPL", "MSFT"}
    got = c.fetch_sync(["AAPL"], "2024-01-01", "2024-01-20", "1d")
    assert got.equals(up.bars(["AAPL"], to_ns("2024-01-01"), to_ns("2024-01-20"), "1d"))
