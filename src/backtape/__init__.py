"""backtape: backtesting whose heart is its data layer.

Fetch once, use many; point in time, always; every resolution from 1-minute bars.

>>> import backtape as bt
>>> bars = bt.read_bars("AAPL.csv")                      # doctest: +SKIP
>>> report = bt.validate_bars(bars)                      # doctest: +SKIP
>>> five = bt.aggregate(bars, "5min", calendar="XNYS")   # doctest: +SKIP
"""

from __future__ import annotations

from .aggregate import aggregate, trades_to_bars
from .cache import (
    CachedDataSource,
    CacheFreshnessPolicy,
    CacheStats,
    FreshnessPolicyFactory,
    HybridFreshnessPolicy,
    MarketCloseFreshnessPolicy,
    NeverStalePolicy,
    TTLFreshnessPolicy,
)
from .cache.bundles import BundleDataSource, BundleMetadata, ingest_to_bundle
from .errors import (
    BacktapeError,
    DataFormatError,
    DataValidationError,
    HistoryWindowStartsBeforeData,
    LookAheadError,
)
from .portal import DataPortal, DataRequirement
from .schema import BAR_SCHEMA, QUOTE_SCHEMA, TRADE_SCHEMA
from .sources.local import read_bars, read_ticks
from .timeframes import Timeframe
from .validation import DataQualityWarning, QualityReport, validate_bars, validate_quotes, validate_trades

__version__ = "0.1.0"

__all__ = [
    "BAR_SCHEMA",
    "QUOTE_SCHEMA",
    "TRADE_SCHEMA",
    "BacktapeError",
    "BundleDataSource",
    "BundleMetadata",
    "CacheFreshnessPolicy",
    "CacheStats",
    "CachedDataSource",
    "DataFormatError",
    "DataPortal",
    "DataQualityWarning",
    "DataRequirement",
    "DataValidationError",
    "FreshnessPolicyFactory",
    "HistoryWindowStartsBeforeData",
    "HybridFreshnessPolicy",
    "LookAheadError",
    "MarketCloseFreshnessPolicy",
    "NeverStalePolicy",
    "QualityReport",
    "TTLFreshnessPolicy",
    "Timeframe",
    "__version__",
    "aggregate",
    "ingest_to_bundle",
    "read_bars",
    "read_ticks",
    "trades_to_bars",
    "validate_bars",
    "validate_quotes",
    "validate_trades",
]
