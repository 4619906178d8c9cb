"""Reports of research results: an optimization (metric over the parameters, deflated Sharpe and
PBO), a walk-forward (in- vs out-of-sample per window, stitched out-of-sample equity) and a Monte
Carlo analysis (fan of equity paths, distributions of final equity and drawdown, the run marked)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from .. import formatting
from .figure import Figure, Grid, as_plotly, line
from .page import Page, Section, columns, stats_table
from .prices import ns

_MARGIN = {"l": 60, "r": 20, "t": 30, "b": 40}

DSR_NOTE = (
    "Deflated Sharpe ratio: the probability that the winner's Sharpe ratio is above zero after "
    "allowing for the number of sets tried and the returns' skew and kurtosis (above 0.95 is "
    "significant). PBO, the probability of backtest overfitting: how often the in-sample winner "
    "ranks below the median out of sample over combinatorial splits (CSCV); above 0.5 the search "
    "picks noise."
)


def metric_grid(table: pl.DataFrame, x: str, y: str, metric: str, descending: bool = True
                ) -> tuple[list[Any], list[Any], np.ndarray]:
    """The best ``metric`` (highest, or lowest unless ``descending``) over any other parameters for
    each pair of values of ``x`` and ``y``: the sorted values of each and ``z`` (rows: ``y``; NaN for
    a pair never tried)."""
    agg = pl.col(metric).max() if descending else pl.col(metric).min()
    best = table.group_by(x, y).agg(agg)
    xs, ys = sorted(best[x].unique().to_list()), sorted(best[y].unique().to_list())
    z = np.full((len(ys), len(xs)), np.nan)
    rows = np.searchsorted(np.asarray(ys), best[y].to_numpy())
    cols = np.searchsorted(np.asarray(xs), best[x].to_numpy())
    z[rows, cols] = best[metric].cast(pl.Float64).fill_null(np.nan).to_numpy()
    return xs, ys, z


def parameter_heatmap(table: pl.DataFrame, x: str, y: str, metric: str, descending: bool = True,
                      best: dict[str, Any] | None = None) -> Figure:
    """``metric`` over parameters ``x`` and ``y`` (``metric_grid``) with the ``best`` set starred: the
    optimization's report and the dashboard's optimization page draw the same figure."""
    xs, ys, z = metric_grid(table, x, y, metric, descending)
    grid = Grid()
    grid.add({"type": "heatmap", "z": z, "x": [str(v) for v in xs], "y": [str(v) for v in ys],
              "colorscale": "Viridis", "colorbar": {"title": {"text": metric}},
              "hovertemplate": f"{x}=%{{x}}<br>{y}=%{{y}}<br>{metric}=%{{z:.4g}}<extra></extra>"})
    if best is not None and x in best and y in best:
        grid.add({"type": "scatter", "mode": "markers", "name": "best", "x": [str(best[x])],
                  "y": [str(best[y])], "marker": {"symbol": "star", "size": 16, "color": "#d73027"}})
    grid.axis("x", title={"text": x}, type="category")
    grid.axis("y", title={"text": y}, type="category")
    return grid.figure(height=460, margin=_MARGIN)


def optimization_spec(opt: Any) -> Figure:
    """The metric over the first two parameters (best over the others), or over the one parameter."""
    t, m = opt.table, opt.metric
    if len(opt.params) >= 2:
        a, b = opt.params[:2]
        return parameter_heatmap(t, a, b, m, opt_descending(opt), opt.best)
    p = t.sort(opt.params[0])
    grid = Grid()
    grid.add({"type": "scatter", "mode": "lines+markers", "x": p[opt.params[0]].to_numpy(),
              "y": p[m].to_numpy(), "name": m})
    grid.axis("x", title={"text": opt.params[0]})
    grid.axis("y", title={"text": m})
    return grid.figure(height=360, margin=_MARGIN)


def optimization_figure(opt: Any) -> Any:
    """``optimization_spec`` as a ``plotly.graph_objects.Figure`` (``.plot()``)."""
    return as_plotly(optimization_spec(opt))


def opt_descending(opt: Any) -> bool:
    from ..optimization.search import LOWER_IS_BETTER

    return opt.metric not in LOWER_IS_BETTER


def parallel_spec(opt: Any) -> Figure:
    """Parallel coordinates of every parameter and the metric (one line per set)."""
    t = opt.table.filter(pl.col(opt.metric).is_not_null() & pl.col(opt.metric).is_finite())
    numeric = [p for p in opt.params if t.schema[p].is_numeric()]
    dims = [{"label": p, "values": t[p].cast(pl.Float64).to_numpy()} for p in numeric]
    dims.append({"label": opt.metric, "values": t[opt.metric].to_numpy()})
    grid = Grid()
    grid.add({"type": "parcoords", "dimensions": dims,
              "line": {"color": t[opt.metric].to_numpy(), "colorscale": "Viridis", "showscale": True}})
    return grid.figure(height=380, margin=_MARGIN)


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
    page.sections.append(Section(f"{opt.metric} over the parameters", optimization_spec(opt)))
    if len(opt.params) >= 2:
        page.sections.append(Section("every set (parallel coordinates)", parallel_spec(opt)))
    page.sections.append(Section("the 200 best sets", table=columns(opt.table, 200)))
    return page


def walk_forward_spec(wf: Any) -> Figure:
    """In- and out-of-sample metric per window above the stitched out-of-sample equity."""
    w, m = wf.windows, wf.metric
    grid = Grid(2, titles=[f"{m} per window", "stitched out-of-sample equity"], vspace=0.12)
    labels = [f"{k} ({t:%Y-%m-%d})" for k, t in zip(w["window"], w["test_start"], strict=True)]
    for name, col, color in (("in sample", f"is_{m}", "#8a93a3"), ("out of sample", f"oos_{m}", "#3366cc")):
        grid.add({"type": "bar", "x": labels, "y": w[col].to_numpy(), "name": name,
                  "marker": {"color": color}})
    if wf.equity.height:
        eq = wf.equity
        grid.add(line(ns(eq["ts"]), eq["equity"].to_numpy(), "OOS equity", "#1a9850"), 2)
    grid.axis("x", 2, type="date")
    return grid.figure(height=620, barmode="group", margin=_MARGIN)


def walk_forward_figure(wf: Any) -> Any:
    """``walk_forward_spec`` as a ``plotly.graph_objects.Figure`` (``.plot()``)."""
    return as_plotly(walk_forward_spec(wf))


def walk_forward_page(wf: Any) -> Page:
    page = Page(
        f"walk-forward of {wf.metric}",
        f"{wf.windows.height} {'anchored' if wf.anchored else 'rolling'} windows · "
        f"efficiency {formatting.metric('efficiency', wf.efficiency)}",
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
    page.sections.append(Section("windows", walk_forward_spec(wf)))
    page.sections.append(Section("windows (table)", table=columns(wf.windows)))
    return page


def monte_carlo_spec(mc: Any) -> Figure:
    """Fan of the simulated equity paths (5-95 and 25-75 percentile bands, median) and the run."""
    f = mc.fan
    x = f["step"].to_numpy()
    grid = Grid()
    for lo, hi, color in (("p5", "p95", "rgba(51,102,204,0.15)"), ("p25", "p75", "rgba(51,102,204,0.3)")):
        grid.add({"type": "scatter", "x": x, "y": f[lo].to_numpy(), "line": {"width": 0}, "showlegend": False,
                  "hoverinfo": "skip"})
        grid.add({"type": "scatter", "x": x, "y": f[hi].to_numpy(), "fill": "tonexty", "fillcolor": color,
                  "line": {"width": 0}, "name": f"{lo[1:]}-{hi[1:]}th percentile"})
    basis = TRADE_BY_TRADE if mc.method == "reshuffle" else BAR_BY_BAR
    for column, name, color in (("p50", "median", "#3366cc"), ("observed", f"the run ({basis})", "#d73027")):
        grid.add({"type": "scatter", "x": x, "y": f[column].to_numpy(), "name": name,
                  "line": {"color": color}})
    grid.axis("x", title={"text": "trade" if mc.method == "reshuffle" else "bar"})
    grid.axis("y", title={"text": "equity"})
    return grid.figure(height=420, margin=_MARGIN)


def monte_carlo_figure(mc: Any) -> Any:
    """``monte_carlo_spec`` as a ``plotly.graph_objects.Figure`` (``.plot()``)."""
    return as_plotly(monte_carlo_spec(mc))


#: the two ways the run's own figures are measured, named as ``backtape montecarlo`` prints them
BAR_BY_BAR, TRADE_BY_TRADE = "bar by bar", "trade by trade"


def observed_basis(mc: Any) -> tuple[dict[str, float], str]:
    """The run's own figures measured as its simulated paths are, and that basis' name: a reshuffle's
    paths are trades (drawdown at trade closes, Sharpe of trade returns), so the run's trades in the
    order they closed; a bootstrap's paths are bars, so the run's bar-by-bar figures."""
    if mc.method == "reshuffle":
        return mc.observed_trades, TRADE_BY_TRADE
    return mc.observed, BAR_BY_BAR


def text_columns(frame: pl.DataFrame) -> dict[str, list[str]]:
    """``frame`` as columns of text, headed and formatted as the commands' tables show it (money with
    two decimals, percentages as %, ratios with two): the report's and the notebook's tables."""
    return {formatting.label(c) if c in formatting.LABELS else c:
            [formatting.cell(c, v) for v in frame[c].to_list()] for c in frame.columns}  # fmt: skip


def observed_columns(mc: Any) -> dict[str, list[str]]:
    """The run's own figures, one row per basis named in a ``measured`` column: bar by bar (its
    metrics) and, for a reshuffle, trade by trade (what its distributions mark)."""
    rows = [{"measured": BAR_BY_BAR, **mc.observed}]
    if mc.observed_trades:
        rows.append({"measured": TRADE_BY_TRADE, **mc.observed_trades})
    return text_columns(pl.DataFrame(rows))


def distribution_spec(mc: Any) -> Figure:
    """Histograms of the simulations' figures with the run's own marked, measured as the paths are
    (``observed_basis``): final equity and max drawdown (bootstrap), max drawdown and Sharpe
    (reshuffle, where every path ends alike)."""
    names = ("max_drawdown", "sharpe") if mc.method == "reshuffle" else ("final_equity", "max_drawdown")
    own, basis = observed_basis(mc)
    grid = Grid(1, 2, titles=[f"{formatting.label(n)}, measured {basis}" for n in names])
    marks: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = list(grid.layout.get("annotations", []))
    for col, name in enumerate(names, start=1):
        grid.add({"type": "histogram", "x": mc.simulations[name].to_numpy(), "nbinsx": 50,
                  "marker": {"color": "#3366cc"}, "showlegend": False}, 1, col)
        obs = own.get(name, math.nan)
        xref, yref = ("x", "y") if col == 1 else (f"x{col}", f"y{col}")
        if math.isfinite(obs):
            marks.append({"type": "line", "xref": xref, "yref": f"{yref} domain", "x0": obs, "x1": obs,
                          "y0": 0, "y1": 1, "line": {"color": "#d73027", "dash": "dash"}})
            notes.append({"text": f"the run ({basis}): {formatting.metric(name, obs)}", "xref": xref,
                          "yref": f"{yref} domain", "x": obs, "y": 1, "xanchor": "left", "yanchor": "top",
                          "showarrow": False})
        if name == "max_drawdown":
            grid.axis("x", 1, col, tickformat=".0%")
    return grid.figure(height=340, margin=_MARGIN, shapes=marks, annotations=notes)


def monte_carlo_page(mc: Any) -> Page:
    page = Page(f"Monte Carlo: {mc.method}", f"{mc.n_simulations:,} simulations · seed {mc.seed}")
    how = (
        "Reshuffle: the run's trades (open positions marked at the end) in random orders; every path ends "
        "at the run's final equity, drawdown and Sharpe depend on the order. The paths' drawdowns are "
        "measured at trade closes and their Sharpe on trade returns: the run's own trades in the order "
        f"they closed, measured the same way ({TRADE_BY_TRADE}), are what the distributions mark; its "
        f"metrics ({BAR_BY_BAR}) are measured on every bar."
        if mc.method == "reshuffle"
        else "Bootstrap: blocks of the run's per-bar returns drawn at random into new paths, measured on "
        f"every bar as the run's own metrics are ({BAR_BY_BAR}), which the distributions mark."
    )
    page.sections.append(Section("the run itself", table=observed_columns(mc), note=how))
    page.sections.append(Section("percentiles", table=text_columns(mc.table)))
    page.sections.append(Section("equity paths", monte_carlo_spec(mc)))
    page.sections.append(Section("distributions", distribution_spec(mc)))
    return page
