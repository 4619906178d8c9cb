"""What a portal holds: the loaded data (whole, or streamed window by window), its clock, and the
bar views derived from them as of the clock.

``LoadedData`` is the base of ``DataPortal`` (``backtape.portal.portal``), with ``HistoryWindows``
(``backtape.portal.history``) between them; the point-in-time questions live in those two.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from .._async import run_sync
from .._time import TimeLike, check_range, format_ns, from_ns, to_ns
from ..calendars import TradingCalendar, get_calendar
from ..errors import BacktapeError, ConfigError, LookAheadError, NoDataError, UnsupportedDataError
from ..schema import empty
from ..sources.base import DataSource
from ..timeframes import Timeframe
from .adjustments import MODES, AdjustmentMode, Adjustments, DividendFormula
from .fetching import default_frequency, fetch_all, fetch_log_frame, requirements_report, symbols_calendar
from .requirements import DataRequirement, FetchPlan, collect_requirements, plan_fetches
from .store import BarSeries, BarStore, SpotIndex, TickStore
from .views import build_view, split_inside_bars

NOT_LOADED = "the portal holds no data yet: call load_data(start, end, symbols) first"


class LoadedData:
    """The data a ``DataPortal`` loaded, its clock and its cached bar views (see ``DataPortal``)."""

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
        self._spot: dict[str, SpotIndex] = {}
        self._tfs: dict[str, Timeframe] = {}
        self._ticks: dict[str, TickStore] = {}
        self._plans: dict[str, FetchPlan] = {}
        self._fetches: list[dict[str, Any]] = []
        self._rows: dict[str, int] = {}
        self._series: dict[str, BarSeries] = {}
        self._hints: dict[tuple[str, str], int] = {}
        self._adjusted_symbols: frozenset[str] = frozenset()
        self._splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # symbol -> (ex-dates, ratios)
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
        the calendar. Without any requirement, bars of the source's default size are loaded
        (``fetching.default_frequency``); requirements for ticks only load no bars (tick-only
        symbols). The clock is set to ``start``.

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
            reqs.append(("portal", DataRequirement("bars", default_frequency(self.source, names), 0)))
        if not self._calendar_given:
            self.calendar = symbols_calendar(self.source, names) or self.calendar
        caps = self.source.capabilities
        plans = plan_fetches(reqs, self.calendar, s, stop, caps, self.source.name)
        if until is not None and set(plans) != {"bars"}:
            raise UnsupportedDataError("a streamed load (until=) takes bars only; load ticks whole")
        frames = run_sync(fetch_all(self.source, plans, names, caps.corporate_actions and "bars" in plans,
                                    self._fetches))
        self._plans = plans
        self._rows = {kind: frame.height for kind, frame in frames.items()}
        bars_plan = plans.get("bars")
        default = Timeframe.parse(default_frequency(self.source, names))
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
        with_actions = self.source.capabilities.corporate_actions
        frames = run_sync(fetch_all(self.source, step, self._names, with_actions, self._fetches))
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
        splits = actions.filter(pl.col("action") == "split").sort("symbol", "ts")
        self._splits = {str(sym): (g["ts"].cast(pl.Int64).to_numpy(), g["value"].cast(pl.Float64).to_numpy())
                        for (sym,), g in splits.group_by(["symbol"], maintain_order=True)}


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
            raise BacktapeError(NOT_LOADED)
        if when is None:
            return clock
        t = when if type(when) is int else to_ns(when, name="dt")
        if t > clock:
            raise LookAheadError(f"asked for data as of {format_ns(t)} but the clock is {format_ns(clock)}")
        return t

    # ------------------------------------------------------------------ loaded bars and their views
    @property
    def store(self) -> BarStore:
        if self._store is None:
            raise BacktapeError(NOT_LOADED)
        return self._store

    @property
    def _adjustments(self) -> Adjustments:
        if self._adj is None:
            raise BacktapeError(NOT_LOADED)
        return self._adj

    @property
    def _loaded_base_tf(self) -> Timeframe:
        if self._base_tf is None:
            raise BacktapeError(NOT_LOADED)
        return self._base_tf

    @property
    def symbols(self) -> list[str]:
        return self.store.symbols

    @property
    def base_frequency(self) -> Timeframe | None:
        return self._base_tf

    def bars(self, symbol: str, frequency: str | None = None) -> BarSeries:
        """All loaded raw bars of ``symbol`` at ``frequency`` (numpy views, not point in time).

        For the engine, which schedules its clock from them and reveals them bar by bar; strategies
        read through the ``get_*`` methods instead.
        """
        if symbol not in self.store:
            raise NoDataError(f"no bars loaded for {symbol!r}; loaded: {', '.join(self.symbols)}")
        freq = str(frequency or self._base_tf)
        splits = self._splits.get(symbol)
        if symbol not in self._adjusted_symbols and splits is None:
            return self._view(symbol, freq)
        raw = self._raw_views.get((symbol, freq))  # never in _views: the hot paths read those as adjusted
        if raw is None:
            base = self.store.series(symbol)
            raw = self._build_view(base, freq)
            if splits is not None:  # a month holding a split: on the post-split basis its close trades at
                one_basis = split_inside_bars(base, raw, *splits)
                raw = raw if one_basis is base else self._build_view(one_basis, freq)
            self._raw_views[(symbol, freq)] = raw
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

    # ------------------------------------------------------------------ reporting
    def requirements_report(self) -> pl.DataFrame:
        """One row per declared requirement: who asked, what was fetched for it, over which range."""
        return requirements_report(self._plans, self._rows)

    @property
    def fetch_log(self) -> pl.DataFrame:
        """Every upstream call this portal made: kind, frequency, symbols, range, rows, seconds."""
        return fetch_log_frame(self._fetches)

    @property
    def nbytes(self) -> int:
        """Bytes held by loaded bars and ticks (views are built lazily and counted when present)."""
        adjusted = (v for _, v in (*self._adj_views.values(), *self._adj_bases.values()))
        series = [*self._views.values(), *self._raw_views.values(), *adjusted]
        arrays = {id(a): a for v in series for a in (v.ts, v.ts_end, *v.fields.values())}
        columns = list(self.store._columns.values())
        extra = sum(a.nbytes for a in arrays.values() if not any(np.shares_memory(a, c) for c in columns))
        return self.store.nbytes + extra + sum(t.nbytes for t in self._ticks.values())
