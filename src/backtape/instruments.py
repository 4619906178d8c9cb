"""Per-symbol trading rules a venue imposes: the quantity step (lot size) and the smallest order value.

Sources that know them say so (``DataSource.instruments``: CCXT reads the exchange's market
filters); ``TradingOptions.instruments`` carries them to the broker, which applies them to every
order of the event engine:

==================  ==============================================================================
rule                what the broker does
==================  ==============================================================================
``lot_size``        quantities are rounded down to a multiple of it (0.00001 BTC, 100 shares...);
                    an order rounded to nothing is refused with the reason in ``result.rejections``
``min_quantity``    an order for fewer units is refused (with a reason)
``min_notional``    an order worth less than this at its reference price is refused (with a reason)
==================  ==============================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True)
class Instrument:
    """One symbol's lot size, minimum quantity and minimum order value (``None``: no such rule)."""

    lot_size: float | None = None
    min_notional: float | None = None
    min_quantity: float | None = None

    def __post_init__(self) -> None:
        for name in ("lot_size", "min_notional", "min_quantity"):
            value = getattr(self, name)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if value is not None and not (number and math.isfinite(value) and value > 0):
                raise ConfigError(f"instrument {name} must be a positive number or None, got {value!r}")

    def round_down(self, quantity: float) -> float:
        """``quantity`` (>= 0) rounded down to a whole number of lots (unchanged without a lot size)."""
        if self.lot_size is None:
            return quantity
        lots = math.floor(quantity / self.lot_size + 1e-9)
        return float(round(lots * self.lot_size, 12))

    def too_small(self, quantity: float, price: float) -> str:
        """Why an order of ``quantity`` at ``price`` is below a minimum ('' when it is not)."""
        if self.min_quantity is not None and abs(quantity) < self.min_quantity * (1 - 1e-9):
            return f"quantity {abs(quantity):g} is below the minimum {self.min_quantity:g}"
        if self.min_notional is not None and abs(quantity) * price < self.min_notional:
            return f"order value {abs(quantity) * price:,.2f} is below the minimum {self.min_notional:,.2f}"
        return ""
