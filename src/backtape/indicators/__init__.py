"""backtape's one indicator set: strategies, the vector engine, sweeps and ``backtape calc`` use these.

Every function takes 1-D float arrays and returns an array of the same length, NaN where its window
is not yet full (the warm-up). Definitions (docs/indicators.md has the full table):

=================================  ===============================================================
``sma(x, n)``                      mean of the last ``n`` values, bit for bit pandas'
                                   ``rolling(n).mean()``; NaN inside a window that holds a NaN
``ema(x, n)``                      ``alpha = 2 / (n + 1)``, seeded at bar ``n - 1`` with ``sma``
``rsi(x, n)``                      Wilder's RSI; 100 without losses, 50 for a flat window
``true_range(h, l, c)``            ``max(h - l, |h - c[-1]|, |l - c[-1]|)``; NaN at bar 0
``atr(h, l, c, n)``                Wilder's average of the true range, first value at bar ``n``
``realized_volatility(c, n)``      sqrt of the sum of the last ``n`` squared log returns
``rolling_sum(x, n)``              bit for bit pandas' ``rolling(n).sum()``
``rolling_max/min(x, n)``          highest / lowest of the last ``n`` values
``crossed_above/below(a, b)``      ``a[i-1] < b[i-1] and a[i] > b[i]`` (the reverse for below)
=================================  ===============================================================

Kernels compile on first use and load from numba's on-disk cache afterwards.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from . import _kernels as k


def _series(x: object, name: str) -> np.ndarray:
    arr = np.require(np.asarray(x, dtype=np.float64), requirements=("C", "W"))
    if arr.ndim != 1:
        raise ConfigError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _window(n: int) -> int:
    if int(n) != n or n < 1:
        raise ConfigError(f"indicator window must be a positive integer, got {n!r}")
    return int(n)


def _bars(high: object, low: object, close: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, lo, c = _series(high, "high"), _series(low, "low"), _series(close, "close")
    if not h.shape == lo.shape == c.shape:
        raise ConfigError(f"high/low/close lengths differ: {h.shape[0]}, {lo.shape[0]}, {c.shape[0]}")
    return h, lo, c


def sma(x: object, n: int) -> np.ndarray:
    """Simple moving average, e.g. ``sma(close, 20)``; equal to pandas' ``rolling(20).mean()``."""
    arr = _series(x, "x")
    out = np.empty_like(arr)
    k.sma_kernel(arr, _window(n), out)
    return out


def ema(x: object, n: int) -> np.ndarray:
    """Exponential moving average seeded with the first ``n``-bar SMA, e.g. ``ema(close, 12)``."""
    return k.ema(_series(x, "x"), _window(n))


def rsi(x: object, n: int = 14) -> np.ndarray:
    """Wilder's relative strength index in 0..100, e.g. ``rsi(close, 14)``; 50 on a flat window."""
    return k.rsi(_series(x, "x"), _window(n))


def true_range(high: object, low: object, close: object) -> np.ndarray:
    """True range of each bar; NaN at bar 0, which has no previous close."""
    return k.true_range(*_bars(high, low, close))


def atr(high: object, low: object, close: object, n: int = 14) -> np.ndarray:
    """Wilder's average true range, e.g. ``atr(high, low, close, 14)``; first value at bar ``n``."""
    return k.wilder(k.true_range(*_bars(high, low, close)), 1, _window(n))


def realized_volatility(close: object, n: int) -> np.ndarray:
    """sqrt(sum of the last ``n`` squared log returns), not annualised; first value at bar ``n``."""
    return k.realized_volatility(_series(close, "close"), _window(n))


def rolling_sum(x: object, n: int) -> np.ndarray:
    """Sum of the last ``n`` values, equal to pandas' ``rolling(n).sum()``."""
    return k.rolling_sum(_series(x, "x"), _window(n))


def rolling_max(x: object, n: int) -> np.ndarray:
    """Highest value of the last ``n`` bars (e.g. a Donchian upper band)."""
    return k.rolling_extreme(_series(x, "x"), _window(n), 1.0)


def rolling_min(x: object, n: int) -> np.ndarray:
    """Lowest value of the last ``n`` bars (e.g. a Donchian lower band)."""
    return k.rolling_extreme(_series(x, "x"), _window(n), -1.0)


def crossed_above(a: object, b: object) -> np.ndarray:
    """Boolean array: ``a`` crossed strictly above ``b`` at this bar."""
    return k.crossed(_series(a, "a"), _series(b, "b"), True)


def crossed_below(a: object, b: object) -> np.ndarray:
    """Boolean array: ``a`` crossed strictly below ``b`` at this bar."""
    return k.crossed(_series(a, "a"), _series(b, "b"), False)


__all__ = [
    "atr",
    "crossed_above",
    "crossed_below",
    "ema",
    "realized_volatility",
    "rolling_max",
    "rolling_min",
    "rolling_sum",
    "rsi",
    "sma",
    "true_range",
]
