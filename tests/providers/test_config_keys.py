"""A key written only in ``backtape.yaml`` reaches each adapter through ``Workspace.source`` and the wire.

The environment holds no provider variable; the replay servers reject a missing or wrong key, so a
successful fetch proves the key arrived, and the recorded requests show how it travelled.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cli_support import PROVIDERS, ReplayServer, binance_route, clean_environment, write_config

from backtape.errors import AuthenticationError
from backtape.workspace import Workspace

pytestmark = pytest.mark.network_local

BINANCE_KEY, BINANCE_SECRET = "binanceKeyFromYaml01", "binanceSecretFromYaml/02"


def _source(name: str, **options):
    """The source as a workspace wires it (keys from the configuration), without the cache."""
    return Workspace().source(name, cache=False, **options)


def _configure(monkeypatch, tmp_path, providers: dict) -> None:
    clean_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("BACKTAPE_CONFIG", str(write_config(tmp_path / "backtape.yaml", tmp_path, providers)))


@pytest.mark.parametrize("name", ["polygon", "alpaca", "alphavantage"])
def test_rest_keys_from_the_config_file(name, tmp_path, monkeypatch):
    provider = PROVIDERS[name]
    with ReplayServer(provider.route()) as server:
        _configure(monkeypatch, tmp_path, {name: provider.settings(server.url)})
        symbol = provider.show[0]
        bars = _source(name).fetch_sync([symbol], "2024-01-02", "2024-01-06", "1d")
        assert bars.height > 0
        sent = server.requests[-1]
    headers = {k.lower(): v for k, v in sent.headers.items()}
    if name == "polygon":
        assert headers["authorization"] == f"Bearer {provider.key_settings['api_key']}"
    elif name == "alpaca":
        assert headers["apca-api-key-id"] == provider.key_settings["api_key"]
        assert headers["apca-api-secret-key"] == provider.key_settings["secret_key"]
    else:
        assert sent.query["apikey"] == provider.key_settings["api_key"]


@pytest.mark.parametrize("name", ["polygon", "alpaca", "alphavantage"])
def test_a_wrong_key_in_the_file_is_refused(name, tmp_path, monkeypatch):
    provider = PROVIDERS[name]
    with ReplayServer(provider.route()) as server:
        settings = provider.settings(server.url)
        settings.update({k: "wrong" + v[5:] for k, v in provider.key_settings.items()})
        _configure(monkeypatch, tmp_path, {name: settings})
        with pytest.raises(AuthenticationError) as info:
            _source(name).fetch_sync([provider.show[0]], "2024-01-02", "2024-01-06", "1d")
    for value in settings.values():
        if isinstance(value, str) and value.startswith("wrong"):
            assert value not in str(info.value)


def test_yahoo_base_url_from_the_config_file(tmp_path, monkeypatch):
    provider = PROVIDERS["yahoo"]
    with ReplayServer(provider.route()) as server:
        _configure(monkeypatch, tmp_path, {"yahoo": provider.settings(server.url)})
        assert _source("yahoo").fetch_sync(["AAPL"], "2024-01-02", "2024-01-06", "1d").height == 3
        assert server.requests[0].path == "/v8/finance/chart/AAPL"


def test_ccxt_key_and_secret_from_the_config_file(tmp_path, monkeypatch):
    with ReplayServer(binance_route()) as server:
        _configure(monkeypatch, tmp_path, {"ccxt": {"exchange": "binance", "base_url": server.url,
                                                    "api_key": BINANCE_KEY, "secret": BINANCE_SECRET}})
        source = _source("ccxt", enable_rate_limit=False)  # keys still come from the file
        bars = source.fetch_sync(["BTC/USDT"], "2024-01-01", "2024-01-01T01:00:00Z", "1min")
        assert bars.height == 60
    signed = [r for r in server.requests if r.path.startswith("/sapi/")]
    assert signed, "with keys, ccxt asks Binance's private endpoints while loading markets"
    for req in signed:
        assert req.headers.get("X-MBX-APIKEY") == BINANCE_KEY
        payload, signature = req.raw_query.rsplit("&signature=", 1)
        expected = hmac.new(BINANCE_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
        assert signature == expected  # signed with the secret from the file, which never travels
    for req in server.requests:
        assert BINANCE_SECRET not in req.raw_query and BINANCE_SECRET not in str(req.headers)
    assert BINANCE_KEY not in str(source.get_metadata()) and BINANCE_KEY not in source.cache_identity()
