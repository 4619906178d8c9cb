"""backtape: backtesting whose heart is its data layer.

Fetch once, use many; point in time, always; every resolution from 1-minute bars.
"""

from __future__ import annotations

from .errors import (
    BacktapeError,
    DataFormatError,
    DataValidationError,
    HistoryWindowStartsBeforeData,
    LookAheadError,
)
from .schema import BAR_SCHEMA, QUOTE_SCHEMA, TRADE_SCHEMA
from .timeframes import Timeframe

__version__ = "0.1.0"

__all__ = [
    "BAR_SCHEMA",
    "QUOTE_SCHEMA",
    "TRADE_SCHEMA",
    "BacktapeError",
    "DataFormatError",
    "DataValidationError",
    "HistoryWindowStartsBeforeData",
    "LookAheadError",
    "Timeframe",
    "__version__",
]
