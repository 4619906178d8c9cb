"""Plain numpy kernels behind the built-in calculations (one pass, no pandas)."""

from __future__ import annotations

import numpy as np


def ema(values: np.ndarray, period: int) -> float:
    """Exponential moving average (alpha = 2/(period+1)) seeded with the mean of the first ``period``."""
    if len(values) < period:
        return float("nan")
    alpha = 2.0 / (period + 1)
    out = float(np.mean(values[:period]))
    for v in values[period:]:
        out += alpha * (float(v) - out)
    return out


def wilder(values: np.ndarray, period: int) -> float:
    """Wilder's smoothing: mean of the first ``period`` values, then ``(prev*(p-1) + v) / p``."""
    if len(values) < period:
        return float("nan")
    out = float(np.mean(values[:period]))
    for v in values[period:]:
        out = (out * (period - 1) + float(v)) / period
    return out


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """True range of bars 1..n-1 (each needs the previous close)."""
    prev = close[:-1]
    h, lo = high[1:], low[1:]
    return np.maximum(h - lo, np.maximum(np.abs(h - prev), np.abs(lo - prev)))


def rsi(close: np.ndarray, period: int) -> float:
    """Wilder's relative strength index in [0, 100]."""
    diff = np.diff(close)
    gain = wilder(np.clip(diff, 0, None), period)
    loss = wilder(np.clip(-diff, 0, None), period)
    if np.isnan(gain) or np.isnan(loss):
        return float("nan")
    return 100.0 if loss == 0 else 100.0 - 100.0 / (1.0 + gain / loss)


def realized_volatility(close: np.ndarray) -> float:
    """Square root of the sum of squared log returns (not annualised)."""
    if len(close) < 2:
        return float("nan")
    r = np.diff(np.log(close))
    return float(np.sqrt(np.sum(r * r)))
