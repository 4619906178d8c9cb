"""``VectorEngine``: ``run_backtest(..., engine="vector")`` for any strategy with a vector form.

It loads the bars the event engine would (same warm-up, same adjustment), asks the strategy's
vector form for its decisions (``backtape.vector.form``), runs the one-account kernel on raw prices
with splits and dividends (``backtape.vector.portfolio``) and builds the same ``BacktestResult``:
fills from the kernel, FIFO trades (with MAE/MFE) by replaying them through the event engine's
``Portfolio``, metrics from ``backtape.analytics``. Orders are one filled market order per fill, and
one rejected order per refusal (worded as the event engine's broker words it, ``fills.target_refusal``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from .._time import TimeLike, check_range
from ..errors import ConfigError
from ..options import TradingOptions, trading_options
from ..sources.base import DataSource
from . import _portfolio_kernel as pk
from .form import decisions, warmup_of
from .portfolio import PortfolioRun, VectorData, action_arrays, run, vector_data


def check_options(options: TradingOptions) -> None:
    """Raise ``ConfigError`` naming the options only the event engine models."""
    from .options import unsupported

    missing = unsupported(options)
    if missing:
        raise ConfigError(f"the vector engine cannot model {', '.join(missing)}; use engine='event'")


class VectorEngine:
    """The vectorized engine behind ``ENGINES["vector"]`` (same ``run`` as ``BacktestEngine``)."""

    name = "vector"

    def __init__(self, options: TradingOptions | None = None, *, source: DataSource | str = "sample",
                 **overrides: Any) -> None:
        self.source = source
        self.options = trading_options(options, **overrides)

    def run(self, strategy: Any, symbols: Sequence[str] | str, start: TimeLike, end: TimeLike,
            frequency: str = "1d", *, source: DataSource | str | None = None,
            options: TradingOptions | None = None, progress: Callable[[int, int], None] | None = None,
            **overrides: Any) -> Any:
        """Backtest ``strategy`` on ``symbols`` over ``[start, end)`` (see the module doc)."""
        from ..engine._report import warn_refused
        from ..engine.engine import one_calendar, resolve_source
        from ..optimization.data import load_market_data

        names = [s.strip() for s in symbols.split(",")] if isinstance(symbols, str) else list(symbols)
        s_ns, e_ns = check_range(start, end)
        src = resolve_source(source if source is not None else self.source)
        opts = (options or self.options).replace(**overrides)
        calendars = {sym: src.calendar_of(sym) for sym in names}
        one_calendar(calendars)
        opts = opts.for_symbols(calendars, src.instruments(names))
        check_options(opts)
        t0 = time.perf_counter()
        warmup = warmup_of(strategy)
        market = load_market_data(names, s_ns, e_ns, frequency, src, warmup=warmup,
                                  adjustment=opts.adjustment, dividends=opts.dividends)
        data = vector_data(market, warmup)
        say_warmup(strategy, data, warmup)
        out = run(data, decisions(strategy, data), opts)
        if progress is not None:
            progress(data.n_steps - data.start_row, data.n_steps - data.start_row)
        result = build_result(strategy, data, out, opts, src.name, time.perf_counter() - t0,
                              calendar=market.calendar)
        warn_refused(result)
        return result


def say_warmup(strategy: Any, data: VectorData, warmup: int) -> None:
    """The event engine's warm-up line when decisions wait for ``data.ready_row`` (none otherwise)."""
    from ..engine._report import warn_warmup

    if data.ready_row > data.start_row:
        warn_warmup(getattr(strategy, "name", type(strategy).__name__), warmup, data.frequency,
                    int(data.ts[data.ready_row]) if data.ready_row < data.n_steps else None)


