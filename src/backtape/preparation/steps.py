"""The outlier and feature steps, and the as-of-each-bar price adjustment they compute on."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view

from .specs import Features, Outliers

_MAD_TO_STD = 1.4826
_CHUNK = 1 << 16
LEVEL_FEATURES = ("sma", "ema", "atr")
"""Features in price units: scaled to the prices as of their own bar (the others are ratios)."""


def adjustment_factors(bars: pl.DataFrame, actions: pl.DataFrame | None, mode: str) -> np.ndarray:
    """Per bar, the product of the price factors of the actions in ``actions`` going ex after it.

    A split of ratio r multiplies the bars before its ex-date by 1/r; with ``mode="total_return"``
    a dividend d multiplies them by 1 - d/p (p: the close of the last bar before the ex-date, the
    portal's CRSP rule). ``bars`` must be sorted by symbol and ts.
    """
    factor = np.ones(bars.height)
    if actions is None or actions.height == 0 or mode == "raw" or bars.height == 0:
        return factor
    ts = bars["ts"].dt.epoch("ns").to_numpy()
    close = bars["close"].to_numpy()
    acts = actions.sort("ts")
    for part in _parts(bars):
        a, b = part.start, part.stop
        mine = acts.filter(pl.col("symbol") == bars["symbol"][a])
        for ex, kind, value in zip(mine["ts"].dt.epoch("ns").to_numpy(), mine["action"].to_list(),
                                   mine["value"].to_numpy(), strict=True):
            k = a + int(np.searchsorted(ts[a:b], ex, "left"))  # bars a..k-1 start before the ex-date
            if kind == "split" and value > 0:
                factor[a:k] /= value
            elif kind == "dividend" and mode == "total_return" and k > a and 0 <= value < close[k - 1]:
                factor[a:k] *= 1.0 - value / close[k - 1]
    return factor


def outlier_flags(bars: pl.DataFrame, spec: Outliers) -> np.ndarray:
    """Per bar, whether it is an outlier (``bars`` sorted by symbol, prices adjusted as of each bar).

    A bar is one when its log range, or its log return from the bar before, lies beyond
    ``threshold`` spreads of the ``window`` bars before it. After a flagged bar the next one's
    return also counts from the last unflagged bar, and the bar is kept if either is ordinary: the
    way back from a spike, and the bar after a lasting jump, are not outliers.
    """
    flags = np.zeros(bars.height, dtype=np.bool_)
    for part in _parts(bars):
        close = bars["close"][part].to_numpy().astype(np.float64)
        high, low = bars["high"][part].to_numpy(), bars["low"][part].to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            ret = np.r_[np.nan, np.log(close[1:] / close[:-1])]
            rng = np.log(high / low).astype(np.float64)
        ret_c, ret_s = _centre_spread(ret, spec)
        rng_c, rng_s = _centre_spread(rng, spec)
        with np.errstate(invalid="ignore"):
            far_ret = np.abs(ret - ret_c) > spec.threshold * ret_s
            far_rng = np.abs(rng - rng_c) > spec.threshold * rng_s
        out = flags[part]  # a view: written in place
        good = -1  # the last unflagged bar before t
        for t in np.flatnonzero(far_ret | far_rng).tolist():
            if t > 0 and not out[t - 1]:
                good = t - 1
            if far_rng[t] or good == t - 1:  # the return from an ordinary bar counts as it is
                out[t] = True
            elif good >= 0:  # after a flagged bar: far from the last good bar too
                back = np.log(close[t] / close[good])
                out[t] = bool(abs(back - ret_c[t]) > spec.threshold * ret_s[t])
    return flags


def _centre_spread(x: np.ndarray, spec: Outliers) -> tuple[np.ndarray, np.ndarray]:
    """Centre and spread of ``x[t - window:t]`` at each t (NaN until a whole window without gaps).

    Hampel: the window's median and 1.4826 x the median of |value - that median|; z-score: the
    window's mean and standard deviation (ddof 1).
    """
    w, n = spec.window, len(x)
    centre, spread = np.full(n, np.nan), np.full(n, np.nan)
    if n <= w:
        return centre, spread
    for lo in range(0, n - w, _CHUNK):
        hi = min(lo + _CHUNK, n - w)
        win = sliding_window_view(x[lo:hi + w - 1], w)  # windows of t = lo + w .. hi + w - 1
        if spec.method == "hampel":
            med = np.median(win, axis=1)
            centre[lo + w:hi + w] = med
            spread[lo + w:hi + w] = _MAD_TO_STD * np.median(np.abs(win - med[:, None]), axis=1)
        else:
            centre[lo + w:hi + w] = win.mean(axis=1)
            spread[lo + w:hi + w] = win.std(axis=1, ddof=1)
    return centre, spread


def feature_columns(bars: pl.DataFrame, spec: Features, factor: np.ndarray) -> list[pl.Series]:
    """The feature columns of ``bars`` (prices adjusted as of the last bar, ``factor`` the adjustment
    of each bar's own prices, so dividing a price-level value by it gives it as of that bar)."""
    by = "symbol"
    close = pl.col("close")
    ret = close / close.shift(1) - 1.0
    cols: list[pl.Expr] = []
    if spec.returns:
        cols.append(ret.over(by).alias("returns"))
    if spec.log_returns:
        cols.append((close / close.shift(1)).log().over(by).alias("log_returns"))
    cols += [ret.rolling_std(n).over(by).alias(f"volatility_{n}") for n in spec.volatility]
    cols += [((close - close.rolling_mean(n)) / close.rolling_std(n)).over(by).alias(f"zscore_{n}")
             for n in spec.zscore]
    out = [bars.select(c).to_series() for c in cols]
    kernels = _indicator_kernels()
    parts = _parts(bars)
    for kind in ("sma", "ema", "rsi", "atr"):
        for n in getattr(spec, kind):
            values = np.concatenate([kernels[kind](bars[p], n) for p in parts]) if parts else np.empty(0)
            if kind in LEVEL_FEATURES:
                values = values / factor
            out.append(pl.Series(f"{kind}_{n}", values, dtype=pl.Float64))
    return out


def _parts(bars: pl.DataFrame) -> list[slice]:
    """Row slices of each symbol's bars (``bars`` sorted by symbol)."""
    symbols = bars["symbol"].to_numpy()
    if not len(symbols):
        return []
    bounds = np.flatnonzero(np.r_[True, symbols[1:] != symbols[:-1], True]).tolist()
    return [slice(a, b) for a, b in pairwise(bounds)]


def _indicator_kernels() -> dict[str, Callable[[pl.DataFrame, int], np.ndarray]]:
    """The one indicator set's functions, over one symbol's bars."""
    from .. import indicators as ind

    def col(df: pl.DataFrame, name: str) -> np.ndarray:
        return df[name].to_numpy().astype(np.float64)

    return {
        "sma": lambda df, n: ind.sma(col(df, "close"), n),
        "ema": lambda df, n: ind.ema(col(df, "close"), n),
        "rsi": lambda df, n: ind.rsi(col(df, "close"), n),
        "atr": lambda df, n: ind.atr(col(df, "high"), col(df, "low"), col(df, "close"), n),
    }
