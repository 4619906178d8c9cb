"""Data sources: local files, the shipped sample, synthetic data and HTTP providers.

Every source is a :class:`DataSource`; ``registry`` maps names (``csv``, ``sample``, ``polygon``...)
to them. Provider classes import lazily so their optional dependencies load only when used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .base import (
    DataSource,
    DataSourceMetadata,
    DataSourceRegistry,
    SourceCapabilities,
    SourceSpec,
    check_options,
)

#: What each provider's keyword arguments may be filled from, first variable winning; the
#: configuration reads these (``config.ALIAS_ENV`` is built from them), adapters never do.
_CREDENTIALS: dict[str, dict[str, tuple[str, ...]]] = {
    "polygon": {
        "api_key": ("POLYGON_API_KEY", "MASSIVE_API_KEY"),
        "base_url": ("POLYGON_BASE_URL",),
        "s3_endpoint": ("POLYGON_S3_ENDPOINT",),
        "s3_access_key_id": ("POLYGON_S3_ACCESS_KEY_ID", "MASSIVE_S3_ACCESS_KEY_ID"),
        "s3_secret_access_key": ("POLYGON_S3_SECRET_ACCESS_KEY", "MASSIVE_S3_SECRET_ACCESS_KEY"),
    },
    "alpaca": {
        "api_key": ("APCA_API_KEY_ID", "ALPACA_API_KEY"),
        "secret_key": ("APCA_API_SECRET_KEY", "ALPACA_SECRET_KEY"),
        "base_url": ("APCA_API_DATA_URL",),
    },
    "alphavantage": {
        "api_key": ("ALPHAVANTAGE_API_KEY", "ALPHA_VANTAGE_API_KEY"),
        "base_url": ("ALPHAVANTAGE_BASE_URL",),
    },
    "yahoo": {"base_url": ("YAHOO_BASE_URL",)},
    "ccxt": {"api_key": ("{EXCHANGE}_API_KEY", "CCXT_API_KEY"),
             "secret": ("{EXCHANGE}_API_SECRET", "{EXCHANGE}_SECRET_KEY", "CCXT_SECRET")},
}

# public class name -> (module, registry name, one-line description, remote)
_BUILTINS: dict[str, tuple[str, str, str, bool]] = {
    "CSVDataSource": ("files", "csv", "CSV files or folders (Yahoo, backtrader, generic layouts)", False),
    "ParquetDataSource": ("files", "parquet", "Parquet files or folders", False),
    "SampleDataSource": ("sample", "sample", "real market data shipped with backtape", False),
    "SyntheticDataSource": ("synthetic", "synthetic", "deterministic seeded bars, trades and quotes", False),
    "PolygonDataSource": ("polygon", "polygon", "Polygon.io / Massive REST and flat files", True),
    "AlpacaDataSource": ("alpaca", "alpaca", "Alpaca market data v2", True),
    "AlphaVantageDataSource": ("alphavantage", "alphavantage", "Alpha Vantage time series", True),
    "YahooDataSource": ("yahoo", "yahoo", "Yahoo Finance chart API", True),
    "CCXTDataSource": ("ccxt", "ccxt", "crypto exchanges through CCXT", True),
}


def _lazy_factory(class_name: str) -> Callable[..., DataSource]:
    def factory(**options: Any) -> DataSource:
        cls = __getattr__(class_name)
        check_options(_BUILTINS[class_name][1], cls, options)
        source: DataSource = cls(**options)
        return source

    return factory


def _default_registry() -> DataSourceRegistry:
    reg = DataSourceRegistry()
    for class_name, (_, name, description, remote) in _BUILTINS.items():
        reg.register(name, _lazy_factory(class_name), description, remote=remote,
                     credentials=_CREDENTIALS.get(name))
    return reg


#: The registry of built-in sources; ``registry.register(name, factory)`` adds your own.
registry = _default_registry()


def get_source(name: str, **options: Any) -> DataSource:
    """Build the registered source ``name`` (see ``registry.list()``) from explicit ``options``.

    This reads no configuration: ``backtape.Workspace.source`` adds a provider's keys and settings
    from ``backtape.yaml`` and the environment, and puts it behind the cache.
    """
    return registry.get_source(name, **options)


def __getattr__(name: str) -> Any:
    if name in _BUILTINS:
        module = importlib.import_module(f".{_BUILTINS[name][0]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DataSource",
    "DataSourceMetadata",
    "DataSourceRegistry",
    "SourceCapabilities",
    "SourceSpec",
    "get_source",
    "registry",
    *_BUILTINS,
]
