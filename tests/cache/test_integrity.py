"""Damaged cache files are detected by checksum, quarantined and fetched again; never a wrong value."""

from __future__ import annotations

import sqlite3
import warnings

import polars as pl
import pytest
from _upstream import CountingSource
from conftest import LATE
from typer.testing import CliRunner

from backtape._time import to_ns
from backtape.cache import CachedDataSource, NeverStalePolicy
from backtape.cache.maintenance import clean_cache, verify_cache
from backtape.errors import BacktapeWarning, CorruptCacheError

S, E = "2023-01-01", "2024-03-01"
SYMBOLS = ["AAPL", "MSFT"]
DAMAGES = ["truncate", "zero", "garbage", "delete", "flip"]


def cached(up, path, **kw) -> CachedDataSource:
    return CachedDataSource(up, cache_dir=path, clock=lambda: LATE, freshness_policy=NeverStalePolicy(),
                            memory_bytes=0, **kw)


def damage(path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "zero":
        path.write_bytes(bytes(len(data)))
    elif how == "garbage":
        path.write_bytes(b"not parquet at all" * 40)
    elif how == "delete":
        path.unlink()
    else:  # two bytes in the middle of the data pages: the file still reads, with other values
        mid = len(data) // 3
        data[mid] ^= 0x5A
        data[mid + 1] ^= 0xA5
        path.write_bytes(bytes(data))


def one_file(tmp_path, symbol: str = "AAPL"):
    files = sorted((tmp_path / "bars").rglob("*.parquet"))
    return next(f for f in files if f"symbol={symbol}" in str(f))


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_file_is_quarantined_and_fetched_again(tmp_path, how) -> None:
    up = CountingSource()
    truth = cached(up, tmp_path).fetch_sync(SYMBOLS, S, E, "1d")
    damage(one_file(tmp_path), how)
    calls = len(up.calls)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        got = cached(up, tmp_path).fetch_sync(SYMBOLS, S, E, "1d")
    assert got.equals(truth)
    assert [c[1] for c in up.calls[calls:]] == [("AAPL",)]   # only the damaged symbol's range again
    said = [str(w.message) for w in seen if issubclass(w.category, BacktapeWarning)]
    assert len(said) == 1 and "damaged cache file" in said[0] and "AAPL" in said[0]
    if how != "delete":
        assert len(list((tmp_path / "quarantine").iterdir())) == 1
    assert verify_cache(tmp_path).damaged == []


def test_reading_without_fetching_names_the_repair(tmp_path) -> None:
    up = CountingSource()
    cached(up, tmp_path).fetch_sync(SYMBOLS, S, E, "1d")
    damage(one_file(tmp_path), "flip")
    with pytest.raises(CorruptCacheError, match=r"cache verify --repair"):
        cached(up, tmp_path).read_cached(SYMBOLS, S, E)


def test_verify_and_repair_from_the_command_line(tmp_path) -> None:
    from backtape.cli.app import app

    up = CountingSource()
    truth = cached(up, tmp_path).fetch_sync(SYMBOLS, S, E, "1d")
    runner = CliRunner()
    ok = runner.invoke(app, ["cache", "verify", "--cache-dir", str(tmp_path)])
    assert ok.exit_code == 0 and "all intact" in ok.output
    damage(one_file(tmp_path, "MSFT"), "garbage")
    bad = runner.invoke(app, ["cache", "verify", "--cache-dir", str(tmp_path)])
    assert bad.exit_code == 1 and "damaged: bars/" in bad.output and "--repair" in bad.output
    fixed = runner.invoke(app, ["cache", "verify", "--repair", "--cache-dir", str(tmp_path)])
    assert fixed.exit_code == 0 and "fetched again" in fixed.output
    calls = len(up.calls)
    assert cached(up, tmp_path).fetch_sync(SYMBOLS, S, E, "1d").equals(truth)
    assert [c[1] for c in up.calls[calls:]] == [("MSFT",)]


@pytest.mark.parametrize("how", ["truncate", "delete"])
def test_clean_and_refresh_work_on_a_damaged_cache(tmp_path, how) -> None:
    up = CountingSource()
    truth = cached(up, tmp_path).fetch_sync(SYMBOLS, S, E, "1d")
    damage(one_file(tmp_path), how)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BacktapeWarning)
        fresh = cached(up, tmp_path).refresh_sync("AAPL", S, E)
    assert fresh.equals(truth.filter(pl.col("symbol") == "AAPL"))
    damage(one_file(tmp_path, "MSFT"), how)
    clean_cache(tmp_path, older_than_ns=1, now=LATE)
    assert cached(up, tmp_path).fetch_sync(SYMBOLS, S, E, "1d").equals(truth)


def test_an_index_from_before_checksums_is_upgraded(tmp_path) -> None:
    up = CountingSource()
    truth = cached(up, tmp_path).fetch_sync(SYMBOLS, S, E, "1d")
    with sqlite3.connect(tmp_path / "index.sqlite") as con:
        for table, column in (("files", "checksum"), ("files", "row_sum"), ("coverage", "row_sum")):
            con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", BacktapeWarning)  # upgraded in place, not reset
        again = cached(up, tmp_path)
    assert again.fetch_sync(SYMBOLS, S, E, "1d").equals(truth)   # files without checksums still read
    assert verify_cache(tmp_path).checked == 2
    assert to_ns(S) < to_ns(E)


@pytest.mark.parametrize("how", ["truncate", "zero", "garbage", "value"])
def test_a_damaged_index_is_quarantined_and_everything_fetched_again(tmp_path, how) -> None:
    up = CountingSource()
    source = cached(up, tmp_path)
    truth = source.fetch_sync(SYMBOLS, S, E, "1d")
    source._index.close()
    path = tmp_path / "index.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if how == "value":  # what two flipped bytes can do: a covered range that holds no rows
            con.execute("UPDATE coverage SET end = end + 86400000000000 * 400 WHERE symbol = 'AAPL'")
    if how != "value":
        damage(path, how)
    with pytest.raises(CorruptCacheError, match=r"cache index .* is damaged .*cache verify --repair"):
        verify_cache(tmp_path)
    calls = len(up.calls)
    with pytest.warns(BacktapeWarning, match=r"index\.sqlite is damaged .* moved to .*quarantine"):
        again = cached(up, tmp_path)
    assert again.fetch_sync(SYMBOLS, S, E, "1d").equals(truth)
    assert len(up.calls) > calls and list((tmp_path / "quarantine").glob("*-index.sqlite"))
    assert verify_cache(tmp_path).damaged == []


def test_verify_repair_resets_a_damaged_index(tmp_path) -> None:
    up = CountingSource()
    source = cached(up, tmp_path)
    truth = source.fetch_sync(SYMBOLS, S, E, "1d")
    source._index.close()
    (tmp_path / "index.sqlite-wal").unlink(missing_ok=True)
    damage(tmp_path / "index.sqlite", "garbage")
    with pytest.warns(BacktapeWarning, match="an empty index started"):
        report = verify_cache(tmp_path, repair=True)
    assert report.damaged == [] and report.checked == 0
    assert cached(up, tmp_path).fetch_sync(SYMBOLS, S, E, "1d").equals(truth)
