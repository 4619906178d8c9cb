"""The five providers as the command line sees them: replay routes, settings, and an isolated shell.

``PROVIDERS`` holds, per provider, a route factory for its replay server, the ``providers.<name>``
settings of ``backtape.yaml`` (``settings(url)``), the equivalent environment variables
(``env(url)``), a small request for ``data show`` and one for ``ingest``, and every secret involved.
Nothing here passes adapter-only arguments (test clocks, fast retries): the CLI builds the adapters
exactly as a user's configuration would.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from polygon_fake import KEY as POLYGON_KEY
from polygon_fake import PolygonFake
from provider_replay import ReplayServer, Reply, Request
from test_alpaca import KEY_ID as ALPACA_KEY_ID
from test_alpaca import SECRET as ALPACA_SECRET
from test_alpaca import AlpacaFake
from test_alphavantage import KEY as AV_KEY
from test_alphavantage import route as av_route
from test_ccxt import EXCHANGE_INFO, BinanceFake
from test_yahoo import route as yahoo_route
from typer.testing import CliRunner

from backtape.cli.app import app
from backtape.config import ALIAS_ENV, CONFIG_ENV, ENV_PREFIX

FAST = 100_000.0  # requests per minute: the replay servers need no pacing


def binance_route(fake: Callable[[Request], Reply] | None = None) -> Callable[[Request], Reply]:
    """Binance with ccxt's default market types (spot, USD-M and COIN-M futures) and key-only calls."""
    spot = fake or BinanceFake()

    def route(req: Request) -> Reply:
        if req.path in ("/fapi/v1/exchangeInfo", "/dapi/v1/exchangeInfo"):
            return Reply(200, {**EXCHANGE_INFO, "symbols": []})
        if req.path.startswith("/sapi/"):  # currencies and margin pairs, asked for only with keys
            return Reply(200, [])
        return spot(req)

    return route


@dataclass(frozen=True)
class Provider:
    """How one provider is configured and exercised from the command line."""

    name: str
    route: Callable[[], Callable[[Request], Reply]]
    settings: Callable[[str], dict[str, Any]]
    env: Callable[[str], dict[str, str]]
    show: tuple[str, ...]
    ingest: tuple[str, ...]
    secrets: tuple[str, ...] = ()
    key_settings: dict[str, str] = field(default_factory=dict)


PROVIDERS: dict[str, Provider] = {p.name: p for p in (
    Provider(
        "polygon", lambda: PolygonFake(symbols=("AAPL", "MSFT"), page_size=100),
        lambda url: {"api_key": POLYGON_KEY, "base_url": url, "requests_per_minute": FAST},
        lambda url: {"POLYGON_API_KEY": POLYGON_KEY, "POLYGON_BASE_URL": url,
                     "BACKTAPE_PROVIDERS__POLYGON__REQUESTS_PER_MINUTE": str(FAST)},
        ("AAPL", "--frequency", "1d", "--start", "2024-01-02", "--end", "2024-01-06"),
        ("AAPL,MSFT", "--frequency", "1min", "--start", "2024-01-03", "--end", "2024-01-05"),
        (POLYGON_KEY,), {"api_key": POLYGON_KEY}),
    Provider(
        "alpaca", AlpacaFake,
        lambda url: {"api_key": ALPACA_KEY_ID, "secret_key": ALPACA_SECRET, "base_url": url,
                     "requests_per_minute": FAST},
        lambda url: {"APCA_API_KEY_ID": ALPACA_KEY_ID, "APCA_API_SECRET_KEY": ALPACA_SECRET,
                     "APCA_API_DATA_URL": url, "BACKTAPE_PROVIDERS__ALPACA__REQUESTS_PER_MINUTE": str(FAST)},
        ("AAPL", "--frequency", "1d", "--start", "2024-01-02", "--end", "2024-01-06"),
        ("AAPL,MSFT", "--frequency", "1min", "--start", "2024-01-03", "--end", "2024-01-05"),
        (ALPACA_KEY_ID, ALPACA_SECRET), {"api_key": ALPACA_KEY_ID, "secret_key": ALPACA_SECRET}),
    Provider(
        "alphavantage", lambda: av_route,
        lambda url: {"api_key": AV_KEY, "base_url": url, "requests_per_minute": FAST},
        lambda url: {"ALPHAVANTAGE_API_KEY": AV_KEY, "ALPHAVANTAGE_BASE_URL": url,
                     "BACKTAPE_PROVIDERS__ALPHAVANTAGE__REQUESTS_PER_MINUTE": str(FAST)},
        ("IBM", "--frequency", "1d", "--start", "2024-01-02", "--end", "2024-01-06"),
        ("IBM", "--frequency", "5min", "--start", "2024-01-31", "--end", "2024-02-02"),
        (AV_KEY,), {"api_key": AV_KEY}),
    Provider(
        "yahoo", lambda: yahoo_route,
        lambda url: {"base_url": url, "requests_per_minute": FAST},
        lambda url: {"YAHOO_BASE_URL": url, "BACKTAPE_PROVIDERS__YAHOO__REQUESTS_PER_MINUTE": str(FAST)},
        ("AAPL", "--frequency", "1d", "--start", "2024-01-02", "--end", "2024-01-06"),
        ("AAPL", "--frequency", "5min", "--start", "2024-01-05", "--end", "2024-01-06")),
    Provider(
        "ccxt", binance_route,
        lambda url: {"exchange": "binance", "base_url": url},
        lambda url: {"BACKTAPE_PROVIDERS__CCXT__EXCHANGE": "binance",
                     "BACKTAPE_PROVIDERS__CCXT__BASE_URL": url},
        ("BTC/USDT", "--frequency", "1h", "--start", "2024-01-01", "--end", "2024-01-02"),
        ("BTC/USDT,ETH/USDT", "--frequency", "1min", "--start", "2024-01-01",
         "--end", "2024-01-02T02:00:00Z"),
        (), {}),
)}


def write_config(path: Path, tmp: Path, providers: dict[str, dict[str, Any]]) -> Path:
    """A ``backtape.yaml`` with the cache and bundles under ``tmp`` and the given provider blocks."""
    body = {"data": {"cache_dir": str(tmp / "cache"), "bundles_dir": str(tmp / "bundles")},
            "providers": providers}
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return path


def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp: Path) -> None:
    """No backtape or provider variables, no user config; the working folder is empty."""
    for name in list(os.environ):
        upper = name.upper()
        if (name.startswith(ENV_PREFIX) or name in ALIAS_ENV or name == CONFIG_ENV
                or upper.startswith(("BINANCE_", "POLYGON_", "MASSIVE_", "APCA_", "ALPACA_"))):
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp / "xdg-config"))
    work = tmp / "work"
    work.mkdir(exist_ok=True)
    monkeypatch.chdir(work)


@pytest.fixture
def restore_backtape_logger():
    """The CLI configures the ``backtape`` logger (handler, level, no propagation); undo that."""
    logger = logging.getLogger("backtape")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def cli(*args: str):
    """Run the real ``backtape`` command line in-process; returns click's result."""
    return CliRunner().invoke(app, list(args))


def all_text(folder: Path) -> bytes:
    """Every byte of every file below ``folder``."""
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


__all__ = ["PROVIDERS", "Provider", "ReplayServer", "all_text", "binance_route", "clean_environment", "cli",
           "restore_backtape_logger", "write_config"]
