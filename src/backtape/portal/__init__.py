"""The DataPortal: one synchronous, point-in-time view of everything a run pre-loaded.

``DataPortal`` (clock, spot, slice, history, ticks), ``DataRequirement`` (what a consumer needs),
``TickStream`` (what ``DataPortal.iter_ticks`` returns), the adjustment modes and the multi-timeframe
rules live in the submodules of this package.
"""

from __future__ import annotations

from .adjustments import MODES as ADJUSTMENT_MODES
from .portal import DataPortal
from .requirements import DataRequirement
from .ticks import TickStream

__all__ = ["ADJUSTMENT_MODES", "DataPortal", "DataRequirement", "TickStream"]
