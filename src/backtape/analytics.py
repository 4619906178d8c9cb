"""Performance metrics from an equity series and a trades table: one implementation for both engines.

The metrics are computed by a small streaming accumulator (numba): a tuple of per-bar sums updated
by ``acc_bar`` plus an array of per-trade sums. The vectorized engine feeds it bar by bar inside
its simulation loop (so a parameter sweep never keeps an equity array), and
``compute_metrics`` feeds it a finished equity series and trades table (the event engine's path).
Both paths therefore share every formula below.

Definitions (``r_t = E_t / E_{t-1} - 1`` are the per-bar simple returns, ``P`` periods per year):

=========================  =====================================================================
``total_return``           ``E_last / E_first - 1``
``cagr``                   ``(E_last / E_first) ** (P / N) - 1``, ``N`` = number of returns
``volatility``             ``std(r, ddof=1) * sqrt(P)``
``sharpe``                 ``mean(r) / std(r, ddof=1) * sqrt(P)`` (risk-free rate 0)
``sortino``                ``mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(P)``
``max_drawdown``           ``max_t (1 - E_t / max_{s<=t} E_s)``, a positive fraction
``max_drawdown_duration``  longest run of bars from a peak until equity regains it (or the end)
``calmar``                 ``cagr / max_drawdown``
``win_rate``               closed trades with ``pnl > 0`` / closed trades
``profit_factor``          gross profit / gross loss of closed trades (inf without losses)
``expectancy``             mean ``pnl`` per closed trade, in cash
``avg_trade``              mean trade return ``pnl / (|size| * entry_price)``
``exposure``               fraction of bars holding a position at the bar's close
``turnover``               traded notional / mean equity, per year (``* P / bars``)
``trades``                 closed trades plus trades still open at the end
``closed_trades``          number of closed trades
``open_trades``            trades (lots) still open at the last bar, marked at its close
``open_pnl``               P&L of the open trades at the last close, net of their entry commission
``best_trade``             largest closed trade return ``pnl / (|size| * entry_price)``
``worst_trade``            smallest closed trade return
``sqn``                    ``sqrt(n) * mean(pnl) / std(pnl, ddof=1)`` over the ``n`` closed trades
=========================  =====================================================================

``docs/metrics.md`` defines these and the figures computed beside them (buy-and-hold return,
trade durations, drawdown duration in time) with their units.

Annualization follows the calendar and the bar size: ``periods_per_year`` counts the sessions a
calendar holds per year (about 252 for XNYS, 365 for 24/7) times the bars per session (390 one-minute
bars in a regular NYSE session, 1440 on 24/7, one for daily bars, 52 for weekly bars).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import polars as pl
from numba import njit

from .errors import ConfigError

METRIC_NAMES: tuple[str, ...] = (
    "final_equity",
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_duration",
    "win_rate",
    "profit_factor",
    "expectancy",
    "avg_trade",
    "exposure",
    "turnover",
    "trades",
    "closed_trades",
    "open_trades",
    "open_pnl",
    "best_trade",
    "worst_trade",
    "sqn",
)
#: metrics that are whole numbers
INT_METRICS = frozenset({"trades", "closed_trades", "open_trades", "max_drawdown_duration"})
N_METRICS = len(METRIC_NAMES)

# Accumulator slots (a float64 vector so it lives in registers/stack inside numba loops).
_SUM, _SUM2, _SPARE, _DOWN2, _PEAK, _MAXDD, _DDSTART, _DDLEN, _PREV, _FIRST = range(10)
_EXPOSED, _BARS, _NOTIONAL, _EQSUM, _NTR, _NWIN, _GPROF, _GLOSS, _PNLSUM, _RETSUM = range(10, 20)
_NOPEN, _OPENPNL, _PNLSUM2, _BEST, _WORST = range(20, 25)
ACC_SIZE = 25


@njit(cache=True, error_model="numpy")
def acc_new() -> np.ndarray:
    """A fresh metrics accumulator."""
    acc = np.zeros(ACC_SIZE)
    acc[_DDSTART] = -1.0
    acc[_BEST] = -np.inf
    acc[_WORST] = np.inf
    return acc


@njit(cache=True, error_model="numpy")
def bar_state(acc: np.ndarray) -> tuple:
    """The per-bar part of an accumulator as a tuple of floats (kept in registers by loops)."""
    return (
        acc[_SUM], acc[_SUM2], acc[_DOWN2], acc[_PEAK], acc[_MAXDD], acc[_DDSTART],
        acc[_DDLEN], acc[_PREV], acc[_FIRST], acc[_BARS], acc[_EQSUM], acc[_EXPOSED],
    )  # fmt: skip


@njit(cache=True, error_model="numpy")
def store_bar_state(acc: np.ndarray, state: tuple) -> None:
    """Write a ``bar_state`` tuple back into the accumulator (before ``acc_finalize``)."""
    (acc[_SUM], acc[_SUM2], acc[_DOWN2], acc[_PEAK], acc[_MAXDD], acc[_DDSTART],
     acc[_DDLEN], acc[_PREV], acc[_FIRST], acc[_BARS], acc[_EQSUM], acc[_EXPOSED]) = state  # fmt: skip


@njit(cache=True, error_model="numpy")
def acc_bar(state: tuple, equity: float, exposed: bool) -> tuple:
    """Feed the equity at one bar's close and whether a position is held; returns the new state."""
    total, total2, down2, peak, maxdd, ddstart, ddlen, prev, first, bars, eqsum, n_exposed = state
    if bars > 0:
        if equity != prev and prev > 0:
            r = equity / prev - 1.0
            total += r
            total2 += r * r
            neg = min(r, 0.0)  # branch-free: the sign of r is a coin flip
            down2 += neg * neg
    else:
        first = equity
        peak = equity
    if equity >= peak:
        # A drawdown's length is known when it ends (here) or at the end (acc_finalize).
        ddlen = max(ddlen, bars - 1.0 - ddstart)
        peak = equity
        ddstart = bars
    elif equity < peak * (1.0 - maxdd):
        maxdd = 1.0 - equity / peak
    n_exposed += 1.0 if exposed else 0.0
    return (
        total,
        total2,
        down2,
        peak,
        maxdd,
        ddstart,
        ddlen,
        equity,
        first,
        bars + 1.0,
        eqsum + equity,
        n_exposed,
    )


