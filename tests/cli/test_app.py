"""The root app: help, version, one-line errors, --verbose tracebacks, --log-json, python -m."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import backtape
from backtape.cli.app import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("demo", "sources", "data", "validate", "config", "cache", "bundles", "calc",
                    "backtest", "runs"):
        assert command in result.stdout


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"backtape {backtape.__version__}"


def test_library_error_is_one_line(tmp_path: Path) -> None:
    result = run("--config", str(tmp_path / "missing.yaml"), "config", "show")
    assert result.exit_code == 2
    assert "config file not found" in one_error_line(result)
    assert result.stdout == ""


def test_verbose_shows_the_traceback(tmp_path: Path) -> None:
    result = run("--verbose", "--config", str(tmp_path / "missing.yaml"), "config", "show")
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert "ConfigError" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: config file not found")


def test_usage_errors_are_one_line() -> None:
    result = run("config", "show", "--bogus")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "--bogus" in line and "backtape config show --help" in line
    result = run("nosuchcommand")
    assert result.exit_code == 2
    assert "nosuchcommand" in one_error_line(result)


def test_log_json_errors_are_one_json_line(tmp_path: Path) -> None:
    result = run("--log-json", "--config", str(tmp_path / "missing.yaml"), "config", "show")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    payload = json.loads(line)
    assert payload["level"] == "error" and payload["error"] == "ConfigError"
    assert "config file not found" in payload["message"]


def test_python_dash_m_backtape_help() -> None:
    src = Path(backtape.__file__).parents[1]
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.run([sys.executable, "-m", "backtape", "--help"], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "sources" in proc.stdout and "config" in proc.stdout


def test_python_dash_m_error_exit_code(tmp_path: Path) -> None:
    src = Path(backtape.__file__).parents[1]
    env = {**os.environ, "PYTHONPATH": str(src)}
    args = [sys.executable, "-m", "backtape", "-c", str(tmp_path / "x.yaml"), "config", "show"]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: config file not found") and "Traceback" not in proc.stderr
