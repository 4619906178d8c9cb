"""What a backtest's report derives from the run's own prices (``result.extra["prices"]``): closes
aligned to other times, the buy-and-hold benchmark, entry prices as traded through splits and the
gross exposure. The prices are split by symbol once (``Prices``) and everything after is numpy."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

_UTC = pl.Datetime("ns", "UTC")


def ns(s: pl.Series) -> np.ndarray:
    """A time column as epoch nanoseconds."""
    return s.to_numpy() if s.dtype == pl.Int64 else s.cast(_UTC).cast(pl.Int64).to_numpy()


class Prices:
    """Each symbol's bars (``frames``), bar times, closes and adjusted closes, split from the prices
    frame once."""

    def __init__(self, prices: pl.DataFrame | None) -> None:
        self.frames: dict[str, pl.DataFrame] = {}
        self.times: dict[str, np.ndarray] = {}
        self.columns: dict[str, dict[str, np.ndarray]] = {}
        if prices is None or not prices.height:
            return
        wanted = [c for c in ("close", "adj_close") if c in prices.columns]
        for sym, part in prices.partition_by("symbol", as_dict=True, maintain_order=True).items():
            name = str(sym[0] if isinstance(sym, tuple) else sym)
            self.frames[name] = part
            self.times[name] = ns(part["ts"])
            cols: dict[str, np.ndarray] = {c: part[c].cast(pl.Float64).to_numpy() for c in wanted}
            if "adj_close" in cols and not np.isfinite(cols["adj_close"]).all():
                del cols["adj_close"]
            self.columns[name] = cols

    @classmethod
    def of(cls, result: Any) -> Prices:
        return cls(result.extra.get("prices"))

    def aligned(self, ts: np.ndarray, column: str = "close") -> dict[str, np.ndarray]:
        """Each symbol's last ``column`` (``close`` when it has none) at or before each time of ``ts``
        (NaN before its first bar)."""
        out = {}
        for sym, t in self.times.items():
            cols = self.columns[sym]
            values = cols.get(column, cols["close"])
            i = np.searchsorted(t, ts, "right") - 1
            out[sym] = np.where(i >= 0, values[np.maximum(i, 0)], np.nan)
        return out

    def factor(self, sym: str, ts: np.ndarray) -> np.ndarray:
        """Raw close over adjusted close of ``sym`` at each time (ones without adjusted prices)."""
        if sym not in self.times or "adj_close" not in self.columns[sym]:
            return np.ones(ts.size)
        t, cols = self.times[sym], self.columns[sym]
        i = np.maximum(np.searchsorted(t, ts, "right") - 1, 0)
        before = np.searchsorted(t, ts, "right") == 0
        raw, adj = cols["close"][i], cols["adj_close"][i]
        ok = (adj > 0) & np.isfinite(raw) & ~before
        return np.where(ok, raw / np.where(adj > 0, adj, 1.0), 1.0)


def aligned_closes(result: Any, ts: np.ndarray, column: str = "close") -> dict[str, np.ndarray]:
    """Each symbol's last ``column`` at or before each time of ``ts`` (NaN before its first bar)."""
    return Prices.of(result).aligned(ts, column)


def all_trades(result: Any, px: Prices | None = None) -> pl.DataFrame:
    """Closed trades then open positions (``is_open``), times as UTC datetimes, with
    ``entry_traded``: the entry price as traded (``traded_entry_prices``)."""
    frames = []
    for df, is_open in ((result.trades, False), (result.open_trades, True)):
        if df.height and "entry_time" in df.columns:
            times = pl.col("entry_time", "exit_time").cast(_UTC)
            frames.append(df.with_columns(times, pl.lit(is_open).alias("is_open")))
    if not frames:
        return pl.DataFrame()
    trades = pl.concat(frames, how="diagonal_relaxed")
    return trades.with_columns(pl.Series("entry_traded", traded_entry_prices(result, trades, px)))


def buy_and_hold(result: Any, ts: np.ndarray, px: Prices | None = None) -> np.ndarray | None:
    """Equal-weight buy and hold of the run's symbols from the starting cash, on the equity times."""
    closes = (px or Prices.of(result)).aligned(ts, "adj_close")
    rel = []
    for c in closes.values():
        ok = np.flatnonzero(np.isfinite(c))
        if ok.size:
            rel.append(np.where(np.isfinite(c), c / c[ok[0]], 1.0))
    return result.cash * np.mean(rel, axis=0) if rel else None


def traded_entry_prices(result: Any, trades: pl.DataFrame, px: Prices | None = None) -> np.ndarray:
    """Each trade's entry price as traded: the engine rebases a lot held through a split to the new
    share basis, so the price is scaled back by the change of raw/adjusted close between entry and
    exit (only changes beyond 25 %, i.e. splits, not dividends)."""
    if not trades.height:
        return np.zeros(0)
    px = px or Prices.of(result)
    price = trades["entry_price"].to_numpy().astype(np.float64).copy()
    symbols = trades["symbol"].to_numpy()
    entry, exit_ = ns(trades["entry_time"]), ns(trades["exit_time"])
    for sym in np.unique(symbols):
        rows = symbols == sym
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = px.factor(str(sym), entry[rows]) / px.factor(str(sym), exit_[rows])
        ratio = np.where(np.isfinite(ratio), ratio, 1.0)
        price[rows] *= np.where(np.abs(ratio - 1.0) > 0.25, ratio, 1.0)
    return price


def gross_exposure(result: Any, ts: np.ndarray, equity: np.ndarray, px: Prices | None = None) -> np.ndarray:
    """Market value of the open positions over equity at each bar end ``ts``, from the fills: each
    fill's quantity in shares of the adjusted series (times raw/adjusted close of its bar), so the
    splits a position is held through change nothing."""
    px = px or Prices.of(result)
    adj = px.aligned(ts, "adj_close")
    value = np.zeros(ts.size)
    fills = result.fills
    if not fills.height or not adj or not ts.size:
        return value
    symbols, quantity, when = fills["symbol"].to_numpy(), fills["quantity"].to_numpy(), ns(fills["ts"])
    for sym in dict.fromkeys(symbols.tolist()):
        if sym not in adj:
            continue
        rows = symbols == sym
        at = np.minimum(np.searchsorted(ts, when[rows], "left"), ts.size - 1)  # the fill's bar
        units = np.nan_to_num(quantity[rows] * px.factor(sym, ts[at]))
        held = np.zeros(ts.size)
        np.add.at(held, at, units)
        value += np.abs(np.cumsum(held) * np.nan_to_num(adj[sym]))
    return np.divide(value, equity, out=np.zeros_like(value), where=equity > 0)