@njit(cache=True, error_model="numpy")
def acc_flat(state: tuple, count: int) -> tuple:
    """Feed ``count`` more bars whose equity equals the last one fed, flat (no position held).

    The same state as ``count`` calls of ``acc_bar``: their returns are zero (not counted), the
    peak and drawdown only move by time. Lets a simulation skip quiet flat stretches cheaply.
    """
    total, total2, down2, peak, maxdd, ddstart, ddlen, prev, first, bars, eqsum, n_exposed = state
    for _ in range(count):
        eqsum += prev
    last = bars + count - 1.0
    if prev >= peak:
        ddlen = max(ddlen, bars - 1.0 - ddstart)
        peak = prev
        ddstart = last
    elif prev < peak * (1.0 - maxdd):
        maxdd = 1.0 - prev / peak
    return (total, total2, down2, peak, maxdd, ddstart, ddlen, prev, first, bars + count, eqsum, n_exposed)


@njit(cache=True, error_model="numpy")
def acc_trade(acc: np.ndarray, pnl: float, entry_notional: float) -> None:
    """Feed one closed trade's net P&L and its entry notional (``|size| * entry_price``)."""
    acc[_NTR] += 1.0
    acc[_PNLSUM] += pnl
    acc[_PNLSUM2] += pnl * pnl
    if entry_notional > 0:
        ret = pnl / entry_notional
        acc[_RETSUM] += ret
        acc[_BEST] = max(acc[_BEST], ret)
        acc[_WORST] = min(acc[_WORST], ret)
    if pnl > 0:
        acc[_NWIN] += 1.0
        acc[_GPROF] += pnl
    elif pnl < 0:
        acc[_GLOSS] -= pnl


@njit(cache=True, error_model="numpy")
def acc_open(acc: np.ndarray, pnl: float) -> None:
    """Feed one trade still open at the end and its P&L at the last mark."""
    acc[_NOPEN] += 1.0
    acc[_OPENPNL] += pnl


@njit(cache=True, error_model="numpy")
def acc_notional(acc: np.ndarray, value: float) -> None:
    """Feed the absolute cash value of one fill (for turnover)."""
    acc[_NOTIONAL] += abs(value)


