"""Signed volume from classified trades: cumulative delta and tick flow (buy/sell imbalance)."""

from __future__ import annotations

import polars as pl

from ..errors import DataFormatError
from ..timeframes import Timeframe
from ._windows import window_bounds


def _require(df: pl.DataFrame, columns: tuple[str, ...], what: str) -> None:
    """Raise a clear error when ``df`` lacks a column ``what`` needs."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataFormatError(
            f"{what}: missing column(s) {', '.join(missing)} (classify the trades first with "
            f"backtape.ticks.classify_trades); got {', '.join(df.columns)}"
        )


def cumulative_delta(
    classified: pl.DataFrame, *, reset: str | Timeframe | None = None, calendar: str | None = None
) -> pl.DataFrame:
    """``classified`` with ``delta`` (side x size) and ``cum_delta`` (running sum per symbol).

    Rows keep their order (canonical: symbol, ts). With ``reset`` (e.g. ``"1h"``, or ``"1d"`` for a
    session of ``calendar``) the sum restarts at each window. Unclassified trades (side 0) add 0.
    """
    _require(classified, ("symbol", "ts", "size", "side"), "cumulative_delta")
    keys: list[str] = ["symbol"]
    out = classified.with_columns((pl.col("side").cast(pl.Float64) * pl.col("size")).alias("delta"))
    if reset is not None:
        out = window_bounds(out, reset, calendar)
        keys.append("_w_start")
    out = out.with_columns(pl.col("delta").cum_sum().over(keys).alias("cum_delta"))
    return out.drop("_w_start", "_w_end", strict=False)


def tick_flow(
    classified: pl.DataFrame, window: str | Timeframe = "1min", *, calendar: str | None = None
) -> pl.DataFrame:
    """Buy/sell volume imbalance of each symbol per time window ``[ts, ts_end)`` that has trades.

    Columns: symbol, ts, ts_end, buy_volume, sell_volume, unknown_volume, buy_trades, sell_trades,
    trades, net_volume (buy - sell) and imbalance = net / (buy + sell), null when nothing was
    classified. A consumer at clock ``t`` may use a window only once ``ts_end <= t``.
    """
    _require(classified, ("symbol", "ts", "size", "side"), "tick_flow")
    side, size = pl.col("side"), pl.col("size")
    framed = window_bounds(classified, window, calendar)
    out = (
        framed.group_by("symbol", "_w_start", "_w_end", maintain_order=True)
        .agg(
            size.filter(side > 0).sum().alias("buy_volume"),
            size.filter(side < 0).sum().alias("sell_volume"),
            size.filter(side == 0).sum().alias("unknown_volume"),
            (side > 0).sum().cast(pl.Int64).alias("buy_trades"),
            (side < 0).sum().cast(pl.Int64).alias("sell_trades"),
            pl.len().cast(pl.Int64).alias("trades"),
        )
        .rename({"_w_start": "ts", "_w_end": "ts_end"})
    )
    net = pl.col("buy_volume") - pl.col("sell_volume")
    total = pl.col("buy_volume") + pl.col("sell_volume")
    return out.with_columns(
        net.alias("net_volume"),
        pl.when(total > 0).then(net / total).otherwise(None).alias("imbalance"),
    ).sort("symbol", "ts", maintain_order=True)
