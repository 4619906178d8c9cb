"""Indicator kernels (numba): SMA, EMA, RSI, ATR, rolling max/min and crossovers.

Every indicator takes 1-D float64 arrays, returns an array of the same length and puts NaN where
its window is not yet full (the "warm-up"). The public functions convert their inputs once and call
one compiled signature each, so a fresh process loads them from the on-disk numba cache.

========================  =================================================================
``sma(x, n)``             mean of the last ``n`` values (compensated running sum); NaN inside
                          a window that holds a NaN
``ema(x, n)``             ``alpha = 2 / (n + 1)``, seeded with the SMA of the first ``n`` values
``rsi(x, n)``             Wilder's RSI: average gain and loss seeded with the mean of the first
                          ``n`` changes, then ``avg = (avg * (n - 1) + change) / n``; 100 when
                          there is no loss, 50 when there is neither gain nor loss
``atr(h, l, c, n)``       Wilder's average of the true range (the first bar's range is h - l)
``rolling_max/min(x, n)`` highest / lowest of the last ``n`` values (monotonic queue, O(len))
``crossed_above(a, b)``   ``a[i-1] < b[i-1] and a[i] > b[i]`` (False when any side is NaN)
``crossed_below(a, b)``   ``a[i-1] > b[i-1] and a[i] < b[i]``
========================  =================================================================
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..errors import ConfigError


@njit(cache=True, error_model="numpy", inline="always")
def _kahan(total: float, comp: float, v: float) -> tuple:
    """Add ``v`` to a compensated sum ``(total, comp)``."""
    y = v - comp
    t = total + y
    return t, (t - total) - y


@njit(cache=True, error_model="numpy")
def _has_nan(x: np.ndarray) -> bool:
    for v in x:  # noqa: SIM110 - numba: stops at the first NaN, allocates nothing
        if v != v:
            return True
    return False


@njit(cache=True, error_model="numpy")
def sma_kernel(x: np.ndarray, n: int, out: np.ndarray) -> None:
    """Write the ``n``-bar simple moving average of ``x`` into ``out`` (Kahan-compensated sum).

    Each bar adds the new value, then (once the window is full) subtracts the one leaving it. A
    series without NaN takes a branch-free loop doing exactly the same additions.
    """
    size = x.shape[0]
    total, comp = 0.0, 0.0
    if not _has_nan(x):
        for i in range(size):
            total, comp = _kahan(total, comp, x[i])
            if i >= n:
                total, comp = _kahan(total, comp, -x[i - n])
            out[i] = total / n if i >= n - 1 else np.nan
        return
    nans = 0
    for i in range(size):
        v = x[i]
        if v != v:
            nans += 1
        else:
            total, comp = _kahan(total, comp, v)
        if i >= n:
            old = x[i - n]
            if old != old:
                nans -= 1
            else:
                total, comp = _kahan(total, comp, -old)
        out[i] = total / n if i >= n - 1 and nans == 0 else np.nan


@njit(cache=True, error_model="numpy")
def sma4_kernel(x: np.ndarray, n0: int, n1: int, n2: int, n3: int, out: np.ndarray) -> None:
    """Four SMAs of a NaN-free ``x`` in one pass (rows 0..3 of ``out``), each exactly ``sma_kernel``'s.

    The compensated sum is a chain of dependent additions; four independent chains in one loop
    keep the CPU's adders busy, so four windows cost about as much as one.
    """
    t0, c0, t1, c1, t2, c2, t3, c3 = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    nan = np.nan
    for i in range(x.shape[0]):
        v = x[i]
        t0, c0 = _kahan(t0, c0, v)
        if i >= n0:
            t0, c0 = _kahan(t0, c0, -x[i - n0])
        out[0, i] = t0 / n0 if i >= n0 - 1 else nan
        t1, c1 = _kahan(t1, c1, v)
        if i >= n1:
            t1, c1 = _kahan(t1, c1, -x[i - n1])
        out[1, i] = t1 / n1 if i >= n1 - 1 else nan
        t2, c2 = _kahan(t2, c2, v)
        if i >= n2:
            t2, c2 = _kahan(t2, c2, -x[i - n2])
        out[2, i] = t2 / n2 if i >= n2 - 1 else nan
        t3, c3 = _kahan(t3, c3, v)
        if i >= n3:
            t3, c3 = _kahan(t3, c3, -x[i - n3])
        out[3, i] = t3 / n3 if i >= n3 - 1 else nan


@njit(cache=True, error_model="numpy")
def _ema(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] < n:
        return out
    alpha = 2.0 / (n + 1.0)
    value = 0.0
    for i in range(n):
        value += x[i]
    value /= n
    out[n - 1] = value
    for i in range(n, x.shape[0]):
        value = alpha * x[i] + (1.0 - alpha) * value
        out[i] = value
    return out


@njit(cache=True, error_model="numpy")
def _rsi_value(gain: float, loss: float) -> float:
    if loss == 0.0:
        return 50.0 if gain == 0.0 else 100.0
    return 100.0 - 100.0 / (1.0 + gain / loss)


@njit(cache=True, error_model="numpy")
def _rsi(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] <= n:
        return out
    gain = 0.0
    loss = 0.0
    for i in range(1, n + 1):
        d = x[i] - x[i - 1]
        if d > 0:
            gain += d
        else:
            loss -= d
    gain /= n
    loss /= n
    out[n] = _rsi_value(gain, loss)
    for i in range(n + 1, x.shape[0]):
        d = x[i] - x[i - 1]
        gain = (gain * (n - 1) + (d if d > 0 else 0.0)) / n
        loss = (loss * (n - 1) + (-d if d < 0 else 0.0)) / n
        out[i] = _rsi_value(gain, loss)
    return out


@njit(cache=True, error_model="numpy")
def _atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int) -> np.ndarray:
    size = close.shape[0]
    out = np.full(size, np.nan)
    if size < n:
        return out
    value = 0.0
    for i in range(size):
        tr = high[i] - low[i]
        if i > 0:
            tr = max(tr, abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
        if i < n:
            value += tr
            if i == n - 1:
                value /= n
                out[i] = value
        else:
            value = (value * (n - 1) + tr) / n
            out[i] = value
    return out


@njit(cache=True, error_model="numpy")
def _rolling_extreme(x: np.ndarray, n: int, sign: float) -> np.ndarray:
    """Rolling max of ``sign * x`` times ``sign`` (sign -1 gives the rolling min)."""
    size = x.shape[0]
    out = np.full(size, np.nan)
    queue = np.empty(size, dtype=np.int64)
    head = 0
    tail = 0
    for i in range(size):
        v = sign * x[i]
        while tail > head and sign * x[queue[tail - 1]] <= v:
            tail -= 1
        queue[tail] = i
        tail += 1
        if queue[head] <= i - n:
            head += 1
        if i >= n - 1:
            out[i] = x[queue[head]]
    return out


@njit(cache=True, error_model="numpy")
def _crossed(a: np.ndarray, b: np.ndarray, above: bool) -> np.ndarray:
    out = np.zeros(a.shape[0], dtype=np.bool_)
    for i in range(1, a.shape[0]):
        if above:
            out[i] = a[i - 1] < b[i - 1] and a[i] > b[i]
        else:
            out[i] = a[i - 1] > b[i - 1] and a[i] < b[i]
    return out


def _as_series(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.require(np.asarray(x, dtype=np.float64), requirements=("C", "W"))
    if arr.ndim != 1:
        raise ConfigError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _window(n: int) -> int:
    if int(n) != n or n < 1:
        raise ConfigError(f"indicator window must be a positive integer, got {n!r}")
    return int(n)


def sma(x: np.ndarray, n: int) -> np.ndarray:
    """Simple moving average, e.g. ``sma(close, 20)``."""
    arr = _as_series(x, "x")
    out = np.empty_like(arr)
    sma_kernel(arr, _window(n), out)
    return out


def ema(x: np.ndarray, n: int) -> np.ndarray:
    """Exponential moving average seeded with the first ``n``-bar SMA, e.g. ``ema(close, 12)``."""
    return _ema(_as_series(x, "x"), _window(n))


def rsi(x: np.ndarray, n: int = 14) -> np.ndarray:
    """Wilder's relative strength index in 0..100, e.g. ``rsi(close, 14)``."""
    return _rsi(_as_series(x, "x"), _window(n))


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int = 14) -> np.ndarray:
    """Wilder's average true range, e.g. ``atr(high, low, close, 14)``."""
    h, lo, c = _as_series(high, "high"), _as_series(low, "low"), _as_series(close, "close")
    if not h.shape == lo.shape == c.shape:
        raise ConfigError(f"high/low/close lengths differ: {h.shape[0]}, {lo.shape[0]}, {c.shape[0]}")
    return _atr(h, lo, c, _window(n))


def rolling_max(x: np.ndarray, n: int) -> np.ndarray:
    """Highest value of the last ``n`` bars (e.g. a Donchian upper band)."""
    return _rolling_extreme(_as_series(x, "x"), _window(n), 1.0)


def rolling_min(x: np.ndarray, n: int) -> np.ndarray:
    """Lowest value of the last ``n`` bars (e.g. a Donchian lower band)."""
    return _rolling_extreme(_as_series(x, "x"), _window(n), -1.0)


def crossed_above(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Boolean array: ``a`` crossed strictly above ``b`` at this bar."""
    return _crossed(_as_series(a, "a"), _as_series(b, "b"), True)


def crossed_below(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Boolean array: ``a`` crossed strictly below ``b`` at this bar."""
    return _crossed(_as_series(a, "a"), _as_series(b, "b"), False)
