"""``backtape config show|path``: effective settings, secrets redacted wherever they came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from backtape.cli.app import app

runner = CliRunner()
FILE_SECRET = "file-secret-abc123"
ENV_SECRET = "env-secret-xyz789"


@pytest.fixture
def config_file(isolated: Path) -> Path:
    path = isolated / "backtape.yaml"
    path.write_text(
        f"data:\n  calendar: XNAS\nproviders:\n  polygon:\n    api_key: {FILE_SECRET}\n"
        f"  alpaca:\n    secret_key: {FILE_SECRET}\n",
        encoding="utf-8",
    )
    return path


def test_show_redacts_file_and_environment_secrets(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALPHAVANTAGE_API_KEY", ENV_SECRET)
    monkeypatch.setenv("BACKTAPE_PROVIDERS__CCXT__SECRET", ENV_SECRET)
    for args in (["config", "show"], ["config", "show", "--format", "json"], ["-v", "config", "show"]):
        result = runner.invoke(app, ["--config", str(config_file), *args])
        assert result.exit_code == 0, result.stderr
        everything = result.stdout + result.stderr
        assert FILE_SECRET not in everything and ENV_SECRET not in everything
        assert "***" in result.stdout
    result = runner.invoke(app, ["--config", str(config_file), "config", "show"])
    header, _, body = result.stdout.partition("\ndata:")
    assert f"# file: {config_file.resolve()}" in header
    assert "ALPHAVANTAGE_API_KEY" in header and "BACKTAPE_PROVIDERS__CCXT__SECRET" in header
    shown = yaml.safe_load("data:" + body)
    assert shown["data"]["calendar"] == "XNAS"
    assert shown["providers"]["polygon"]["api_key"] == "***"
    assert shown["providers"]["alphavantage"]["api_key"] == "***"
    assert shown["providers"]["polygon"]["s3_access_key_id"] is None  # unset secrets stay null


def test_show_json_is_machine_readable(config_file: Path) -> None:
    result = runner.invoke(app, ["--config", str(config_file), "config", "show", "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["providers"]["alpaca"]["secret_key"] == "***"


def test_show_defaults_without_a_file() -> None:
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 0
    assert result.stdout.startswith("# file: none (defaults)")


def test_invalid_config_is_one_line_without_secret(isolated: Path) -> None:
    path = isolated / "bad.yaml"
    text = "providers:\n  polygon:\n    api_key: 31415926535\n    requests_per_minute: lots\n"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["--config", str(path), "config", "show"])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "providers.polygon.api_key" in line
    assert "providers.polygon.requests_per_minute" in line and "31415926535" not in line


def test_path_reports_the_file_in_use(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert runner.invoke(app, ["config", "path"]).stdout.strip() == "none"
    monkeypatch.setenv("BACKTAPE_CONFIG", str(config_file))
    assert runner.invoke(app, ["config", "path"]).stdout.strip() == str(config_file)
