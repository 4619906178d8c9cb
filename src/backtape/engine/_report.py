"""The ``BacktestResult`` of a finished run: analytics, trade/order/fill tables and the data fingerprint."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from .._time import format_ns, to_ns
from ..errors import warn_once
from .orders import Fill
from .result import BacktestResult

if TYPE_CHECKING:
    from .engine import _Run


def build_result(run: _Run, duration: float) -> BacktestResult:
    """The ``BacktestResult`` of a finished run: metrics, trades, orders, fills, equity, fingerprint."""
    from ..analytics import (
        buy_and_hold_return,
        compute_metrics,
        drawdown,
        drawdown_time,
        periods_per_year,
        trade_durations,
    )
    from ..peer_metrics import apply_statistics

    pf = run.portfolio
    ts = pl.Series("ts", run.clock).cast(_UTC)
    eq = pl.DataFrame({"ts": ts, "equity": run.equity, "drawdown": drawdown(run.equity)})
    trades = pf.trades()
    still_open = pf.open_trades(run.now)
    ppy = periods_per_year(calendar=run.portal.calendar.name, frequency=run.frequency)
    metrics: dict[str, Any] = compute_metrics(run.equity, trades, periods_per_year=ppy, positions=run.exposed,
                                              traded_value=run.traded, open_trades=still_open)
    metrics["buy_hold_return"] = buy_and_hold_return([_held_value(run, j) for j in range(len(run.bars))])
    metrics.update(trade_durations(trades))
    metrics["max_drawdown_time"] = drawdown_time(run.clock, run.equity)
    late = None
    if run.options.fill == "close":  # a finalize fill is booked at once, as backtesting.py's last re-run
        booked = [f for f in run.broker.fills if f.tag != "finalize"]
        late = (np.array([f.ts for f in booked], dtype=np.int64),
                np.array([f.commission for f in booked], dtype=np.float64))
    apply_statistics(metrics, run.options.statistics, ts=run.clock, equity=run.equity, trades=trades,
                     calendar=run.portal.calendar.name, frequency=run.frequency, close_fills=late)
    metrics["commission"] = float(pf.commissions)
    metrics["slippage"] = float(pf.slippage)
    metrics["orders_refused"] = sum(1 for r in run.broker.rejections if r["action"] == "reject")
    orders = pl.DataFrame([o.as_row() for o in run.broker.orders], schema=_ORDER_SCHEMA, orient="row")
    fills = pl.DataFrame([_fill_row(f) for f in run.broker.fills], schema=_FILL_SCHEMA, orient="row")
    return BacktestResult(
        strategy=run.strategy.name, parameters=dict(run.strategy.parameters), symbols=run.symbols,
        start=run.start, end=run.end, frequency=run.frequency, source=run.source.name,
        cash=pf.starting_cash, metrics=metrics, trades=trades,
        orders=orders.with_columns(pl.col("created_at").cast(_UTC)),
        fills=fills.with_columns(pl.col("ts").cast(_UTC)), equity=eq,
        open_trades=still_open, rejections=_rejections(run.broker.rejections),
        records=records_frame(run.clock, run._records), duration_s=duration,
        fingerprint=_fingerprint(run), extra=_prices(run),
    )


_UTC = pl.Datetime("ns", "UTC")


def records_frame(clock: Any, records: dict[str, dict[int, Any]]) -> pl.DataFrame:
    """``ctx.record`` values, wide: one row per clock step (``ts``), one column per recorded name
    (null at steps that did not record it). No names: an empty frame with just ``ts``."""
    if not records:
        return pl.DataFrame(schema={"ts": _UTC})
    n = len(clock)
    columns: list[pl.Series] = [pl.Series("ts", clock).cast(pl.Int64).cast(_UTC)]
    for name, by_step in records.items():
        values: list[Any] = [None] * n
        for step, value in by_step.items():
            values[step] = value
        columns.append(pl.Series(name, values, strict=False))
    return pl.DataFrame(columns)


def _held_value(run: _Run, j: int) -> np.ndarray:
    """One share of symbol ``j`` bought at the run's first close and held (``analytics.held_value``)."""
    from ..analytics import held_value

    held, sym = run.held[j], run.symbols[j]
    if held is None:
        return np.zeros(0)
    return held_value(held[0], held[2], held[1],
                      ((ts, action, value) for ts, s, action, value in run._all_actions
                       if s == sym and run.start < ts <= run.end))  # as the source gave them


def warn_refused(result: BacktestResult) -> None:
    """One line when orders were refused (they are in ``result.rejections``, never "filled" at 0),
    and one when orders were filled smaller than asked (resized by the leverage or risk limits)."""
    for action, what in (("reject", "refused"), ("resize", "filled smaller than asked")):
        rows = result.rejections.filter(pl.col("action") == action)
        if rows.height:
            first = rows.row(0, named=True)
            reason = first["reason"] or "by the risk limits"
            warn_once(f"{rows.height:,} order(s) of {result.strategy} {what}, first at "
                      f"{format_ns(to_ns(first['ts']))}: {reason}; see result.rejections")


