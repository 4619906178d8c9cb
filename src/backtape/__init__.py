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
    ConfigError,
    DataFormatError,
    DataValidationError,
    HistoryWindowStartsBeforeData,
    LookAheadError,
)
from .schema import BAR_SCHEMA, QUOTE_SCHEMA, TRADE_SCHEMA
from .sources import DataSource, get_source
from .sources.local import read_bars, read_ticks
from .timeframes import Timeframe
from .validation import DataQualityWarning, QualityReport, validate_bars, validate_quotes, validate_trades

__version__ = "0.1.0"

# Heavier parts (numba kernels, SQLAlchemy) import on first use: `backtape.run_backtest` works,
# but `import backtape` stays quick.
_LAZY: dict[str, str] = {
    "DataPortal": "portal",
    "DataRequirement": "portal",
    "BacktestEngine": "engine",
    "BacktestResult": "engine",
    "Context": "engine",
    "Fill": "engine",
    "Order": "engine",
    "Strategy": "engine",
    "Trade": "engine",
    "Quote": "engine",
    "StrategyFactory": "engine",
    "run_backtest": "engine",
    "sma_crossover": "engine",
    "FrameDataSource": "sources.memory",
    "Commission": "costs",
    "SlippageModel": "costs",
    "SpreadModel": "costs",
    "SquareRootImpact": "costs",
    "TransactionCostEngine": "costs",
    "CappedKelly": "risk",
    "FixedFractional": "risk",
    "RiskManager": "risk",
    "VolatilityTarget": "risk",
    "ResultsStore": "results",
    "optimize": "optimization",
    "walk_forward": "optimization",
    "monte_carlo": "optimization",
    "OptimizationEngine": "optimization",
    "OptimizationResult": "optimization",
    "WalkForwardResult": "optimization",
    "MonteCarloResult": "optimization",
    "deflated_sharpe_ratio": "optimization",
    "probability_of_backtest_overfitting": "optimization",
    "Config": "config",
    "load_config": "config",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

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
    "ConfigError",
    "DataSource",
    "DataFormatError",
    "DataQualityWarning",
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
    "get_source",
    "ingest_to_bundle",
    "read_bars",
    "read_ticks",
    "trades_to_bars",
    "validate_bars",
    "validate_quotes",
    "validate_trades",
    *_LAZY,
]