@njit(cache=True, error_model="numpy")
def acc_finalize(acc: np.ndarray, periods_per_year: float, out: np.ndarray) -> None:
    """Write the metrics, in ``METRIC_NAMES`` order, into ``out``."""
    nan = np.nan
    bars = acc[_BARS]
    last = acc[_PREV]
    first = acc[_FIRST]
    n = bars - 1.0
    out[0] = last if bars > 0 else nan
    growth = last / first if bars > 0 and first > 0 else nan
    out[1] = growth - 1.0
    if n > 0 and growth > 0:
        out[2] = growth ** (periods_per_year / n) - 1.0
    elif n > 0 and growth == 0:
        out[2] = -1.0
    else:
        out[2] = nan
    mean = acc[_SUM] / n if n > 0 else nan
    var = max(acc[_SUM2] - acc[_SUM] * mean, 0.0) / (n - 1.0) if n > 1 else nan
    std = math.sqrt(var)
    ann = math.sqrt(periods_per_year)
    out[3] = std * ann
    out[4] = mean / std * ann if n > 1 and std > 0 else nan
    down = math.sqrt(acc[_DOWN2] / n) if n > 0 else nan
    out[5] = mean / down * ann if n > 0 and down > 0 else nan
    out[7] = acc[_MAXDD]
    out[6] = out[2] / acc[_MAXDD] if acc[_MAXDD] > 0 else nan
    out[8] = max(acc[_DDLEN], bars - 1.0 - acc[_DDSTART]) if bars > 0 and last < acc[_PEAK] else acc[_DDLEN]
    ntr = acc[_NTR]
    out[9] = acc[_NWIN] / ntr if ntr > 0 else nan
    if acc[_GLOSS] > 0:
        out[10] = acc[_GPROF] / acc[_GLOSS]
    elif acc[_GPROF] > 0:
        out[10] = np.inf
    else:
        out[10] = nan
    out[11] = acc[_PNLSUM] / ntr if ntr > 0 else nan
    out[12] = acc[_RETSUM] / ntr if ntr > 0 else nan
    out[13] = acc[_EXPOSED] / bars if bars > 0 else nan
    mean_eq = acc[_EQSUM] / bars if bars > 0 else nan
    out[14] = acc[_NOTIONAL] / mean_eq * periods_per_year / bars if bars > 0 and mean_eq > 0 else nan
    out[15] = ntr + acc[_NOPEN]
    out[16] = ntr
    out[17] = acc[_NOPEN]
    out[18] = acc[_OPENPNL]
    out[19] = acc[_BEST] if ntr > 0 and acc[_BEST] > -np.inf else nan
    out[20] = acc[_WORST] if ntr > 0 and acc[_WORST] < np.inf else nan
    pvar = (acc[_PNLSUM2] - acc[_PNLSUM] * acc[_PNLSUM] / ntr) / (ntr - 1.0) if ntr > 1 else nan
    out[21] = math.sqrt(ntr) * (acc[_PNLSUM] / ntr) / math.sqrt(pvar) if ntr > 1 and pvar > 0 else nan


@njit(cache=True, error_model="numpy")
def _metrics_kernel(
    equity: np.ndarray,
    exposed: np.ndarray,
    notional: np.ndarray,
    pnl: np.ndarray,
    entry_notional: np.ndarray,
    open_pnl: np.ndarray,
    periods_per_year: float,
) -> np.ndarray:
    acc = acc_new()
    state = bar_state(acc)
    for i in range(equity.shape[0]):
        state = acc_bar(state, equity[i], exposed[i])
        acc_notional(acc, notional[i])
    store_bar_state(acc, state)
    for k in range(pnl.shape[0]):
        acc_trade(acc, pnl[k], entry_notional[k])
    for k in range(open_pnl.shape[0]):
        acc_open(acc, open_pnl[k])
    out = np.empty(N_METRICS)
    acc_finalize(acc, periods_per_year, out)
    return out


