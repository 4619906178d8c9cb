"""Metrics under a peer's definitions: ``TradingOptions(statistics="backtesting.py")``.

backtape's own definitions (``backtape.analytics``) are arithmetic and per bar. backtesting.py
(``backtesting/_stats.py``, 0.6) defines some figures differently; with ``statistics="backtesting.py"``
both engines replace these metrics by its values (docs/metrics.md lists the formulas):

=========================  ======================================================================
metric                     backtesting.py's definition
=========================  ======================================================================
``volatility``             geometric: ``sqrt((var(r) + (1+g)^2)^P - (1+g)^(2P))``, ``r`` the daily
                           returns of the equity (last equity per calendar day), ``g`` their
                           geometric mean, ``P`` 252 (365 with weekend days, 52 for weekly bars)
``sharpe``                 ``((1+g)^P - 1) / volatility``
``sortino``                ``((1+g)^P - 1) / (sqrt(mean(min(r, 0)^2)) * sqrt(P))``
``calmar``                 ``((1+g)^P - 1) / max_drawdown``
``cagr``                   ``(E_last / E_first) ** (1 / years) - 1``, years of calendar time / 365.25
``max_drawdown_time``      calendar time (seconds of exchange-local wall clock) from a peak until
                           equity regains it (or the last bar); ``max_drawdown_duration`` stays
                           in bars
``profit_factor``          sum of winning trade returns / -sum of losing trade returns
``avg_trade``              geometric mean of the closed trades' returns
``exposure``               bars from each closed trade's entry bar through its exit bar / bars
=========================  ======================================================================

A trade's return is ``pnl / (|size| * entry_price)`` in both (backtesting.py's ``ReturnPct``). With
``fill="close"`` (its ``trade_on_close=True``) backtesting.py's equity curve books a fill's commission
one bar late; the curve these figures are computed from does the same (``booked_late``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

DAY_NS = 86_400 * 10**9


def wall_times(ts: np.ndarray, calendar: str, daily: bool) -> np.ndarray:
    """Exchange-local wall-clock times (ns, as naive UTC) of bar ends ``ts``: the session's date for
    daily bars (a date index, as backtesting.py's data has), the date plus the time since the open
    otherwise (so daylight-saving changes do not stretch durations)."""
    from .calendars import get_calendar

    cal = get_calendar(calendar)
    t = np.asarray(ts, dtype=np.int64)
    i = np.clip(np.searchsorted(cal.closes, t, "left"), 0, cal.closes.size - 1)
    labels = cal.labels[i].astype(np.int64)
    return labels if daily else labels + (t - cal.opens[i].astype(np.int64))


def geometric_mean(returns: np.ndarray) -> float:
    """``exp(mean(log(1 + r))) - 1``; 0 when a return is -100% or worse (as backtesting.py)."""
    growth = np.nan_to_num(np.asarray(returns, dtype=np.float64)) + 1.0
    if np.any(growth <= 0):
        return 0.0
    return float(np.exp(np.log(growth).sum() / (growth.size or np.nan)) - 1.0)


def _daily_returns(wall: np.ndarray, equity: np.ndarray, weekly: bool) -> tuple[np.ndarray, float]:
    """Returns of the last equity of each calendar day (each bar for weekly bars) and ``P``."""
    if weekly:
        r = equity[1:] / equity[:-1] - 1.0
        return r, 52.0
    day = wall // DAY_NS
    last = np.r_[day[1:] != day[:-1], True]
    eq = equity[last]
    r = eq[1:] / eq[:-1] - 1.0
    weekday = (day[last] + 3) % 7  # 1970-01-01 was a Thursday: Monday = 0
    weekends = float(np.mean(weekday >= 5)) if weekday.size else 0.0
    return r[np.isfinite(r)], 365.0 if weekends > 2 / 7 * 0.6 else 252.0


def _max_drawdown_seconds(wall: np.ndarray, equity: np.ndarray) -> float:
    """Longest peak-to-recovery (or peak-to-end) span of wall-clock time, seconds; NaN without one."""
    dd = 1.0 - equity / np.maximum.accumulate(equity)
    iloc = np.unique(np.r_[np.flatnonzero(dd == 0), dd.size - 1])
    prev, cur = iloc[:-1], iloc[1:]
    keep = cur > prev + 1
    if not keep.any():
        return math.nan
    return float((wall[cur[keep]] - wall[prev[keep]]).max() / 1e9)


def backtesting_py_metrics(ts: np.ndarray, equity: np.ndarray, trades: pl.DataFrame, *, calendar: str,
                           frequency: str, max_drawdown: float) -> dict[str, Any]:
    """The metrics backtesting.py defines differently (module table) of one run's equity and trades.

    ``ts`` are the equity's bar ends (UTC ns), ``trades`` the run's trades table (closed rows are
    used: backtesting.py leaves trades still open out of its statistics).
    """
    from .timeframes import Timeframe

    eq = np.asarray(equity, dtype=np.float64)
    t = np.asarray(ts, dtype=np.int64)
    tf = Timeframe.parse(frequency)
    daily = tf.unit in ("d", "w", "mo", "q", "y")
    wall = wall_times(t, calendar, daily)
    r, periods = _daily_returns(wall, eq, tf.unit == "w")
    g = geometric_mean(r) if r.size else 0.0
    annual = (1.0 + g) ** periods - 1.0
    var = float(np.var(r, ddof=1)) if r.size > 1 else math.nan
    vol = math.sqrt((var + (1.0 + g) ** 2) ** periods - (1.0 + g) ** (2 * periods))
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2))) * math.sqrt(periods) if r.size else math.nan
    years = (wall[-1] - wall[0]) / DAY_NS / 365.25 if eq.size else 0.0
    closed = trades.filter(~pl.col("is_open")) if "is_open" in trades.columns else trades
    rets = (closed["pnl"] / (closed["size"].abs() * closed["entry_price"])).cast(pl.Float64).to_numpy()
    losses = -rets[rets < 0].sum()
    exposed = np.zeros(eq.size, dtype=np.bool_)
    if closed.height:
        entry = np.searchsorted(t, _ns(closed["entry_time"]), "left")
        exit_ = np.searchsorted(t, _ns(closed["exit_time"]), "left")
        for a, b in zip(entry, exit_, strict=True):
            exposed[a:b + 1] = True
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "volatility": vol,
            "sharpe": annual / vol if vol else math.nan,
            "sortino": annual / downside if downside else (math.inf if annual > 0 else math.nan),
            "calmar": annual / max_drawdown if max_drawdown else math.nan,
            "cagr": (eq[-1] / eq[0]) ** (1.0 / years) - 1.0 if years else math.nan,
            "max_drawdown_time": _max_drawdown_seconds(wall, eq),
            "profit_factor": float(rets[rets > 0].sum() / losses) if losses else math.nan,
            "avg_trade": geometric_mean(rets) if rets.size else math.nan,
            "exposure": float(exposed.mean()) if eq.size else math.nan,
        }


def booked_late(ts: np.ndarray, equity: np.ndarray, fill_ts: np.ndarray,
                commission: np.ndarray) -> np.ndarray:
    """``equity`` as backtesting.py's ``trade_on_close`` curve shows it: each fill's commission (fills at
    ``fill_ts``) is left out of the bar it filled at and shows from the next bar on."""
    eq = np.array(equity, dtype=np.float64)
    at = np.searchsorted(np.asarray(ts, dtype=np.int64), np.asarray(fill_ts, dtype=np.int64), "left")
    inside = at < eq.size
    np.add.at(eq, at[inside], np.asarray(commission, dtype=np.float64)[inside])
    return eq


def apply_statistics(metrics: dict[str, Any], statistics: str, *, ts: np.ndarray, equity: np.ndarray,
                     trades: pl.DataFrame, calendar: str, frequency: str,
                     close_fills: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """``metrics`` with the figures of the ``statistics`` definitions (``TradingOptions.statistics``);
    ``close_fills`` (times, commissions) are a ``fill="close"`` run's fills (see ``booked_late``)."""
    if statistics == "backtesting.py" and len(equity) > 1:
        eq = equity if close_fills is None else booked_late(ts, equity, *close_fills)
        max_dd = float(np.max(1.0 - eq / np.maximum.accumulate(eq)))
        metrics.update(backtesting_py_metrics(ts, eq, trades, calendar=calendar, frequency=frequency,
                                              max_drawdown=max_dd))
        metrics["max_drawdown"] = max_dd
    return metrics


def _ns(col: pl.Series) -> np.ndarray:
    if isinstance(col.dtype, pl.Datetime):
        col = col.dt.cast_time_unit("ns")
    return col.cast(pl.Int64).to_numpy()
