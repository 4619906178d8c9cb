"""Columnar, contiguous storage of loaded bars: one numpy array per column, one view per symbol.

All symbols share each column's array (``ts``, ``ts_end``, ``open`` ... ``volume``, ``vwap`` when the
source sent one); a symbol's bars are the slice ``[offset, offset + n)`` of every column, so the store
costs the raw column bytes and nothing more. Lookups are ``searchsorted`` on ``ts_end``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from .._time import format_ns
from ..errors import DataValidationError, NoDataError

#: Price-like columns: adjusted by split and dividend factors.
PRICE_FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "vwap")
#: Every field a bar series can carry, in output order.
BAR_FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "vwap")


@dataclass(frozen=True, slots=True)
class BarSeries:
    """The bars of one symbol at one timeframe as aligned numpy arrays (views, never copies).

    ``base_starts``/``base_stops`` map each bar to the half-open row range of the base series it was
    built from (``None`` when the series *is* the base), which is what a partial bar is rebuilt from.
    """

    symbol: str
    ts: np.ndarray
    ts_end: np.ndarray
    fields: dict[str, np.ndarray]
    base_starts: np.ndarray | None = None
    base_stops: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ts)

    def visible_count(self, t: int) -> int:
        """Number of bars complete at ``t`` (``ts_end <= t``)."""
        return int(self.ts_end.searchsorted(t, "right"))

    @property
    def nbytes(self) -> int:
        return self.ts.nbytes + self.ts_end.nbytes + sum(a.nbytes for a in self.fields.values())


class BarStore:
    """Loaded bars of many symbols at the base frequency, as contiguous columns.

    Built once from a canonical bars frame; checks that each symbol's bars are strictly increasing
    in ``ts`` with ``ts_end > ts`` so every later ``searchsorted`` is valid.
    """

    def __init__(self, bars: pl.DataFrame, symbols: list[str] | None = None) -> None:
        if bars.height and bars["symbol"].rle().len() != bars["symbol"].n_unique():
            bars = bars.sort(["symbol", "ts"], maintain_order=True)
        names = _fields_of(bars)
        columns = {"ts": _int_ns(bars["ts"]), "ts_end": _int_ns(bars["ts_end"]),
                   **{f: _floats(bars[f]) for f in names}}
        runs: list[tuple[str, int]] = []
        if bars.height:
            rle = bars["symbol"].rle()
            runs = list(zip(rle.struct.field("value").to_list(), rle.struct.field("len").to_list(),
                            strict=True))
        seen = {name for name, _ in runs}
        runs += [(name, 0) for name in symbols or () if name not in seen]
        self._setup(columns, tuple(names), runs)

    def _setup(self, columns: dict[str, np.ndarray], fields: tuple[str, ...],
               runs: list[tuple[str, int]]) -> None:
        """Hold ``columns``; symbol ``runs`` (name, row count) follow one another in them. Checked."""
        self._columns = columns
        self.fields: tuple[str, ...] = fields
        self._series: dict[str, BarSeries] = {}
        offset = 0
        for name, length in runs:
            self._series[name] = self._view(name, offset, offset + length)
            offset += length
        self._check()

    def _view(self, symbol: str, lo: int, hi: int) -> BarSeries:
        c = self._columns
        return BarSeries(symbol, c["ts"][lo:hi], c["ts_end"][lo:hi], {f: c[f][lo:hi] for f in self.fields})

    def _check(self) -> None:
        for s in self._series.values():
            if len(s) == 0:
                continue
            bad_end = np.flatnonzero(s.ts_end <= s.ts)
            if bad_end.size:
                i = int(bad_end[0])
                raise DataValidationError(
                    f"bars of {s.symbol}: ts_end {format_ns(int(s.ts_end[i]))} is not after ts "
                    f"{format_ns(int(s.ts[i]))} (row {i} of the symbol)",
                    [{"rule": "ts_end_after_ts", "symbol": s.symbol, "row": i}],
                )
            bad_order = np.flatnonzero((np.diff(s.ts) <= 0) | (np.diff(s.ts_end) <= 0))
            if bad_order.size:
                i = int(bad_order[0]) + 1
                raise DataValidationError(
                    f"bars of {s.symbol}: not strictly increasing at ts {format_ns(int(s.ts[i]))} "
                    f"(row {i} of the symbol; duplicate or overlapping bars)",
                    [{"rule": "increasing", "symbol": s.symbol, "row": i}],
                )

    def rolled(self, keep: Mapping[str, int], new: pl.DataFrame) -> BarStore:
        """A store of each symbol's rows from ``keep[symbol]`` on followed by its bars in ``new``
        (which all start after the kept ones): the next window of a streamed run. Symbols keep their
        order; a field either part lacks is NaN in it. Columns are joined in numpy, never re-sorted."""
        fresh = BarStore(new)
        names = [*self.fields, *(f for f in fresh.fields if f not in self.fields)]
        pieces: dict[str, list[np.ndarray]] = {c: [] for c in ("ts", "ts_end", *names)}
        runs = []
        for sym in [*self._series, *(s for s in fresh._series if s not in self._series)]:
            count = 0
            for series, lo in ((self._series.get(sym), int(keep.get(sym, 0))), (fresh._series.get(sym), 0)):
                if series is None or lo >= len(series):
                    continue
                lo = max(lo, 0)
                pieces["ts"].append(series.ts[lo:])
                pieces["ts_end"].append(series.ts_end[lo:])
                for f in names:
                    values = series.fields.get(f)
                    pieces[f].append(values[lo:] if values is not None else np.full(len(series) - lo, np.nan))
                count += len(series) - lo
            runs.append((sym, count))
        columns = {c: np.concatenate(v) if v else np.empty(0, np.int64 if c in ("ts", "ts_end") else float)
                   for c, v in pieces.items()}
        store = BarStore.__new__(BarStore)
        store._setup(columns, tuple(names), runs)
        return store

    @property
    def symbols(self) -> list[str]:
        return list(self._series)

    def series(self, symbol: str) -> BarSeries:
        """The base series of ``symbol``; ``NoDataError`` naming the loaded symbols otherwise."""
        try:
            return self._series[symbol]
        except KeyError:
            loaded = ", ".join(self._series) or "none"
            raise NoDataError(f"no bars loaded for symbol {symbol!r}; loaded symbols: {loaded}") from None

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._series

    @property
    def rows(self) -> int:
        return len(self._columns["ts"])

    @property
    def nbytes(self) -> int:
        """Bytes held by the column arrays (the whole cost of the store)."""
        return sum(a.nbytes for a in self._columns.values())


def _int_ns(column: pl.Series) -> np.ndarray:
    return np.ascontiguousarray(column.cast(pl.Int64).to_numpy(), dtype=np.int64)


def _floats(column: pl.Series) -> np.ndarray:
    return np.ascontiguousarray(column.cast(pl.Float64).fill_null(np.nan).to_numpy(), dtype=np.float64)


class TickStore:
    """Trades or quotes of many symbols: the canonical frame plus one ``ts`` array per symbol."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame.sort(["symbol", "ts"], maintain_order=True) if frame.height else frame
        self._ts = _int_ns(self.frame["ts"])
        self._spans: dict[str, tuple[int, int]] = {}
        if self.frame.height:
            runs = self.frame["symbol"].rle()
            offset = 0
            for length, name in zip(runs.struct.field("len").to_list(),
                                    runs.struct.field("value").to_list(), strict=True):
                self._spans[name] = (offset, offset + length)
                offset += length

    def between(self, symbol: str, start: int, end: int) -> pl.DataFrame:
        """Rows of ``symbol`` with ``start <= ts <= end`` (events at the clock itself are known)."""
        lo, hi = self._spans.get(symbol, (0, 0))
        ts = self._ts[lo:hi]
        a = lo + int(ts.searchsorted(start, "left"))
        b = lo + int(ts.searchsorted(end, "right"))
        return self.frame.slice(a, max(b - a, 0))

    @property
    def nbytes(self) -> int:
        return int(self.frame.estimated_size()) + self._ts.nbytes