def compute_metrics(
    equity: np.ndarray | pl.Series,
    trades: pl.DataFrame | None = None,
    *,
    periods_per_year: float,
    positions: np.ndarray | pl.Series | None = None,
    traded_value: np.ndarray | pl.Series | None = None,
    open_trades: pl.DataFrame | None = None,
) -> dict[str, float]:
    """Metrics (see the module table) of one equity curve and its trades.

    ``trades`` needs columns ``pnl``, ``size`` and ``entry_price`` (one row per round trip; rows
    with ``is_open`` true count as open trades, like the rows of ``open_trades``). ``positions``
    (position size at each bar's close) gives exposure; ``traded_value`` (absolute cash value
    filled at each bar) gives turnover. Example::

        m = compute_metrics(result.equity["equity"], result.trades, periods_per_year=252)
        m["sharpe"], m["max_drawdown"]
    """
    eq = np.ascontiguousarray(np.asarray(equity, dtype=np.float64))
    if eq.ndim != 1:
        raise ConfigError(f"equity must be one-dimensional, got shape {eq.shape}")
    if not np.isfinite(eq).all():
        bad = int(np.flatnonzero(~np.isfinite(eq))[0])
        raise ConfigError(f"equity has a non-finite value at row {bad}")
    if periods_per_year <= 0:
        raise ConfigError(f"periods_per_year must be positive, got {periods_per_year}")
    exposed = (
        np.zeros(eq.shape[0], dtype=np.bool_)
        if positions is None
        else np.asarray(positions, dtype=np.float64) != 0
    )
    notional = np.zeros(eq.shape[0]) if traded_value is None else np.asarray(traded_value, dtype=np.float64)
    for name, arr in (("positions", exposed), ("traded_value", notional)):
        if arr.shape != eq.shape:
            raise ConfigError(f"{name} has {arr.shape[0]} rows but equity has {eq.shape[0]}")
    closed, still_open = _split_trades(trades, open_trades)
    pnl = closed["pnl"].cast(pl.Float64).to_numpy()
    entry_notional = (closed["size"].abs() * closed["entry_price"]).cast(pl.Float64).to_numpy()
    values = _metrics_kernel(
        eq,
        np.ascontiguousarray(exposed),
        np.ascontiguousarray(notional),
        np.ascontiguousarray(pnl),
        np.ascontiguousarray(entry_notional),
        np.ascontiguousarray(still_open["pnl"].cast(pl.Float64).to_numpy()),
        float(periods_per_year),
    )
    return metrics_dict(values)


