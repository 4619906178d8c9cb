"""All five providers end to end through the real command line, the cache and their replay servers.

``backtape --config backtape.yaml data show`` reads the base URL and keys from the file; ``backtape
bundles ingest`` reads them from the environment. Both go through the cache: the same command run
again sends no HTTP request. Ingest drives its progress bar from the adapter's ``progress=`` hook.
"""

from __future__ import annotations

import polars as pl
import pytest
from cli_support import PROVIDERS, ReplayServer, clean_environment, cli, restore_backtape_logger, write_config

from backtape.cache.bundles import BundleDataSource, BundleMetadata
from backtape.cli import _progress, bundles

pytestmark = [pytest.mark.network_local, pytest.mark.usefixtures("restore_backtape_logger")]
_ = restore_backtape_logger


@pytest.mark.parametrize("name", list(PROVIDERS))
def test_data_show_reads_config_file_and_caches(name, tmp_path, monkeypatch):
    provider = PROVIDERS[name]
    clean_environment(monkeypatch, tmp_path)
    with ReplayServer(provider.route()) as server:
        config = write_config(tmp_path / "backtape.yaml", tmp_path, {name: provider.settings(server.url)})
        args = ("--config", str(config), "data", "show", *provider.show, "--source", name,
                "--output", str(tmp_path / "first.parquet"))
        first = cli(*args)
        assert first.exit_code == 0, first.stderr or first.stdout
        sent = len(server.requests)
        assert sent >= 1
        second = cli(*args[:-1], str(tmp_path / "second.parquet"))
        assert second.exit_code == 0, second.stderr
        assert len(server.requests) == sent  # the cache answered: no HTTP request
        bypass = cli(*args[:-2], "--no-cache")
        assert bypass.exit_code == 0 and len(server.requests) > sent
    rows = pl.read_parquet(tmp_path / "first.parquet")
    assert rows.height > 0 and rows.equals(pl.read_parquet(tmp_path / "second.parquet"))
    assert f"source {name}" in first.stdout and first.stdout == second.stdout
    assert (tmp_path / "cache" / "index.sqlite").exists()


class _Recorded(_progress.FetchProgress):
    """The ingest progress bar, remembered so the test can read what the adapter reported."""

    made: list[_Recorded] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.symbols: list[tuple[str, int, int]] = []
        _Recorded.made.append(self)

    def on_symbol(self, symbol: str, done: int, total: int) -> None:
        self.symbols.append((symbol, done, total))
        super().on_symbol(symbol, done, total)


@pytest.mark.parametrize("name", list(PROVIDERS))
def test_ingest_reads_environment_reports_chunks_and_is_incremental(name, tmp_path, monkeypatch):
    provider = PROVIDERS[name]
    clean_environment(monkeypatch, tmp_path)
    monkeypatch.setattr(bundles, "FetchProgress", _Recorded)
    _Recorded.made.clear()
    symbol_arg, *rest = provider.ingest
    symbols = symbol_arg.split(",")
    with ReplayServer(provider.route()) as server:
        for var, value in provider.env(server.url).items():
            monkeypatch.setenv(var, value)
        args = ("bundles", "ingest", name, "--symbols", symbol_arg, *rest, "--bundle", f"{name}-b",
                "--bundles-dir", str(tmp_path / "bundles"))
        result = cli(*args)
        assert result.exit_code == 0, result.stderr or result.stdout
        sent = len(server.requests)
        again = cli(*args)
        assert again.exit_code == 0, again.stderr
        assert len(server.requests) == sent  # everything is in the bundle already
    bar = _Recorded.made[0]
    assert bar.chunks_total >= len(symbols) and bar.chunks_done == bar.chunks_total
    assert bar.symbols == [(s, i, len(symbols)) for i, s in enumerate(symbols, 1)]
    assert _Recorded.made[1].chunks_done == 0  # the second run fetched nothing
    meta = BundleMetadata.load(f"{name}-b", tmp_path / "bundles")
    assert sorted(meta.symbols) == sorted(symbols) and meta.row_count > 0
    assert f"bundle {name}-b" in result.stdout
    frequency = rest[rest.index("--frequency") + 1]
    bars = BundleDataSource(f"{name}-b", tmp_path / "bundles").fetch_sync(
        symbols, rest[rest.index("--start") + 1], rest[rest.index("--end") + 1], frequency)
    assert bars.height == meta.row_count


def test_ingest_options_reach_the_adapter(tmp_path, monkeypatch):
    provider = PROVIDERS["polygon"]
    clean_environment(monkeypatch, tmp_path)
    with ReplayServer(provider.route()) as server:
        settings = {"polygon": provider.settings(server.url)}
        config = write_config(tmp_path / "backtape.yaml", tmp_path, settings)
        result = cli("--config", str(config), "bundles", "ingest", "polygon", "--symbols", "AAPL",
                     "--frequency", "1d", "--start", "2024-01-02", "--end", "2024-01-06", "--bundle", "q",
                     "--option", "auth=query")
        assert result.exit_code == 0, result.stderr
        assert all(r.query.get("apiKey") for r in server.requests)  # auth=query, from --option
        assert not any("Authorization" in r.headers for r in server.requests)
    assert BundleMetadata.load("q", tmp_path / "bundles").row_count == 4  # bundles_dir from the file
    listed = cli("--config", str(config), "bundles", "list")
    assert listed.exit_code == 0 and "2024-01-02" in listed.stdout  # the bundle is listed
