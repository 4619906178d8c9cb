"""backtape.yaml lookup, environment overrides, validation messages, secrets and caching."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backtape._secrets import redact
from backtape.config import Config, load_config, locate_config, provider_credentials
from backtape.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_any_file(isolated: Path) -> None:
    config = load_config()
    assert config.file is None
    assert config.data.cache_dir == isolated / "home" / ".backtape" / "cache"
    assert config.data.bundles_dir == isolated / "home" / ".backtape" / "bundles"
    assert config.data.results_db == str(isolated / "home" / ".backtape" / "results.db")
    assert config.data.default_source == "sample"
    assert config.backtesting.cash == 10_000.0
    assert config.optimization.walk_forward.train_periods == 252
    assert config.providers.polygon.api_key is None


def test_lookup_order(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(isolated / "xdg-config" / "backtape" / "backtape.yaml", "data: {default_source: user}")
    assert load_config().data.default_source == "user"
    write(Path.cwd() / "backtape.yaml", "data: {default_source: local}")
    assert load_config().data.default_source == "local"
    named = write(isolated / "named.yaml", "data: {default_source: named}")
    monkeypatch.setenv("BACKTAPE_CONFIG", str(named))
    assert load_config().data.default_source == "named"
    explicit = write(isolated / "explicit.yaml", "data: {default_source: explicit}")
    assert load_config(explicit).data.default_source == "explicit"
    assert locate_config(explicit) == explicit
    assert locate_config() == named


def test_missing_files_are_named(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"config file not found: .*nope\.yaml"):
        load_config(isolated / "nope.yaml")
    monkeypatch.setenv("BACKTAPE_CONFIG", str(isolated / "gone.yaml"))
    with pytest.raises(ConfigError, match=r"gone\.yaml \(named by BACKTAPE_CONFIG\)"):
        load_config()


def test_environment_overrides_the_file(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(isolated / "c.yaml", """
data:
  cache_dir: /from/file
  calendar: XNAS
providers:
  polygon:
    api_key: file-key
    requests_per_minute: 5
