"""Reports of research results: an optimization (metric over the parameters, deflated Sharpe and
PBO), a walk-forward (in- vs out-of-sample per window, stitched out-of-sample equity) and a Monte
Carlo analysis (fan of equity paths, distributions of final equity and drawdown, the run marked)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from .decimate import minmax_indices
from .page import TEMPLATE as _TEMPLATE
from .page import Page, Section, columns, fmt, plotly_modules, stats_table

_LAYOUT = {"margin": {"l": 60, "r": 20, "t": 30, "b": 40}, "template": _TEMPLATE}

DSR_NOTE = (
    "Deflated Sharpe ratio: the probability that the winner's Sharpe ratio is above zero after "
    "allowing for the number of sets tried and the returns' skew and kurtosis (above 0.95 is "
    "significant). PBO, the probability of backtest overfitting: how often the in-sample winner "
    "ranks below the median out of sample over combinatorial splits (CSCV); above 0.5 the search "
    "picks noise."
)


def optimization_figure(opt: Any) -> Any:
    """The metric over the first two parameters (best over the others), or over the one parameter."""
    go, _ = plotly_modules()
    t, m = opt.table, opt.metric
    if len(opt.params) == 1:
        p = t.sort(opt.params[0])
        fig = go.Figure(go.Scatter(x=p[opt.params[0]].to_list(), y=p[m].to_list(), mode="lines+markers"))
        fig.update_layout(height=360, xaxis_title=opt.params[0], yaxis_title=m, **_LAYOUT)
        return fig
    a, b = opt.params[:2]
    agg = pl.col(m).min() if not opt_descending(opt) else pl.col(m).max()
    grid = t.group_by(a, b).agg(agg).sort(a, b)
    xs, ys = sorted(grid[a].unique().to_list()), sorted(grid[b].unique().to_list())
    z = np.full((len(ys), len(xs)), np.nan)
    for x, y, v in grid.iter_rows():
        z[ys.index(y), xs.index(x)] = np.nan if v is None else v
    fig = go.Figure(
        go.Heatmap(
            z=z, x=[str(x) for x in xs], y=[str(y) for y in ys], colorscale="Viridis", colorbar={"title": m}
        )
    )
    best = opt.best
    fig.add_trace(
        go.Scatter(
            x=[str(best[a])],
            y=[str(best[b])],
            mode="markers",
            name="best",
            marker={"symbol": "star", "size": 16, "color": "#d73027"},
        )
    )
    fig.update_layout(height=460, xaxis_title=a, yaxis_title=b, **_LAYOUT)
    return fig


def opt_descending(opt: Any) -> bool:
    from ..optimization.search import LOWER_IS_BETTER

    return opt.metric not in LOWER_IS_BETTER


def parallel_figure(opt: Any) -> Any:
    """Parallel coordinates of every parameter and the metric (one line per set)."""
    go, _ = plotly_modules()
    t = opt.table.filter(pl.col(opt.metric).is_not_null() & pl.col(opt.metric).is_finite())
    dims = [
        {"label": p, "values": t[p].cast(pl.Float64).to_list()}
        for p in opt.params
        if t.schema[p].is_numeric()
    ]
    dims.append({"label": opt.metric, "values": t[opt.metric].to_list()})
    fig = go.Figure(
        go.Parcoords(
            line={"color": t[opt.metric].to_list(), "colorscale": "Viridis", "showscale": True},
            dimensions=dims,
        )
    )
    fig.update_layout(height=380, **_LAYOUT)
    return fig


def optimization_page(opt: Any) -> Page:
    best = ", ".join(f"{k}={v}" for k, v in opt.best.items())
    ident = f"optimization {opt.optimization_id} · " if opt.optimization_id is not None else ""
    page = Page(
        f"optimization of {opt.metric}: best {best}",
        f"{ident}{opt.table.height:,} sets · {opt.method} search · {opt.engine} engine · "
        f"{opt.skipped} skipped · {opt.duration_s:.1f} s",
    )
    info = {
        "sets": opt.table.height,
        f"best {opt.metric}": opt.table[opt.metric][0],
        "deflated_sharpe": opt.deflated_sharpe,
        "pbo": opt.pbo,
    }
    page.sections.append(Section("overfitting statistics", html=stats_table(info), note=DSR_NOTE))
    page.sections.append(Section(f"{opt.metric} over the parameters", optimization_figure(opt)))
    if len(opt.params) >= 2:
        page.sections.append(Section("every set (parallel coordinates)", parallel_figure(opt)))
    page.sections.append(Section("the 200 best sets", table=columns(opt.table, 200)))
    return page


def walk_forward_figure(wf: Any) -> Any:
    """In- and out-of-sample metric per window above the stitched out-of-sample equity."""
    go, make_subplots = plotly_modules()
    w, m = wf.windows, wf.metric
    fig = make_subplots(
        rows=2,
        cols=1,
        vertical_spacing=0.12,
        subplot_titles=[f"{m} per window", "stitched out-of-sample equity"],
    )
    labels = [f"{k} ({t:%Y-%m-%d})" for k, t in zip(w["window"], w["test_start"], strict=True)]
    fig.add_trace(go.Bar(x=labels, y=w[f"is_{m}"].to_list(), name="in sample", marker_color="#8a93a3"), 1, 1)
    fig.add_trace(
        go.Bar(x=labels, y=w[f"oos_{m}"].to_list(), name="out of sample", marker_color="#3366cc"), 1, 1
    )
    eq = wf.equity["equity"].to_numpy()
    idx = minmax_indices(eq)
    fig.add_trace(
        go.Scattergl(
            x=wf.equity["ts"].to_numpy()[idx], y=eq[idx], name="OOS equity", line={"color": "#1a9850"}
        ),
        2,
        1,
    )
    fig.update_layout(height=620, barmode="group", **_LAYOUT)
    return fig


def walk_forward_page(wf: Any) -> Page:
    page = Page(
        f"walk-forward of {wf.metric}",
        f"{wf.windows.height} {'anchored' if wf.anchored else 'rolling'} windows · "
        f"efficiency {fmt('efficiency', wf.efficiency)}",
    )
    info = {"efficiency": wf.efficiency, **wf.metrics}
    page.sections.append(
        Section(
            "stitched out-of-sample statistics",
            html=f'<div class="grid">{stats_table(info)}</div>',
            note="Efficiency: out-of-sample CAGR over the mean in-sample CAGR "
            "of the windows' winners; near 1 the optimization's edge held out of sample.",
        )
    )
    page.sections.append(Section("windows", walk_forward_figure(wf)))
    page.sections.append(Section("windows (table)", table=columns(wf.windows)))
    return page


def monte_carlo_figure(mc: Any) -> Any:
    """Fan of the simulated equity paths (5-95 and 25-75 percentile bands, median) and the run."""
    go, _ = plotly_modules()
    f = mc.fan
    x = f["step"].to_list()
    fig = go.Figure()
    for lo, hi, color in (("p5", "p95", "rgba(51,102,204,0.15)"), ("p25", "p75", "rgba(51,102,204,0.3)")):
        fig.add_trace(
            go.Scatter(x=x, y=f[lo].to_list(), line={"width": 0}, showlegend=False, hoverinfo="skip")
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=f[hi].to_list(),
                fill="tonexty",
                fillcolor=color,
                line={"width": 0},
                name=f"{lo[1:]}-{hi[1:]}th percentile",
            )
        )
    fig.add_trace(go.Scatter(x=x, y=f["p50"].to_list(), name="median", line={"color": "#3366cc"}))
    fig.add_trace(go.Scatter(x=x, y=f["observed"].to_list(), name="the run", line={"color": "#d73027"}))
    unit = "trade" if mc.method == "reshuffle" else "bar"
    fig.update_layout(height=420, xaxis_title=unit, yaxis_title="equity", **_LAYOUT)
    return fig


def distribution_figure(mc: Any) -> Any:
    """Histograms of the simulations' figures with the run's own marked: final equity and max
    drawdown (bootstrap), max drawdown and Sharpe (reshuffle, where every path ends alike)."""
    go, make_subplots = plotly_modules()
    names = ("max_drawdown", "sharpe") if mc.method == "reshuffle" else ("final_equity", "max_drawdown")
    fig = make_subplots(rows=1, cols=2, subplot_titles=[n.replace("_", " ") for n in names])
    for col, name in enumerate(names, start=1):
        fig.add_trace(
            go.Histogram(
                x=mc.simulations[name].to_list(), nbinsx=50, marker_color="#3366cc", showlegend=False
            ),
            1,
            col,
        )
        obs = mc.observed.get(name, math.nan)
        if math.isfinite(obs):
            fig.add_vline(x=obs, line_color="#d73027", line_dash="dash", row=1, col=col,
                          annotation_text="the run", annotation_position="top right")  # fmt: skip
        if name == "max_drawdown":
            fig.update_xaxes(tickformat=".0%", row=1, col=col)
    fig.update_layout(height=340, **_LAYOUT)
    return fig


def monte_carlo_page(mc: Any) -> Page:
    page = Page(f"Monte Carlo: {mc.method}", f"{mc.n_simulations:,} simulations · seed {mc.seed}")
    how = (
        "Reshuffle: the run's trades (open positions marked at the end) in random orders; every path ends "
        "at the run's final equity, drawdown and Sharpe depend on the order. The paths' drawdowns are "
        "measured at trade closes and their Sharpe on trade returns; the run's own figures are on every bar."
        if mc.method == "reshuffle"
        else "Bootstrap: blocks of the run's per-bar returns drawn at random into new paths."
    )
    page.sections.append(Section("the run itself", html=stats_table(mc.observed), note=how))
    page.sections.append(Section("percentiles", table=columns(mc.table)))
    page.sections.append(Section("equity paths", monte_carlo_figure(mc)))
    page.sections.append(Section("distributions", distribution_figure(mc)))
    return page
