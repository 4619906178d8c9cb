"""The built-in bar calculations: EMA, session VWAP, ATR, RSI, realized volatility, opening range and
relative volume. Each reads only bars complete at the entry time, through the portal. EMA, ATR, RSI
and realized volatility are the last value of ``backtape.indicators``' function over the lookback
window, so they equal what a strategy computes from the same bars.
"""

from __future__ import annotations

import numpy as np

from .. import indicators
from .._time import NS_PER_MINUTE, TimeLike, to_ns
from ..portal import DataPortal, DataRequirement
from .base import CalculationAdapter

_SESSION_MINUTES = 390  # a regular US equity session; only used to size minute lookbacks


def _last(values: np.ndarray) -> float:
    """The value at the entry (NaN when the window is too short to hold one)."""
    return float(values[-1]) if len(values) else float("nan")


def _session_open(portal: DataPortal, t: int) -> int:
    """Open of the session containing ``t``, or of the last session opened before it."""
    opens = portal.calendar.opens
    return int(opens[max(int(opens.searchsorted(t, "right")) - 1, 0)])


class EMA(CalculationAdapter):
    """EMA of closes on ``frequency`` bars, warmed up over ``4 * period`` bars."""

    def __init__(self, period: int = 20, frequency: str = "1min") -> None:
        super().__init__()
        self.period, self.frequency = period, frequency
        self.name = f"ema_{frequency}_{period}"

    def get_data_requirements(self) -> list[DataRequirement]:
        return [DataRequirement("bars", self.frequency, 4 * self.period)]

    def compute(self, portal: DataPortal, entry_time: TimeLike) -> dict[str, float]:
        close = portal.get_history_window(self._require_symbol(), entry_time, 4 * self.period,
                                          self.frequency, "close")[:, 0]
        return {"ema": _last(indicators.ema(close, self.period))}


class SessionVWAP(CalculationAdapter):
    """Volume-weighted typical price ((h+l+c)/3) of the entry's session so far."""

    name = "vwap"

    def get_data_requirements(self) -> list[DataRequirement]:
        # one daily bar of lookback reaches back to the session open on any calendar (24/7 included)
        return [DataRequirement("bars", "1min", _SESSION_MINUTES), DataRequirement("bars", "1d", 1)]

    def compute(self, portal: DataPortal, entry_time: TimeLike) -> dict[str, float]:
        t = to_ns(entry_time)
        bars = portal.get_bars(self._require_symbol(), _session_open(portal, t), t, "1min")
        volume = bars["volume"]
        if volume.sum() <= 0:
            return {"vwap": float("nan")}
        typical = (bars["high"] + bars["low"] + bars["close"]) / 3.0
        return {"vwap": float(np.sum(typical * volume) / np.sum(volume))}


class ATR(CalculationAdapter):
    """Wilder's average true range over ``period`` bars of ``frequency`` (daily by default)."""

    def __init__(self, period: int = 14, frequency: str = "1d") -> None:
        super().__init__()
        self.period, self.frequency = period, frequency
        self.name = "atr" if (period, frequency) == (14, "1d") else f"atr_{frequency}_{period}"

    def get_data_requirements(self) -> list[DataRequirement]:
        return [DataRequirement("bars", "1min"), DataRequirement("bars", self.frequency, 3 * self.period + 1)]

    def compute(self, portal: DataPortal, entry_time: TimeLike) -> dict[str, float]:
        n, sym = 3 * self.period + 1, self._require_symbol()
        h, lo, c = (portal.get_history_window(sym, entry_time, n, self.frequency, f)[:, 0]
                    for f in ("high", "low", "close"))
        return {"atr": _last(indicators.atr(h, lo, c, self.period))}


