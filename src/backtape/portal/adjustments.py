"""Corporate actions applied on read, as of the portal's clock.

Prices stay raw in the store; the actions table stays raw beside them. A reader at clock ``c`` sees
only actions whose ex-date session open is ``<= c``, and each visible action multiplies every bar
that *starts before* its ex-date:

==============  ===============================  ==================================================
mode            split (ratio r) multiplies        dividend (cash d, previous raw close p) multiplies
==============  ===============================  ==================================================
``raw``         nothing                          nothing
``split``       prices by 1/r, volume by r       nothing
``total_return`` prices by 1/r, volume by r       prices by (1 - d/p), or with ``dividends="ratio"``
                                                 by c / (c + d), c the raw close of the ex-date bar
==============  ===============================  ==================================================

The dividend formula: ``"crsp"`` (the default, CRSP's) divides by the close before the ex-date;
``"ratio"`` is the one some vendors use, the ex-date close against itself plus the dividend.

Seen from before the AAPL 7:1 ex-date (2014-06-09) the 2014-06-05 close is 647.35; seen from on or
after it, 647.35 / 7 = 92.48. Factors are suffix products over the visible actions, cached per
(symbol, number of visible actions), so a new split never touches the stored prices.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl

from .._time import format_ns
from ..errors import ConfigError, DataValidationError
from .store import PRICE_FIELDS, BarSeries, BarStore

ADJUSTED_FIELDS: frozenset[str] = frozenset((*PRICE_FIELDS, "volume"))

AdjustmentMode = Literal["raw", "split", "total_return"]
MODES: tuple[str, ...] = ("raw", "split", "total_return")
DividendFormula = Literal["crsp", "ratio"]
DIVIDEND_FORMULAS: tuple[str, ...] = ("crsp", "ratio")


class Adjustments:
    """Per-symbol action tables and the factor arrays derived from them for a given clock."""

    def __init__(self, actions: pl.DataFrame, store: BarStore, mode: AdjustmentMode = "split",
                 dividends: DividendFormula = "crsp") -> None:
        if mode not in MODES:
            raise ConfigError(f"unknown adjustment mode {mode!r}; use one of {', '.join(MODES)}")
        if dividends not in DIVIDEND_FORMULAS:
            raise ConfigError(f"unknown dividend formula {dividends!r}; "
                              f"use one of {', '.join(DIVIDEND_FORMULAS)}")
        self.mode = mode
        self.dividends = dividends
        self.actions = actions
        self.skipped: list[str] = []
        self._tables: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._cache: dict[tuple[str, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        if mode != "raw" and actions.height:
            for (symbol,), group in actions.sort(["symbol", "ts"]).group_by(["symbol"], maintain_order=True):
                table = self._table(str(symbol), group, store)
                if table is not None:
                    self._tables[str(symbol)] = table

    def _table(self, symbol: str, group: pl.DataFrame, store: BarStore):
        ex = group["ts"].cast(pl.Int64).to_numpy()
        kind = group["action"].to_list()
        value = group["value"].to_numpy()
        base = store.series(symbol) if symbol in store else None
        rows = []
        for t, k, v in zip(ex, kind, value, strict=True):
            if k == "split":
                if not v > 0:
                    raise DataValidationError(
                        f"split of {symbol} on {format_ns(int(t))} has ratio {v}; a ratio must be positive",
                        [{"rule": "split_ratio", "symbol": symbol, "ts": int(t)}],
                    )
                rows.append((int(t), 1.0 / v, v))
            elif k == "dividend" and self.mode == "total_return":
                factor = self._dividend_factor(base, int(t), float(v))
                if factor is None:
                    when = format_ns(int(t))
                    self.skipped.append(f"{symbol} dividend {v} on {when}: no usable {self.dividends} close")
                    continue
                rows.append((int(t), factor, 1.0))
        if not rows:
            return None
        arr = np.array(rows, dtype=np.float64)
        return arr[:, 0].astype(np.int64), arr[:, 1].copy(), arr[:, 2].copy()

    def _dividend_factor(self, base: BarSeries | None, ex_ts: int, amount: float) -> float | None:
        """The price multiplier of a cash dividend ``amount`` going ex at ``ex_ts`` (``None``: unusable)."""
        if self.dividends == "ratio":
            close = _ex_close(base, ex_ts) if base is not None else np.nan
            return close / (close + amount) if close > 0 and amount >= 0 else None
        prev = _previous_close(base, ex_ts) if base is not None else np.nan
        return 1.0 - amount / prev if prev > 0 and 0 <= amount < prev else None

    def has(self, symbol: str) -> bool:
        """Whether ``symbol`` has any action that can adjust it in this mode."""
        return symbol in self._tables

    def factors(self, symbol: str, bar_ts: np.ndarray, clock: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Price and volume multipliers for bars starting at ``bar_ts`` seen at ``clock``; ``None`` = 1."""
        table = self._tables.get(symbol)
        if table is None or len(bar_ts) == 0:
            return None
        ex = table[0]
        n = int(ex.searchsorted(clock, "right"))
        if n == 0 or bar_ts[0] >= ex[n - 1]:
            return None
        ex_n, price_cum, vol_cum = self._epoch(symbol, n)
        k = ex_n.searchsorted(bar_ts, "right")
        return price_cum[k], vol_cum[k]

    def epoch(self, symbol: str, clock: int) -> int:
        """How many of ``symbol``'s actions are visible at ``clock`` (its adjusted values change only
        when this number does)."""
        table = self._tables.get(symbol)
        return 0 if table is None else int(table[0].searchsorted(clock, "right"))

    def adjusted_series(self, series: BarSeries, n: int) -> BarSeries:
        """``series`` with the first ``n`` actions of its symbol applied (price and volume fields)."""
        if n == 0:
            return series
        ex, price_cum, vol_cum = self._epoch(series.symbol, n)
        k = ex.searchsorted(series.ts, "right")
        price, volume = price_cum[k], vol_cum[k]
        fields = {f: a * (volume if f == "volume" else price) if f in ADJUSTED_FIELDS else a
                  for f, a in series.fields.items()}
        return BarSeries(series.symbol, series.ts, series.ts_end, fields)

    def _epoch(self, symbol: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        key = (symbol, n)
        hit = self._cache.get(key)
        if hit is None:
            ex, pm, vm = self._tables[symbol]
            hit = (ex[:n], _suffix_products(pm[:n]), _suffix_products(vm[:n]))
            self._cache[key] = hit
        return hit


def _suffix_products(mult: np.ndarray) -> np.ndarray:
    """``out[i] = prod(mult[i:])`` with ``out[len] = 1``: e.g. [0.5, 0.9] -> [0.45, 0.9, 1.0]."""
    return np.r_[np.cumprod(mult[::-1])[::-1], 1.0]


def _ex_close(base: BarSeries, ex_ts: int) -> float:
    """Raw close of the first bar starting at or after the ex-date open (the ex-date's bar)."""
    i = int(base.ts.searchsorted(ex_ts, "left"))
    return float(base.fields["close"][i]) if i < base.ts.size else np.nan


def _previous_close(base, ex_ts: int) -> float:
    """Raw close of the last bar complete at the ex-date open (the dividend's reference price)."""
    i = int(base.ts_end.searchsorted(ex_ts, "right")) - 1
    return float(base.fields["close"][i]) if i >= 0 else np.nan
