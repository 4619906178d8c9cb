"""The report of one backtest: prices with trades and recorded indicators, equity against buy and
hold, drawdown, exposure, monthly/yearly returns, rolling Sharpe and volatility, trade returns,
costs, statistics and the trade list.

Prices come from the run itself (``result.extra["prices"]``, which the engine fills and the results
store keeps), so a stored run's report needs no data source. Runs longer than ``CANDLES`` bars per
symbol draw a line of the close; every long series is decimated (``decimate``) and every trade
is marked at its own time and price. Figures are plotly.js specifications (``figure``), built from
numpy arrays without ``plotly.graph_objects``; ``main_figure`` wraps the main one for ``.plot()``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from .._time import format_ns
from .figure import PALETTE, RED_YELLOW_GREEN, Figure, Grid, as_plotly, line, ms
from .page import Page, Section, columns, stats_table
from .prices import Prices, all_trades, buy_and_hold, gross_exposure, ns

#: at most this many bars per symbol are drawn as candlesticks; longer runs draw a line
CANDLES = 1500
_GREEN, _RED, _BLUE, _GREY = "#1a9850", "#d73027", "#3366cc", "#8a93a3"
_MARGIN = {"l": 60, "r": 20, "t": 30, "b": 30}


def _markers(trades: dict[str, np.ndarray], sym: str) -> list[dict[str, Any]]:
    """Entry (long, short) and exit markers of ``sym``'s trades (``_trade_columns``), each at its own
    time and price, their P&L in ``customdata``."""
    mine = trades["symbol"] == sym
    out = []
    for side, shape, color in ((1, "triangle-up", _GREEN), (-1, "triangle-down", _RED)):
        rows = mine & (trades["side"] * side > 0)
        if rows.any():
            marker = {"symbol": shape, "size": 9, "color": color, "line": {"width": 0.5, "color": "#000"}}
            name = f"{sym} {'long' if side > 0 else 'short'} entries"
            out.append(_points(name, trades, rows, "entry_time", "entry_traded", "entry", marker))
    closed = mine & ~trades["is_open"]
    if closed.any():
        marker = {"symbol": "x", "size": 8, "color": "#222"}
        out.append(_points(f"{sym} exits", trades, closed, "exit_time", "exit_price", "exit", marker))
    return out


def _trade_columns(trades: pl.DataFrame) -> dict[str, np.ndarray]:
    """The columns the trade markers use, as numpy arrays (times in ns)."""
    cols = ("symbol", "side", "is_open", "entry_time", "entry_traded", "exit_time", "exit_price", "pnl")
    return {c: ns(trades[c]) if c.endswith("_time") else trades[c].to_numpy() for c in cols}


def _points(name: str, trades: dict[str, np.ndarray], rows: np.ndarray, time: str, price: str, what: str,
            marker: dict[str, Any]) -> dict[str, Any]:
    """A trace of trade markers (every one, never decimated), with its P&L on hover."""
    return {"type": "scatter", "mode": "markers", "name": name, "x": ms(trades[time][rows]),
            "y": trades[price][rows], "customdata": trades["pnl"][rows], "marker": marker,
            "hovertemplate": what + " %{y:,.4g}<br>P&L %{customdata:,.2f}"}


def _recorded(result: Any) -> pl.DataFrame:
    """The strategy's recorded values (``ctx.record``): ``ts`` plus numeric columns."""
    rec = result.records
    if rec is None or not rec.height or "ts" not in rec.columns:
        return pl.DataFrame()
    num = [c for c, t in rec.schema.items() if c != "ts" and t.is_numeric()]
    return rec.select(pl.col("ts").cast(pl.Datetime("ns", "UTC")), *num) if num else pl.DataFrame()


