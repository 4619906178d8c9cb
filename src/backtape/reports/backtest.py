"""The report of one backtest: prices with trades and recorded indicators, equity against buy and
hold, drawdown, exposure, monthly/yearly returns, rolling Sharpe and volatility, trade returns,
costs, statistics and the trade list.

Prices come from the run itself (``result.extra["prices"]``, which the engine fills and the results
store keeps), so a stored run's report needs no data source. Runs longer than ``CANDLES`` bars per
symbol draw a line of the close; every long series is decimated (``decimate``) and every trade
is marked at its own time and price.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from .._time import format_ns
from .decimate import minmax_indices
from .page import TEMPLATE as _TEMPLATE
from .page import Page, Section, columns, plotly_modules, stats_table

#: at most this many bars per symbol are drawn as candlesticks; longer runs draw a line
CANDLES = 1500
_GREEN, _RED, _BLUE, _GREY = "#1a9850", "#d73027", "#3366cc", "#8a93a3"


def _ns(s: pl.Series) -> np.ndarray:
    return s.cast(pl.Datetime("ns", "UTC")).cast(pl.Int64).to_numpy() if s.dtype != pl.Int64 else s.to_numpy()


def _dt(ns: np.ndarray) -> np.ndarray:
    return np.asarray(ns, dtype="datetime64[ns]")


def all_trades(result: Any) -> pl.DataFrame:
    """Closed trades then open positions (``is_open``), times as UTC datetimes, with
    ``entry_traded``: the entry price as traded (``traded_entry_prices``)."""
    utc = pl.Datetime("ns", "UTC")
    frames = []
    for df, is_open in ((result.trades, False), (result.open_trades, True)):
        if df.height and "entry_time" in df.columns:
            frames.append(
                df.with_columns(pl.col("entry_time", "exit_time").cast(utc), pl.lit(is_open).alias("is_open"))
            )
    if not frames:
        return pl.DataFrame()
    trades = pl.concat(frames, how="diagonal_relaxed")
    return trades.with_columns(pl.Series("entry_traded", traded_entry_prices(result, trades)))


def aligned_closes(result: Any, ts: np.ndarray, column: str = "close") -> dict[str, np.ndarray]:
    """Each symbol's last ``column`` at or before each time of ``ts`` (NaN before its first bar)."""
    prices = result.extra.get("prices")
    out: dict[str, np.ndarray] = {}
    if prices is None or not prices.height:
        return out
    for (sym,), part in prices.group_by("symbol", maintain_order=True):
        col = column if column in part.columns and part[column].is_finite().all() else "close"
        t, close = _ns(part["ts"]), part[col].to_numpy().astype(np.float64)
        i = np.searchsorted(t, ts, "right") - 1
        out[str(sym)] = np.where(i >= 0, close[np.maximum(i, 0)], np.nan)
    return out


def buy_and_hold(result: Any, ts: np.ndarray) -> np.ndarray | None:
    """Equal-weight buy and hold of the run's symbols from the starting cash, on the equity times."""
    closes = aligned_closes(result, ts, "adj_close")
    if not closes:
        return None
    rel = []
    for c in closes.values():
        ok = np.flatnonzero(np.isfinite(c))
        if ok.size:
            rel.append(np.where(np.isfinite(c), c / c[ok[0]], 1.0))
    return result.cash * np.mean(rel, axis=0) if rel else None


def traded_entry_prices(result: Any, trades: pl.DataFrame) -> np.ndarray:
    """Each trade's entry price as traded: the engine rebases a lot held through a split to the new
    share basis, so the price is scaled back by the change of raw/adjusted close between entry and
    exit (only changes beyond 25 %, i.e. splits, not dividends)."""
    price = trades["entry_price"].to_numpy().astype(np.float64).copy() if trades.height else np.zeros(0)
    for sym in trades["symbol"].unique().to_list() if trades.height else []:
        rows = (trades["symbol"] == sym).to_numpy()
        f_in = _factor(result, sym, _ns(trades["entry_time"].filter(rows)))
        f_out = _factor(result, sym, _ns(trades["exit_time"].filter(rows)))
        ratio = np.where(np.isfinite(f_in / f_out), f_in / f_out, 1.0)
        price[rows] *= np.where(np.abs(ratio - 1.0) > 0.25, ratio, 1.0)
    return price


def _factor(result: Any, sym: str, ts: np.ndarray) -> np.ndarray:
    """Raw close over adjusted close at each time (ones without adjusted prices)."""
    raw, adj = aligned_closes(result, ts).get(sym), aligned_closes(result, ts, "adj_close").get(sym)
    if raw is None or adj is None:
        return np.ones(ts.size)
    return np.where((adj > 0) & np.isfinite(raw), raw / np.where(adj > 0, adj, 1.0), 1.0)


