"""A bundle whose metadata is damaged or lost is rebuilt from its data by the next ingest."""

from __future__ import annotations

import dataclasses

import pytest
from _upstream import CountingSource

from backtape.cache.bundles import BundleDataSource, BundleMetadata, ingest_to_bundle
from backtape.errors import BacktapeWarning, ConfigError, CorruptBundleError


def _same(a: BundleMetadata, b: BundleMetadata) -> bool:
    return dataclasses.replace(a, ingestion_time=b.ingestion_time) == b


@pytest.mark.parametrize("how", ["garbage", "truncate", "delete"])
def test_the_next_ingest_rebuilds_lost_metadata(tmp_path, how) -> None:
    up = CountingSource()
    ingest_to_bundle("b", ["AAPL", "MSFT"], "2024-01-01", "2024-03-01", "1d", source=up, bundles_dir=tmp_path)
    whole = ingest_to_bundle("b", ["IBM"], "2024-02-01", "2024-04-01", "1d", source=up, bundles_dir=tmp_path)
    path = tmp_path / "b" / "metadata.parquet"
    if how == "delete":
        path.unlink()
    else:
        path.write_bytes(b"junk" * 50 if how == "garbage" else path.read_bytes()[:300])
        with pytest.raises(CorruptBundleError, match=r"run the same `backtape ingest` again to rebuild it"):
            BundleMetadata.load("b", tmp_path)
    with pytest.warns(BacktapeWarning, match="ingest rebuilds it from the bundle.s data") if how != "delete" \
            else _no_warning():
        again = ingest_to_bundle("b", ["IBM"], "2024-02-01", "2024-04-01", "1d", source=up,
                                 bundles_dir=tmp_path)
    assert _same(again, whole) and _same(BundleMetadata.load("b", tmp_path), whole)
    got = BundleDataSource("b", tmp_path).fetch_sync(["AAPL", "IBM"], "2024-01-01", "2024-04-01", "1d")
    assert got["symbol"].unique().sort().to_list() == ["AAPL", "IBM"]


def test_a_rebuilt_bundle_still_refuses_another_frequency(tmp_path) -> None:
    up = CountingSource()
    ingest_to_bundle("b", ["AAPL"], "2024-01-01", "2024-03-01", "1d", source=up, bundles_dir=tmp_path)
    (tmp_path / "b" / "metadata.parquet").unlink()
    with pytest.raises(ConfigError, match="holds 1d bars"):
        ingest_to_bundle("b", ["AAPL"], "2024-01-01", "2024-01-10", "1h", source=up, bundles_dir=tmp_path)


def _no_warning():
    import contextlib
    import warnings

    @contextlib.contextmanager
    def scope():
        with warnings.catch_warnings():
            warnings.simplefilter("error", BacktapeWarning)
            yield

    return scope()
