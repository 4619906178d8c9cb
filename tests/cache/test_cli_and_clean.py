"""Cache upkeep (clean by age and size) and the ``cache`` / ``bundles`` CLI sub-apps."""

from __future__ import annotations

from _upstream import CountingSource
from typer.testing import CliRunner

from backtape._time import NS_PER_DAY, to_ns
from backtape.cache import CachedDataSource, NeverStalePolicy
from backtape.cache.maintenance import cache_summary, clean_cache
from backtape.cli import bundles as bundles_cli
from backtape.cli import cache as cache_cli
from backtape.cli._units import parse_duration, parse_size
from backtape.cli.app import app as root

runner = CliRunner(env={"COLUMNS": "200"})
OLD, NEW = to_ns("2025-01-01"), to_ns("2025-03-01")


def filled(tmp_path) -> CountingSource:
    up = CountingSource()
    for sym, at in (("OLD", OLD), ("NEW", NEW)):
        c = CachedDataSource(up, cache_dir=tmp_path, clock=lambda at=at: at,
                             freshness_policy=NeverStalePolicy())
        c.fetch_sync([sym], "2024-01-01", "2024-03-01", "1d")
        c.flush_stats()
    return up


def test_clean_older_than_removes_rows_and_coverage_together(tmp_path) -> None:
    up = filled(tmp_path)
    report = clean_cache(tmp_path, older_than_ns=30 * NS_PER_DAY, now=NEW + NS_PER_DAY)
    assert report.spans == 1 and report.rows == 41 and report.files == 1  # one decade file of daily bars
    fresh = CachedDataSource(up, cache_dir=tmp_path, clock=lambda: NEW, freshness_policy=NeverStalePolicy())
    assert fresh.coverage("OLD") == [] and len(fresh.coverage("NEW")) == 1
    calls = len(up.calls)
    got = fresh.fetch_sync(["OLD", "NEW"], "2024-01-01", "2024-03-01", "1d")
    assert got.equals(up.bars(["NEW", "OLD"], to_ns("2024-01-01"), to_ns("2024-03-01"), "1d"))
    assert len(up.calls) == calls + 1 and up.calls[-1][1] == ("OLD",)


def test_clean_max_size_drops_least_recently_fetched_first(tmp_path) -> None:
    filled(tmp_path)
    rows, _ = cache_summary(tmp_path)
    total = rows[0]["bytes"]
    clean_cache(tmp_path, max_bytes=total - 1)
    rows, counters = cache_summary(tmp_path)
    assert rows[0]["rows"] == 41 and rows[0]["entries"] == 1  # NEW kept, OLD dropped
    assert counters["upstream_calls"] >= 2
    clean_cache(tmp_path, max_bytes=0)
    assert cache_summary(tmp_path)[0] == []  # nothing left: no coverage, no files


def test_units() -> None:
    assert parse_duration("30d") == 30 * NS_PER_DAY and parse_duration("90min") == 90 * 60 * 10**9
    assert parse_size("10GB") == 10**10 and parse_size("1.5KiB") == 1536 and parse_size("4096") == 4096


def test_cache_cli_stats_clean_refresh(tmp_path) -> None:
    filled(tmp_path)
    out = runner.invoke(cache_cli.app, ["stats", "--cache-dir", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "counting" in out.output and "82" in out.output
    out = runner.invoke(cache_cli.app, ["clean", "--cache-dir", str(tmp_path), "--max-size", "1B"])
    assert out.exit_code == 0 and "removed 2 span(s)" in out.output, out.output
    out = runner.invoke(cache_cli.app, ["clean", "--cache-dir", str(tmp_path)])
    assert out.exit_code != 0
    out = runner.invoke(cache_cli.app, ["refresh", "ACME", "--start", "2024-01-02", "--end", "2024-01-10",
                                        "--source", "synthetic", "--cache-dir", str(tmp_path)])
    assert out.exit_code == 0 and "6 row(s)" in out.output, out.output
    out = runner.invoke(root, ["cache", "stats", "--cache-dir", str(tmp_path / "nothing")])
    assert out.exit_code == 2 and out.stderr.startswith("error: ") and "no cache" in out.stderr


def test_bundles_cli_ingest_list_show(tmp_path) -> None:
    args = ["ingest", "synthetic", "--symbols", "ACME,BETA", "--start", "2024-01-02", "--end", "2024-02-01",
            "--frequency", "1d", "--bundle", "demo", "--bundles-dir", str(tmp_path)]
    out = runner.invoke(bundles_cli.app, args)
    assert out.exit_code == 0, out.output
    assert "bundle demo: 2 symbol(s), 42 rows" in out.output
    out = runner.invoke(bundles_cli.app, ["list", "--bundles-dir", str(tmp_path)])
    assert out.exit_code == 0 and "demo" in out.output and "synthetic" in out.output
    out = runner.invoke(bundles_cli.app, ["show", "demo", "--bundles-dir", str(tmp_path)])
    assert out.exit_code == 0 and "ACME" in out.output and "quality score" in out.output
    out = runner.invoke(root, ["bundles", "show", "nope", "--bundles-dir", str(tmp_path)])
    assert out.exit_code == 2 and out.stderr.startswith("error: ") and "no bundle named" in out.stderr