def gross_exposure(result: Any, ts: np.ndarray, equity: np.ndarray) -> np.ndarray:
    """Market value of the open positions over equity at each bar end ``ts``, from the fills: each
    fill's quantity in shares of the adjusted series (times raw/adjusted close of its bar), so the
    splits a position is held through change nothing."""
    adj = aligned_closes(result, ts, "adj_close")
    value = np.zeros(ts.size)
    fills = result.fills
    if not fills.height or not adj or not ts.size:
        return value
    for sym in fills["symbol"].unique(maintain_order=True).to_list():
        if sym not in adj:
            continue
        part = fills.filter(pl.col("symbol") == sym)
        at = np.minimum(np.searchsorted(ts, _ns(part["ts"]), "left"), ts.size - 1)  # the fill's bar
        units = np.nan_to_num(part["quantity"].to_numpy() * _factor(result, sym, ts[at]))
        held = np.zeros(ts.size)
        np.add.at(held, at, units)
        value += np.abs(np.cumsum(held) * np.nan_to_num(adj[sym]))
    return np.divide(value, equity, out=np.zeros_like(value), where=equity > 0)


def _line(
    go: Any, ts: np.ndarray, y: np.ndarray, name: str, color: str, keep: np.ndarray | None = None, **kw: Any
) -> Any:
    idx = minmax_indices(y, keep=keep)
    return go.Scattergl(
        x=_dt(ts[idx]), y=y[idx], name=name, mode="lines", line={"color": color, "width": 1.3}, **kw
    )


def _markers(go: Any, trades: pl.DataFrame, sym: str) -> list[Any]:
    """Entry (long, short) and exit markers of ``sym``'s trades, each at its own time and price.

    Marker styles are scalars per trace and P&L rides in ``customdata``: per-point style arrays make
    plotly validate every point, which costs seconds on thousands of trades."""
    t = trades.filter(pl.col("symbol") == sym)
    out = []
    for side, shape, color in ((1, "triangle-up", _GREEN), (-1, "triangle-down", _RED)):
        part = t.filter(pl.col("side") * side > 0)
        if part.height:
            out.append(
                go.Scatter(
                    x=_dt(_ns(part["entry_time"])),
                    y=part["entry_traded"].to_numpy(),
                    mode="markers",
                    name=f"{sym} {'long' if side > 0 else 'short'} entries",
                    customdata=part["pnl"].to_numpy(),
                    hovertemplate="entry %{y:,.4g}<br>P&L %{customdata:,.2f}",
                    marker={
                        "symbol": shape,
                        "size": 9,
                        "color": color,
                        "line": {"width": 0.5, "color": "#000"},
                    },
                )
            )
    closed = t.filter(~pl.col("is_open"))
    if closed.height:
        out.append(
            go.Scatter(
                x=_dt(_ns(closed["exit_time"])),
                y=closed["exit_price"].to_numpy(),
                mode="markers",
                name=f"{sym} exits",
                customdata=closed["pnl"].to_numpy(),
                hovertemplate="exit %{y:,.4g}<br>P&L %{customdata:,.2f}",
                marker={"symbol": "x", "size": 8, "color": "#222"},
            )
        )
    return out


def _recorded(result: Any) -> pl.DataFrame:
    """The strategy's recorded values (``ctx.record``): ``ts`` plus numeric columns."""
    rec = result.records
    if rec is None or not rec.height or "ts" not in rec.columns:
        return pl.DataFrame()
    num = [c for c, t in rec.schema.items() if c != "ts" and t.is_numeric()]
    return rec.select(pl.col("ts").cast(pl.Datetime("ns", "UTC")), *num) if num else pl.DataFrame()


