"""The numba kernels behind ``backtape.indicators`` (compiled on first use, cached on disk).

Rolling sums copy pandas' ``roll_mean``/``roll_sum`` step for step: Kahan-compensated adds and
removes with separate compensations, the removal before the addition at each bar, a count of
negative values that clamps a wrong-signed mean to 0, and a trailing run of equal values that
returns the value itself. Windows equal in exact arithmetic therefore give equal floats exactly
where pandas' rolling mean does, so strict crossovers tie where backtesting.py and vectorbt tie.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy", inline="always")
def kahan(total: float, comp: float, v: float) -> tuple[float, float]:
    """Add ``v`` to a compensated sum ``(total, comp)`` exactly as pandas' ``add_mean`` does."""
    y = v - comp
    t = total + y
    return t, t - total - y


@njit(cache=True, error_model="numpy", inline="always")
def _mean(total: float, nobs: int, neg: int, run: int, last: float) -> float:
    """pandas' ``calc_mean`` for a full window of ``nobs`` values."""
    result = total / nobs
    if run >= nobs:
        return last
    if neg == 0 and result < 0:
        return 0.0
    if neg == nobs and result > 0:
        return 0.0
    return result


@njit(cache=True, error_model="numpy")
def plain(x: np.ndarray) -> bool:
    """True when ``x`` holds no NaN and no value with its sign bit set (the fast paths' domain)."""
    for v in x:  # noqa: SIM110 - numba: stops at the first hit, allocates nothing
        if v != v or math.copysign(1.0, v) < 0:
            return False
    return True


@njit(cache=True, error_model="numpy")
def sma_kernel(x: np.ndarray, n: int, out: np.ndarray) -> None:
    """Write the ``n``-bar simple moving average of ``x`` into ``out`` (pandas' ``roll_mean``).

    A window holding a NaN is NaN. ``plain`` series take a loop without the NaN and sign branches
    that does exactly the same additions.
    """
    size = x.shape[0]
    total, add, rem = 0.0, 0.0, 0.0
    run, last = 0, x[0] if size else 0.0
    if plain(x):
        for i in range(size):
            if i >= n:
                total, rem = kahan(total, rem, -x[i - n])
            v = x[i]
            total, add = kahan(total, add, v)
            run = run + 1 if v == last else 1
            last = v
            out[i] = _mean(total, n, 0, run, last) if i >= n - 1 else np.nan
        return
    nobs, neg = 0, 0
    for i in range(size):
        if i >= n:
            old = x[i - n]
            if old == old:
                nobs -= 1
                total, rem = kahan(total, rem, -old)
                if math.copysign(1.0, old) < 0:
                    neg -= 1
        v = x[i]
        if v == v:
            nobs += 1
            total, add = kahan(total, add, v)
            if math.copysign(1.0, v) < 0:
                neg += 1
            run = run + 1 if v == last else 1
            last = v
        out[i] = _mean(total, nobs, neg, run, last) if nobs >= n else np.nan


@njit(cache=True, error_model="numpy")
def sma4_kernel(x: np.ndarray, n0: int, n1: int, n2: int, n3: int, out: np.ndarray) -> None:
    """Four SMAs of a ``plain`` ``x`` in one pass, rows 0..3 of ``out``, each exactly
    ``sma_kernel``'s. Four independent compensated chains keep the CPU's adders busy, so four
    windows cost about as much as one; the run of equal values is counted once for all four.
    """
    t0, a0, r0, t1, a1, r1 = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    t2, a2, r2, t3, a3, r3 = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    nan = np.nan
    run, last = 0, x[0] if x.shape[0] else 0.0
    for i in range(x.shape[0]):
        v = x[i]
        run = run + 1 if v == last else 1
        last = v
        if i >= n0:
            t0, r0 = kahan(t0, r0, -x[i - n0])
        t0, a0 = kahan(t0, a0, v)
        out[0, i] = _mean(t0, n0, 0, run, v) if i >= n0 - 1 else nan
        if i >= n1:
            t1, r1 = kahan(t1, r1, -x[i - n1])
        t1, a1 = kahan(t1, a1, v)
        out[1, i] = _mean(t1, n1, 0, run, v) if i >= n1 - 1 else nan
        if i >= n2:
            t2, r2 = kahan(t2, r2, -x[i - n2])
        t2, a2 = kahan(t2, a2, v)
        out[2, i] = _mean(t2, n2, 0, run, v) if i >= n2 - 1 else nan
        if i >= n3:
            t3, r3 = kahan(t3, r3, -x[i - n3])
        t3, a3 = kahan(t3, a3, v)
        out[3, i] = _mean(t3, n3, 0, run, v) if i >= n3 - 1 else nan


