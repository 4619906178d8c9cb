"""Data sources: local files, the shipped sample, synthetic data and HTTP providers.

Every source is a :class:`DataSource`; ``registry`` maps names (``csv``, ``sample``, ``polygon``...)
to them. Provider classes import lazily so their optional dependencies load only when used.
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import DataSource, DataSourceMetadata, DataSourceRegistry, SourceCapabilities

# public class name -> (module, registry name, one-line description)
_BUILTINS: dict[str, tuple[str, str, str]] = {
    "CSVDataSource": ("local", "csv", "CSV files or folders (Yahoo, backtrader, generic layouts)"),
    "ParquetDataSource": ("local", "parquet", "Parquet files or folders"),
    "SampleDataSource": ("sample", "sample", "real market data shipped with backtape"),
    "SyntheticDataSource": ("synthetic", "synthetic", "deterministic seeded bars, trades and quotes"),
    "PolygonDataSource": ("polygon", "polygon", "Polygon.io / Massive REST and flat files"),
    "AlpacaDataSource": ("alpaca", "alpaca", "Alpaca market data v2"),
    "AlphaVantageDataSource": ("alphavantage", "alphavantage", "Alpha Vantage time series"),
    "YahooDataSource": ("yahoo", "yahoo", "Yahoo Finance chart API"),
    "CCXTDataSource": ("ccxt", "ccxt", "crypto exchanges through CCXT"),
}


def _lazy_factory(class_name: str):
    def factory(**options: Any) -> DataSource:
        return __getattr__(class_name)(**options)

    return factory


def _default_registry() -> DataSourceRegistry:
    reg = DataSourceRegistry()
    for class_name, (_, name, description) in _BUILTINS.items():
        reg.register(name, _lazy_factory(class_name), description)
    return reg


#: The registry of built-in sources; ``registry.register(name, factory)`` adds your own.
registry = _default_registry()


def get_source(name: str, **options: Any) -> DataSource:
    """Build the registered source ``name`` (see ``registry.list()``).

    For a provider, settings from ``backtape.yaml`` and the environment (keys, base URL, rate
    limits) are the defaults; ``options`` override them.
    """
    from ..config import ProvidersConfig, provider_credentials

    if name.lower() in ProvidersConfig.model_fields:
        options = {**provider_credentials(name), **options}
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
    "get_source",
    "registry",
    *_BUILTINS,
]