def _split_trades(trades: pl.DataFrame | None,
                  open_trades: pl.DataFrame | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(closed, open) trades from a table that may flag open rows (``is_open``) and a table of open ones."""
    empty = pl.DataFrame(schema={"pnl": pl.Float64, "size": pl.Float64, "entry_price": pl.Float64})
    closed, still_open = empty, empty
    if trades is not None and trades.height:
        missing = {"pnl", "size", "entry_price"} - set(trades.columns)
        if missing:
            raise ConfigError(f"trades table lacks column(s) {sorted(missing)}")
        if "is_open" in trades.columns:
            closed, still_open = trades.filter(~pl.col("is_open")), trades.filter(pl.col("is_open"))
        else:
            closed = trades
    if open_trades is not None and open_trades.height:
        if "pnl" not in open_trades.columns:
            raise ConfigError("open_trades table lacks column 'pnl'")
        still_open = pl.concat([still_open.select("pnl"), open_trades.select(pl.col("pnl").cast(pl.Float64))])
    return closed, still_open


def metrics_dict(values: np.ndarray) -> dict[str, float]:
    """Name the values of one metrics vector (``METRIC_NAMES`` order); counts are ints."""
    return {name: int(v) if name in INT_METRICS else float(v)
            for name, v in zip(METRIC_NAMES, values, strict=True)}


def metrics_frame(values: np.ndarray) -> pl.DataFrame:
    """A Polars table of a (columns x metrics) matrix, one row per column."""
    values = np.atleast_2d(values)
    return pl.DataFrame(
        [
            pl.Series(name, values[:, k].astype(np.int64) if name in INT_METRICS else values[:, k])
            for k, name in enumerate(METRIC_NAMES)
        ]
    )


def trade_durations(trades: pl.DataFrame) -> dict[str, float]:
    """``avg_trade_duration`` and ``max_trade_duration`` of closed trades, in seconds (NaN without any)."""
    if trades.height == 0 or "entry_time" not in trades.columns:
        return {"avg_trade_duration": math.nan, "max_trade_duration": math.nan}
    closed = trades.filter(~pl.col("is_open")) if "is_open" in trades.columns else trades
    span = (_ns(closed["exit_time"]) - _ns(closed["entry_time"])) / 1e9
    if span.size == 0:
        return {"avg_trade_duration": math.nan, "max_trade_duration": math.nan}
    return {"avg_trade_duration": float(span.mean()), "max_trade_duration": float(span.max())}


def drawdown_time(ts: np.ndarray | pl.Series, equity: np.ndarray | pl.Series) -> float:
    """Longest time, in seconds, from an equity peak until equity regains it (or the last bar)."""
    t = _ns(ts) if isinstance(ts, pl.Series) else np.asarray(ts, dtype=np.int64)
    eq = np.asarray(equity, dtype=np.float64)
    if eq.size == 0:
        return math.nan
    at_peak = eq >= np.maximum.accumulate(eq)
    peak_ts = np.maximum.accumulate(np.where(at_peak, t, t[0]))
    return float((t - peak_ts).max() / 1e9)


def buy_and_hold_return(closes: list[np.ndarray]) -> float:
    """Equal-weight buy-and-hold return: the mean over symbols of ``last close / first close - 1``.

    Money split equally at the first bar and never rebalanced ends at exactly this return.
    """
    rets = [float(c[-1] / c[0] - 1.0) for c in (np.asarray(x, dtype=np.float64) for x in closes)
            if c.size and c[0] > 0]
    return float(np.mean(rets)) if rets else math.nan


def held_value(first_close: float, last_close: float, after_ns: int,
               actions: Iterable[tuple[int, str, float]]) -> np.ndarray:
    """``[first close, value at the end]`` of one share bought at ``first_close`` (bar ending at
    ``after_ns``) and held: splits after it multiply the shares, dividends are paid as cash, as the
    engines book them. ``actions`` are ``(ex-date ns, "split" | "dividend", value)``."""
    shares, cash = 1.0, 0.0
    for ts, action, value in actions:
        if ts <= after_ns:
            continue
        if action == "split" and value > 0:
            shares *= value
        elif action == "dividend":
            cash += shares * value
    return np.array([float(first_close), shares * float(last_close) + cash])


def _ns(col: pl.Series) -> np.ndarray:
    if isinstance(col.dtype, pl.Datetime):
        col = col.dt.cast_time_unit("ns")
    return col.cast(pl.Int64).to_numpy()


def sessions_per_year(calendar: str = "XNYS", years: tuple[int, int] | None = None) -> int:
    """Average number of sessions per calendar year, rounded (252 for XNYS, 365 for 24/7).

    ``years`` (first, last inclusive) restricts the average to the years a data set covers.
    """
    from .calendars import get_calendar

    cal = get_calendar(calendar)
    year_of = cal.labels.astype("datetime64[ns]").astype("datetime64[Y]").astype(np.int64) + 1970
    lo, hi = years if years is not None else (1991, 2034)
    mask = (year_of >= lo) & (year_of <= hi)
    n_years = len(np.unique(year_of[mask]))
    if n_years == 0:
        raise ConfigError(f"calendar {calendar!r} has no sessions in years {lo}..{hi}")
    return round(int(mask.sum()) / n_years)


def periods_per_year(
    ts_ns: np.ndarray | pl.Series | None = None,
    *,
    calendar: str = "XNYS",
    frequency: str | None = None,
) -> float:
    """Bars per year for annualization, from the bar size or from the bars' own timestamps.

    With ``frequency`` ("1min", "1h", "1d", "1w"): weekly is 52, daily is sessions per year,
    intraday is the median regular-session length over the bar size (rounded up) times sessions
    per year. Without it, ``ts_ns`` (bar start times, UTC ns) is used: bars per session is the mean
    count of bars in each session the data touches (weekly data, spaced four days or more, is 52).
    """
    from .calendars import get_calendar
    from .timeframes import Timeframe

    cal = get_calendar(calendar)
    years = None
    ts = None
    if ts_ns is not None:
        ts = np.asarray(ts_ns).astype("datetime64[ns]").astype(np.int64)
        if ts.size:
            y = ts[[0, -1]].astype("datetime64[ns]").astype("datetime64[Y]").astype(np.int64) + 1970
            years = (int(y[0]), int(y[1]))
    spy = sessions_per_year(calendar, years)
    if frequency is not None:
        tf = Timeframe.parse(frequency)
        if tf.per_year is not None:
            return tf.per_year
        if tf.unit == "d":
            return float(spy) / tf.n
        lengths = cal.closes - cal.opens
        per_session = math.ceil(float(np.median(lengths)) / tf.nanos)
        return float(per_session * spy)
    if ts is None or ts.size < 2:
        raise ConfigError("periods_per_year needs a frequency or at least two bar timestamps")
    if float(np.median(np.diff(ts))) >= 4 * 86_400 * 1e9:
        return 52.0
    sess = cal.session_index(ts)
    inside = sess[sess >= 0]
    if inside.size == 0:
        raise ConfigError(f"no bar timestamp falls inside a {calendar} session")
    return float(inside.size / np.unique(inside).size * spy)


def drawdown(equity: np.ndarray) -> np.ndarray:
    """Drawdown series ``1 - E_t / running_max(E)`` (positive fractions)."""
    eq = np.asarray(equity, dtype=np.float64)
    return 1.0 - eq / np.maximum.accumulate(eq)
