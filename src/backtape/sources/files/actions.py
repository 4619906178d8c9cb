"""Corporate actions carried in bar files, and raw prices restored from split-adjusted files.

Dividend and split columns (``dividend``, ``split``, ``ex-dividend``, ``split_ratio``,
``Stock Splits``) become corporate actions, a split value of 0 or 1 meaning none.
"""

from __future__ import annotations

import polars as pl

from ...schema import conform, empty


def actions_of(bars: pl.DataFrame) -> pl.DataFrame:
    """Dividend and split rows of a frame with optional ``dividend``/``split`` columns."""
    parts = []
    if "dividend" in bars.columns:
        parts.append(bars.filter(pl.col("dividend").fill_nan(0).fill_null(0) != 0)
                     .select("symbol", "ts", pl.lit("dividend").alias("action"),
                             pl.col("dividend").alias("value")))
    if "split" in bars.columns:
        parts.append(bars.filter(~pl.col("split").fill_nan(1).fill_null(1).is_in([0.0, 1.0]))
                     .select("symbol", "ts", pl.lit("split").alias("action"),
                             pl.col("split").alias("value")))
    if not parts:
        return empty("actions")
    return conform(pl.concat(parts), "actions")


def restore_raw(bars: pl.DataFrame, actions: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Undo split adjustment: prices before a split times its ratio, volumes divided by it.

    Worked example: AAPL split 7:1 on 2014-06-09; the adjusted close of 2012-01-03 (58.747143)
    becomes the raw 411.23, and the 2012 dividend of 0.378570 becomes the raw 2.65 per share.
    Restored prices and dividends are rounded to 4 decimals (the adjusted file kept 6 digits, so
    more would be noise); rows without a later split are left exactly as read.
    """
    splits = actions.filter(pl.col("action") == "split").select("symbol", "ts", pl.col("value").alias("r"))
    if splits.height == 0:
        return bars, actions

    def factor(frame: pl.DataFrame) -> pl.Series:
        # product of the ratios of every split strictly after each row's ts, per symbol
        ratios = frame.select("symbol", "ts").join(splits, on=["symbol", "ts"], how="left") \
            .with_columns(pl.col("r").fill_null(1.0))
        idx = ratios.with_row_index("_i").sort("symbol", "ts", maintain_order=True)
        after = pl.col("r").reverse().cum_prod().reverse().over("symbol") / pl.col("r")
        return idx.with_columns(after.alias("f")).sort("_i").get_column("f")

    bars_factor = factor(bars)
    prices = [c for c in ("open", "high", "low", "close", "vwap") if c in bars.columns]
    bars = bars.with_columns(
        *[_unadjust(pl.col(c), bars_factor).alias(c) for c in prices],
        (pl.col("volume") / bars_factor).alias("volume"),
    )
    act_factor = factor(actions)
    actions = actions.with_columns(
        pl.when(pl.col("action") == "dividend").then(_unadjust(pl.col("value"), act_factor))
        .otherwise(pl.col("value")).alias("value")
    )
    return bars, actions


def _unadjust(value: pl.Expr, factor: pl.Series) -> pl.Expr:
    return pl.when(pl.lit(factor) != 1.0).then((value * pl.lit(factor)).round(4)).otherwise(value)
