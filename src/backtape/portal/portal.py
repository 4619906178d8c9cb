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
import datetime as dt
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import polars as pl

from .._async import run_sync
from .._time import TimeLike, check_range, format_ns, from_ns, to_ns
from ..calendars import TradingCalendar, get_calendar
from ..errors import BacktapeError, ConfigError, HistoryWindowStartsBeforeData, LookAheadError, NoDataError
from ..schema import TS, empty
from ..sources.base import DataSource
from ..timeframes import Timeframe
from .adjustments import MODES, AdjustmentMode, Adjustments
from .requirements import DataRequirement, FetchPlan, collect_requirements, plan_fetches
from .store import PRICE_FIELDS, BarSeries, BarStore, TickStore
from .views import build_view, partial_bar


class DataPortal:
    """Point-in-time access to pre-loaded bars, trades, quotes and corporate actions.

    ``calendar`` defaults to the source's; ``adjustment`` is ``"raw"``, ``"split"`` (default) or
    ``"total_return"`` (see ``backtape.portal.adjustments``).
    """

    def __init__(self, data_source: DataSource, *, calendar: str | TradingCalendar | None = None,
                 adjustment: AdjustmentMode = "split") -> None:
        self.source = data_source
        if isinstance(calendar, TradingCalendar):
            self.calendar = calendar
        else:
            self.calendar = get_calendar(calendar or data_source.calendar)
        if adjustment not in MODES:
            raise ConfigError(f"unknown adjustment mode {adjustment!r}; use one of {', '.join(MODES)}")
        self.adjustment: AdjustmentMode = adjustment
        self._clock: int | None = None
        self._store: BarStore | None = None
        self._adj: Adjustments | None = None
        self._base_tf: Timeframe | None = None
        self._views: dict[tuple[str, str], BarSeries] = {}
        self._tfs: dict[str, Timeframe] = {}
        self._ticks: dict[str, TickStore] = {}
        self._plans: dict[str, FetchPlan] = {}
        self._fetches: list[dict[str, Any]] = []
        self._rows: dict[str, int] = {}
        self._series: dict[str, BarSeries] = {}
        self._hints: dict[str, int] = {}
        self._adjusted_symbols: frozenset[str] = frozenset()
        self._range: tuple[int, int] | None = None

    # ------------------------------------------------------------------ loading
    def load_data(self, start: TimeLike, end: TimeLike, symbols: Sequence[str] | str,
                  requirements: Iterable[object] = ()) -> None:
        """Fetch everything ``requirements`` need for ``symbols`` over ``[start, end)``, once.

        ``requirements`` holds ``DataRequirement`` objects and/or objects with
        ``get_data_requirements()`` (strategies, calculations). Each kind is fetched in one upstream
        call for all symbols at its base frequency, reaching back by the largest lookback counted on
        the calendar. The clock is set to ``start``.
        """
        s, e = check_range(start, end)
        names = [x.strip() for x in symbols.split(",")] if isinstance(symbols, str) else list(symbols)
        if not names:
            raise NoDataError("load_data: no symbols given")
        reqs = collect_requirements(requirements)
        if not any(r.kind == "bars" for _, r in reqs):
            reqs.insert(0, ("portal", DataRequirement("bars", _default_frequency(self.source), 0)))
        caps = self.source.capabilities
        plans = plan_fetches(reqs, self.calendar, s, e, caps, self.source.name)
        frames = run_sync(self._fetch_all(plans, names, caps.corporate_actions))
        self._plans = plans
        self._rows = {kind: frame.height for kind, frame in frames.items()}
        self._base_tf = plans["bars"].frequency
        self._store = BarStore(frames.pop("bars"), names)
        self._adj = Adjustments(frames.pop("actions", empty("actions")), self._store, self.adjustment)
        self._ticks = {kind: TickStore(frame) for kind, frame in frames.items()}
        self._views = {}
        self._series = {s: self._store.series(s) for s in self._store.symbols}
        self._hints = {}
        self._adjusted_symbols = frozenset(s for s in self._series if self._adj.has(s))
        self._range = (min(p.start for p in plans.values()), e)
        self._clock = s

    async def _fetch_all(self, plans: dict[str, FetchPlan], symbols: list[str],
                         actions: bool) -> dict[str, pl.DataFrame]:
        jobs = {kind: (p.start, p.end, p.frequency) for kind, p in plans.items()}
        if actions:
            jobs["actions"] = (plans["bars"].start, plans["bars"].end, plans["bars"].frequency)
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
            raise BacktapeError("the portal holds no data yet: call load_data(start, end, symbols) first")
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
            raise BacktapeError("the portal holds no data yet: call load_data(start, end, symbols) first")
        return self._store

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
        t = self._at(dt)
        series = self._series.get(asset) or self.store.series(asset)
        values = series.fields.get(field)
        if values is None:
            raise NoDataError(_unknown_field(field, series))
        i = self._position(asset, series.ts_end, t)
        if i < 0:
            return float("nan")
        value = float(values[i])
        if asset in self._adjusted_symbols and (field in PRICE_FIELDS or field == "volume"):
            factors = self._adj.factors(asset, series.ts[i:i + 1], self._clock)
            if factors is not None:
                value *= float(factors[field == "volume"][0])
        return value

    def _position(self, asset: str, ts_end: np.ndarray, t: int) -> int:
        """Index of the last bar with ``ts_end <= t`` (-1 if none), trying the previous answer and its
        successor first: an engine stepping forward bar by bar then never binary-searches."""
        i = self._hints.get(asset, -1)
        n = len(ts_end)
        if not (0 <= i < n and ts_end[i] <= t and (i + 1 == n or ts_end[i + 1] > t)):
            j = i + 1
            if 0 <= j < n and ts_end[j] <= t and (j + 1 == n or ts_end[j + 1] > t):
                i = j
            else:
                i = int(ts_end.searchsorted(t, "right")) - 1
            self._hints[asset] = i
        return i

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
            series = store.series(symbol)
            i = series.visible_count(t) - 1
            if i < 0:
                continue
            rows["symbol"].append(symbol)
            rows["ts"].append(int(series.ts[i]))
            rows["ts_end"].append(int(series.ts_end[i]))
            for f in store.fields:
                rows[f].append(self._adjusted(symbol, f, series.ts[i:i + 1], series.fields[f][i:i + 1])[0])
        schema = {"symbol": pl.String, "ts": pl.Int64, "ts_end": pl.Int64,
                  **dict.fromkeys(store.fields, pl.Float64)}
        frame = pl.DataFrame(rows, schema=schema)
        return frame.with_columns(pl.col("ts").cast(TS), pl.col("ts_end").cast(TS))

    def get_bars(self, asset: str, start: TimeLike, end_dt: TimeLike | None = None,
                 frequency: str | Timeframe | None = None) -> dict[str, np.ndarray]:
        """Every bar of ``asset`` with ``ts >= start`` complete at ``end_dt``, adjusted, as numpy arrays.

        Keys: ``ts``, ``ts_end`` (UTC ns) and each field. ``frequency`` defaults to the base frequency.
        """
        t = self._at(end_dt)
        freq = str(frequency or self._base_tf)
        view = self._view(asset, freq)
        lo = int(view.ts.searchsorted(to_ns(start, name="start"), "left"))
        hi = max(view.visible_count(t), lo)
        ts = view.ts[lo:hi]
        out = {"ts": ts.copy(), "ts_end": view.ts_end[lo:hi].copy()}
        out.update({f: self._adjusted(asset, f, ts, v[lo:hi]) for f, v in view.fields.items()})
        return out

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
        fast = None if partial or len(names) == 1 else self._aligned_window(names, freq, t, bar_count, field)
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
        ``bar_count`` end times. ``None`` sends the caller to the general aligning path."""
        out = np.empty((bar_count, len(names)))
        key = ends = None
        for j, name in enumerate(names):
            view = self._views.get((name, freq)) or self._view(name, freq)
            n = int(view.ts_end.searchsorted(t, "right"))
            if n < bar_count:
                return None
            ends = view.ts_end[n - bar_count:n]
            if key is None:
                key = ends.tobytes()
            elif ends.tobytes() != key:
                return None
            values = view.fields.get(field)
            if values is None:
                raise NoDataError(_unknown_field(field, view))
            if name in self._adjusted_symbols:
                out[:, j] = self._adjusted(name, field, view.ts[n - bar_count:n], values[n - bar_count:n])
            else:
                out[:, j] = values[n - bar_count:n]
        return ends, out

    def _asset_window(self, symbol: str, freq: str, t: int, bar_count: int, field: str,
                      partial: bool) -> tuple[np.ndarray, np.ndarray]:
        view = self._view(symbol, freq)
        values = view.fields.get(field)
        if values is None:
            raise NoDataError(_unknown_field(field, view))
        n = int(view.ts_end.searchsorted(t, "right"))
        part = partial_bar(view, self._series[symbol], t, field) if partial else None
        if part is None:
            lo = max(n - bar_count, 0)
            return view.ts_end[lo:n], self._adjusted(symbol, field, view.ts[lo:n], values[lo:n])
        idx, value = part
        lo = max(n - bar_count + 1, 0)
        ts = view.ts[lo:idx + 1]
        raw = np.append(values[lo:n], value)
        return view.ts_end[lo:idx + 1], self._adjusted(symbol, field, ts, raw)

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

    def _view(self, symbol: str, freq: str) -> BarSeries:
        view = self._views.get((symbol, freq))
        if view is None:
            tf = self._tfs.get(freq) or self._tfs.setdefault(freq, Timeframe.parse(freq))
            view = build_view(self.store.series(symbol), self._base_tf, tf, self.calendar)
            self._views[(symbol, freq)] = view
        return view

    def _adjusted(self, symbol: str, field: str, ts: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``values`` of bars starting at ``ts`` with the actions visible at the clock applied (a copy)."""
        if symbol in self._adjusted_symbols and (field in PRICE_FIELDS or field == "volume"):
            factors = self._adj.factors(symbol, ts, self._clock)
            if factors is not None:
                return values * factors[field == "volume"]
        return values.astype(np.float64, copy=True)

    # ------------------------------------------------------------------ ticks and actions
    def get_ticks(self, kind: str, asset: str, start: TimeLike, dt: TimeLike | None = None) -> pl.DataFrame:
        """Trades or quotes of ``asset`` with ``start <= ts <= dt`` (default: the clock)."""
        t = self._at(dt)
        store = self._ticks.get(kind)
        if store is None:
            loaded = ", ".join(self._ticks) or "none"
            raise NoDataError(f"no {kind} loaded (loaded tick kinds: {loaded}); declare a DataRequirement")
        return store.between(asset, to_ns(start, name="start"), t)

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
        views = sum(v.nbytes for (s, _), v in self._views.items() if v is not self.store.series(s))
        return self.store.nbytes + views + sum(t.nbytes for t in self._ticks.values())


def _default_frequency(source: DataSource) -> str:
    caps = source.capabilities
    return "1min" if caps.supports_frequency("1min") else "1d"


def _window_frame(names: list[str], ends: np.ndarray, out: np.ndarray) -> pl.DataFrame:
    columns = {"ts_end": pl.Series(ends, dtype=pl.Int64).cast(TS)}
    columns.update({name: out[:, j] for j, name in enumerate(names)})
    return pl.DataFrame(columns)


def _unknown_field(field: str, series: BarSeries) -> str:
    return f"unknown field {field!r} for {series.symbol}; available: {', '.join(series.fields)}"
