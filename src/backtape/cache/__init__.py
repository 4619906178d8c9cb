"""Fetch once, use many: a range-aware memory + disk cache over any ``DataSource``, and bundles.

``CachedDataSource(adapter, cache_dir=...)`` is itself a ``DataSource``. Coverage (what was fetched,
including empty ranges) lives in a SQLite index; rows live in hive-partitioned Parquet files that
Polars and DuckDB read directly. Freshness policies decide when the open tail is fetched again.
"""

from __future__ import annotations

from .freshness import (
    CacheFreshnessPolicy,
    FreshnessPolicyFactory,
    HybridFreshnessPolicy,
    MarketCloseFreshnessPolicy,
    NeverStalePolicy,
    TTLFreshnessPolicy,
)
from .source import CachedDataSource, default_cache_dir
from .stats import CacheStats

__all__ = [
    "CacheFreshnessPolicy",
    "CacheStats",
    "CachedDataSource",
    "FreshnessPolicyFactory",
    "HybridFreshnessPolicy",
    "MarketCloseFreshnessPolicy",
    "NeverStalePolicy",
    "TTLFreshnessPolicy",
    "default_cache_dir",
]