def build_result(strategy: Any, data: VectorData, out: PortfolioRun, options: TradingOptions,
                 source: str, duration: float, *, calendar: str = "XNYS") -> Any:
    """The ``BacktestResult`` of a kernel run (module doc); ``calendar`` dates it for
    ``statistics="backtesting.py"`` (``backtape.peer_metrics``)."""
    from ..analytics import (
        buy_and_hold_return,
        compute_metrics,
        drawdown,
        drawdown_time,
        held_value,
        trade_durations,
    )
    from ..engine._report import _FILL_SCHEMA, _ORDER_SCHEMA, _rejections
    from ..engine.result import BacktestResult
    from ..peer_metrics import apply_statistics

    clock = data.ts[data.start_row:]
    fills, refused, pf = replay(data, out, options)
    utc = pl.Datetime("ns", "UTC")
    ts = pl.Series("ts", clock).cast(utc)
    eq = pl.DataFrame({"ts": ts, "equity": out.equity, "drawdown": drawdown(out.equity)})
    trades = pf.trades()
    still_open = pf.open_trades(int(clock[-1]))
    metrics: dict[str, Any] = compute_metrics(out.equity, trades, periods_per_year=data.periods_per_year,
                                              positions=out.exposed, traded_value=out.traded,
                                              open_trades=still_open)
    metrics["buy_hold_return"] = buy_and_hold_return([_held(data, sym, held_value) for sym in data.symbols])
    metrics.update(trade_durations(trades))
    metrics["max_drawdown_time"] = drawdown_time(clock, out.equity)
    late = None
    if options.fill == "close":
        late = (np.array([f.ts for f in fills], dtype=np.int64), np.array([f.commission for f in fills]))
    apply_statistics(metrics, options.statistics, ts=clock, equity=out.equity, trades=trades,
                     calendar=calendar, frequency=data.frequency, close_fills=late)
    metrics["commission"] = float(pf.commissions)
    metrics["slippage"] = float(pf.slippage)
    metrics["orders_refused"] = len(refused)
    fill_rows = [(f.order_id, f.symbol, f.ts, f.quantity, f.price, f.reference_price, f.commission, f.spread,
                  f.slippage, f.impact, f.tag) for f in fills]
    order_rows = [(f.order_id, f.symbol, "market", f.quantity, f.quantity, None, None, "gtc", "filled",
                   f.ts, None, "", None) for f in fills]
    order_rows += [(r["order_id"], r["symbol"], "market", r["requested"], 0.0, None, None, "gtc", "rejected",
                    r["ts"], None, "", r["reason"]) for r in refused]
    order_rows.sort(key=lambda row: row[0])
    name = getattr(strategy, "name", type(strategy).__name__)
    orders = pl.DataFrame(order_rows, schema=_ORDER_SCHEMA, orient="row")
    fill_frame = pl.DataFrame(fill_rows, schema=_FILL_SCHEMA, orient="row")
    return BacktestResult(
        strategy=name, parameters=dict(getattr(strategy, "parameters", {})), symbols=list(data.symbols),
        start=data.start, end=data.end, frequency=data.frequency, source=source, cash=float(options.cash),
        metrics=metrics, trades=trades,
        orders=orders.with_columns(pl.col("created_at").cast(utc)),
        fills=fill_frame.with_columns(pl.col("ts").cast(utc)), equity=eq, open_trades=still_open,
        rejections=_rejections(refused), records=pl.DataFrame(schema={"ts": utc}),
        duration_s=duration, extra=_prices(data),
        fingerprint={"engine": "vector", "source": source, "symbols": list(data.symbols),
                     "frequency": data.frequency},
    )


def _prices(data: VectorData) -> dict[str, pl.DataFrame]:
    """``{"prices": ...}`` as the event engine keeps them for the report: raw OHLC of the run's bars
    (``ts`` = bar end) and ``adj_close``, the close adjusted as of the end."""
    parts = []
    for sym in data.symbols:
        raw, adj, first = data.raw[sym], data.series[sym], data.first[sym]
        n = len(raw["close"]) - first
        parts.append(pl.DataFrame({
            "symbol": pl.Series([sym]).new_from_index(0, n),
            "ts": pl.Series(raw["ts_end"][first:]).cast(pl.Datetime("ns", "UTC")),
            **{f: raw[f][first:] for f in ("open", "high", "low", "close")},
            "adj_close": adj["close"][first:],
        }))
    return {"prices": pl.concat(parts)} if parts else {}


def _held(data: VectorData, sym: str, held_value: Callable[..., np.ndarray]) -> np.ndarray:
    """One share of ``sym`` bought at the run's first close and held, as the event engine's report."""
    raw, first = data.raw[sym], data.first[sym]
    last = len(raw["close"]) - 1
    if last < first:
        return np.zeros(0)
    acts = data.actions.filter(pl.col("symbol") == sym)
    rows = zip(acts["ts"].cast(pl.Int64), acts["action"], acts["value"], strict=True) if acts.height else ()
    return held_value(raw["close"][first], raw["close"][last], int(raw["ts_end"][first]),
                      ((int(t), str(a), float(v)) for t, a, v in rows if t <= data.end))


