"""Bundles: incremental ingest, quality metadata, reading back as a DataSource."""

from __future__ import annotations

import datetime as dt

import pytest
from _upstream import CountingSource

from backtape._time import to_ns
from backtape.cache.bundles import BundleDataSource, BundleMetadata, ingest_to_bundle, list_bundles
from backtape.errors import ConfigError, NoDataError, SymbolNotFoundError, UnsupportedDataError


def test_incremental_ingest_fetches_only_the_new_part(tmp_path) -> None:
    up = CountingSource()
    seen = []
    meta = ingest_to_bundle("daily", ["AAPL", "MSFT"], "2024-01-01", "2024-03-01", "1d", source=up,
                            bundles_dir=tmp_path, progress=lambda sym, i, n: seen.append((sym, i, n)))
    assert seen == [("AAPL", 1, 2), ("MSFT", 2, 2)]
    assert meta.row_count == 2 * 41 and meta.missing_data_pct == 0 and meta.quality_score == 1.0
    calls = len(up.calls)
    meta = ingest_to_bundle("daily", ["AAPL", "MSFT"], "2024-01-01", "2024-06-01", "1d", source=up,
                            bundles_dir=tmp_path)
    new_calls = up.calls[calls:]
    assert [c[2:] for c in new_calls] == [(to_ns("2024-03-01"), to_ns("2024-06-01"))] * 2
    loaded = BundleMetadata.load("daily", tmp_path)
    assert loaded == meta
    assert loaded.start == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert loaded.end == dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
    assert loaded.symbols == ("AAPL", "MSFT") and loaded.source_type == "test"
    assert loaded.schema_version == "1" and loaded.size_bytes > 0
    reader = BundleDataSource("daily", tmp_path)
    got = reader.fetch_sync(["AAPL"], "2023-06-01", "2025-01-01", "1d")
    assert got.equals(up.bars(["AAPL"], to_ns("2024-01-01"), to_ns("2024-06-01"), "1d"))
    assert len(up.calls) == calls + 2  # reading the bundle never asks the source
    assert [m.name for m in list_bundles(tmp_path)] == ["daily"]


def test_quality_records_missing_sessions_and_ohlc_violations(tmp_path) -> None:
    up = CountingSource(empty_symbols=frozenset({"GONE"}))
    up.invalid = True  # the first bar of every answer has high < low
    meta = ingest_to_bundle("q", ["AAPL", "GONE"], "2024-01-01", "2024-01-08", "1d", source=up,
                            bundles_dir=tmp_path)
    aapl, gone = meta.quality("AAPL"), meta.quality("GONE")
    assert aapl.expected_sessions == 4 and aapl.ohlc_violations == 1 and aapl.rows == 3
    assert aapl.missing_sessions == (dt.date(2024, 1, 2),)
    assert gone.rows == 0 and len(gone.missing_sessions) == 4
    assert meta.missing_data_pct == pytest.approx(100 * 5 / 8)
    assert meta.quality_score == pytest.approx((3 / 8) * (3 / 4))


def test_bundle_errors_name_the_problem(tmp_path) -> None:
    up = CountingSource()
    with pytest.raises(ConfigError, match="invalid bundle name"):
        ingest_to_bundle("../evil", ["A"], "2024-01-01", "2024-01-05", source=up, bundles_dir=tmp_path)
    with pytest.raises(NoDataError, match="no bundle named"):
        BundleMetadata.load("nothing", tmp_path)
    ingest_to_bundle("b", ["A"], "2024-01-01", "2024-01-05", "1d", source=up, bundles_dir=tmp_path)
    with pytest.raises(ConfigError, match="cannot add 1h bars"):
        ingest_to_bundle("b", ["A"], "2024-01-01", "2024-01-05", "1h", source=up, bundles_dir=tmp_path)
    reader = BundleDataSource("b", tmp_path)
    with pytest.raises(UnsupportedDataError, match="holds 1d bars"):
        reader.fetch_sync(["A"], "2024-01-01", "2024-01-05", "1h")
    with pytest.raises(SymbolNotFoundError, match="ZZZ"):
        reader.fetch_sync(["ZZZ"], "2024-01-01", "2024-01-05", "1d")


def test_ingest_from_the_synthetic_source(tmp_path) -> None:
    from backtape.sources import SyntheticDataSource

    src = SyntheticDataSource(seed=3)
    meta = ingest_to_bundle("syn", "ACME", "2024-01-02", "2024-01-04", "5min", source=src,
                            bundles_dir=tmp_path)
    assert meta.row_count == 2 * 78 and meta.missing_data_pct == 0
    got = BundleDataSource("syn", tmp_path).fetch_sync("ACME", "2024-01-02", "2024-01-04", "5min")
    assert got.equals(src.fetch_sync("ACME", "2024-01-02", "2024-01-04", "5min"))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong_schema", "empty"])
def test_one_unreadable_bundle_is_reported_and_the_others_list(tmp_path, damage) -> None:
    import polars as pl

    from backtape.cache.bundles import scan_bundles
    from backtape.errors import BacktapeWarning, CorruptBundleError

    for name in ("good", "bad"):
        ingest_to_bundle(name, ["AAPL"], "2024-01-01", "2024-02-01", "1d", source=CountingSource(),
                         bundles_dir=tmp_path)
    meta = tmp_path / "bad" / "metadata.parquet"
    data = meta.read_bytes()
    if damage == "truncate":
        meta.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        meta.write_bytes(b"\x00garbage" * 50)
    elif damage == "wrong_schema":
        pl.DataFrame({"x": [1]}).write_parquet(meta)
    else:
        pl.DataFrame({"symbol": []}, schema={"symbol": pl.String}).write_parquet(meta)
    with pytest.raises(CorruptBundleError, match=r"bundle 'bad': .*unreadable.*delete"):
        BundleMetadata.load("bad", tmp_path)
    good, bad = scan_bundles(tmp_path)
    assert [m.name for m in good] == ["good"] and list(bad) == ["bad"]
    with pytest.warns(BacktapeWarning, match="bundle 'bad'"):
        assert [m.name for m in list_bundles(tmp_path)] == ["good"]


@pytest.mark.parametrize("name", ["daily\n", "../x", ".hidden", "a/b", ""])
def test_bundle_names_are_whole_and_safe(tmp_path, name) -> None:
    with pytest.raises(ConfigError, match="invalid bundle name"):
        ingest_to_bundle(name, ["AAPL"], "2024-01-01", "2024-02-01", "1d", source=CountingSource(),
                         bundles_dir=tmp_path)


def test_bundles_verify_from_the_command_line(tmp_path) -> None:
    from typer.testing import CliRunner

    from backtape.cli.app import app

    ingest_to_bundle("daily", ["AAPL", "MSFT"], "2024-01-01", "2024-03-01", "1d", source=CountingSource(),
                     bundles_dir=tmp_path)
    runner = CliRunner()
    ok = runner.invoke(app, ["bundles", "verify", "daily", "--bundles-dir", str(tmp_path)])
    assert ok.exit_code == 0 and "intact" in ok.output
    victim = next((tmp_path / "daily" / "data" / "bars").rglob("*.parquet"))
    victim.write_bytes(victim.read_bytes()[:100])
    bad = runner.invoke(app, ["bundles", "verify", "daily", "--bundles-dir", str(tmp_path)])
    assert bad.exit_code == 1 and "1 of 2 file(s) damaged" in bad.output and "ingest" in bad.output
