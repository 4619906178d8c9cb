"""Market data for a parameter search: loaded once through the portal, shared by every parameter set.

``load_market_data`` fetches the bars (and corporate actions) of the whole search once, reaching
back by the largest warm-up any parameter set needs. Every evaluation then reads these arrays:
the vector engine slices them, the event engine replays them through a ``FrameDataSource``
(so its own portal sees exactly the bars the source gave, corporate actions included). Worker
processes get them as memory-mapped ``.npy`` files written once to a temporary folder
(``share``/``attach``), Ray workers through its shared-memory object store; nothing is fetched
twice. Sources come resolved (``Workspace.optimize`` puts providers behind its cache); a name is
built from the registry as it is.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from .._symbols import symbol_list
from .._time import TimeLike, check_range, format_ns
from ..errors import NoDataError
from ..instruments import Instrument
from ..sources.base import DataSource
from ..timeframes import Timeframe

if TYPE_CHECKING:
    from ..portal.adjustments import AdjustmentMode, DividendFormula

_FIELDS = ("open", "high", "low", "close", "volume")


@dataclass
class MarketData:
    """The bars of a search: per symbol, raw arrays at the run frequency and at the base frequency.

    ``bars[symbol]`` (run frequency) and ``base[symbol]`` (the source's frequency, what the event
    engine re-aggregates) hold ``ts``, ``ts_end`` (UTC ns) and the OHLCV fields, including the
    warm-up before ``start``; ``adjusted[symbol]`` holds the run-frequency prices adjusted as of
    ``end`` for symbols with corporate actions in the range (the vector engine trades those).
    """

    symbols: list[str]
    start: int
    end: int
    frequency: str
    base_frequency: str
    calendar: str
    periods_per_year: float
    source_name: str
    bars: dict[str, dict[str, np.ndarray]]
    base: dict[str, dict[str, np.ndarray]]
    adjusted: dict[str, dict[str, np.ndarray]]
    actions: pl.DataFrame
    #: the source's lot sizes and minimum order values (``DataSource.instruments``)
    instruments: dict[str, Instrument] = field(default_factory=dict)

    def span(self, symbol: str) -> tuple[int, int]:
        """Row range ``[first, last)`` of ``symbol``'s run-frequency bars with ``start <= ts < end``,
        less a week or month running past ``end`` (``timeframes.last_bar_end``), as the
        event engine runs them."""
        from ..calendars import get_calendar
        from ..timeframes import last_bar_end

        ts, ts_end = self.bars[symbol]["ts"], self.bars[symbol]["ts_end"]
        last = int(np.searchsorted(ts, self.end, "left"))
        limit = last_bar_end(get_calendar(self.calendar), Timeframe.parse(self.frequency), self.end)
        if limit is not None:
            last = min(last, int(np.searchsorted(ts_end, limit, "right")))
        return int(np.searchsorted(ts, self.start, "left")), last

    def warmup_offset(self, symbol: str, warmup: int) -> int:
        """First row the event engine would load for a strategy with ``warmup`` bars of lookback."""
        return int(np.searchsorted(self.bars[symbol]["ts"], self.warmup_start(warmup), "left"))

    def warmup_start(self, warmup: int) -> int:
        """The earliest bar start the event engine loads for ``warmup`` bars of lookback (UTC ns)."""
        from ..calendars import get_calendar
        from ..portal.requirements import lookback_start

        tf = Timeframe.parse(self.frequency)
        return lookback_start(get_calendar(self.calendar), self.start, tf, warmup)

    def prices(self, symbol: str) -> dict[str, np.ndarray]:
        """Run-frequency arrays the vector engine trades: adjusted when the symbol has actions."""
        return self.adjusted.get(symbol) or self.bars[symbol]

    def frame_source(self) -> DataSource:
        """The loaded base bars and actions as an in-memory source (for event-engine runs)."""
        from ..sources.memory import FrameDataSource

        frames = [pl.DataFrame({"symbol": sym, **cols}) for sym, cols in self.base.items() if len(cols["ts"])]
        utc = pl.Datetime("ns", "UTC")
        bars = pl.concat(frames).with_columns(pl.col("ts", "ts_end").cast(utc))
        return FrameDataSource(bars, actions=self.actions if self.actions.height else None,
                               frequency=self.base_frequency, calendar_name=self.calendar,
                               name=self.source_name, rules=self.instruments)  # fmt: skip

    @property
    def nbytes(self) -> int:
        groups = (self.bars, self.base, self.adjusted)
        return sum(a.nbytes for g in groups for cols in g.values() for a in cols.values())

    # sharing with worker processes ------------------------------------------------------------
    def share(self, folder: str | Path) -> Path:
        """Write the arrays as ``.npy`` files under ``folder``; ``attach`` maps them back read-only."""
        root = Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        layout: dict[str, dict[str, dict[str, str]]] = {}
        for group in ("bars", "base", "adjusted"):
            layout[group] = {}
            for k, (sym, cols) in enumerate(getattr(self, group).items()):
                layout[group][sym] = {}
                for name, arr in cols.items():
                    path = root / f"{group}_{k}_{name}.npy"
                    np.save(path, np.ascontiguousarray(arr))
                    layout[group][sym][name] = path.name
        header = {k: getattr(self, k) for k in ("symbols", "start", "end", "frequency", "base_frequency",
                                                 "calendar", "periods_per_year", "source_name",
                                                 "instruments")}  # fmt: skip
        manifest = root / "manifest.pkl"
        manifest.write_bytes(pickle.dumps({"header": header, "layout": layout, "actions": self.actions}))
        return manifest

    @classmethod
    def attach(cls, manifest: str | Path) -> MarketData:
        """The ``MarketData`` written by ``share``, its arrays memory-mapped (not copied)."""
        path = Path(manifest)
        spec = pickle.loads(path.read_bytes())
        groups: dict[str, dict[str, dict[str, np.ndarray]]] = {
            group: {sym: {name: np.load(path.parent / file, mmap_mode="r") for name, file in cols.items()}
                    for sym, cols in layout.items()}
            for group, layout in spec["layout"].items()
        }  # fmt: skip
        return cls(**spec["header"], bars=groups["bars"], base=groups["base"], adjusted=groups["adjusted"],
                   actions=spec["actions"])


def load_market_data(
    symbols: Sequence[str] | str,
    start: TimeLike,
    end: TimeLike,
    frequency: str = "1d",
    source: DataSource | str = "sample",
    *,
    warmup: int = 0,
    adjustment: AdjustmentMode = "split",
    dividends: DividendFormula = "crsp",
) -> MarketData:
    """Fetch ``symbols`` over ``[start, end)`` plus ``warmup`` bars before it, once, through the portal
    (prices adjusted by ``adjustment``, dividends by the ``dividends`` formula)."""
    from ..analytics import periods_per_year
    from ..portal import DataPortal, DataRequirement

    names = symbol_list(symbols)
    s_ns, e_ns = check_range(start, end)
    from ..engine.engine import one_calendar, resolve_source

    src = resolve_source(source)
    calendar = one_calendar({sym: src.calendar_of(sym) for sym in names})
    portal = DataPortal(src, calendar=calendar, adjustment=adjustment, dividends=dividends)
    need = DataRequirement("bars", frequency, max(int(warmup), 0))
    portal.load_data(s_ns, e_ns, names, requirements=[need])
    base_tf = str(portal.base_frequency)
    portal.set_clock(e_ns)
    actions = portal.get_corporate_actions().filter(pl.col("symbol").is_in(names))
    bars, base, adjusted = {}, {}, {}
    for sym in names:
        view = portal.bars(sym, frequency)
        bars[sym] = {"ts": view.ts, "ts_end": view.ts_end, **view.fields}  # prepared features too
        raw = portal.store.series(sym)
        base[sym] = {"ts": raw.ts, "ts_end": raw.ts_end, **raw.fields}
        in_range = (view.ts >= s_ns) & (view.ts < e_ns)
        if not in_range.any():
            raise NoDataError(f"no {frequency} bars for {sym} in [{format_ns(s_ns)}, {format_ns(e_ns)})")
        if actions.filter(pl.col("symbol") == sym).height:
            portal.set_clock(max(int(view.ts_end[-1]), e_ns))
            adj = portal.get_bars(sym, int(view.ts[0]), None, frequency)
            if len(adj["ts"]) != len(view.ts):
                raise NoDataError(f"{sym}: adjusted and raw {frequency} bars differ in count")
            adjusted[sym] = {k: adj[k] for k in ("ts", "ts_end", *_FIELDS)}
    ppy = periods_per_year(calendar=portal.calendar.name, frequency=frequency)
    return MarketData(names, s_ns, e_ns, frequency, base_tf, portal.calendar.name, ppy, src.name, bars, base,
                      adjusted, actions, src.instruments(names))  # fmt: skip


def market_data_from(data: Any) -> MarketData:
    """A ``MarketData`` as given, or attached from a ``share`` manifest path."""
    return data if isinstance(data, MarketData) else MarketData.attach(data)
