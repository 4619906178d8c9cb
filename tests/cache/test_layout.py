"""Partitions sized by frequency, and the one-time rewrite of caches in the old month-only layout."""

from __future__ import annotations

import sqlite3

import polars as pl
import pytest
from _upstream import CountingSource
from conftest import LATE

from backtape._time import to_ns
from backtape.cache import CachedDataSource, NeverStalePolicy
from backtape.cache.index import Change, CoverageIndex
from backtape.cache.store import PartitionStore, partition_unit


def cached(up, path, **kw) -> CachedDataSource:
    return CachedDataSource(up, cache_dir=path, clock=lambda: LATE, freshness_policy=NeverStalePolicy(), **kw)


def test_partition_sizes_suit_the_frequency() -> None:
    assert partition_unit("bars", "1min") == partition_unit("bars", "15min") == "month"
    assert partition_unit("bars", "1h") == partition_unit("bars", "4h") == "year"
    assert partition_unit("bars", "1d") == partition_unit("bars", "1w") == "decade"
    assert partition_unit("trades") == "day" and partition_unit("actions") == "year"


def test_twenty_years_of_daily_bars_are_three_files_per_symbol(tmp_path) -> None:
    up = CountingSource()
    c = cached(up, tmp_path)
    c.fetch_sync(["AAPL", "MSFT"], "2000-01-01", "2020-01-01", "1d")
    files = sorted(p.parent.name for p in (tmp_path / "bars").rglob("*.parquet"))
    assert files == ["decade=2000", "decade=2000", "decade=2010", "decade=2010"]


def _old_cache(tmp_path, up) -> pl.DataFrame:
    c = cached(up, tmp_path)
    truth = c.fetch_sync(["AAPL", "BTC"], "2023-11-01", "2024-03-01", "1d")
    c._index.close()
    # make it an old cache: month partitions for daily bars (split without a frequency, as the first
    # layout did for every bar), and no layout mark in the index
    index, store = CoverageIndex(tmp_path / "index.sqlite"), PartitionStore(tmp_path)
    for key in index.cache_keys():
        files = index.files(key)
        rows = store.read(key.kind, files)
        added = [store.write(key, part, frame) for part, frame in store.split(key.kind, rows).items()]
        index.commit(Change(added=added, removed=files))
        store.delete(files)
    index.close()
    with sqlite3.connect(tmp_path / "index.sqlite") as con:
        con.execute("DELETE FROM meta WHERE k = 'layout'")
    months = {p.parent.name for p in (tmp_path / "bars").rglob("*.parquet")}
    assert months == {"month=2023-11", "month=2023-12", "month=2024-01", "month=2024-02"}
    return truth


def test_an_old_month_layout_is_rewritten_once_without_refetching(tmp_path) -> None:
    up = CountingSource()
    truth = _old_cache(tmp_path, up)
    calls = len(up.calls)

    again = cached(up, tmp_path)
    assert {p.parent.name for p in (tmp_path / "bars").rglob("*.parquet")} == {"decade=2020"}
    assert again._index.layout() == 2
    got = again.fetch_sync(["AAPL", "BTC"], "2023-11-01", "2024-03-01", "1d")
    assert got.equals(truth) and len(up.calls) == calls
    assert got.filter(pl.col("ts") >= to_ns("2024-01-01")).height > 0


def test_a_migration_that_fails_midway_leaves_a_whole_cache(tmp_path, monkeypatch) -> None:
    up = CountingSource()
    truth = _old_cache(tmp_path, up)
    calls = len(up.calls)
    writes = []

    def failing_write(self, key, partition, frame):
        writes.append(key)
        if len(writes) == 2:
            raise OSError("disk full")
        return real_write(self, key, partition, frame)

    real_write = PartitionStore.write
    monkeypatch.setattr(PartitionStore, "write", failing_write)
    with pytest.raises(OSError, match="disk full"):
        cached(up, tmp_path)
    monkeypatch.setattr(PartitionStore, "write", real_write)
    again = cached(up, tmp_path)
    got = again.fetch_sync(["AAPL", "BTC"], "2023-11-01", "2024-03-01", "1d")
    assert got.equals(truth) and len(up.calls) == calls and again._index.layout() == 2
