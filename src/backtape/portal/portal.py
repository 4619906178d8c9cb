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

import asyncio
import dataclasses
import datetime as dt
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, overload

import numpy as np
import polars as pl

from .._async import run_sync
from .._time import TimeLike, check_range, format_ns, from_ns, to_ns
from ..calendars import TradingCalendar, get_calendar
from ..errors import (
    BacktapeError,
    ConfigError,
    HistoryWindowStartsBeforeData,
    LookAheadError,
    NoDataError,
    UnsupportedDataError,
)
from ..schema import TS, empty
from ..sources.base import DataSource
from ..timeframes import Timeframe
from ._search import last_at_or_before
from .adjustments import MODES, AdjustmentMode, Adjustments, DividendFormula
from .requirements import DataRequirement, FetchPlan, collect_requirements, plan_fetches
from .store import PRICE_FIELDS, BarSeries, BarStore, TickStore
from .ticks import TICK_KINDS, TickStream, classified, resolve_end
from .views import build_view, partial_bar

_NOT_LOADED = "the portal holds no data yet: call load_data(start, end, symbols) first"


class DataPortal:
    """Point-in-time access to pre-loaded bars, trades, quotes and corporate actions.

    ``calendar`` defaults to the calendar of the loaded symbols when the source knows it per symbol
    (``calendar_of(symbol)``, e.g. the sample's crypto on ``24/7``) and they share one, else to the
    source's; ``adjustment`` is ``"raw"``, ``"split"`` (default) or
    ``"total_return"`` (see ``backtape.portal.adjustments``); ``dividends`` is the total-return
    dividend formula, ``"crsp"`` (default) or ``"ratio"``.
    """

    def __init__(self, data_source: DataSource, *, calendar: str | TradingCalendar | None = None,
                 adjustment: AdjustmentMode = "split", dividends: DividendFormula = "crsp") -> None:
        self.source = data_source
        self._calendar_given = calendar is not None
        if isinstance(calendar, TradingCalendar):
            self.calendar = calendar
        else:
            self.calendar = get_calendar(calendar or data_source.calendar)
        if adjustment not in MODES:
            raise ConfigError(f"unknown adjustment mode {adjustment!r}; use one of {', '.join(MODES)}")
        self.adjustment: AdjustmentMode = adjustment
        self.dividends: DividendFormula = dividends
        self._clock: int | None = None
        self._store: BarStore | None = None
        self._adj: Adjustments | None = None
        self._base_tf: Timeframe | None = None
        self._views: dict[tuple[str, str], BarSeries] = {}
        self._adj_views: dict[tuple[str, str], tuple[int, BarSeries]] = {}
        self._adj_bases: dict[str, tuple[int, BarSeries]] = {}
        self._shared: dict[str, list[BarSeries]] = {}
        self._raw_views: dict[tuple[str, str], BarSeries] = {}
        self._spot: dict[str, _SpotIndex] = {}
        self._tfs: dict[str, Timeframe] = {}
        self._ticks: dict[str, TickStore] = {}
        self._plans: dict[str, FetchPlan] = {}
        self._fetches: list[dict[str, Any]] = []
        self._rows: dict[str, int] = {}
        self._series: dict[str, BarSeries] = {}
        self._hints: dict[tuple[str, str], int] = {}
        self._adjusted_symbols: frozenset[str] = frozenset()
        self._range: tuple[int, int] | None = None
        self._names: list[str] = []
        self._loaded_to = 0

    # ------------------------------------------------------------------ loading
    def load_data(self, start: TimeLike, end: TimeLike, symbols: Sequence[str] | str,
                  requirements: Iterable[object] = (), *, until: TimeLike | None = None) -> None:
        """Fetch everything ``requirements`` need for ``symbols`` over ``[start, end)``, once.

        ``requirements`` holds ``DataRequirement`` objects and/or objects with
        ``get_data_requirements()`` (strategies, calculations). Each kind is fetched in one upstream
        call for all symbols at its base frequency, reaching back by the largest lookback counted on
        the calendar. Without any requirement, bars at the source's finest of 1min/1d are loaded;
        requirements for ticks only load no bars (tick-only symbols). The clock is set to ``start``.

        ``until`` streams a long run (the engine's windows): only bars starting before it are loaded
        now, ``advance`` loads the rest window by window, and the coverage check is the caller's.
        """
        s, e = check_range(start, end)
        stop = e if until is None else min(max(to_ns(until, name="until"), s + 1), e)
        names = [x.strip() for x in symbols.split(",")] if isinstance(symbols, str) else list(symbols)
        if not names:
            raise NoDataError("load_data: no symbols given")
        reqs = collect_requirements(requirements)
        if not reqs:
            reqs.append(("portal", DataRequirement("bars", _default_frequency(self.source, names), 0)))
        if not self._calendar_given:
            self.calendar = _symbols_calendar(self.source, names) or self.calendar
        caps = self.source.capabilities
        plans = plan_fetches(reqs, self.calendar, s, stop, caps, self.source.name)
        if until is not None and set(plans) != {"bars"}:
            raise UnsupportedDataError("a streamed load (until=) takes bars only; load ticks whole")
        frames = run_sync(self._fetch_all(plans, names, caps.corporate_actions and "bars" in plans))
        self._plans = plans
        self._rows = {kind: frame.height for kind, frame in frames.items()}
        bars_plan = plans.get("bars")
        default = Timeframe.parse(_default_frequency(self.source, names))
        self._base_tf = bars_plan.frequency if bars_plan else default
        bars, actions = frames.pop("bars", empty("bars")), frames.pop("actions", empty("actions"))
        self._ticks = {kind: TickStore(frame) for kind, frame in frames.items()}
        self._install(BarStore(bars, names), actions)
        self._names, self._loaded_to = names, stop
        self._range = (min(p.start for p in plans.values()), e)
        self._clock = s
        if bars_plan is not None and until is None:
            from .spans import series_spans, warn_short

            warn_short(self.calendar, series_spans(self._series.values(), s, e), s, e)

    def advance(self, until: TimeLike, keep: Mapping[str, int]) -> None:
        """Stream on (after ``load_data(..., until=)``): load the bars and actions starting between the
        last ``until`` and this one, and release each symbol's rows before index ``keep[symbol]``.

        The engine keeps what its strategy can still read (its look-back) and the bars it holds
        positions on; row indices of the kept bars shift down by ``keep[symbol]``.
        """
        t = to_ns(until, name="until")
        plan = self._plans.get("bars")
        if plan is None or self._store is None or self._adj is None:
            raise BacktapeError("advance() continues a streamed load: call load_data(..., until=) first")
        lo = self._loaded_to
        if t <= lo:
            return
        step = {"bars": dataclasses.replace(plan, start=lo, end=t, owners=[])}
        frames = run_sync(self._fetch_all(step, self._names, self.source.capabilities.corporate_actions))
        new = frames["bars"]
        self._rows["bars"] = self._rows.get("bars", 0) + new.height
        actions = frames.get("actions")
        old = self._adj.actions
        merged = old if actions is None or not actions.height else \
            pl.concat([old, actions], how="vertical_relaxed").unique(maintain_order=True)
        self._install(self._store.rolled(keep, new), merged)
        self._loaded_to = t

    def _install(self, store: BarStore, actions: pl.DataFrame) -> None:
        """Make ``store`` and ``actions`` the loaded data and drop everything derived from the old ones."""
        self._store = store
        self._adj = Adjustments(actions, store, self.adjustment, self.dividends)
        self._views, self._adj_views, self._adj_bases, self._shared, self._spot = {}, {}, {}, {}, {}
        self._raw_views = {}
        self._series = {s: store.series(s) for s in store.symbols}
        self._hints = {}
        self._adjusted_symbols = frozenset(s for s in self._series if self._adj.has(s))

    async def _fetch_all(self, plans: dict[str, FetchPlan], symbols: list[str],
                         actions: bool) -> dict[str, pl.DataFrame]:
        jobs = {kind: (p.start, p.end, p.frequency) for kind, p in plans.items()}
        if actions:
            bars = plans["bars"]
            jobs["actions"] = (bars.start, bars.end, bars.frequency)
        results = await asyncio.gather(*(self._fetch_one(k, symbols, *j) for k, j in jobs.items()))
        return dict(zip(jobs, results, strict=True))

    async def _fetch_one(self, kind: str, symbols: list[str], start: int, end: int,
                         frequency: Timeframe) -> pl.DataFrame:
        t0 = time.perf_counter()
        frame = await self.source.fetch_kind(kind, symbols, start, end, str(frequency))
        self._fetches.append({
            "kind": kind, "frequency": str(frequency) if kind == "bars" else None,
            "symbols": ",".join(symbols), "start": start, "end": end, "rows": frame.height,
            "seconds": time.perf_counter() - t0,
        })
        return frame

    # ------------------------------------------------------------------ clock
    @property
    def clock(self) -> dt.datetime | None:
        """The current time of the run (UTC); nothing after it can be read."""
        return None if self._clock is None else from_ns(self._clock)

    @property
    def clock_ns(self) -> int | None:
        """The clock in UTC nanoseconds."""
        return self._clock

    def set_clock(self, dt: TimeLike) -> None:
        """Move the clock (the engine advances it; research code may also move it back)."""
        self._clock = dt if type(dt) is int else to_ns(dt, name="clock")

    def _at(self, when: TimeLike | None) -> int:
        clock = self._clock
        if clock is None:
            raise BacktapeError(_NOT_LOADED)
        if when is None:
            return clock
        t = when if type(when) is int else to_ns(when, name="dt")
        if t > clock:
            raise LookAheadError(f"asked for data as of {format_ns(t)} but the clock is {format_ns(clock)}")
        return t

    # ------------------------------------------------------------------ bars
    @property
    def store(self) -> BarStore:
        if self._store is None:
            raise BacktapeError(_NOT_LOADED)
        return self._store

    @property
    def _adjustments(self) -> Adjustments:
        if self._adj is None:
            raise BacktapeError(_NOT_LOADED)
        return self._adj

    @property
    def _loaded_base_tf(self) -> Timeframe:
        if self._base_tf is None:
            raise BacktapeError(_NOT_LOADED)
        return self._base_tf

    @property
    def symbols(self) -> list[str]:
        return self.store.symbols

    @property
    def base_frequency(self) -> Timeframe | None:
        return self._base_tf

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
            raise NoDataError(_unknown_field(field, self.store.series(asset)))
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

    def _spot_index(self, asset: str) -> _SpotIndex:
        entry = self._spot[asset] = _SpotIndex(self.store.series(asset), asset in self._adjusted_symbols)
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

    def get_bars(self, asset: str, start: TimeLike, end_dt: TimeLike | None = None,
                 frequency: str | Timeframe | None = None, *,
                 fields: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Every bar of ``asset`` with ``ts >= start`` complete at ``end_dt``, adjusted, as numpy arrays.

        Keys: ``ts``, ``ts_end`` (UTC ns) and each field (only ``fields`` when given). ``frequency``
        defaults to the base frequency.
        """
        t = self._at(end_dt)
        freq = str(frequency or self._base_tf)
        view = self._view(asset, freq)
        wanted = view.fields if fields is None else {f: view.fields[f] for f in fields if f in view.fields}
        if fields is not None and len(wanted) < len(set(fields)):
            missing = sorted(set(fields) - set(wanted))
            raise BacktapeError(f"{asset} {freq} bars have no field {', '.join(missing)}; "
                                f"have {', '.join(view.fields)}")
        lo = int(view.ts.searchsorted(to_ns(start, name="start"), "left"))
        hi = max(view.visible_count(t), lo)
        out = {"ts": view.ts[lo:hi].copy(), "ts_end": view.ts_end[lo:hi].copy()}
        out.update({f: v[lo:hi].copy() for f, v in wanted.items()})
        return out

    @overload
    def get_history_window(self, assets: str | Sequence[str], end_dt: TimeLike | None, bar_count: int,
                           frequency: str | Timeframe, field: str, *, partial: bool = False,
                           as_polars: Literal[False] = False) -> np.ndarray: ...

    @overload
    def get_history_window(self, assets: str | Sequence[str], end_dt: TimeLike | None, bar_count: int,
                           frequency: str | Timeframe, field: str, *, partial: bool = False,
                           as_polars: Literal[True]) -> pl.DataFrame: ...

    def get_history_window(self, assets: str | Sequence[str], end_dt: TimeLike | None, bar_count: int,
                           frequency: str | Timeframe, field: str, *, partial: bool = False,
                           as_polars: bool = False) -> np.ndarray | pl.DataFrame:
        """The last ``bar_count`` bars of ``frequency`` complete at ``end_dt``, as ``bar_count x assets``.

        Assets are aligned on the union of their bar end times; a bar one asset lacks is NaN. With
        ``partial=True`` the last row is the current, incomplete bar built from the base bars complete
        at ``end_dt``. ``as_polars=True`` returns a frame with ``ts_end`` and one column per asset.
        Raises ``HistoryWindowStartsBeforeData`` (with ``first_valid_end``) when the loaded data holds
        fewer bars.

        ==========  =========================================================  ==================
        row         bars                                                        price adjustment
        ==========  =========================================================  ==================
        0..n-2      complete bars (``ts_end <= end_dt``)                         as of the clock
        n-1         last complete bar, or the partial bar when ``partial=True``  as of the clock
        ==========  =========================================================  ==================
        """
        t = self._at(end_dt)
        if bar_count <= 0:
            raise NoDataError(f"bar_count must be positive, got {bar_count}")
        names = [assets] if isinstance(assets, str) else list(assets)
        freq = frequency if isinstance(frequency, str) else str(frequency)
        fast = None if partial else self._aligned_window(names, freq, t, bar_count, field)
        if fast is not None:
            ends, out = fast
            return out if not as_polars else _window_frame(names, ends, out)
        parts = [self._asset_window(a, freq, t, bar_count, field, partial) for a in names]
        ends = parts[0][0]
        key = ends.tobytes()
        if all(len(p[0]) == bar_count and p[0].tobytes() == key for p in parts):
            out = parts[0][1].reshape(-1, 1) if len(parts) == 1 else np.column_stack([p[1] for p in parts])
        else:
            ends, out = self._align(names, freq, parts, bar_count, t)
        return out if not as_polars else _window_frame(names, ends, out)

    def _aligned_window(self, names: list[str], freq: str, t: int, bar_count: int,
                        field: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The common case, written straight into the output: every asset has the same last
        ``bar_count`` end times. ``None`` sends the caller to the general aligning path.

        Views with identical end times share one array (see ``_view``), so the position is looked up
        once per distinct array, not once per asset.
        """
        out = np.empty((bar_count, len(names)))
        shared: np.ndarray | None = None
        key: bytes | None = None
        n = 0
        hints = self._hints
        for j, name in enumerate(names):
            view = self._views.get((name, freq)) or self._view(name, freq)  # adjusted: never in _views
            ends = view.ts_end
            if ends is not shared:
                hint_key = (name, freq)
                n = last_at_or_before(ends, t, hints.get(hint_key, 0)) + 1
                hints[hint_key] = n - 1
                if n < bar_count:
                    return None
                window = ends[n - bar_count:n].tobytes()
                if key is None:
                    key = window
                elif window != key:
                    return None
                shared = ends
            values = view.fields.get(field)
            if values is None:
                raise NoDataError(_unknown_field(field, view))
            out[:, j] = values[n - bar_count:n]
        if shared is None:  # no names
            return None
        return shared[n - bar_count:n], out

    def _asset_window(self, symbol: str, freq: str, t: int, bar_count: int, field: str,
                      partial: bool) -> tuple[np.ndarray, np.ndarray]:
        view = self._view(symbol, freq)
        values = view.fields.get(field)
        if values is None:
            raise NoDataError(_unknown_field(field, view))
        n = last_at_or_before(view.ts_end, t, self._hints.get((symbol, freq), 0)) + 1
        self._hints[(symbol, freq)] = n - 1
        part = partial_bar(view, self._base(symbol), t, field, n) if partial else None
        if part is None:
            lo = max(n - bar_count, 0)
            return view.ts_end[lo:n], values[lo:n].copy()  # never hand out the store's memory
        lo = max(n - bar_count + 1, 0)
        out = np.empty(n + 1 - lo)
        out[:-1] = values[lo:n]
        out[-1] = part
        return view.ts_end[lo:n + 1], out

    def _align(self, names: list[str], freq: str, parts: list[tuple[np.ndarray, np.ndarray]],
               bar_count: int, t: int) -> tuple[np.ndarray, np.ndarray]:
        ends = np.unique(np.concatenate([p[0] for p in parts]))[-bar_count:]
        if len(ends) < bar_count:
            first = np.unique(np.concatenate([self._view(a, freq).ts_end[:bar_count] for a in names]))
            valid = int(first[bar_count - 1]) if len(first) >= bar_count else None
            where = f"first valid end {format_ns(valid)}" if valid is not None else "not enough bars loaded"
            raise HistoryWindowStartsBeforeData(
                f"{bar_count} bars of {freq} for {', '.join(names)} at {format_ns(t)} start before the "
                f"loaded data ({len(ends)} available; {where})",
                first_valid_end=None if valid is None else from_ns(valid),
            )
        out = np.full((bar_count, len(names)), np.nan)
        for j, (e, values) in enumerate(parts):
            pos = ends.searchsorted(e)
            ok = (pos < bar_count) & (ends[np.minimum(pos, bar_count - 1)] == e)
            out[pos[ok], j] = values[ok]
        return ends, out

    def bars(self, symbol: str, frequency: str | None = None) -> BarSeries:
        """All loaded raw bars of ``symbol`` at ``frequency`` (numpy views, not point in time).

        For the engine, which schedules its clock from them and reveals them bar by bar; strategies
        read through the ``get_*`` methods instead.
        """
        if symbol not in self.store:
            raise NoDataError(f"no bars loaded for {symbol!r}; loaded: {', '.join(self.symbols)}")
        freq = str(frequency or self._base_tf)
        if symbol not in self._adjusted_symbols:
            return self._view(symbol, freq)
        raw = self._raw_views.get((symbol, freq))  # never in _views: the hot paths read those as adjusted
        if raw is None:
            raw = self._raw_views[(symbol, freq)] = self._build_view(self.store.series(symbol), freq)
        return raw

    def _view(self, symbol: str, freq: str) -> BarSeries:
        """``symbol``'s bars at ``freq`` as of the clock: adjusted for the actions visible at it.

        Views of symbols without actions are built once; those of adjusted symbols are rebuilt from
        the adjusted base whenever another action becomes visible (a few times per run), so every
        bar, a week spanning a split included, is reduced from prices on one basis.
        """
        if symbol in self._adjusted_symbols:
            epoch = self._adjustments.epoch(symbol, self._at(None))
            hit = self._adj_views.get((symbol, freq))
            if hit is None or hit[0] != epoch:
                hit = (epoch, self._build_view(self._base(symbol), freq))
                self._adj_views[(symbol, freq)] = hit
            return hit[1]
        view = self._views.get((symbol, freq))
        if view is None:
            view = self._views[(symbol, freq)] = self._build_view(self.store.series(symbol), freq)
        return view

    def _build_view(self, base: BarSeries, freq: str) -> BarSeries:
        """A view of ``base`` whose ``ts``/``ts_end`` arrays are shared with an identical earlier view."""
        tf = self._tfs.get(freq) or self._tfs.setdefault(freq, Timeframe.parse(freq))
        view = build_view(base, self._loaded_base_tf, tf, self.calendar)
        for other in self._shared.setdefault(freq, []):
            if other.ts_end is view.ts_end:
                return view
            if np.array_equal(other.ts_end, view.ts_end) and np.array_equal(other.ts, view.ts):
                return dataclasses.replace(view, ts=other.ts, ts_end=other.ts_end)
        self._shared[freq].append(view)
        return view

    def _base(self, symbol: str) -> BarSeries:
        """The base series of ``symbol`` with the actions visible at the clock applied."""
        if symbol not in self._adjusted_symbols:
            return self.store.series(symbol)
        adjustments = self._adjustments
        epoch = adjustments.epoch(symbol, self._at(None))
        hit = self._adj_bases.get(symbol)
        if hit is None or hit[0] != epoch:
            hit = self._adj_bases[symbol] = (epoch, adjustments.adjusted_series(self._series[symbol], epoch))
        return hit[1]

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

    # ------------------------------------------------------------------ reporting
    def requirements_report(self) -> pl.DataFrame:
        """One row per declared requirement: who asked, what was fetched for it, over which range."""
        rows = []
        for kind, plan in self._plans.items():
            for owner, req in plan.owners:
                rows.append({
                    "requested_by": owner, "kind": req.kind, "frequency": req.frequency,
                    "lookback": req.lookback, "fetched_frequency": str(plan.frequency),
                    "fetch_start": plan.start, "fetch_end": plan.end, "rows": self._rows.get(kind),
                })
        frame = pl.DataFrame(rows, schema={
            "requested_by": pl.String, "kind": pl.String, "frequency": pl.String, "lookback": pl.Int64,
            "fetched_frequency": pl.String, "fetch_start": pl.Int64, "fetch_end": pl.Int64, "rows": pl.Int64,
        })
        return frame.with_columns(pl.col("fetch_start").cast(TS), pl.col("fetch_end").cast(TS))

    @property
    def fetch_log(self) -> pl.DataFrame:
        """Every upstream call this portal made: kind, frequency, symbols, range, rows, seconds."""
        schema = {"kind": pl.String, "frequency": pl.String, "symbols": pl.String, "start": pl.Int64,
                  "end": pl.Int64, "rows": pl.Int64, "seconds": pl.Float64}
        return pl.DataFrame(self._fetches, schema=schema).with_columns(
            pl.col("start").cast(TS), pl.col("end").cast(TS))

    @property
    def nbytes(self) -> int:
        """Bytes held by loaded bars and ticks (views are built lazily and counted when present)."""
        adjusted = (v for _, v in (*self._adj_views.values(), *self._adj_bases.values()))
        series = [*self._views.values(), *self._raw_views.values(), *adjusted]
        arrays = {id(a): a for v in series for a in (v.ts, v.ts_end, *v.fields.values())}
        columns = list(self.store._columns.values())
        extra = sum(a.nbytes for a in arrays.values() if not any(np.shares_memory(a, c) for c in columns))
        return self.store.nbytes + extra + sum(t.nbytes for t in self._ticks.values())




class _SpotIndex:
    """One symbol's base bars for ``get_spot_value``: its ``ts_end`` array, zero-copy memoryviews of
    the fields (reading one element from Python costs a fraction of indexing numpy) and the last
    answer ``i`` for clock ``t``."""

    __slots__ = ("adjusted", "array", "fields", "i", "t")

    def __init__(self, series: BarSeries, adjusted: bool) -> None:
        self.array = series.ts_end
        self.fields = {f: a.data for f, a in series.fields.items()}
        self.adjusted = adjusted
        self.i = -1
        self.t: int | None = None


def _default_frequency(source: DataSource, symbols: list[str]) -> str:
    """1-minute bars when the source serves them for every symbol (``frequency_of(symbol)`` when the
    source knows each symbol's native bar size, like the sample's daily equities), else daily."""
    if not source.capabilities.supports_frequency("1min"):
        return "1d"
    try:
        native = [source.frequency_of(s) for s in symbols]
    except BacktapeError:
        return "1min"
    return "1d" if any(tf is not None and not tf.is_intraday for tf in native) else "1min"


def _symbols_calendar(source: DataSource, symbols: list[str]) -> TradingCalendar | None:
    """The one calendar ``source`` names for all ``symbols`` (``calendar_of``), else ``None``."""
    try:
        names = {source.calendar_of(s) for s in symbols}
    except BacktapeError:
        return None
    return get_calendar(names.pop()) if len(names) == 1 else None


def _window_frame(names: list[str], ends: np.ndarray, out: np.ndarray) -> pl.DataFrame:
    columns: dict[str, pl.Series | np.ndarray] = {"ts_end": pl.Series(ends, dtype=pl.Int64).cast(TS)}
    columns.update({name: out[:, j] for j, name in enumerate(names)})
    return pl.DataFrame(columns)


def _unknown_field(field: str, series: BarSeries) -> str:
    return f"unknown field {field!r} for {series.symbol}; available: {', '.join(series.fields)}"
