"""Bars built from trades: time bars, tick bars (every n trades) and volume bars, all BAR_SCHEMA.

Time bars cover their window ``[ts, ts_end)``. Tick and volume bars have no fixed window: ``ts`` is
the first trade's time and ``ts_end`` one nanosecond after the last trade's, the first instant at
which the bar is complete. By default the trailing bar of a symbol that has not yet reached its
count or volume is left out (it is not a finished bar); ``include_partial=True`` keeps it.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ..errors import DataValidationError
from ..schema import BAR_SCHEMA, conform
from ..timeframes import Timeframe
from . import _kernels
from ._windows import window_bounds
from .classify import _check_trades
from .merge import _prepare


def _trades(trades: pl.DataFrame) -> pl.DataFrame:
    """Canonical, validated trades in (symbol, ts) order."""
    out = conform(_prepare(trades, "trades"), "trades")
    _check_trades(out, "trades")
    return out


def _ohlcv(framed: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """One bar per ``keys`` group; ``framed`` must carry ``_w_start`` and ``_w_end``."""
    price, size = pl.col("price"), pl.col("size")
    volume = size.sum()
    out = framed.group_by(keys, maintain_order=True).agg(
        pl.col("_w_start").first().alias("ts"),
        pl.col("_w_end").last().alias("ts_end"),
        price.first().alias("open"),
        price.max().alias("high"),
        price.min().alias("low"),
        price.last().alias("close"),
        volume.alias("volume"),
        pl.when(volume > 0).then((price * size).sum() / volume).otherwise(None).alias("vwap"),
        pl.len().cast(pl.Int64).alias("transactions"),
    )
    return conform(out.select(BAR_SCHEMA.names()), "bars")


def time_bars(trades: pl.DataFrame, timeframe: str | Timeframe, *, calendar: str | None = None
              ) -> pl.DataFrame:
    """OHLCV, VWAP and trade count per symbol and window; windows without trades are absent.

    Intraday windows are UTC-epoch anchored; ``"1d"`` is one session of ``calendar`` (default 24/7).
    """
    framed = window_bounds(_trades(trades), timeframe, calendar)
    framed = framed.with_columns(pl.col("_w_start").alias("_bar"))
    return _ohlcv(framed, ["symbol", "_bar"])


def _event_bars(trades: pl.DataFrame, ids: np.ndarray, complete: np.ndarray, include_partial: bool
                ) -> pl.DataFrame:
    """Bars of consecutive trades sharing a bar id, stamped by their first and last trade."""
    ts = trades.get_column("ts")
    framed = trades.with_columns(pl.Series("_bar", ids)).with_columns(
        ts.alias("_w_start"), (ts + pl.duration(nanoseconds=1)).alias("_w_end"),
    )
    if not include_partial:
        framed = framed.filter(pl.Series(complete[ids], dtype=pl.Boolean))
    return _ohlcv(framed, ["symbol", "_bar"])


def tick_bars(trades: pl.DataFrame, n: int, *, include_partial: bool = False) -> pl.DataFrame:
    """One bar per ``n`` consecutive trades of each symbol (``n`` from ``ts`` order, ties as given)."""
    if n < 1:
        raise DataValidationError(f"tick_bars: n must be a positive trade count, got {n}")
    trades = _trades(trades)
    within = trades.select(pl.int_range(pl.len()).over("symbol")).to_series().to_numpy()
    ids = np.cumsum(within % n == 0) - 1  # ``within`` restarts at 0 with each symbol
    counts = np.bincount(ids, minlength=int(ids[-1]) + 1 if ids.shape[0] else 0)
    return _event_bars(trades, ids, counts >= n, include_partial)


def volume_bars(trades: pl.DataFrame, volume: float, *, include_partial: bool = False) -> pl.DataFrame:
    """Bars that close at the trade bringing their volume to at least ``volume``.

    A trade is never split: the closing trade's whole size belongs to its bar, and the next bar
    starts from zero.
    """
    if not volume > 0:
        raise DataValidationError(f"volume_bars: volume must be positive, got {volume}")
    trades = _trades(trades)
    grp = trades.get_column("symbol").rank("dense").cast(pl.Int64).to_numpy()
    ids, complete = _kernels.volume_bar_ids(grp, trades.get_column("size").to_numpy(), float(volume))
    return _event_bars(trades, ids, complete, include_partial)

