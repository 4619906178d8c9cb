"""``DataPortal``: pre-load once, then answer point-in-time questions synchronously from numpy arrays.

The portal owns a clock. Every ``get_*`` call answers *as of* a time ``dt`` that may not be after the
clock (``LookAheadError``), sees a bar only once it is complete (``ts_end <= dt``) and applies the
corporate actions visible at the clock. Strategies, portfolios and brokers receive one portal
through their constructors; nothing here is global.

>>> portal = DataPortal(source)                                       # doctest: +SKIP
>>> portal.load_data("2024-01-02", "2024-02-01", ["AAPL", "MSFT"],
...                  requirements=[DataRequirement("bars", "5min", 50)])
>>> portal.set_clock("2024-01-10T15:00Z")
>>> portal.get_history_window(["AAPL", "MSFT"], None, 50, "5min", "close").shape
(50, 2)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import polars as pl

from .._time import TimeLike, check_range, from_ns, to_ns
from ..errors import NoDataError, UnsupportedDataError
from ..schema import TS, empty
from ..timeframes import Timeframe
from ._search import last_at_or_before
from .history import HistoryWindows, unknown_field
from .store import PRICE_FIELDS, SpotIndex
from .ticks import TICK_KINDS, TickStream, classified, resolve_end


class DataPortal(HistoryWindows):
    """Point-in-time access to pre-loaded bars, trades, quotes and corporate actions.

    ``calendar`` defaults to the calendar of the loaded symbols when the source knows it per symbol
    (``calendar_of(symbol)``, e.g. the sample's crypto on ``24/7``) and they share one, else to the
    source's; ``adjustment`` is ``"raw"``, ``"split"`` (default) or
    ``"total_return"`` (see ``backtape.portal.adjustments``); ``dividends`` is the total-return
    dividend formula, ``"crsp"`` (default) or ``"ratio"``.

    Loading, streaming, the clock, views and reports are inherited from ``LoadedData``
    (``backtape.portal.loading``), history windows and ``get_bars`` from ``HistoryWindows``
    (``backtape.portal.history``); spot values, slices, ticks and actions are here.
    """

    def get_spot_value(self, asset: str, field: str, dt: TimeLike | None = None) -> float:
        """``field`` of the latest bar of ``asset`` complete at ``dt`` (default: the clock); NaN if none.

        >>> portal.get_spot_value("AAPL", "close")       # doctest: +SKIP
        """
        clock = self._clock
        t: int
        if dt is None and clock is not None:
            t = clock
        elif type(dt) is int and clock is not None and dt <= clock:
            t = dt
        else:
            t = self._at(dt)
        spot = self._spot.get(asset) or self._spot_index(asset)
        values = spot.fields.get(field)
        if values is None:
            raise NoDataError(unknown_field(field, self.store.series(asset)))
        if t == spot.t:  # several fields at one clock
            i = spot.i
        else:  # compiled search trying the last answer and its successor first (an engine stepping)
            i = spot.i = last_at_or_before(spot.array, t, spot.i)
            spot.t = t
        if i < 0:
            return float("nan")
        value: float = values[i]
        if spot.adjusted and (field in PRICE_FIELDS or field == "volume"):
            factors = self._adjustments.factors(asset, self._series[asset].ts[i:i + 1], self._at(None))
            if factors is not None:
                value *= float(factors[field == "volume"][0])
        return value

    def _spot_index(self, asset: str) -> SpotIndex:
        entry = self._spot[asset] = SpotIndex(self.store.series(asset), asset in self._adjusted_symbols)
        return entry

    def get_last_traded_dt(self, asset: str, dt: TimeLike | None = None) -> dt.datetime | None:
        """End time of the latest bar with volume complete at ``dt`` (UTC), ``None`` if it never traded."""
        t = self._at(dt)
        series = self.store.series(asset)
        i = int(series.ts_end.searchsorted(t, "right"))
        volume = series.fields["volume"]
        while i > 0:
            lo = max(i - 256, 0)
            hits = np.flatnonzero(volume[lo:i] > 0)
            if hits.size:
                return from_ns(int(series.ts_end[lo + hits[-1]]))
            i = lo
        return None

    def get_slice(self, dt: TimeLike | None = None) -> pl.DataFrame:
        """The latest complete base bar of every loaded symbol at ``dt`` (symbols with none are left out)."""
        t = self._at(dt)
        store = self.store
        rows: dict[str, list] = {k: [] for k in ("symbol", "ts", "ts_end", *store.fields)}
        for symbol in store.symbols:
            series = self._base(symbol)
            i = series.visible_count(t) - 1
            if i < 0:
                continue
            rows["symbol"].append(symbol)
            rows["ts"].append(int(series.ts[i]))
            rows["ts_end"].append(int(series.ts_end[i]))
            for f in store.fields:
                rows[f].append(float(series.fields[f][i]))
        schema = {"symbol": pl.String, "ts": pl.Int64, "ts_end": pl.Int64,
                  **dict.fromkeys(store.fields, pl.Float64)}
        frame = pl.DataFrame(rows, schema=schema)
        return frame.with_columns(pl.col("ts").cast(TS), pl.col("ts_end").cast(TS))

    # ------------------------------------------------------------------ ticks and actions
    def get_ticks(self, kind: str, asset: str, start: TimeLike, dt: TimeLike | None = None) -> pl.DataFrame:
        """Trades or quotes of ``asset`` with ``start <= ts <= dt`` (default: the clock)."""
        t = self._at(dt)
        store = self._ticks.get(kind)
        if store is None:
            loaded = ", ".join(self._ticks) or "none"
            raise NoDataError(f"no {kind} loaded (loaded tick kinds: {loaded}); declare a DataRequirement")
        return store.between(asset, to_ns(start, name="start"), t)

    def iter_ticks(self, symbol: str, start: TimeLike, end: TimeLike | None = None,
                   kinds: Sequence[str] = ("trades", "quotes"), *, batch_rows: int = 100_000,
                   chunk: str | Timeframe = "1d", chunk_rows: int = 2_000_000,
                   follow_clock: bool = False) -> TickStream:
        """Stream ``symbol``'s trades and/or quotes with ``start <= ts < end`` as time-ordered batches.

        Batches have ``backtape.ticks.MERGED_SCHEMA`` (``kind`` = "trade"/"quote"; a trade before a
        quote at the same ``ts``) and at most ``batch_rows`` rows. Data is fetched ``chunk`` at a time
        (shorter for liquid symbols, aiming at ``chunk_rows`` rows per fetch), so memory stays bounded.
        ``end=None`` means through the clock; an ``end`` past the clock raises ``LookAheadError``
        unless ``follow_clock=True`` (see ``backtape.portal.ticks`` for the engine pattern).
        """
        now = self._at(None)
        s = to_ns(start, name="start")
        e = resolve_end(now, None if end is None else to_ns(end, name="end"), follow_clock)
        check_range(s, e)
        span = Timeframe.parse(chunk).nanos if not isinstance(chunk, Timeframe) else chunk.nanos
        missing = [k for k in kinds if k in TICK_KINDS and k not in self.source.capabilities.kinds]
        if missing:
            raise UnsupportedDataError(f"iter_ticks: source {self.source.name!r} does not provide "
                                       f"{' or '.join(missing)}; pass kinds=(...) with what it has")
        return TickStream(self, symbol, s, e, tuple(kinds), batch_rows=batch_rows, chunk=span,
                          chunk_rows=chunk_rows, follow_clock=follow_clock)

    def iter_classified(self, symbol: str, start: TimeLike, end: TimeLike | None = None, *,
                        quotes: bool = True, **options: Any) -> Iterator[pl.DataFrame]:
        """Classified trades (``side``, ``delta``, ``cum_delta`` from ``start``) streamed like ``iter_ticks``.

        Lee-Ready against the quotes strictly before each trade (``quotes=False``: tick rule only).
        ``options`` go to ``iter_ticks``. Quotes before ``start`` are not seen: the first trades are
        judged by the tick rule until the first quote of the range arrives.
        """
        kinds = ("trades", "quotes") if quotes else ("trades",)
        return classified(self.iter_ticks(symbol, start, end, kinds, **options))

    def get_corporate_actions(self, asset: str | None = None) -> pl.DataFrame:
        """Raw actions visible at the clock (ex-date open ``<= clock``), optionally for one asset."""
        actions = self._adj.actions if self._adj is not None else empty("actions")
        if self._clock is not None:
            actions = actions.filter(pl.col("ts").cast(pl.Int64) <= self._clock)
        return actions if asset is None else actions.filter(pl.col("symbol") == asset)