@njit(cache=True, error_model="numpy")
def rolling_sum(x: np.ndarray, n: int) -> np.ndarray:
    """Sum of the last ``n`` values (pandas' ``roll_sum``: compensated, equal runs exact)."""
    size = x.shape[0]
    out = np.full(size, np.nan)
    total, add, rem = 0.0, 0.0, 0.0
    nobs, run, last = 0, 0, np.nan
    for i in range(size):
        if i >= n:
            old = x[i - n]
            if old == old:
                nobs -= 1
                total, rem = kahan(total, rem, -old)
        v = x[i]
        if v == v:
            nobs += 1
            total, add = kahan(total, add, v)
            run = run + 1 if v == last else 1
            last = v
        if nobs >= n:
            out[i] = last * nobs if run >= nobs else total
    return out


@njit(cache=True, error_model="numpy")
def first_mean(x: np.ndarray, start: int, n: int) -> float:
    """Mean of ``x[start:start + n]`` as the first full window of ``sma_kernel`` computes it."""
    total, add = 0.0, 0.0
    neg, run, last = 0, 0, x[start]
    for i in range(start, start + n):
        v = x[i]
        total, add = kahan(total, add, v)
        if math.copysign(1.0, v) < 0:
            neg += 1
        run = run + 1 if v == last else 1
        last = v
    return _mean(total, n, neg, run, last)


@njit(cache=True, error_model="numpy")
def ema(x: np.ndarray, n: int) -> np.ndarray:
    """``alpha = 2 / (n + 1)``, seeded at bar ``n - 1`` with the first SMA."""
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] < n:
        return out
    alpha = 2.0 / (n + 1.0)
    value = first_mean(x, 0, n)
    out[n - 1] = value
    for i in range(n, x.shape[0]):
        value = alpha * x[i] + (1.0 - alpha) * value
        out[i] = value
    return out


@njit(cache=True, error_model="numpy")
def wilder(x: np.ndarray, start: int, n: int) -> np.ndarray:
    """Wilder's smoothing of ``x[start:]``: the mean of its first ``n`` values at bar
    ``start + n - 1``, then ``(prev * (n - 1) + v) / n``; NaN before."""
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] - start < n:
        return out
    value = first_mean(x, start, n)
    out[start + n - 1] = value
    for i in range(start + n, x.shape[0]):
        value = (value * (n - 1) + x[i]) / n
        out[i] = value
    return out


@njit(cache=True, error_model="numpy")
def rsi(x: np.ndarray, n: int) -> np.ndarray:
    """Wilder's RSI: 100 - 100 / (1 + avg gain / avg loss); 100 without loss, 50 when flat."""
    size = x.shape[0]
    gain, loss = np.zeros(size), np.zeros(size)
    for i in range(1, size):
        d = x[i] - x[i - 1]
        gain[i] = d if d > 0 else 0.0
        loss[i] = -d if d < 0 else 0.0
    g, lo = wilder(gain, 1, n), wilder(loss, 1, n)
    out = np.full(size, np.nan)
    for i in range(n, size):
        if lo[i] == 0.0:
            out[i] = 50.0 if g[i] == 0.0 else 100.0
        else:
            out[i] = 100.0 - 100.0 / (1.0 + g[i] / lo[i])
    return out


@njit(cache=True, error_model="numpy")
def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """max(h - l, |h - previous close|, |l - previous close|); NaN at bar 0 (no previous close)."""
    out = np.full(close.shape[0], np.nan)
    for i in range(1, close.shape[0]):
        prev = close[i - 1]
        out[i] = max(high[i] - low[i], abs(high[i] - prev), abs(low[i] - prev))
    return out


@njit(cache=True, error_model="numpy")
def realized_volatility(close: np.ndarray, n: int) -> np.ndarray:
    """sqrt of the rolling sum of the last ``n`` squared log returns (not annualised)."""
    r2 = np.full(close.shape[0], np.nan)
    for i in range(1, close.shape[0]):
        r = math.log(close[i] / close[i - 1])
        r2[i] = r * r
    return np.sqrt(rolling_sum(r2, n))


@njit(cache=True, error_model="numpy")
def rolling_extreme(x: np.ndarray, n: int, sign: float) -> np.ndarray:
    """Rolling max of ``sign * x`` times ``sign`` (sign -1 gives the rolling min): a monotonic queue."""
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
def crossed(a: np.ndarray, b: np.ndarray, above: bool) -> np.ndarray:
    """Strict crossings: ``a[i-1] < b[i-1] and a[i] > b[i]`` (or the reverse); False with a NaN."""
    out = np.zeros(a.shape[0], dtype=np.bool_)
    for i in range(1, a.shape[0]):
        if above:
            out[i] = a[i - 1] < b[i - 1] and a[i] > b[i]
        else:
            out[i] = a[i - 1] > b[i - 1] and a[i] < b[i]
    return out
