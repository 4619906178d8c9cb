"""Tick data: time merge of trades and quotes, Lee-Ready classification, delta, flow, bars.

Whole-frame functions take canonical ``TRADE_SCHEMA`` / ``QUOTE_SCHEMA`` frames (any symbols);
the streaming API (``iter_merged``, ``iter_classified``, ``TickClassifier``) takes time-ordered
batches and gives the same results for any batch boundaries.
"""

from .bars import tick_bars, time_bars, volume_bars
from .classify import TickClassifier, classify_trades, iter_classified
from .delta import cumulative_delta, tick_flow
from .merge import MERGED_SCHEMA, iter_merged, merge_streams
from .quotes import quote_stats

__all__ = [
    "MERGED_SCHEMA",
    "TickClassifier",
    "classify_trades",
    "cumulative_delta",
    "iter_classified",
    "iter_merged",
    "merge_streams",
    "quote_stats",
    "tick_bars",
    "tick_flow",
    "time_bars",
    "volume_bars",
]