_KNOWN = frozenset(("symbol", "ts", "ts_end", "transactions", *BAR_FIELDS))


def _fields_of(bars: pl.DataFrame) -> list[str]:
    """The fields a store built from ``bars`` has (``vwap`` only when some row has one)."""
    has_vwap = "vwap" in bars.columns and bars["vwap"].null_count() < bars.height
    return [f for f in BAR_FIELDS if f != "vwap" or has_vwap] + _extra_fields(bars)


def _extra_fields(bars: pl.DataFrame) -> list[str]:
    """Further numeric or boolean columns (``backtape.prepare`` features, flags) kept as float fields."""
    return [c for c, t in bars.schema.items() if c not in _KNOWN and (t.is_numeric() or t == pl.Boolean)]


class SpotIndex:
    """One symbol's base bars for ``DataPortal.get_spot_value``: its ``ts_end`` array, zero-copy
    memoryviews of the fields (reading one element from Python costs a fraction of indexing numpy)
    and the last answer ``i`` for clock ``t``."""

    __slots__ = ("adjusted", "array", "fields", "i", "t")

    def __init__(self, series: BarSeries, adjusted: bool) -> None:
        self.array = series.ts_end
        self.fields = {f: a.data for f, a in series.fields.items()}
        self.adjusted = adjusted
        self.i = -1
        self.t: int | None = None
