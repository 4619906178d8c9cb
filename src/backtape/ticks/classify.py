"""Lee-Ready trade classification: quote rule against the prevailing quote, tick rule as fallback.

Rules (per symbol)
------------------
* **Prevailing quote**: the last quote of the symbol stamped *strictly before* the trade. A quote at
  the trade's own timestamp is not used (it may be the book's reaction to the trade; this is the
  trade-first tie rule of ``backtape.ticks.merge``), so classification never looks ahead.
* **Quote rule**: if the prevailing quote is valid (``bid > 0`` and ``ask >= bid``), a trade above
  the midpoint is buyer-initiated (+1), below it seller-initiated (-1). A crossed or one-sided latest
  quote (bid or ask missing, zero or NaN) is invalid; an older valid quote is *not* used instead,
  because it is stale.
* **Tick rule** (at the midpoint, or without a valid quote): +1 if the price rose from the symbol's
  previous trade, -1 if it fell, the direction of the last price change on a zero tick.
* **0** only when neither rule decides: no valid quote (or a trade at the midpoint) and no earlier
  price change of the symbol (the first trades of a series at one price).

The original paper also lagged quotes by five seconds to offset 1990s reporting delays. Here quotes
are taken as stamped; feeds whose clocks differ must be aligned before classification (shift the
quote ``ts``, see the Binance test for an example measured on real data).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import polars as pl

from ..errors import DataValidationError
from . import _kernels
from .merge import _aligned_chunks, _prepare, _ts_ns

_SIDE = pl.Int8
_CHUNK_ROWS = 262_144  # trades per kernel call in iter_classified: bounds temporaries and outputs
_ZERO = np.zeros(1, np.int64)  # a constant group or time key (length 1: see _kernels)


class TickClassifier:
    """Stateful Lee-Ready classifier that carries each symbol's quote, last price and delta.

    Feed it consecutive batches of the merged stream (``iter_merged`` / ``merge_streams`` output,
    or a portal tick iterator) with ``update``; results equal a whole-frame ``classify_trades`` plus
    ``cumulative_delta`` over all batches, whatever the batch boundaries.
    """

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}
        self._bid = np.empty(0, np.float64)
        self._ask = np.empty(0, np.float64)
        self._last = np.empty(0, np.float64)
        self._dir = np.empty(0, np.int64)
        self._cum = np.empty(0, np.float64)

    def update(self, merged: pl.DataFrame) -> pl.DataFrame:
        """Classify the trades of one merged batch (in its row order) and advance the state.

        Returns the batch's trades with ``side`` (Int8), ``delta`` (side x size) and ``cum_delta``
        (running per-symbol sum since this classifier started).
        """
        kind = merged.get_column("kind").cast(pl.String)
        is_trade = (kind == "trade").to_numpy()
        pos = np.arange(merged.height, dtype=np.int64)
        trades = merged.filter(pl.Series(is_trade)).select("symbol", "ts", "price", "size", "exchange",
                                                           "conditions", "id")
        quotes = merged.filter(pl.Series(~is_trade)).select("symbol", "ts", "bid", "ask")
        _check_trades(trades, "merged batch")
        return self._classify(trades, quotes, _ZERO, pos[is_trade], _ZERO, pos[~is_trade])

    def prevailing_quote(self, symbol: str) -> tuple[float, float] | None:
        """The latest ``(bid, ask)`` seen for ``symbol``, or None before its first quote."""
        code = self._codes.get(symbol)
        if code is None or (np.isnan(self._bid[code]) and np.isnan(self._ask[code])):
            return None
        return float(self._bid[code]), float(self._ask[code])

    def delta(self, symbol: str) -> float:
        """Cumulative signed volume of ``symbol`` so far (0.0 before its first trade)."""
        code = self._codes.get(symbol)
        return 0.0 if code is None else float(self._cum[code])

    def _codes_for(self, symbols: pl.Series) -> np.ndarray:
        """Integer state slot of each row's symbol, allocating slots for new symbols.

        When every row has the same symbol the result has length 1 (a constant, see ``_kernels``).
        """
        if not symbols.len():
            return np.empty(0, np.int64)
        if symbols.null_count() == 0 and _uniform(symbols):
            uniq = [symbols[0]]  # one symbol: skip hashing every row
        else:
            uniq = symbols.unique(maintain_order=True).to_list()
        for s in uniq:
            if s not in self._codes:
                self._codes[s] = len(self._codes)
        self._grow()
        if len(uniq) == 1:
            return np.array([self._codes[uniq[0]]], np.int64)
        return symbols.replace_strict(self._codes, return_dtype=pl.Int64).to_numpy()

    def _grow(self) -> None:
        """Extend the state arrays to one slot per known symbol."""
        extra = len(self._codes) - self._bid.shape[0]
        if extra <= 0:
            return
        nan = np.full(extra, np.nan)
        self._bid = np.concatenate([self._bid, nan])
        self._ask = np.concatenate([self._ask, nan])
        self._last = np.concatenate([self._last, nan])
        self._dir = np.concatenate([self._dir, np.zeros(extra, np.int64)])
        self._cum = np.concatenate([self._cum, np.zeros(extra)])

    def _classify(self, trades: pl.DataFrame, quotes: pl.DataFrame,
                  t_key: np.ndarray, t_ts: np.ndarray, q_key: np.ndarray, q_ts: np.ndarray) -> pl.DataFrame:
        """Run the kernel on trades and quotes that are each sorted by ``(key, ts)``.

        A quote is applied before a trade only if its ``(key, ts)`` is strictly smaller. A key of
        length 1 is constant. One symbol under one key takes the faster ``classify_run``.
        """
        n = trades.height
        side = np.empty(n, np.int8)
        delta = np.empty(n, np.float64)
        cum = np.empty(n, np.float64)
        t_sym = self._codes_for(trades.get_column("symbol"))
        q_sym = self._codes_for(quotes.get_column("symbol"))
        state = (self._bid, self._ask, self._last, self._dir, self._cum)
        sym = _constant(t_sym, q_sym)
        if sym is not None and _constant(t_key, q_key) is not None:
            _kernels.classify_run(t_ts, _f64(trades, "price"), _f64(trades, "size"),
                                  q_ts, _f64(quotes, "bid"), _f64(quotes, "ask"), sym, *state,
                                  side, delta, cum)
        else:
            _kernels.classify_pair(
                t_key, t_ts, t_sym, _f64(trades, "price"), _f64(trades, "size"),
                q_key, q_ts, q_sym, _f64(quotes, "bid"), _f64(quotes, "ask"),
                *state, side, delta, cum,
            )
        return trades.with_columns(
            pl.Series("side", side, dtype=_SIDE), pl.Series("delta", delta), pl.Series("cum_delta", cum)
        )

    def _update_pair(self, trades: pl.DataFrame, quotes: pl.DataFrame) -> Iterator[pl.DataFrame]:
        """Classify an aligned chunk pair (time-ordered trades and quotes, see ``_aligned_chunks``).

        Yields one frame per ``_CHUNK_ROWS`` trades, each with the quotes that precede the next
        chunk's first trade, so temporaries and outputs stay small whatever the batch size.
        """
        _check_trades(trades, "trades batch")
        t_ts, q_ts = _ts_ns(trades), _ts_ns(quotes)
        nt, nq = t_ts.shape[0], q_ts.shape[0]
        q_lo = 0
        for lo in range(0, max(nt, 1), _CHUNK_ROWS):
            hi = min(lo + _CHUNK_ROWS, nt)
            q_hi = int(np.searchsorted(q_ts, t_ts[hi], "left")) if hi < nt else nq
            yield self._classify(trades.slice(lo, hi - lo), quotes.slice(q_lo, q_hi - q_lo),
                                 _ZERO, t_ts[lo:hi], _ZERO, q_ts[q_lo:q_hi])
            q_lo = q_hi


def _uniform(symbols: pl.Series) -> bool:
    """True when all (non-null) ``symbols`` are equal; O(1) when Polars knows the column is sorted."""
    flags = symbols.flags
    if flags["SORTED_ASC"] or flags["SORTED_DESC"]:
        return bool(symbols[0] == symbols[-1])
    return bool((symbols == symbols[0]).all())


def _constant(a: np.ndarray, b: np.ndarray) -> int | None:
    """The value of two constant key or code arrays (length 0 or 1) when they agree, else None."""
    values = {int(x) for x in (*a, *b)} if a.shape[0] <= 1 and b.shape[0] <= 1 else set()
    return values.pop() if len(values) == 1 else None


def _f64(df: pl.DataFrame, col: str) -> np.ndarray:
    """A Float64 column as numpy with nulls as NaN (zero-copy when there is no null)."""
    s = df.get_column(col)
    return (s.fill_null(np.nan) if s.null_count() else s).to_numpy()


def _check_trades(trades: pl.DataFrame, where: str) -> None:
    """Reject trades without a usable price or size: they cannot be classified or summed."""
    for col in ("price", "size"):
        values = trades.get_column(col)
        if values.null_count() or values.is_nan().any():
            bad = values.is_null() | values.is_nan()
            row = int(bad.to_numpy().argmax())
            raise DataValidationError(
                f"{where}: trade {col} missing or NaN at row {row} "
                f"(symbol {trades['symbol'][row]}, ts {trades['ts'][row]})",
                [{"rule": f"null_{col}", "row": row, "symbol": trades["symbol"][row]}],
            )


def classify_trades(trades: pl.DataFrame, quotes: pl.DataFrame) -> pl.DataFrame:
    """Trades (canonical order: symbol, ts) with ``side``: +1 buyer-, -1 seller-initiated, 0 unknown.

    Each symbol is classified against its own quotes with the rules of the module docstring.
    """
    trades = _prepare(trades, "trades")
    quotes = _prepare(quotes, "quotes")
    _check_trades(trades, "trades")
    symbols = sorted(set(trades.get_column("symbol").unique().to_list())
                     | set(quotes.get_column("symbol").unique().to_list()))
    clf = TickClassifier()
    clf._codes = {s: i for i, s in enumerate(symbols)}
    trades = _canonical(trades, clf)
    quotes = _canonical(quotes, clf)
    out = clf._classify(trades, quotes, clf._codes_for(trades.get_column("symbol")), _ts_ns(trades),
                        clf._codes_for(quotes.get_column("symbol")), _ts_ns(quotes))
    return out.drop("delta", "cum_delta")


def _canonical(df: pl.DataFrame, clf: TickClassifier) -> pl.DataFrame:
    """``df`` sorted by (symbol, ts), keeping input order of ties; a no-op when already so.

    ``clf`` must number symbols in sorted order so that sorted codes mean sorted symbols.
    """
    if df.height < 2:
        return df
    codes = clf._codes_for(df.get_column("symbol"))
    dc = np.diff(codes) if codes.shape[0] > 1 else 0  # one symbol: a constant code
    dt = np.diff(_ts_ns(df))
    if bool(np.all((dc > 0) | ((dc == 0) & (dt >= 0)))):
        return df
    return df.sort(["symbol", "ts"], maintain_order=True)


def iter_classified(
    trade_batches: Iterable[pl.DataFrame], quote_batches: Iterable[pl.DataFrame]
) -> Iterator[pl.DataFrame]:
    """Stream classified trades (``side``, ``delta``, ``cum_delta``) from time-ordered batches.

    Memory stays bounded by the batch sizes; quotes and last-trade state cross batch boundaries.
    """
    clf = TickClassifier()
    for trades, quotes in _aligned_chunks(trade_batches, quote_batches):
        for out in clf._update_pair(trades, quotes):
            if out.height:
                yield out
        del trades, quotes, out  # free this chunk before the next batches are pulled
