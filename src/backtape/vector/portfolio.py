"""Many symbols, one cash account, vectorized: the data a vector form reads and the kernel's run.

``VectorData`` puts every symbol on the run's clock (the sorted bar ends of all symbols, warm-up
included). Its fields (``data.close``, ``data["high"]``...) are **steps x symbols** arrays of prices
adjusted as of the end (NaN where a symbol has no bar), which is what a strategy's vector form reads:
ratios, crossings and rankings of such prices equal those of the point-in-time prices the event
engine's strategies see. The account trades **raw** prices: ``run`` hands the kernel the raw opens and
closes of the steps in ``[start, end)`` with the splits and cash dividends on their ex-dates
(``_portfolio_kernel``), so both engines book the same shares and cash. Numeric columns beyond the
bar schema (``PreparedSource`` features: ``data["rsi_14"]``) are fields too, as the source served them.

Rebalancing schedules (``rebalance_mask``): ``"Nw"`` (ISO weeks), ``"Nmo"``, ``"Nq"``, ``"Ny"``
(calendar periods of the bar's last instant, counted from 1970) or a number ``N`` (every N bars). A
step is due when it is the first step of the run or its period differs from the previous step's;
every N bars counts from the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from ..actions import place_actions
from ..calendars import get_calendar
from ..errors import ConfigError, NoDataError
from ..options import TradingOptions
from ..timeframes import Timeframe
from . import _portfolio_kernel as pk

_FIELDS = ("open", "high", "low", "close", "volume")
_DAY_NS = 86_400 * 10**9


def period_keys(ts: np.ndarray, schedule: str) -> np.ndarray:
    """An integer per bar end that changes exactly when the calendar period of ``schedule`` does
    (the bar's day is that of its last instant, ``ts_end - 1``, so a bar ending at midnight counts
    in the day it covers; ``timeframes.calendar_periods``)."""
    from ..errors import TimeframeError
    from ..timeframes import Timeframe, calendar_periods

    try:
        return calendar_periods((np.asarray(ts, dtype=np.int64) - 1) // _DAY_NS, Timeframe.parse(schedule))
    except TimeframeError:
        raise ConfigError(f"rebalance must be a period of weeks, months, quarters or years ('1w', '2w', "
                          f"'1mo', '2mo', '1q', '1y') or a number of bars, got {schedule!r}") from None


def every_bars(schedule: object) -> int:
    """The N of an every-N-bars schedule (an int or a digit string), else 0."""
    if isinstance(schedule, bool):
        raise ConfigError(f"rebalance must be a period or a number of bars, got {schedule!r}")
    if isinstance(schedule, int | np.integer) or (isinstance(schedule, str) and schedule.isdigit()):
        n = int(schedule)
        if n < 1:
            raise ConfigError(f"rebalance every N bars needs N >= 1, got {schedule!r}")
        return n
    return 0


def rebalance_mask(ts: np.ndarray, schedule: object) -> np.ndarray:
    """Which steps of ``ts`` (bar ends) are rebalancing steps (see the module doc)."""
    n = len(ts)
    every = every_bars(schedule)
    if every:
        return np.arange(n) % every == 0
    keys = period_keys(ts, str(schedule))
    due = np.ones(n, dtype=np.bool_)
    due[1:] = keys[1:] != keys[:-1]
    return due


class RebalanceSchedule:
    """``rebalance_mask`` one step at a time, for event-form strategies: ``due(ctx.now)`` per bar."""

    def __init__(self, schedule: object) -> None:
        self.every = every_bars(schedule)
        self.schedule = str(schedule)
        if not self.every:
            period_keys(np.zeros(1, dtype=np.int64), self.schedule)
        self.count = 0
        self.key: int | None = None

    def __call__(self, now: int) -> bool:
        """Whether the step ending at ``now`` is due (call it once per step, in order)."""
        if self.every:
            due = self.count % self.every == 0
            self.count += 1
            return due
        key = int(period_keys(np.array([now], dtype=np.int64), self.schedule)[0])
        due, self.key = key != self.key, key
        return due


@dataclass
class VectorData:
    """Every symbol on one clock: adjusted fields for decisions, raw prices and actions for the account.

    ``ts`` holds the clock steps (bar ends, UTC ns); ``start_row`` is the first step inside
    ``[start, end)`` (the steps before it are warm-up). ``series[symbol]`` keeps each symbol's own
    bars (adjusted, warm-up included) and ``rows[symbol]`` the step of each of them.
    """

    symbols: list[str]
    ts: np.ndarray
    start_row: int
    fields: dict[str, np.ndarray]
    series: dict[str, dict[str, np.ndarray]]
    rows: dict[str, np.ndarray]
    raw: dict[str, dict[str, np.ndarray]]
    first: dict[str, int]
    actions: pl.DataFrame
    periods_per_year: float
    frequency: str
    start: int
    end: int
    calendar: str = "XNYS"
    extra: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.fields[name]

    @property
    def close(self) -> np.ndarray:
        return self.fields["close"]

    @property
    def open(self) -> np.ndarray:
        return self.fields["open"]

    @property
    def n_steps(self) -> int:
        return len(self.ts)

    def rebalance(self, schedule: object) -> np.ndarray:
        """``rebalance_mask`` over the steps of the run from its first ready step (False before)."""
        due = np.zeros(self.n_steps, dtype=np.bool_)
        ready = self.ready_row
        due[ready:] = rebalance_mask(self.ts[ready:], schedule)
        return due

    @property
    def ready_row(self) -> int:
        """First step of the run at which every symbol has its ``warmup`` bars, as the event engine
        first calls ``on_bar`` there: ``start_row`` when the data holds the warm-up before ``start``,
        later in a run from the first date of the data (a schedule starts counting there in both)."""
        need = int(self.extra.get("warmup", 0))
        if need <= 1:
            return self.start_row
        have = [int(self.rows[s][need - 1]) if len(self.rows[s]) >= need else self.n_steps
                for s in self.symbols if len(self.rows[s])]
        return max([self.start_row, *have])

    def per_symbol(self, values: dict[str, np.ndarray], fill: Any) -> np.ndarray:
        """Per-symbol arrays (one value per own bar) as steps x symbols, carried forward between bars."""
        if self.aligned:
            return np.column_stack([np.asarray(values[s]) for s in self.symbols])
        first = next(iter(values.values()))
        out = np.full((self.n_steps, len(self.symbols)), fill, dtype=np.asarray(first).dtype)
        steps = np.arange(self.n_steps)
        for j, sym in enumerate(self.symbols):
            at = np.searchsorted(self.rows[sym], steps, "right") - 1
            ok = at >= 0
            out[ok, j] = np.asarray(values[sym])[at[ok]]
        return out

    @property
    def aligned(self) -> bool:
        """Whether every symbol has a bar at every step (the common case: one calendar, one history)."""
        return bool(self.extra.get("aligned", False))


def _clock(ends: list[np.ndarray]) -> np.ndarray:
    """The sorted union of the symbols' bar ends (the first one's when they all share it)."""
    head = ends[0]
    if all(len(e) == len(head) for e in ends) and all(np.array_equal(e, head) for e in ends[1:]):
        return np.asarray(head)
    return np.unique(np.concatenate(ends))


def _extra_fields(bars: dict[str, dict[str, np.ndarray]], names: list[str]) -> tuple[str, ...]:
    """Numeric columns beyond the canonical bar schema (``prepare``'s features, ``outlier``, ``filled``),
    as served: they are not price-adjusted by the portal. NaN for a symbol that lacks one."""
    from ..schema import BAR_SCHEMA

    found: dict[str, None] = {}
    for sym in names:
        for k, a in bars[sym].items():
            if k not in BAR_SCHEMA and np.asarray(a).dtype.kind in "biuf":
                found[k] = None
    return tuple(found)


def vector_data(market: Any, warmup: int = 0) -> VectorData:
    """``VectorData`` of a ``MarketData`` (``optimization.data``) for a strategy with ``warmup`` bars.

    Each symbol's bars start where the event engine's would for that warm-up, so that recursive
    indicators see the same history in both engines.
    """
    names = list(market.symbols)
    begin, last, first = {}, {}, {}
    since = market.warmup_start(warmup)
    for sym in names:
        lo, hi = market.span(sym)
        if hi <= lo:
            raise NoDataError(f"no {market.frequency} bars for {sym} in the range")
        begin[sym] = min(int(np.searchsorted(market.bars[sym]["ts"], since, "left")), lo)
        last[sym], first[sym] = hi, lo
    ends = [market.bars[s]["ts_end"][begin[s]:last[s]] for s in names]
    clock = _clock(ends)
    aligned = all(len(e) == len(clock) for e in ends)
    start_row = int(min(np.searchsorted(clock, market.bars[s]["ts_end"][first[s]]) for s in names))
    series, raw, rows = {}, {}, {}
    keys = ("ts", "ts_end", *_FIELDS)
    extras = _extra_fields(market.bars, names)
    steps = np.arange(len(clock))
    for sym in names:
        b, e = begin[sym], last[sym]
        src = market.prices(sym)
        series[sym] = {k: np.asarray(src[k][b:e]) for k in keys}
        own = market.bars[sym]
        series[sym].update({k: np.asarray(own[k][b:e], dtype=np.float64) if k in own
                            else np.full(e - b, np.nan) for k in extras})
        raw[sym] = {k: np.asarray(own[k][b:e]) for k in keys}
        rows[sym] = steps if aligned else np.searchsorted(clock, series[sym]["ts_end"])
        first[sym] -= b
    every = (*_FIELDS, *extras)
    if aligned:
        fields = {f: np.column_stack([series[s][f] for s in names]).astype(np.float64) for f in every}
    else:
        fields = {f: np.full((len(clock), len(names)), np.nan) for f in every}
        for j, sym in enumerate(names):
            for f in every:
                fields[f][rows[sym], j] = series[sym][f]
    return VectorData(names, clock, start_row, fields, series, rows, raw, first, market.actions,
                      market.periods_per_year, market.frequency, market.start, market.end,
                      market.calendar, extra={"aligned": aligned, "warmup": int(warmup)})


@dataclass
class Decisions:
    """What the kernel acts on: target weights (NaN: no order) or signals with a weight per entry."""

    mode: int
    targets: np.ndarray | None = None
    signals: dict[str, np.ndarray] = field(default_factory=dict)
    size: np.ndarray | None = None


@dataclass
class PortfolioRun:
    """The kernel's output over the steps of ``[start, end)``: equity, exposure, turnover, fills and
    refused orders (``_portfolio_kernel`` records; empty when run without ``fills``)."""

    equity: np.ndarray
    exposed: np.ndarray
    traded: np.ndarray
    fills: np.ndarray
    open: np.ndarray
    close: np.ndarray
    refusals: np.ndarray


def kernel_params(options: TradingOptions) -> np.ndarray:
    """The kernel's parameter row of ``options`` (see ``vector.options.unsupported`` first;
    ``fractional="auto"`` resolved with ``TradingOptions.for_symbols``)."""
    from ..costs import Commission

    if not isinstance(options.fractional, bool):
        raise ConfigError("the portfolio kernel takes fractional as true or false: resolve "
                          "fractional='auto' with TradingOptions.for_symbols first")
    comm = options.commission
    rate, fixed = (comm.percent, comm.per_order) if isinstance(comm, Commission) else (float(comm), 0.0)
    p = np.zeros(pk.N_PARAMS)
    p[pk.P_CASH], p[pk.P_RATE], p[pk.P_FIXED] = options.cash, rate, fixed
    p[pk.P_SLIP] = options.slippage_bps
    p[pk.P_FRACTIONAL] = float(bool(options.fractional))
    p[pk.P_FILL_CLOSE] = float(options.fill == "close")
    p[pk.P_BUDGET] = options.budget_scale
    p[pk.P_REENTER] = float(options.repeat_signals == "reenter")
    return p


def _raw_prices(data: VectorData) -> tuple[np.ndarray, np.ndarray]:
    """Raw opens and closes, steps of the run x symbols (NaN where a symbol has no bar)."""
    s0 = data.start_row
    if data.aligned:
        return tuple(np.ascontiguousarray(np.column_stack([data.raw[s][f][s0:] for s in data.symbols]),
                                          dtype=np.float64) for f in ("open", "close"))  # type: ignore[return-value]
    n = data.n_steps - s0
    o = np.full((n, len(data.symbols)), np.nan)
    c = np.full((n, len(data.symbols)), np.nan)
    for j, sym in enumerate(data.symbols):
        inside = data.rows[sym] >= s0
        at = data.rows[sym][inside] - s0
        o[at, j] = data.raw[sym]["open"][inside]
        c[at, j] = data.raw[sym]["close"][inside]
    return o, c


def action_arrays(data: VectorData) -> tuple[np.ndarray, ...]:
    """Splits and dividends with ``start < ex-date <= end`` as (step, symbol, kind, value), by ex-date."""
    acts = data.actions
    ts_col = acts["ts"].cast(pl.Int64).to_numpy() if acts.height else np.zeros(0, np.int64)
    keep = (ts_col > data.start) & (ts_col <= data.end) if acts.height else np.zeros(0, np.bool_)
    if not keep.any():
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, np.zeros(0)
    acts = acts.filter(pl.Series(keep)).with_columns(pl.col("ts").cast(pl.Int64))
    rows = sorted(zip(acts["ts"], acts["symbol"], acts["action"], acts["value"], strict=True))
    index = {s: j for j, s in enumerate(data.symbols)}
    rows = place_actions([r for r in rows if r[1] in index and r[2] in ("split", "dividend")],
                         get_calendar(data.calendar), Timeframe.parse(data.frequency))
    clock = data.ts[data.start_row:]
    step = np.searchsorted(clock, np.array([r[0] for r in rows], dtype=np.int64), "left").astype(np.int64)
    sym = np.array([index[r[1]] for r in rows], dtype=np.int64)
    kinds = {"split": pk.ACT_SPLIT, "dividend": pk.ACT_DIVIDEND, "dividend_in": pk.ACT_DIVIDEND_IN}
    kind = np.array([kinds[r[2]] for r in rows], dtype=np.int64)
    return step, sym, kind, np.array([float(r[3]) for r in rows])


def run(data: VectorData, decisions: Decisions, options: TradingOptions, *,
        fills: bool = True) -> PortfolioRun:
    """Run the account over the steps of ``[start, end)`` (``_portfolio_kernel.run_portfolio``)."""
    o, c = _raw_prices(data)
    n, n_sym = c.shape
    s0 = data.start_row
    idle = data.ready_row - s0  # steps before every symbol has its warm-up: no decision, as on_bar
    no_bool = np.zeros((1, n_sym), dtype=np.bool_)
    if decisions.mode == pk.MODE_TARGETS:
        tg = np.array(decisions.targets[s0:], dtype=np.float64)  # type: ignore[index]
        tg[:idle] = np.nan
        if np.isinf(tg).any():
            raise ConfigError("target weights must be finite or NaN (NaN places no order)")
        sig = [no_bool] * 4
        size = np.zeros((1, n_sym))
        bound = int((~np.isnan(tg)).sum())
    else:
        tg = np.zeros((1, n_sym))
        names = ("entries", "exits", "short_entries", "short_exits")
        sig = [np.array(decisions.signals[k][s0:], dtype=np.bool_) if k in decisions.signals
               else np.zeros((n, n_sym), dtype=np.bool_) for k in names]
        for a in sig:
            a[:idle] = False
        sz = decisions.size
        size = np.ascontiguousarray(sz[s0:], dtype=np.float64) if sz is not None and sz.ndim == 2 else \
            np.full((1, n_sym), 1.0 / n_sym if sz is None else float(sz))  # fmt: skip
        bound = int(sig[0].sum() + sig[1].sum() + sig[2].sum() + sig[3].sum())
    records = np.empty((2 * bound + 1 if fills else 0, pk.N_FILL_FIELDS))
    refusals = np.empty((bound + 1 if fills else 0, pk.N_REFUSAL_FIELDS))
    equity, exposed, traded = np.empty(n), np.zeros(n, dtype=np.bool_), np.zeros(n)
    count, refused = pk.run_portfolio(o, c, decisions.mode, tg, *sig, size, *action_arrays(data),  # type: ignore[call-arg]
                                      kernel_params(options), equity, exposed, traded, records, refusals)
    if fills:
        records, refusals = records[:count], refusals[:refused]
    return PortfolioRun(equity, exposed, traded, records, o, c, refusals)


def run_metrics(data: VectorData, out: PortfolioRun) -> dict[str, float]:
    """The ``backtape.analytics`` metrics of a run, its trades from ``fifo_trades`` (no frames)."""
    from ..analytics import compute_metrics

    step, sym, kind, value = action_arrays(data)
    pnl, size, entry, open_pnl = pk.fifo_trades(out.fills, out.fills.shape[0], step, sym, kind, value,
                                                len(data.symbols), _last_closes(out.close))
    trades = pl.DataFrame({"pnl": pnl, "size": size, "entry_price": entry})
    return compute_metrics(out.equity, trades, periods_per_year=data.periods_per_year,
                           positions=out.exposed, traded_value=out.traded,
                           open_trades=pl.DataFrame({"pnl": open_pnl}))


def _last_closes(close: np.ndarray) -> np.ndarray:
    """Each symbol's last raw close of the run (steps x symbols, NaN where a symbol had no bar)."""
    seen = ~np.isnan(close)
    last = close.shape[0] - 1 - np.argmax(seen[::-1], axis=0)
    return np.where(seen.any(axis=0), close[last, np.arange(close.shape[1])], np.nan)