def main_spec(result: Any, trades: pl.DataFrame | None = None, px: Prices | None = None) -> Figure:
    """Prices (one panel per symbol) with trades and indicators, equity vs buy and hold, drawdown and
    exposure, sharing one time axis. ``trades`` (``all_trades``) and ``px`` are computed when not given."""
    px = px or Prices.of(result)
    trades = all_trades(result, px) if trades is None else trades
    eq_ts, equity = ns(result.equity["ts"]), result.equity["equity"].to_numpy().astype(np.float64)
    symbols = list(px.frames)
    rec = _recorded(result)
    titles = [*symbols, "equity vs buy and hold", "drawdown", "exposure"]
    grid = Grid(len(titles), heights=[3.0] * len(symbols) + [2.5, 1.2, 1.0], titles=titles, vspace=0.025,
                shared_x=True, dates=True)  # fmt: skip
    columns = _trade_columns(trades) if trades.height else None
    trade_ns = np.concatenate([columns["entry_time"], columns["exit_time"]]) if columns else None
    for r, sym in enumerate(symbols, start=1):
        p, pts, close = px.frames[sym], px.times[sym], px.columns[sym]["close"]
        if p.height <= CANDLES and {"open", "high", "low"} <= set(p.columns):
            grid.add({"type": "candlestick", "name": sym, "x": ms(pts), "open": p["open"].to_numpy(),
                      "high": p["high"].to_numpy(), "low": p["low"].to_numpy(), "close": close,
                      "increasing": {"line": {"color": _GREEN}}, "decreasing": {"line": {"color": _RED}}},
                     r)  # fmt: skip
        else:
            keep = np.searchsorted(pts, trade_ns) if trade_ns is not None else None
            grid.add(line(pts, close, f"{sym} close", _BLUE, keep), r)
        for trace in _markers(columns, sym) if columns else []:
            grid.add(trace, r)
        for trace in _overlay(rec, close):
            grid.add(trace, r)
        grid.axis("x", r, rangeslider={"visible": False})
    r = len(symbols) + 1
    grid.add(line(eq_ts, equity, "equity", _BLUE), r)
    bh = buy_and_hold(result, eq_ts, px)
    if bh is not None:
        grid.add(line(eq_ts, bh, "buy and hold", _GREY, dash="dot"), r)
    dd = -result.equity["drawdown"].to_numpy().astype(np.float64)
    grid.add(line(eq_ts, dd, "drawdown", _RED, fill="tozeroy"), r + 1)
    exposure = gross_exposure(result, eq_ts, equity, px)
    grid.add(line(eq_ts, exposure, "exposure", "#7b3294", fill="tozeroy"), r + 2)
    grid.axis("y", r + 1, tickformat=".0%")
    grid.axis("y", r + 2, tickformat=".0%")
    return grid.figure(height=240 * len(symbols) + 520, margin=_MARGIN, hovermode="x", showlegend=True,
                       legend={"orientation": "h", "y": -0.04})  # fmt: skip


def main_figure(result: Any) -> Any:
    """The main panels (``main_spec``) as a ``plotly.graph_objects.Figure``, for further styling."""
    return as_plotly(main_spec(result))


def _overlay(rec: pl.DataFrame, close: np.ndarray) -> list[dict[str, Any]]:
    """Recorded series on the price scale (within a factor 5 of the median close), to overlay on it."""
    if not rec.height or not close.size:
        return []
    ts, level, out = ns(rec["ts"]), float(np.nanmedian(close)), []
    for name in rec.columns[1:]:
        y = rec[name].cast(pl.Float64).to_numpy()
        med = float(np.nanmedian(y)) if np.isfinite(y).any() else math.nan
        if level > 0 and math.isfinite(med) and 0.2 < med / level < 5:
            out.append(line(ts, y, name, "#fdae61"))
    return out


def recorded_spec(result: Any) -> Figure | None:
    """Recorded values not on any price scale, in their own chart (``None`` when there are none)."""
    rec = _recorded(result)
    if not rec.height:
        return None
    ts, grid = ns(rec["ts"]), Grid(dates=True)
    for i, name in enumerate(rec.columns[1:]):
        grid.add(line(ts, rec[name].cast(pl.Float64).to_numpy(), name, PALETTE[i % len(PALETTE)]))
    return grid.figure(height=260, margin={**_MARGIN, "t": 20})