""")
    monkeypatch.setenv("BACKTAPE_DATA__CACHE_DIR", str(isolated / "from-env"))
    monkeypatch.setenv("BACKTAPE_PROVIDERS__POLYGON__REQUESTS_PER_MINUTE", "100")
    monkeypatch.setenv("BACKTAPE_OPTIMIZATION__WALK_FORWARD__STEP_SIZE", "5")
    monkeypatch.setenv("APCA_API_KEY_ID", "alpaca-id")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "alpaca-secret")
    monkeypatch.setenv("ALPHAVANTAGE_API_KEY", "")  # empty counts as unset
    config = load_config(path)
    assert config.data.cache_dir == isolated / "from-env"
    assert config.data.calendar == "XNAS"
    assert config.providers.polygon.requests_per_minute == 100.0
    assert config.optimization.walk_forward.step_size == 5
    assert config.providers.polygon.api_key.get_secret_value() == "file-key"
    assert config.providers.alpaca.secret_key.get_secret_value() == "alpaca-secret"
    assert config.providers.alphavantage.api_key is None
    assert "APCA_API_KEY_ID" in config.env_overrides
    assert "ALPHAVANTAGE_API_KEY" not in config.env_overrides


def test_cache_and_bundle_folder_variables(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKTAPE_CACHE_DIR", str(isolated / "c1"))
    monkeypatch.setenv("BACKTAPE_BUNDLES_DIR", str(isolated / "b1"))
    config = load_config()
    assert (config.data.cache_dir, config.data.bundles_dir) == (isolated / "c1", isolated / "b1")
    monkeypatch.setenv("BACKTAPE_DATA__CACHE_DIR", str(isolated / "c2"))
    assert load_config().data.cache_dir == isolated / "c2"


def test_results_database_is_a_path_or_a_url(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(isolated / "c.yaml", "data:\n  results_db: ~/runs/r.db\n")
    assert load_config(path).data.results_db == str(isolated / "home" / "runs" / "r.db")
    monkeypatch.setenv("BACKTAPE_RESULTS_DB", "postgresql://me@db.local:5432/runs")
    assert load_config(path).data.results_db == "postgresql://me@db.local:5432/runs"
    monkeypatch.setenv("BACKTAPE_DATA__RESULTS_DB", "$HOME/other.db")
    assert load_config(path).data.results_db == str(isolated / "home" / "other.db")


def test_backtape_variable_beats_provider_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYGON_API_KEY", "generic")
    assert provider_credentials("polygon")["api_key"] == "generic"
    monkeypatch.setenv("BACKTAPE_PROVIDERS__POLYGON__API_KEY", "specific")
    assert provider_credentials("polygon")["api_key"] == "specific"


def test_unknown_keys_name_the_key_and_file(isolated: Path) -> None:
    path = write(isolated / "c.yaml", "providers:\n  polgon:\n    api_key: x\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "unknown key 'providers.polgon'" in message
    assert str(path.resolve()) in message
    assert "did you mean 'providers.polygon'" in message
    write(path, "dataa: {}\n")
    with pytest.raises(ConfigError, match=r"unknown key 'dataa'.*did you mean 'data'"):
        load_config(path)
    write(path, "strategies: {}\n")
    with pytest.raises(ConfigError, match=r"unknown key 'strategies'.*known: data, providers, backtesting"):
        load_config(path)


def test_unknown_environment_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKTAPE_DATA__CAHCE_DIR", "/tmp/x")
    expected = r"'data.cahce_dir' in environment variable BACKTAPE_DATA__CAHCE_DIR"
    with pytest.raises(ConfigError, match=expected):
        load_config()


def test_single_part_backtape_variables_are_not_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKTAPE_SOMETHING", "unrelated")
    assert load_config().file is None


def test_wrong_types_name_the_dotted_path(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "providers:\n  polygon:\n    requests_per_minute: fast\nrisk:\n  default_stop_loss_pct: 2\n"
    path = write(isolated / "c.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "providers.polygon.requests_per_minute: " in message and "'fast'" in message
    assert "risk.default_stop_loss_pct: " in message
    assert f"in config file {path.resolve()}" in message
    monkeypatch.setenv("BACKTAPE_OPTIMIZATION__N_JOBS", "many")
    with pytest.raises(ConfigError, match=r"optimization.n_jobs: .*BACKTAPE_OPTIMIZATION__N_JOBS"):
        load_config()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("optimization: {n_jobs: 0}", "n_jobs must be -1"),
        ("optimization: {executor: gpu}", "optimization.executor"),
        ("backtesting: {cash: -5}", "backtesting.cash"),
        ("data: 5", "data: "),
        ("- a\n- b\n", "expected a mapping of sections"),
        ("data:\n  cache_dir: [unclosed\n", r"line \d+, column \d+"),
    ],
)
def test_invalid_files(isolated: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(write(isolated / "c.yaml", text))


def test_secrets_never_shown(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(isolated / "c.yaml", "providers:\n  polygon:\n    s3_secret_access_key: file-secret-123\n")
    monkeypatch.setenv("POLYGON_API_KEY", "env-secret-456")
    config = load_config(path)
    shown = repr(config) + str(config.redacted())
    assert "file-secret-123" not in shown and "env-secret-456" not in shown
    assert config.redacted()["providers"]["polygon"]["api_key"] == "***"
    assert config.redacted()["providers"]["polygon"]["s3_secret_access_key"] == "***"
    assert config.redacted()["providers"]["alpaca"]["api_key"] is None
    # loaded secrets are scrubbed from log messages too
    assert redact("request with env-secret-456 failed") == "request with *** failed"
    assert "file-secret-123" not in redact("s3 key file-secret-123 rejected")


def test_invalid_secret_is_not_echoed(isolated: Path) -> None:
    path = write(isolated / "c.yaml", "providers:\n  alpaca:\n    api_key: 918273645\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "providers.alpaca.api_key" in str(info.value)
    assert "918273645" not in str(info.value)
    assert "quote it" in str(info.value)


def test_paths_expand_user_and_variables(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(isolated / "home"))
    monkeypatch.setenv("DATA_ROOT", str(isolated / "root"))
    path = write(isolated / "c.yaml", "data:\n  cache_dir: ~/cache\n  bundles_dir: $DATA_ROOT/bundles\n")
    config = load_config(path)
    assert config.data.cache_dir == isolated / "home" / "cache"
    assert config.data.bundles_dir == isolated / "root" / "bundles"


def test_cached_per_file_and_environment(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(isolated / "c.yaml", "backtesting: {cash: 1000}\n")
    first = load_config(path)
    assert load_config(str(path)) is first
    write(path, "backtesting: {cash: 2000}\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert load_config(path).backtesting.cash == 2000
    monkeypatch.setenv("BACKTAPE_BACKTESTING__CASH", "3000")
    assert load_config(path).backtesting.cash == 3000


def test_provider_credentials(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", "kid")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "ksecret")
    creds = provider_credentials("Alpaca")
    assert creds["api_key"] == "kid" and creds["secret_key"] == "ksecret"
    assert "base_url" not in creds and "timeout" not in creds  # unset: the adapter's defaults apply
    with pytest.raises(ConfigError, match=r"no provider named 'bloomberg'.*polygon"):
        provider_credentials("bloomberg")
    yahoo = {"base_url": "http://127.0.0.1:9", "timeout": 5}
    explicit = Config.model_validate({"providers": {"yahoo": yahoo}})
    assert provider_credentials("yahoo", explicit) == {"base_url": "http://127.0.0.1:9", "timeout": 5.0}


def test_provider_variables_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASSIVE_API_KEY", "massive-key")
    monkeypatch.setenv("MASSIVE_S3_SECRET_ACCESS_KEY", "massive-s3")
    assert provider_credentials("polygon")["api_key"] == "massive-key"
    monkeypatch.setenv("POLYGON_API_KEY", "polygon-key")
    monkeypatch.setenv("POLYGON_S3_ENDPOINT", "http://127.0.0.1:9000")
    creds = provider_credentials("polygon")
    assert creds["api_key"] == "polygon-key" and creds["s3_secret_access_key"] == "massive-s3"
    assert creds["s3_endpoint"] == "http://127.0.0.1:9000"


def test_sections_feed_the_engine_objects(isolated: Path) -> None:
    from backtape.costs import TransactionCostEngine
    from backtape.risk import RiskManager

    path = write(isolated / "c.yaml", "risk:\n  max_position_pct: 0.2\n  max_drawdown_halt: 0.3\n"
                 "backtesting:\n  commission: 0.001\n  slippage_bps: 5\n")
    config = load_config(path)
    manager = RiskManager(**config.risk.model_dump())
    assert manager.max_position_pct == 0.2 and manager.max_drawdown_halt == 0.3
    costs = TransactionCostEngine.simple(config.backtesting.commission, config.backtesting.slippage_bps)
    assert costs.commission.percent == 0.001 and costs.slippage.bps == 5


def test_every_provider_section_builds_its_adapter(isolated: Path) -> None:
    """Each providers.<name> block holds keyword arguments of that adapter, so the names stay in step."""
    from backtape._async import run_sync
    from backtape.config import ProvidersConfig
    from backtape.sources import get_source

    path = write(isolated / "c.yaml", """
providers:
  polygon: {api_key: pk-1234, base_url: "http://127.0.0.1:9", requests_per_minute: 50, timeout: 5,
            s3_endpoint: "http://127.0.0.1:9", s3_bucket: flatfiles, s3_access_key_id: ak-1234,
            s3_secret_access_key: sk-1234}
  alpaca: {api_key: ak-1234, secret_key: sk-1234, feed: iex, base_url: "http://127.0.0.1:9"}
  alphavantage: {api_key: av-1234, requests_per_minute: 5}
  yahoo: {base_url: "http://127.0.0.1:9", timeout: 5}
  ccxt: {exchange: binance, api_key: ck-1234, secret: cs-1234, timeout: 5}
""")
    config = load_config(path)
    for name in ProvidersConfig.model_fields:
        source = get_source(name, **provider_credentials(name, config))
        assert source.name == name
        assert "1234" not in source.cache_identity()
        run_sync(source.aclose())
