"""The data page's coverage model over a real cache index: gaps, empty ranges and stale tails."""

from __future__ import annotations

from pathlib import Path

from backtape._time import NS_PER_DAY, to_ns
from backtape.cache.coverage import Span
from backtape.cache.index import CacheKey, Change, CoverageIndex, FileEntry
from backtape.web.coverage import index_coverage


def test_gaps_empty_ranges_and_stale_tails_from_the_manifest(tmp_path: Path) -> None:
    index = CoverageIndex(tmp_path / "index.sqlite")
    key = CacheKey("polygon:v2", "bars", "AAPL", "1d", "raw")
    jan, mar, may, jul = (to_ns(d) for d in ("2024-01-01", "2024-03-01", "2024-05-01", "2024-07-01"))
    fetched = to_ns("2024-06-20")
    spans = [Span(jan, mar, fetched, mar), Span(may, jul, fetched, to_ns("2024-06-20"))]
    rows = FileEntry("bars/a.parquet", key, "month=2024-01", jan + NS_PER_DAY, to_ns("2024-02-28"),
                     40, 1000, 0)
    tail = FileEntry("bars/b.parquet", key, "month=2024-06", to_ns("2024-06-01"), to_ns("2024-06-19"),
                     13, 500, 0)
    index.commit(Change(spans={key: spans}, added=[rows, tail]))
    index.close()
    before = (tmp_path / "index.sqlite").read_bytes()
    [kc] = index_coverage(tmp_path / "index.sqlite", "cache", now=to_ns("2024-07-10"))
    assert kc.covered == [(jan, mar), (may, jul)]
    assert kc.gaps == [(mar, may)]
    # asked for, nothing came back (up to 10 bars before the first row count as a weekend or holiday)
    assert kc.empty == [(may, to_ns("2024-06-01") - 10 * NS_PER_DAY)]
    assert kc.stale == [(to_ns("2024-06-20"), jul)]  # sessions closed since the fetch: re-fetched on use
    assert (kc.rows, kc.files, kc.bytes, kc.newest_fetch) == (53, 2, 1500, fetched)
    [frozen] = index_coverage(tmp_path / "index.sqlite", "bundle b", now=to_ns("2024-07-10"), frozen=True)
    assert frozen.stale == []
    assert (tmp_path / "index.sqlite").read_bytes() == before
    assert index_coverage(tmp_path / "none.sqlite", "cache", now=0) == []