def replay(data: VectorData, out: PortfolioRun,
           options: TradingOptions) -> tuple[list[Any], list[dict[str, Any]], Any]:
    """The kernel's fills as ``Fill`` objects, booked with the splits into an event-engine ``Portfolio``,
    and its refusals as the broker's ``rejections`` rows; order ids count both in the order they happen.

    Lots see the same bars as in the event engine (highs and lows folded in before each fill and
    split, and at the end), so trades and their excursions match.
    """
    from ..engine.orders import Fill
    from ..engine.portfolio import Portfolio

    s0, syms = data.start_row, data.symbols
    at_close = options.fill == "close"
    pf = Portfolio(None, options.cash)
    since = [data.first[s] for s in syms]
    step_rows = [data.rows[s] for s in syms]

    aligned = data.aligned

    def last_row(j: int, step: int) -> int:
        """Row of symbol ``j``'s newest bar ending at or before run step ``step``."""
        if aligned:
            return step + s0
        return int(np.searchsorted(step_rows[j], step + s0, "right")) - 1

    def flush(j: int, upto: int) -> None:
        lo = since[j]
        since[j] = upto + 1
        sym = syms[j]
        if upto >= lo and pf._lots.get(sym):
            raw = data.raw[sym]
            pf.mark_extremes(sym, float(raw["high"][lo:upto + 1].max()), float(raw["low"][lo:upto + 1].min()))

    slip = options.slippage_bps
    act_step, act_sym, act_kind, act_value = action_arrays(data)
    # (step, kind, position in the kernel's order, index): splits first, then fills and refusals as
    # the kernel made them (a refusal after the fills counted before it)
    events = sorted([(int(s), 0, 0, 0, a) for a, s in enumerate(act_step) if act_kind[a] == pk.ACT_SPLIT]
                    + [(int(out.fills[f, pk.F_STEP]), 1, 2 * f + 1, 0, f) for f in range(out.fills.shape[0])]
                    + [(int(out.refusals[r, pk.R_STEP]), 1, 2 * int(out.refusals[r, pk.R_AFTER]), r, -1 - r)
                       for r in range(out.refusals.shape[0])])
    fills: list[Fill] = []
    refused: list[dict[str, Any]] = []
    for step, kind, _, _, idx in events:
        if kind == 0:
            j, value = int(act_sym[idx]), float(act_value[idx])
            if not (value > 0 and value != 1.0):
                continue
            flush(j, last_row(j, step - 1))
            pf.split(syms[j], value)
            continue
        j = int(out.fills[idx, pk.F_SYM] if idx >= 0 else out.refusals[-1 - idx, pk.R_SYM])
        sym, raw = syms[j], data.raw[syms[j]]
        r = last_row(j, step)
        ts = int(raw["ts_end"][r] if at_close else raw["ts"][r])
        if idx < 0:
            refused.append(_refusal(out.refusals[-1 - idx], sym, ts, len(fills) + len(refused) + 1, options))
            continue
        rec = out.fills[idx]
        flush(j, r if at_close else r - 1)
        qty, ref = float(rec[pk.F_QTY]), float(rec[pk.F_REF])
        fill = Fill(len(fills) + len(refused) + 1, sym, ts, qty, float(rec[pk.F_PRICE]), ref,
                    float(rec[pk.F_COMM]), 0.0, abs(qty) * ref * 1e-4 * slip, 0.0)
        pf.apply_fill(fill, float(raw["high"][r]), float(raw["low"][r]))
        fills.append(fill)
    n = out.close.shape[0]  # steps of the run
    for j, sym in enumerate(syms):
        r = last_row(j, n - 1)
        flush(j, r)
        if r >= 0:
            pf.prices[sym] = float(data.raw[sym]["close"][r])
    return fills, refused, pf


def _refusal(rec: np.ndarray, symbol: str, ts: int, order_id: int, options: TradingOptions) -> dict[str, Any]:
    """A kernel refusal record as a row of the broker's ``rejections``."""
    from ..fills import target_refusal, wanted_units

    wanted = float(rec[pk.R_WANTED])
    target, equity, room, price = (float(rec[f]) for f in (pk.R_TARGET, pk.R_EQUITY, pk.R_ROOM, pk.R_PRICE))
    reason = target_refusal(symbol, target, abs(wanted), equity, room, price,
                            fractional=bool(options.fractional))
    units = wanted_units(abs(wanted), equity, target, price, options.budget_scale)
    return {"ts": ts, "order_id": order_id, "symbol": symbol, "action": "reject",
            "requested": units if target > 0 else -units, "approved": 0.0, "reason": reason}

