"""``CalculationAdapter``: a calculation that declares its data and computes at an entry time.

An adapter never fetches. It declares ``DataRequirement``s; the portal merges every adapter's needs
and loads once; ``compute(portal, entry_time)`` then reads only what the portal shows at that time.
"""

from __future__ import annotations

import abc

from .._time import TimeLike
from ..portal import DataPortal, DataRequirement


class CalculationAdapter(abc.ABC):
    """Base class of entry-time calculations (EMA, VWAP, ATR, ...).

    Subclasses set ``name`` and implement :meth:`get_data_requirements` and :meth:`compute`.
    """

    name: str = "calculation"

    def __init__(self) -> None:
        self.symbol: str | None = None

    @abc.abstractmethod
    def get_data_requirements(self) -> list[DataRequirement]:
        """The data this calculation reads, with lookbacks in bars of each frequency."""

    def initialize(self, symbol: str) -> None:
        """Bind the calculation to ``symbol`` before the first ``compute``."""
        self.symbol = symbol

    @abc.abstractmethod
    def compute(self, portal: DataPortal, entry_time: TimeLike) -> dict[str, float]:
        """Named values as of ``entry_time`` (only bars complete at that time are used)."""

    def _require_symbol(self) -> str:
        if self.symbol is None:
            raise RuntimeError(f"{self.name}: call initialize(symbol) before compute()")
        return self.symbol

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
