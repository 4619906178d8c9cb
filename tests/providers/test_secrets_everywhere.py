"""No provider key ever lands anywhere: cache folder, bundle files, logs, results database, errors.

Polygon authenticates by query parameter here (``auth="query"``, so every URL and every re-followed
``next_url`` carries ``apiKey=``), Alpha Vantage always sends ``apikey=``, Alpaca sends a header
pair. Keys come only from ``backtape.yaml``. Each test also checks that the URLs really were shown
(``apiKey=***``), so the absence of the key is not an accident of nothing being written.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import traceback
from pathlib import Path

import pytest
from cli_support import PROVIDERS, ReplayServer, all_text, clean_environment, cli, restore_backtape_logger
from cli_support import write_config as _write_config
from provider_replay import FAST_RETRY, Reply

from backtape.cache import CachedDataSource
from backtape.engine import run_backtest
from backtape.errors import AuthenticationError, ProviderError
from backtape.workspace import Workspace

pytestmark = [pytest.mark.network_local, pytest.mark.usefixtures("restore_backtape_logger")]
_ = restore_backtape_logger

#: provider -> (adapter options the CLI passes with --option, the query parameter naming the key)
CASES = {"polygon": ({"auth": "query"}, "apiKey"), "alphavantage": ({}, "apikey"), "alpaca": ({}, None)}
#: a request that takes several HTTP calls (pages) and enough bars for a backtest, and its windows
REQUEST = {"polygon": ("AAPL", "2024-01-03", "2024-01-05", "1min"),
           "alphavantage": ("IBM", "2024-01-02", "2024-01-06", "1d"),
           "alpaca": ("AAPL", "2024-01-03", "2024-01-05", "1min")}
SMA = {"polygon": {"fast": 5, "slow": 20}, "alphavantage": {"fast": 1, "slow": 2},
       "alpaca": {"fast": 5, "slow": 20}}


def _setup(name: str, tmp_path: Path, monkeypatch, url: str) -> Path:
    clean_environment(monkeypatch, tmp_path)
    config = _write_config(tmp_path / "backtape.yaml", tmp_path, {name: PROVIDERS[name].settings(url)})
    monkeypatch.setenv("BACKTAPE_CONFIG", str(config))
    return config


def _assert_clean(text: str | bytes, secrets: tuple[str, ...], where: str) -> None:
    blob = text.encode() if isinstance(text, str) else text
    for secret in secrets:
        assert secret.encode() not in blob, f"a key leaked into {where}"


def _error_texts(exc: BaseException) -> str:
    """Everything an exception can show: message, repr, attributes and the formatted traceback."""
    return "\n".join([str(exc), repr(exc), str(getattr(exc, "body", "")),
                      "".join(traceback.format_exception(exc))])


def _database_text(path: Path) -> str:
    """Every row of every table of a SQLite file, as text."""
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        return "\n".join(repr(row) for t in tables for row in db.execute(f'select * from "{t}"'))


@pytest.mark.parametrize("name", list(CASES))
def test_keys_stay_out_of_cache_logs_errors_and_results(name, tmp_path, monkeypatch, caplog):
    provider, (options, param) = PROVIDERS[name], CASES[name]
    symbol, start, end, frequency = REQUEST[name]
    secrets = provider.secrets
    logging.getLogger("backtape").propagate = True  # caplog listens on the root logger
    caplog.set_level(logging.DEBUG)
    with ReplayServer(provider.route()) as server:
        _setup(name, tmp_path, monkeypatch, server.url)
        cached = CachedDataSource(Workspace().source(name, cache=False, **options),
                                  cache_dir=tmp_path / "cache")
        result = run_backtest("sma_crossover", symbol, start, end, frequency, source=cached,
                              params=SMA[name], store=tmp_path / "results.db")
        assert result.run_id is not None and len(server.requests) >= 1
        if param:
            assert all(r.query.get(param) == secrets[0] for r in server.requests)  # on the wire, yes

        server.fail("", Reply(500, f"upstream echoes the request: {server.requests[0].raw_query}"), times=50)
        with pytest.raises(ProviderError) as failed:
            source = Workspace().source(name, cache=False, retry=FAST_RETRY, **options)
            source.fetch_sync([symbol], "2024-01-02", "2024-01-03", "1d")
        server.clear_faults()
        server.fail("", Reply(401, {"status": "ERROR", "error": f"Unknown API Key {secrets[-1]}",
                                    "message": f"forbidden for {secrets[0]}"}), times=50)
        with pytest.raises((AuthenticationError, ProviderError)) as refused:
            source = Workspace().source(name, cache=False, **options)
            source.fetch_sync([symbol], "2024-01-02", "2024-01-03", "1d")

    _assert_clean(all_text(tmp_path / "cache"), secrets, "the cache folder")
    _assert_clean(caplog.text, secrets, "log records")
    _assert_clean(_error_texts(failed.value), secrets, "the 500 error")
    _assert_clean(_error_texts(refused.value), secrets, "the 401 error")
    db = _database_text(tmp_path / "results.db")
    _assert_clean(db, secrets, "the results database")
    assert cached.cache_identity() in db  # the data fingerprint is stored, without any key
    if param:
        assert f"{param}=***" in caplog.text  # request URLs were logged, redacted
        assert f"{param}=***" in str(failed.value)


@pytest.mark.parametrize("name", list(CASES))
def test_keys_stay_out_of_cli_output_and_bundles(name, tmp_path, monkeypatch):
    provider, (options, param) = PROVIDERS[name], CASES[name]
    symbol, start, end, frequency = REQUEST[name]
    secrets = provider.secrets
    opts = [arg for k, v in options.items() for arg in ("--option", f"{k}={v}")]
    with ReplayServer(provider.route()) as server:
        config = str(_setup(name, tmp_path, monkeypatch, server.url))
        server.fail("", Reply(503, "busy"), times=1)  # one retry, logged at DEBUG
        shown = cli("--config", config, "--verbose", "--log-json", "data", "show", symbol, "--source", name,
                    "--start", start, "--end", end, "--frequency", frequency, *opts)
        assert shown.exit_code == 0, shown.stderr
        ingested = cli("--config", config, "--log-json", "bundles", "ingest", name, "--symbols", symbol,
                       "--start", start, "--end", end, "--frequency", frequency, "--bundle", "b", *opts)
        assert ingested.exit_code == 0, ingested.stderr
        server.fail("", Reply(401, f"echo {secrets[0]}"), times=50)  # refused at once: no retry wait
        broken = cli("--config", config, "--verbose", "--log-json", "data", "show", symbol, "--source", name,
                     "--start", "2024-01-02", "--end", "2024-01-03", "--no-cache", *opts)
        assert broken.exit_code == 2
    logs = [json.loads(line) for result in (shown, broken) for line in result.stderr.splitlines()
            if line.startswith("{")]
    assert any("retry 1" in rec["message"] for rec in logs)  # the 503 retry was logged as JSON
    assert logs[-1]["level"] == "error"
    for result in (shown, ingested, broken):
        _assert_clean(result.stdout + result.stderr, secrets, "CLI output")
    if param:
        assert f"{param}=***" in broken.stderr
    bundle = tmp_path / "bundles" / "b"
    assert (bundle / "metadata.parquet").exists()
    _assert_clean(all_text(bundle), secrets, "the bundle")
    _assert_clean(all_text(tmp_path / "cache"), secrets, "the cache folder")