def main_figure(result: Any) -> Any:
    """Prices (one panel per symbol) with trades and indicators, equity vs buy and hold, drawdown and
    exposure, sharing one time axis."""
    go, make_subplots = plotly_modules()
    eq_ts, equity = _ns(result.equity["ts"]), result.equity["equity"].to_numpy().astype(np.float64)
    trades = all_trades(result)
    prices = result.extra.get("prices", pl.DataFrame())
    symbols = [str(s) for s in prices["symbol"].unique(maintain_order=True)] if prices.height else []
    rec = _recorded(result)
    rows = [*(f"{s}" for s in symbols), "equity vs buy and hold", "drawdown", "exposure"]
    heights = [3.0] * len(symbols) + [2.5, 1.2, 1.0]
    fig = make_subplots(
        rows=len(rows),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.025,
        subplot_titles=rows,
        row_heights=heights,
    )
    trade_ns = (
        np.concatenate([_ns(trades["entry_time"]), _ns(trades["exit_time"])]) if trades.height else None
    )
    for r, sym in enumerate(symbols, start=1):
        p = prices.filter(pl.col("symbol") == sym)
        pts, close = _ns(p["ts"]), p["close"].to_numpy().astype(np.float64)
        if p.height <= CANDLES and {"open", "high", "low"} <= set(p.columns):
            fig.add_trace(
                go.Candlestick(
                    x=_dt(pts),
                    open=p["open"],
                    high=p["high"],
                    low=p["low"],
                    close=close,
                    name=sym,
                    increasing_line_color=_GREEN,
                    decreasing_line_color=_RED,
                ),
                row=r,
                col=1,
            )
        else:
            keep = np.searchsorted(pts, trade_ns) if trade_ns is not None else None
            fig.add_trace(_line(go, pts, close, f"{sym} close", _BLUE, keep), row=r, col=1)
        for trace in _markers(go, trades, sym):
            fig.add_trace(trace, row=r, col=1)
        _overlay(go, fig, rec, close, r)
        fig.update_xaxes(rangeslider_visible=False, row=r, col=1)
    r = len(symbols) + 1
    fig.add_trace(_line(go, eq_ts, equity, "equity", _BLUE), row=r, col=1)
    bh = buy_and_hold(result, eq_ts)
    if bh is not None:
        fig.add_trace(_line(go, eq_ts, bh, "buy and hold", _GREY, line_dash="dot"), row=r, col=1)
    dd = -result.equity["drawdown"].to_numpy().astype(np.float64)
    fig.add_trace(_line(go, eq_ts, dd, "drawdown", _RED, fill="tozeroy"), row=r + 1, col=1)
    fig.add_trace(
        _line(
            go, eq_ts, gross_exposure(result, eq_ts, equity), "exposure", "#7b3294", fill="tozeroy"
        ),
        row=r + 2,
        col=1,
    )
    fig.update_yaxes(tickformat=".0%", row=r + 1, col=1)
    fig.update_yaxes(tickformat=".0%", row=r + 2, col=1)
    fig.update_layout(
        height=240 * len(symbols) + 520,
        margin={"l": 60, "r": 20, "t": 30, "b": 30},
        hovermode="x",
        showlegend=True,
        legend={"orientation": "h", "y": -0.04},
        template=_TEMPLATE,
    )
    return fig


def _overlay(go: Any, fig: Any, rec: pl.DataFrame, close: np.ndarray, row: int) -> None:
    """Recorded series on the price scale (within a factor 5 of the median close) overlaid on it."""
    if not rec.height or not close.size:
        return
    ts, level = _ns(rec["ts"]), float(np.nanmedian(close))
    for name in rec.columns[1:]:
        y = rec[name].cast(pl.Float64).to_numpy()
        med = float(np.nanmedian(y)) if np.isfinite(y).any() else math.nan
        if level > 0 and math.isfinite(med) and 0.2 < med / level < 5:
            fig.add_trace(_line(go, ts, y, name, "#fdae61"), row=row, col=1)


def recorded_figure(result: Any) -> Any:
    """Recorded values not on any price scale, in their own chart (``None`` when there are none)."""
    go, _ = plotly_modules()
    rec = _recorded(result)
    if not rec.height:
        return None
    ts = _ns(rec["ts"])
    fig = go.Figure(
        [
            _line(go, ts, rec[c].cast(pl.Float64).to_numpy(), c, col)
            for c, col in zip(rec.columns[1:], _cycle(), strict=False)
        ]
    )
    fig.update_layout(height=260, margin={"l": 60, "r": 20, "t": 20, "b": 30}, template=_TEMPLATE)
    return fig


def _cycle() -> list[str]:
    return ["#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477"] * 20


def period_returns(result: Any, every: str) -> pl.DataFrame:
    """Equity return per calendar period (``"1mo"``, ``"1y"``): ``start``, ``ret``."""
    eq = result.equity.select(pl.col("ts").cast(pl.Datetime("ns", "UTC")), "equity").sort("ts")
    last = eq.group_by_dynamic("ts", every=every).agg(pl.col("equity").last())
    prev = last["equity"].shift(1).fill_null(result.cash)
    return pl.DataFrame({"start": last["ts"], "ret": last["equity"] / prev - 1.0})


def returns_heatmap(result: Any) -> Any:
    """Monthly returns by year (rows) and month (columns), with the year's return last."""
    go, _ = plotly_modules()
    monthly, yearly = period_returns(result, "1mo"), period_returns(result, "1y")
    years = sorted(set(monthly["start"].dt.year().to_list()))
    z = np.full((len(years), 13), np.nan)
    for t, r in zip(monthly["start"], monthly["ret"], strict=True):
        z[years.index(t.year), t.month - 1] = r
    for t, r in zip(yearly["start"], yearly["ret"], strict=True):
        z[years.index(t.year), 12] = r
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Year"]
    text = [["" if not math.isfinite(v) else f"{v:.1%}" for v in row] for row in z]
    lim = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 0.01
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=months,
            y=[str(y) for y in years],
            text=text,
            texttemplate="%{text}",
            colorscale="RdYlGn",
            zmid=0,
            zmin=-lim,
            zmax=lim,
            showscale=False,
        )
    )
    fig.update_layout(
        height=90 + 28 * len(years),
        margin={"l": 50, "r": 20, "t": 10, "b": 30},
        yaxis={"autorange": "reversed"},
        template=_TEMPLATE,
    )
    return fig


