"""Spread and quote statistics per symbol (optionally per time window)."""

from __future__ import annotations

import polars as pl

from ..schema import conform
from ..timeframes import Timeframe
from ._windows import window_bounds
from .merge import _prepare


def quote_stats(
    quotes: pl.DataFrame, window: str | Timeframe | None = None, *, calendar: str | None = None
) -> pl.DataFrame:
    """Quote count and spread statistics per symbol, or per symbol and window ``[ts, ts_end)``.

    A quote is *valid* when ``bid > 0`` and ``ask >= bid`` (the rule the classifier uses); spreads
    are taken over valid quotes only. ``locked`` counts bid == ask, ``crossed`` bid > ask,
    ``one_sided`` a missing or non-positive side. ``spread_twa`` weights each valid quote by how long
    it stood: until the symbol's next quote, capped at the window end; the last quote of a symbol
    (whose lifetime is unknown) gets no weight. ``rel_spread_bps_mean`` is spread / midpoint in bps.
    """
    q = conform(_prepare(quotes, "quotes"), "quotes")
    bid, ask = pl.col("bid"), pl.col("ask")
    valid = (bid > 0) & (ask >= bid)
    keys = ["symbol"]
    if window is not None:
        q = window_bounds(q, window, calendar)
        keys += ["_w_start", "_w_end"]
    nxt = pl.col("ts").shift(-1).over("symbol")
    if window is not None:
        nxt = pl.when(nxt.is_null()).then(None).otherwise(pl.min_horizontal(nxt, pl.col("_w_end")))
    q = q.with_columns(
        valid.fill_null(False).alias("_valid"),
        (ask - bid).alias("_spread"),
        ((nxt - pl.col("ts")).dt.total_nanoseconds().cast(pl.Float64)).alias("_life"),
    )
    sp = pl.col("_spread").filter(pl.col("_valid"))
    life = pl.col("_life").filter(pl.col("_valid") & pl.col("_life").is_not_null())
    sp_life = pl.col("_spread").filter(pl.col("_valid") & pl.col("_life").is_not_null())
    mid = ((bid + ask) * 0.5).filter(pl.col("_valid"))
    out = q.group_by(keys, maintain_order=True).agg(
        pl.len().cast(pl.Int64).alias("quotes"),
        pl.col("_valid").sum().cast(pl.Int64).alias("valid"),
        (bid == ask).fill_null(False).sum().cast(pl.Int64).alias("locked"),
        (bid > ask).fill_null(False).sum().cast(pl.Int64).alias("crossed"),
        (~((bid > 0) & (ask > 0)).fill_null(False)).sum().cast(pl.Int64).alias("one_sided"),
        sp.mean().alias("spread_mean"),
        sp.median().alias("spread_median"),
        sp.min().alias("spread_min"),
        sp.max().alias("spread_max"),
        pl.when(life.sum() > 0).then((sp_life * life).sum() / life.sum()).otherwise(None)
        .alias("spread_twa"),
        (sp / mid * 1e4).mean().alias("rel_spread_bps_mean"),
        pl.col("bid_size").filter(pl.col("_valid")).mean().alias("bid_size_mean"),
        pl.col("ask_size").filter(pl.col("_valid")).mean().alias("ask_size_mean"),
    )
    if window is not None:
        out = out.rename({"_w_start": "ts", "_w_end": "ts_end"})
    return out.sort(keys[:1] + (["ts"] if window is not None else []), maintain_order=True)