def warn_warmup(strategy: str, need: int, frequency: str, first_ns: int | None) -> None:
    """One line when the run starts before ``need`` bars of history exist: the first step the
    strategy is asked to decide at (``first_ns``), or that it never is."""
    what = f"{strategy} needs {need} bars of {frequency} history; the data"
    if first_ns is not None:
        warn_once(f"{what} has them from {format_ns(first_ns)} on, so on_bar is first called then")
    else:
        warn_once(f"{what} never has them in the run, so on_bar is never called: start earlier or "
                  "shorten the look-back")


def _rejections(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """The broker's rejections with their times as UTC datetimes."""
    frame = pl.DataFrame(rows, schema=_REJECTION_SCHEMA, orient="row")
    return frame.with_columns(pl.col("ts").cast(_UTC))


_REJECTION_SCHEMA = {"ts": pl.Int64, "order_id": pl.Int64, "symbol": pl.String, "action": pl.String,
                     "requested": pl.Float64, "approved": pl.Float64, "reason": pl.String}


def _prices(run: _Run) -> dict[str, pl.DataFrame]:
    """``{"prices": ...}``: the raw bars the run traded (``symbol``, ``ts`` = bar end, OHLC) for its
    report, stored with the run so a stored run's report needs no data source; empty without bars.
    A streamed run logged them window by window (``windows.PriceLog``)."""
    if run.prices is not None:
        logged = run.prices.frame(run)
        return {"prices": logged} if logged is not None else {}
    parts = []
    for sym in () if run.tick_only else run.symbols:
        bars = run.portal.bars(sym, run.frequency)
        lo, hi = bars.ts_end.searchsorted(run.start, "left"), bars.ts_end.searchsorted(run.end, "right")
        cols: dict[str, np.ndarray] = {f: bars.fields[f][lo:hi] for f in ("open", "high", "low", "close")
                                       if f in bars.fields}
        cols["adj_close"] = _adjusted_close(run, sym, bars.ts_end[lo:hi])
        parts.append(pl.DataFrame({"symbol": pl.Series([sym]).new_from_index(0, int(hi - lo)),
                                   "ts": pl.Series(bars.ts_end[lo:hi]).cast(pl.Datetime("ns", "UTC")),
                                   **cols}))
    return {"prices": pl.concat(parts, how="diagonal")} if parts else {}


def _adjusted_close(run: _Run, sym: str, ends: np.ndarray) -> np.ndarray:
    """Closes adjusted for the corporate actions seen by the end of the run (for buy and hold)."""
    if not ends.size:
        return np.zeros(0)
    adj = run.portal.get_bars(sym, 0, run.portal.clock_ns, run.frequency, fields=["close"])
    i = np.clip(np.searchsorted(adj["ts_end"], ends), 0, max(adj["ts_end"].size - 1, 0))
    ok = adj["ts_end"].size > 0 and np.array_equal(adj["ts_end"][i], ends)
    return adj["close"][i] if ok else np.full(ends.size, np.nan)


def _fingerprint(run: _Run) -> dict[str, Any]:
    """What data the run saw: source and its identity, symbols, range, upstream fetches, cache
    coverage (when the source is a ``CachedDataSource``) and the package version."""
    from .. import __version__

    fetches = run.portal.fetch_log.with_columns(pl.col("start", "end").dt.to_string())
    return {"source": run.source.name, "identity": run.source.cache_identity(),
            "symbols": run.symbols, "start": format_ns(run.start), "end": format_ns(run.end),
            "frequency": run.frequency, "fetches": fetches.to_dicts(), "cache": _cache_coverage(run),
            "package_version": __version__}


def _cache_coverage(run: _Run) -> dict[str, Any] | None:
    """Coverage spans the cache held for each symbol after the run (``None`` without a cache)."""
    from ..cache import CachedDataSource

    src = run.source
    if not isinstance(src, CachedDataSource):
        return None
    freq = str(run.portal.base_frequency)
    spans = {s: [(format_ns(sp.start), format_ns(sp.end)) for sp in src.coverage(s, frequency=freq)]
             for s in run.symbols}
    return {"frequency": freq, "spans": spans, "stats": src.stats.as_dict()}


_ORDER_SCHEMA = {"id": pl.Int64, "symbol": pl.String, "type": pl.String, "quantity": pl.Float64,
                 "filled": pl.Float64, "limit_price": pl.Float64, "stop_price": pl.Float64, "tif": pl.String,
                 "status": pl.String, "created_at": pl.Int64, "parent_id": pl.Int64, "tag": pl.String,
                 "reason": pl.String}
_FILL_SCHEMA = {"order_id": pl.Int64, "symbol": pl.String, "ts": pl.Int64, "quantity": pl.Float64,
                "price": pl.Float64, "reference_price": pl.Float64, "commission": pl.Float64,
                "spread": pl.Float64, "slippage": pl.Float64, "impact": pl.Float64, "tag": pl.String}


def _fill_row(f: Fill) -> tuple:
    return (f.order_id, f.symbol, f.ts, f.quantity, f.price, f.reference_price, f.commission, f.spread,
            f.slippage, f.impact, f.tag)
