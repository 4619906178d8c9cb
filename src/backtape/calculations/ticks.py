"""Tick calculations (seed 001): cumulative delta from trades and quotes, tick flow from trades.

Both read the portal's pre-loaded ticks of the last ``lookback_minutes`` before the entry time
(``portal.get_ticks``) and never fetch. Classification is Lee-Ready (``backtape.ticks``): a trade is
judged only against quotes stamped strictly before it; the first trades of the window can only be
classified by the quote rule or by price changes inside the window, never by data after the entry.
"""

from __future__ import annotations

from .._time import NS_PER_MINUTE, TimeLike, to_ns
from ..portal import DataPortal, DataRequirement
from ..schema import TickKind, empty
from ..ticks import classify_trades, cumulative_delta
from .base import CalculationAdapter


class _TickWindow(CalculationAdapter):
    """Shared plumbing: a lookback in minutes and the trades (and quotes) inside it."""

    uses_quotes = True

    def __init__(self, lookback_minutes: int = 30) -> None:
        super().__init__()
        if lookback_minutes < 1:
            raise ValueError(f"{type(self).__name__}: lookback_minutes must be >= 1, got {lookback_minutes}")
        self.lookback_minutes = lookback_minutes

    def get_data_requirements(self) -> list[DataRequirement]:
        kinds: tuple[TickKind, ...] = ("trades", "quotes") if self.uses_quotes else ("trades",)
        return [DataRequirement(kind, "1min", self.lookback_minutes) for kind in kinds]

    def _classified(self, portal: DataPortal, entry_time: TimeLike):
        """Trades of the window with ``side``, ``delta`` and ``cum_delta`` (from the window start)."""
        symbol = self._require_symbol()
        t = to_ns(entry_time, name="entry_time")
        start = t - self.lookback_minutes * NS_PER_MINUTE
        trades = portal.get_ticks("trades", symbol, start, t)
        quotes = portal.get_ticks("quotes", symbol, start, t) if self.uses_quotes else empty("quotes")
        return cumulative_delta(classify_trades(trades, quotes))


class CumDeltaAdapter(_TickWindow):
    """Cumulative delta (buyer- minus seller-initiated volume) over the last ``lookback_minutes``."""

    name = "cum_delta"

    def compute(self, portal: DataPortal, entry_time: TimeLike) -> dict[str, float]:
        c = self._classified(portal, entry_time)
        side, size = c["side"], c["size"]
        return {
            "cum_delta": float(c["cum_delta"][-1]) if c.height else 0.0,
            "buy_volume": float(size.filter(side > 0).sum()),
            "sell_volume": float(size.filter(side < 0).sum()),
            "unclassified_volume": float(size.filter(side == 0).sum()),
            "trades": float(c.height),
        }


class TickFlowAdapter(_TickWindow):
    """Buy/sell volume imbalance of the last ``lookback_minutes`` of trades (tick rule, trades only).

    ``use_quotes=True`` classifies with Lee-Ready against quotes too (then quotes are required).
    """

    name = "tick_flow"

    def __init__(self, lookback_minutes: int = 5, *, use_quotes: bool = False) -> None:
        super().__init__(lookback_minutes)
        self.uses_quotes = use_quotes

    def compute(self, portal: DataPortal, entry_time: TimeLike) -> dict[str, float]:
        c = self._classified(portal, entry_time)
        side, size = c["side"], c["size"]
        buy = float(size.filter(side > 0).sum())
        sell = float(size.filter(side < 0).sum())
        total = buy + sell
        return {
            "buy_volume": buy,
            "sell_volume": sell,
            "net_volume": buy - sell,
            "imbalance": (buy - sell) / total if total > 0 else float("nan"),
            "trades": float(c.height),
        }