def period_returns(result: Any, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """Equity return per calendar period of UTC (``unit``: a numpy date unit, ``"D"``, ``"M"`` or
    ``"Y"``): each period's start (``datetime64``) and the return from the previous period's last
    equity (the starting cash for the first) to its own last."""
    ts, equity = ns(result.equity["ts"]), result.equity["equity"].to_numpy().astype(np.float64)
    if ts.size and (np.diff(ts) < 0).any():
        order = np.argsort(ts, kind="stable")
        ts, equity = ts[order], equity[order]
    period = ts.astype("datetime64[ns]").astype(f"datetime64[{unit}]")
    last = np.flatnonzero(np.append(period[1:] != period[:-1], True)) if ts.size else np.zeros(0, np.int64)
    values = equity[last]
    with np.errstate(divide="ignore", invalid="ignore"):
        return period[last], values / np.append(result.cash, values[:-1]) - 1.0


def heatmap_spec(result: Any) -> Figure:
    """Monthly returns by year (rows) and month (columns), with the year's return last."""
    (month_start, monthly), (year_start, yearly) = period_returns(result, "M"), period_returns(result, "Y")
    years = (year_start.astype(np.int64) + 1970).tolist()
    z = np.full((len(years), 13), np.nan)
    month = month_start.astype(np.int64)  # months since 1970-01
    z[np.searchsorted(years, month // 12 + 1970), month % 12] = monthly
    z[:, 12] = yearly
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Year"]
    text = [["" if not math.isfinite(v) else f"{v:.1%}" for v in row] for row in z.tolist()]
    lim = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 0.01
    grid = Grid()
    grid.add({"type": "heatmap", "z": z, "x": months, "y": [str(y) for y in years], "text": text,
              "texttemplate": "%{text}", "colorscale": RED_YELLOW_GREEN, "zmid": 0, "zmin": -lim, "zmax": lim,
              "showscale": False})  # fmt: skip
    grid.axis("y", autorange="reversed", type="category")
    grid.axis("x", type="category")
    return grid.figure(height=90 + 28 * len(years), margin={"l": 50, "r": 20, "t": 10, "b": 30})


def rolling_spec(result: Any) -> Figure:
    """Rolling Sharpe ratio and volatility of daily returns (window: 63 days, or a quarter of the run)."""
    day, r = period_returns(result, "D")
    if r.size:
        r[0] = 0.0  # no return before the first day
    days = max(r.size, 2)
    ts = day.astype("datetime64[ns]").astype(np.int64)
    span_years = max((ts[-1] - ts[0]) / (365.25 * 86400e9), 1e-9) if r.size > 1 else 1
    per_year = days / span_years
    window = 63 if days >= 252 else max(5, days // 4)
    sharpe, vol = np.full(r.size, np.nan), np.full(r.size, np.nan)
    if r.size >= window:
        windows = np.lib.stride_tricks.sliding_window_view(r, window)
        mean, sd = windows.mean(axis=1), windows.std(axis=1, ddof=1)
        vol[window - 1:] = sd * math.sqrt(per_year)
        with np.errstate(divide="ignore", invalid="ignore"):
            sharpe[window - 1:] = mean / sd * math.sqrt(per_year)
    grid = Grid(2, titles=[f"rolling Sharpe ({window} days)", f"rolling volatility ({window} days)"],
                shared_x=True, dates=True)  # fmt: skip
    grid.add(line(ts, np.where(np.isfinite(sharpe), sharpe, np.nan), "Sharpe", _BLUE), 1)
    grid.add(line(ts, vol, "volatility", "#e08214"), 2)
    grid.axis("y", 2, tickformat=".0%")
    return grid.figure(height=420, margin=_MARGIN, showlegend=False)


def trades_spec(result: Any, trades: pl.DataFrame) -> Figure:
    """Distribution of trade returns (closed and open) and the costs by kind."""
    grid = Grid(1, 2, titles=["trade returns", "costs"], widths=[0.62, 0.38])
    if trades.height and "return" in trades.columns:
        for is_open, color in ((False, _BLUE), (True, "#fdae61")):
            part = trades.filter(pl.col("is_open") == is_open)
            if part.height:
                grid.add({"type": "histogram", "x": part["return"].to_numpy(), "name": "open" if is_open
                          else "closed", "marker": {"color": color}, "nbinsx": 40})  # fmt: skip
    costs = cost_breakdown(result)
    grid.add({"type": "bar", "x": list(costs), "y": list(costs.values()), "marker": {"color": _GREY},
              "name": "costs", "showlegend": False}, 1, 2)  # fmt: skip
    grid.axis("x", 1, 1, tickformat=".0%")
    return grid.figure(height=320, barmode="stack", margin=_MARGIN, legend={"orientation": "h", "y": -0.15})


def cost_breakdown(result: Any) -> dict[str, float]:
    """Commission, spread, slippage and market impact paid over the run (from the fills)."""
    kinds = ("commission", "spread", "slippage", "impact")
    fills = result.fills
    if fills is not None and fills.height and "commission" in fills.columns:
        return {k: float(np.nansum(fills[k].to_numpy())) if k in fills.columns else 0.0 for k in kinds}
    return {k: float(result.metrics.get(k, 0.0) or 0.0) for k in kinds}


def backtest_page(result: Any) -> Page:
    """Every section of a backtest's report."""
    px = Prices.of(result)
    trades = all_trades(result, px)
    params = ", ".join(f"{k}={v}" for k, v in result.parameters.items())
    run = f"run {result.run_id} · " if result.run_id is not None else ""
    sub = (
        f"{run}{', '.join(result.symbols)} · {result.frequency} · {format_ns(result.start)} .. "
        f"{format_ns(result.end)} · source {result.source} · cash {result.cash:,.2f} · "
        f"{result.equity.height:,} bars · {trades.height:,} trades"
    )
    page = Page(f"{result.strategy}({params})", sub)
    note = "" if result.extra.get("prices") is not None else "this run holds no prices: equity panels only"
    page.sections.append(
        Section("prices, trades, equity, drawdown and exposure", main_spec(result, trades, px), note=note)
    )
    rec = recorded_spec(result)
    if rec is not None:
        page.sections.append(Section("recorded values (ctx.record)", rec))
    page.sections.append(Section("statistics", html=f'<div class="grid">{stats_table(result.metrics)}</div>'))
    page.sections.append(Section("monthly and yearly returns", heatmap_spec(result)))
    page.sections.append(Section("rolling Sharpe and volatility", rolling_spec(result)))
    page.sections.append(Section("trade returns and costs", trades_spec(result, trades)))
    shown = trades.drop([c for c in ("mae", "mfe") if c in trades.columns]) if trades.height else trades
    page.sections.append(Section(f"trades ({trades.height:,}, open ones last)", table=columns(shown)))
    return page
