"""The composition root: one workspace wires config, sources, the cache, options and results.

Invariants: a provider named by string goes through the cache everywhere (a repeat costs no upstream
request), every command honours ``--config``'s folders, wrappers forward the source contract, and no
module below the workspace reads the configuration or the environment.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from cli_support import clean_environment, cli, restore_backtape_logger  # noqa: F401
from polygon_fake import KEY as POLYGON_KEY
from polygon_fake import PolygonFake
from provider_replay import ReplayServer

import backtape
from backtape import CachedDataSource, DataPortal, TradingOptions, Workspace
from backtape._time import NS_PER_DAY, to_ns
from backtape.errors import ConfigError
from backtape.risk import RiskManager
from backtape.sources import DataSource, get_source, registry
from backtape.sources.base import DataSourceMetadata

SRC = Path(backtape.__file__).parent
#: modules allowed to read the configuration or the environment (the top of the stack)
TOP = {"workspace.py", "config.py", "__init__.py", "_logging.py"}
#: entry points that resolve the default workspace themselves (the adapters, like ``backtape.run_backtest``)
TOP_DIRS = {"cli", "web", "adapters"}


def _config(tmp: Path, url: str | None = None, **sections: object) -> Path:
    body: dict = {"data": {"cache_dir": str(tmp / "cache"), "bundles_dir": str(tmp / "bundles"),
                           "results_db": str(tmp / "results.db")}}
    if url is not None:
        body["providers"] = {"polygon": {"api_key": POLYGON_KEY, "base_url": url,
                                         "requests_per_minute": 100_000.0}}
    body.update(sections)
    path = tmp / "backtape.yaml"
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return path


@pytest.fixture
def polygon(tmp_path, monkeypatch):
    clean_environment(monkeypatch, tmp_path)
    fake = PolygonFake(symbols=("AAPL", "MSFT"), start="2024-01-02", end="2024-03-01", page_size=50_000)
    with ReplayServer(fake) as server:
        yield server, _config(tmp_path, server.url)


def test_run_backtest_by_provider_name_fetches_once(polygon) -> None:
    server, cfg = polygon
    ws = Workspace(cfg)
    args = ("sma_crossover", "AAPL", "2024-01-02", "2024-03-01", "1h")
    first = ws.run_backtest(*args, source="polygon", params={"fast": 2, "slow": 4})
    asked = len(server.requests)
    assert asked > 0 and first.trades.height > 0
    again = Workspace(cfg).run_backtest(*args, source="polygon", params={"fast": 2, "slow": 4})
    assert len(server.requests) == asked, "the second run reached the provider"
    assert first.metrics["final_equity"] == again.metrics["final_equity"]
    assert first.trades.equals(again.trades)
    assert (Path(cfg).parent / "cache" / "index.sqlite").exists()


def test_module_level_run_backtest_uses_the_default_workspace(polygon, monkeypatch) -> None:
    server, cfg = polygon
    monkeypatch.setenv("BACKTAPE_CONFIG", str(cfg))
    args = ("sma_crossover", "MSFT", "2024-01-02", "2024-03-01", "1h")
    backtape.run_backtest(*args, source="polygon", params={"fast": 2, "slow": 4})
    asked = len(server.requests)
    backtape.run_backtest(*args, source="polygon", params={"fast": 2, "slow": 4})
    assert len(server.requests) == asked


def test_optimize_walk_forward_and_portal_through_the_cache(polygon) -> None:
    server, cfg = polygon
    ws = Workspace(cfg)
    grid = {"fast": [2, 3], "slow": [4, 5]}
    span = ("AAPL", "2024-01-02", "2024-03-01")
    ws.optimize("sma_crossover", grid, *span, "1h", source="polygon")
    ws.walk_forward("sma_crossover", grid, *span, 80, 40, frequency="1h", source="polygon")
    ws.portal("polygon").load_data(span[1], span[2], ["AAPL"])
    asked = len(server.requests)
    fresh = Workspace(cfg)
    fresh.optimize("sma_crossover", grid, *span, "1h", source="polygon")
    fresh.walk_forward("sma_crossover", grid, *span, 80, 40, frequency="1h", source="polygon")
    fresh.portal("polygon").load_data(span[1], span[2], ["AAPL"])
    assert len(server.requests) == asked


def test_cli_backtest_on_provider_twice_makes_no_second_request(polygon, restore_backtape_logger) -> None:  # noqa: F811
    server, cfg = polygon
    args = ("--config", str(cfg), "backtest", "sma_crossover", "--symbols", "AAPL", "--start", "2024-01-02",
            "--end", "2024-03-01", "--frequency", "1h", "--source", "polygon", "--param", "fast=3",
            "--param", "slow=8")
    assert cli(*args).exit_code == 0
    asked = len(server.requests)
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert len(server.requests) == asked
    assert (Path(cfg).parent / "results.db").exists()


def test_every_command_honours_the_config_folders(tmp_path, monkeypatch, restore_backtape_logger) -> None:  # noqa: F811
    clean_environment(monkeypatch, tmp_path)
    cfg = _config(tmp_path)
    ingest = cli("--config", str(cfg), "ingest", "synthetic", "--symbols", "ACME", "--start", "2024-01-02",
                 "--end", "2024-02-01", "--bundle", "demo")
    assert ingest.exit_code == 0, ingest.output
    assert (tmp_path / "bundles" / "demo").is_dir()
    listed = cli("--config", str(cfg), "bundles", "list")
    assert "demo" in listed.output
    ws = Workspace(cfg)
    ws.source("synthetic", cache=True).fetch_sync("ACME", "2024-01-02", "2024-01-10")
    stats = cli("--config", str(cfg), "cache", "stats")
    assert stats.exit_code == 0 and str(tmp_path / "cache") in stats.output.replace("\n", "")
    run = cli("--config", str(cfg), "backtest", "sma_crossover", "--symbols", "AAPL", "--start", "2013-01-01",
              "--end", "2014-01-01")
    assert run.exit_code == 0, run.output
    assert (tmp_path / "results.db").exists()
    assert "AAPL" in cli("--config", str(cfg), "runs", "list").output
    assert not (tmp_path / "work" / "~").exists()


def test_paths_expand_home_and_variables(tmp_path, monkeypatch) -> None:
    clean_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DATA_ROOT", str(tmp_path / "root"))
    cached = CachedDataSource(get_source("synthetic"), cache_dir="~/.backtape/cache")
    assert cached.cache_dir == tmp_path / "home" / ".backtape" / "cache"
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {cache_dir: $DATA_ROOT/cache, bundles_dir: ~/b}\n", encoding="utf-8")
    ws = Workspace(cfg)
    assert ws.cache_dir == tmp_path / "root" / "cache" and ws.bundles_dir == tmp_path / "home" / "b"
    assert not (tmp_path / "work" / "~").exists()


def test_a_cached_source_keeps_the_contract(tmp_path) -> None:
    bare = get_source("sample")
    cached = CachedDataSource(bare, cache_dir=tmp_path)
    for sym in ("BTC-PERP", "AAPL"):
        assert cached.calendar_of(sym) == bare.calendar_of(sym)
        assert cached.frequency_of(sym) == bare.frequency_of(sym)
    for src in (bare, cached):
        portal = DataPortal(src)
        portal.load_data("2022-01-03", "2022-01-05", ["BTC-PERP"])
        assert portal.calendar.name == "24/7"
        assert str(portal.base_frequency) == "1min"


def test_one_registry_answers_which_sources_are_providers() -> None:
    assert registry.providers() == ["alpaca", "alphavantage", "ccxt", "polygon", "yahoo"]
    for name in registry.providers():
        assert registry.spec(name).remote
    for name in ("csv", "parquet", "sample", "synthetic"):
        assert not registry.spec(name).remote
        assert not get_source("sample").remote
    from backtape.config import ALIAS_ENV

    assert ALIAS_ENV["POLYGON_API_KEY"] == ("providers", "polygon", "api_key")


def test_ccxt_exchange_keys_come_from_the_workspace(tmp_path, monkeypatch) -> None:
    clean_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("BINANCE_API_KEY", "k-123")
    monkeypatch.setenv("BINANCE_API_SECRET", "s-456")
    creds = Workspace(_config(tmp_path)).credentials("ccxt", exchange="binance")
    assert creds == {"exchange": "binance", "api_key": "k-123", "secret": "s-456"}


def test_no_module_below_the_workspace_reads_configuration_or_environment() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        if rel.parts[0] in TOP_DIRS or (len(rel.parts) == 1 and rel.name in TOP):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and (
                    (node.level and node.module in ("config", "workspace"))
                    or node.module in ("backtape.config", "backtape.workspace")):
                offenders.append(f"{rel}:{node.lineno} imports {node.module}")
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and isinstance(
                    node.value, ast.Name) and node.value.id == "os":
                offenders.append(f"{rel}:{node.lineno} reads os.{node.attr}")
    allowed = {"optimization/cluster.py"}  # hands PYTHONPATH to Ray workers, reads no setting
    assert [o for o in offenders if o.split(":")[0] not in allowed] == []


class _Counting(DataSource):
    """A remote source that counts upstream calls (synthetic data underneath)."""

    name = "counting"
    remote = True

    def __init__(self) -> None:
        self.inner = get_source("synthetic", seed=3)
        self.calls = 0

    async def fetch(self, symbols, start, end, frequency="1d") -> pl.DataFrame:
        self.calls += 1
        return await self.inner.fetch(symbols, start, end, frequency)

    def get_metadata(self) -> DataSourceMetadata:
        return self.inner.get_metadata()

    def cache_identity(self) -> str:
        return "counting:3"


def test_sliding_window_costs_at_most_two_upstream_calls_with_default_settings(tmp_path) -> None:
    ws = Workspace(_config(tmp_path))
    up = _Counting()
    source = ws.source(up)
    first = to_ns("2023-03-01")
    for k in range(62):  # each day asks for the 30 days ending that day, then the whole period
        day = first + k * NS_PER_DAY
        source.fetch_sync(["AAPL"], day - 30 * NS_PER_DAY, day, "1d")
    source.fetch_sync(["AAPL"], first - 30 * NS_PER_DAY, first + 62 * NS_PER_DAY, "1d")
    assert up.calls <= 2


def test_trading_options_are_typed_validated_and_mirrored_by_the_config(tmp_path) -> None:
    opts = TradingOptions(cash=5_000, commission=0.001)
    assert opts.replace(fill="close", cash=None).cash == 5_000
    with pytest.raises(ConfigError, match="fill"):
        opts.replace(fill="midday")
    with pytest.raises(ConfigError, match="unknown trading option"):
        opts.replace(cahs=1)
    with pytest.raises(ConfigError, match="cash"):
        TradingOptions(cash=0)
    with pytest.raises(ConfigError, match=r"commission must be a fraction of traded notional in \[0, 1\)"):
        TradingOptions(commission=2)  # 200% of every fill: a fee meant in cash or basis points
    with pytest.raises(ConfigError, match=r"backtesting\.commission"):
        _ = Workspace(_config(tmp_path, backtesting={"commission": 5})).options
    cfg = _config(tmp_path, backtesting={"cash": 25_000, "commission": 0.002, "fill": "close"},
                  risk={"max_position_pct": 0.2})
    ws = Workspace(cfg)
    assert (ws.options.cash, ws.options.commission, ws.options.fill) == (25_000, 0.002, "close")
    assert ws.options.risk == RiskManager(max_position_pct=0.2)
    from backtape.config import BacktestingConfig

    assert BacktestingConfig().cash == TradingOptions().cash


def test_optimize_on_the_event_engine_applies_the_configured_risk(tmp_path) -> None:
    cfg = _config(tmp_path, risk={"max_position_pct": 0.05})
    ws = Workspace(cfg)
    grid = {"fast": [10], "slow": [50]}
    with pytest.warns(backtape.BacktapeWarning, match="event engine"):
        limited = ws.optimize("sma_crossover", grid, "AAPL", "2012-01-01", "2015-01-01", source="sample")
    free = ws.optimize("sma_crossover", grid, "AAPL", "2012-01-01", "2015-01-01", source="sample",
                       options=TradingOptions())
    assert limited.engine == "event" and free.engine == "vector"
    assert abs(limited.table["total_return"][0]) < abs(free.table["total_return"][0])
    direct = ws.run_backtest("sma_crossover", "AAPL", "2012-01-01", "2015-01-01", source="sample",
                             params=grid and {"fast": 10, "slow": 50})
    assert np.isclose(direct.metrics["total_return"], limited.table["total_return"][0], rtol=1e-12)