def rolling_figure(result: Any) -> Any:
    """Rolling Sharpe ratio and volatility of daily returns (window: 63 days, or a quarter of the run)."""
    go, make_subplots = plotly_modules()
    eq = result.equity.select(pl.col("ts").cast(pl.Datetime("ns", "UTC")), "equity").sort("ts")
    daily = eq.group_by_dynamic("ts", every="1d").agg(pl.col("equity").last())
    r = daily["equity"].pct_change().fill_null(0.0)
    days = max(daily.height, 2)
    span_years = (
        max((daily["ts"][-1] - daily["ts"][0]).total_seconds() / (365.25 * 86400), 1e-9)
        if daily.height > 1
        else 1
    )
    per_year = days / span_years
    window = 63 if days >= 252 else max(5, days // 4)
    mean, sd = r.rolling_mean(window), r.rolling_std(window)
    vol = (sd * math.sqrt(per_year)).to_numpy()
    sharpe = (mean / sd * math.sqrt(per_year)).to_numpy()
    ts = _ns(daily["ts"])
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=[f"rolling Sharpe ({window} days)", f"rolling volatility ({window} days)"],
    )
    fig.add_trace(
        _line(go, ts, np.nan_to_num(sharpe, nan=np.nan, posinf=np.nan, neginf=np.nan), "Sharpe", _BLUE),
        row=1,
        col=1,
    )
    fig.add_trace(_line(go, ts, vol, "volatility", "#e08214"), row=2, col=1)
    fig.update_yaxes(tickformat=".0%", row=2, col=1)
    fig.update_layout(
        height=420, margin={"l": 60, "r": 20, "t": 30, "b": 30}, showlegend=False, template=_TEMPLATE
    )
    return fig


def trades_figure(result: Any, trades: pl.DataFrame) -> Any:
    """Distribution of trade returns (closed and open) and the costs by kind."""
    go, make_subplots = plotly_modules()
    fig = make_subplots(rows=1, cols=2, subplot_titles=["trade returns", "costs"], column_widths=[0.62, 0.38])
    if trades.height and "return" in trades.columns:
        for is_open, color in ((False, _BLUE), (True, "#fdae61")):
            part = trades.filter(pl.col("is_open") == is_open)
            if part.height:
                fig.add_trace(
                    go.Histogram(
                        x=part["return"].to_numpy(),
                        name="open" if is_open else "closed",
                        marker_color=color,
                        nbinsx=40,
                    ),
                    row=1,
                    col=1,
                )
    costs = cost_breakdown(result)
    fig.add_trace(
        go.Bar(x=list(costs), y=list(costs.values()), marker_color=_GREY, name="costs", showlegend=False),
        row=1,
        col=2,
    )
    fig.update_xaxes(tickformat=".0%", row=1, col=1)
    fig.update_layout(
        height=320,
        barmode="stack",
        margin={"l": 60, "r": 20, "t": 30, "b": 30},
        template=_TEMPLATE,
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


def cost_breakdown(result: Any) -> dict[str, float]:
    """Commission, spread, slippage and market impact paid over the run (from the fills)."""
    kinds = ("commission", "spread", "slippage", "impact")
    fills = result.fills
    if fills is not None and fills.height and "commission" in fills.columns:
        return {k: float(fills[k].fill_nan(0.0).sum()) if k in fills.columns else 0.0 for k in kinds}
    return {k: float(result.metrics.get(k, 0.0) or 0.0) for k in kinds}


def backtest_page(result: Any) -> Page:
    """Every section of a backtest's report."""
    trades = all_trades(result)
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
        Section("prices, trades, equity, drawdown and exposure", main_figure(result), note=note)
    )
    rec = recorded_figure(result)
    if rec is not None:
        page.sections.append(Section("recorded values (ctx.record)", rec))
    page.sections.append(Section("statistics", html=f'<div class="grid">{stats_table(result.metrics)}</div>'))
    page.sections.append(Section("monthly and yearly returns", returns_heatmap(result)))
    page.sections.append(Section("rolling Sharpe and volatility", rolling_figure(result)))
    page.sections.append(Section("trade returns and costs", trades_figure(result, trades)))
    shown = trades.drop([c for c in ("mae", "mfe") if c in trades.columns]) if trades.height else trades
    page.sections.append(Section(f"trades ({trades.height:,}, open ones last)", table=columns(shown)))
    return page