class RSI(CalculationAdapter):
    """Wilder's RSI of closes over ``period`` bars of ``frequency``."""

    def __init__(self, period: int = 14, frequency: str = "5min") -> None:
        super().__init__()
        self.period, self.frequency = period, frequency
        self.name = "rsi" if (period, frequency) == (14, "5min") else f"rsi_{frequency}_{period}"

    def get_data_requirements(self) -> list[DataRequirement]:
        return [DataRequirement("bars", self.frequency, 4 * self.period + 1)]

    def compute(self, portal: DataPortal, entry_time: TimeLike) -> dict[str, float]:
        close = portal.get_history_window(self._require_symbol(), entry_time, 4 * self.period + 1,
                                          self.frequency, "close")[:, 0]
        return {"rsi": _last(indicators.rsi(close, self.period))}


class RealizedVolatility(CalculationAdapter):
    """sqrt(sum of squared log returns) of the last ``window`` bars of ``frequency``."""

    def __init__(self, window: int = 30, frequency: str = "5min") -> None:
        super().__init__()
        self.window, self.frequency = window, frequency
        default = (window, frequency) == (30, "5min")
        self.name = "realized_vol" if default else f"realized_vol_{frequency}_{window}"

    def get_data_requirements(self) -> list[DataRequirement]:
        return [DataRequirement("bars", self.frequency, self.window + 1)]

    def compute(self, portal: DataPortal, entry_time: TimeLike) -> dict[str, float]:
        close = portal.get_history_window(self._require_symbol(), entry_time, self.window + 1,
                                          self.frequency, "close")[:, 0]
        return {"realized_vol": _last(indicators.realized_volatility(close, self.window))}


class OpeningRange(CalculationAdapter):
    """High and low of the first ``minutes`` of the entry's session (so far, if still forming)."""

    def __init__(self, minutes: int = 30) -> None:
        super().__init__()
        self.minutes = minutes
        self.name = "opening_range" if minutes == 30 else f"opening_range_{minutes}"

    def get_data_requirements(self) -> list[DataRequirement]:
        return [DataRequirement("bars", "1min", _SESSION_MINUTES)]

    def compute(self, portal: DataPortal, entry_time: TimeLike) -> dict[str, float]:
        t = to_ns(entry_time)
        start = _session_open(portal, t)
        end = min(t, start + self.minutes * NS_PER_MINUTE)
        bars = portal.get_bars(self._require_symbol(), start, end, "1min")
        if len(bars["ts"]) == 0:
            return {"or_high": float("nan"), "or_low": float("nan"), "or_complete": 0.0}
        return {"or_high": float(bars["high"].max()), "or_low": float(bars["low"].min()),
                "or_complete": float(end == start + self.minutes * NS_PER_MINUTE)}


class RelativeVolume(CalculationAdapter):
    """Session volume so far divided by the mean volume of the same elapsed time in prior sessions."""

    def __init__(self, sessions: int = 10) -> None:
        super().__init__()
        self.sessions = sessions
        self.name = "rvol" if sessions == 10 else f"rvol_{sessions}"

    def get_data_requirements(self) -> list[DataRequirement]:
        return [DataRequirement("bars", "1min", _SESSION_MINUTES),
                DataRequirement("bars", "1d", self.sessions)]

    def compute(self, portal: DataPortal, entry_time: TimeLike) -> dict[str, float]:
        t, sym = to_ns(entry_time), self._require_symbol()
        cal = portal.calendar
        i = max(int(cal.opens.searchsorted(t, "right")) - 1, 0)
        elapsed = t - int(cal.opens[i])
        bars = portal.get_bars(sym, int(cal.opens[max(i - self.sessions, 0)]), t, "1min")
        ts, volume = bars["ts"], bars["volume"]

        def volume_between(lo: int, hi: int) -> float:
            return float(volume[ts.searchsorted(lo):ts.searchsorted(hi)].sum())

        now = volume_between(int(cal.opens[i]), t)
        past = [volume_between(int(o), int(o) + elapsed) for o in cal.opens[max(i - self.sessions, 0):i]]
        base = float(np.mean(past)) if past else float("nan")
        return {"rvol": now / base if base > 0 else float("nan")}
