"""backtape: backtesting whose heart is its data layer.

Fetch once, use many; point in time, always; every resolution from 1-minute bars.

>>> import backtape as bt
>>> bars = bt.read_bars("AAPL.csv")                      # doctest: +SKIP
>>> report = bt.validate_bars(bars)                      # doctest: +SKIP
>>> five = bt.aggregate(bars, "5min", calendar="XNYS")   # doctest: +SKIP
"""

from __future__ import annotations

import logging

__version__ = "0.1.0"

# backtape's loggers stay silent until the application configures logging (the standard library's
# advice for libraries): a failing run is an exception, not also an "ERROR" line on stderr
logging.getLogger(__name__).addHandler(logging.NullHandler())
del logging

# Every name imports its module on first use: `backtape.run_backtest` works, but `import backtape`
# loads nothing heavy (no polars, numpy, numba or SQLAlchemy until something needs them).
_LAZY: dict[str, str] = {
    "aggregate": "aggregation",
    "trades_to_bars": "aggregation",
    "CachedDataSource": "cache",
    "CacheFreshnessPolicy": "cache",
    "CacheStats": "cache",
    "FreshnessPolicyFactory": "cache",
    "HybridFreshnessPolicy": "cache",
    "MarketCloseFreshnessPolicy": "cache",
    "NeverStalePolicy": "cache",
    "TTLFreshnessPolicy": "cache",
    "BundleDataSource": "cache.bundles",
    "BundleMetadata": "cache.bundles",
    "ingest_to_bundle": "cache.bundles",
    "BacktapeError": "errors",
    "ConfigError": "errors",
    "DataFormatError": "errors",
    "DataValidationError": "errors",
    "HistoryWindowStartsBeforeData": "errors",
    "LookAheadError": "errors",
    "BAR_SCHEMA": "schema",
    "QUOTE_SCHEMA": "schema",
    "TRADE_SCHEMA": "schema",
    "DataSource": "sources",
    "get_source": "sources",
    "read_bars": "sources.files",
    "read_ticks": "sources.files",
    "Timeframe": "timeframes",
    "DataQualityWarning": "validation",
    "QualityReport": "validation",
    "validate_bars": "validation",
    "validate_quotes": "validation",
    "validate_trades": "validation",
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
    "run_backtest": "workspace",
    "check_vector_form": "vector.form",
    "Workspace": "workspace",
    "default_workspace": "workspace",
    "TradingOptions": "options",
    "Instrument": "instruments",
    "BacktapeWarning": "errors",
    "StrategyError": "errors",
    "prepare": "preparation",
    "PreparedSource": "preparation",
    "Features": "preparation",
    "Outliers": "preparation",
    "MissingBars": "preparation",
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
    "optimize": "workspace",
    "walk_forward": "workspace",
    "monte_carlo": "workspace",
    "OptimizationEngine": "optimization",
    "OptimizationResult": "optimization",
    "WalkForwardResult": "optimization",
    "MonteCarloResult": "optimization",
    "deflated_sharpe_ratio": "optimization",
    "probability_of_backtest_overfitting": "optimization",
    "Config": "config",
    "load_config": "config",
}


#: sub-packages offered as attributes, imported on first use: ``backtape.indicators.sma(close, 20)``
_SUBPACKAGES = ("indicators",)


def __getattr__(name: str) -> object:
    if name in _LAZY or name in _SUBPACKAGES:
        import importlib

        module = importlib.import_module(f".{_LAZY.get(name, name)}", __name__)
        value = getattr(module, name) if name in _LAZY else module
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API (``__all__``) and the module's dunder attributes, nothing imported in passing."""
    return sorted({n for n in globals() if n.startswith("__")} | set(__all__))

__all__ = ["__version__", *_LAZY, *_SUBPACKAGES]
