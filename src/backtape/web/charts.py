"""The dashboard's own figures: equity and drawdown of one or more runs, and the data coverage
timeline, as plotly.js specifications (plain data) built with ``backtape.reports.figure``, the one
figure toolkit the reports use too (decimation to each bucket's extremes, time axes, JSON).

The dashboard's pages allow no ``eval`` (their Content-Security-Policy), so their lines are SVG
``scatter`` traces, not WebGL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..reports.figure import PALETTE, Figure, Grid, line, ms


def drawdown(values: np.ndarray) -> np.ndarray:
    """Drawdown from the running peak, as a fraction (0 at a new high, negative below it)."""
    if not len(values):
        return values
    peak = np.maximum.accumulate(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peak > 0, values / peak - 1.0, 0.0)


def equity_figure(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]], *, normalize: bool = False,
                  title: str = "") -> Figure:
    """Equity (top) and drawdown (bottom) of one or more named curves on one shared time axis.

    ``normalize`` divides each curve by its first value, so runs with different cash compare.
    """
    grid = Grid(2, heights=[0.66, 0.28], vspace=0.06, shared_x=True, dates=True)
    for i, (name, (ts, eq)) in enumerate(curves.items()):
        t = np.asarray(ts, dtype=np.int64)
        v = np.asarray(eq, dtype=np.float64)
        if normalize and len(v) and v[0]:
            v = v / v[0]
        color = PALETTE[i % len(PALETTE)]
        grid.add(line(t, v, name, color, width=1.5, webgl=False, legendgroup=name,
                      hovertemplate="%{x|%Y-%m-%d %H:%M}<br>%{y:,.4g}<extra>" + name + "</extra>"), 1)
        grid.add(line(t, drawdown(v) * 100, f"{name} drawdown", color, width=1, webgl=False, fill="tozeroy",
                      legendgroup=name, showlegend=False,
                      hovertemplate="%{x|%Y-%m-%d}<br>%{y:.2f}%<extra>" + name + "</extra>"), 2)
    grid.axis("y", 1, title={"text": "equity (x start)" if normalize else "equity"})
    grid.axis("y", 2, title={"text": "drawdown %"})
    return grid.figure(title={"text": title}, height=520, margin={"l": 70, "r": 20, "t": 40 if title else 10,
                       "b": 40}, legend={"orientation": "h", "y": 1.08}, hovermode="x unified")  # fmt: skip


def timeline_figure(rows: list[dict[str, Any]], now_ns: int) -> dict[str, Any]:
    """Coverage timeline: one line per (source, symbol, frequency) with covered ranges in green,
    covered-but-empty ranges in grey, gaps between them in red and stale tails in orange.

    ``rows`` are ``{"label", "covered", "empty", "gaps", "stale"}`` with lists of ``(start, end)`` ns; a
    kind no row has draws no trace.
    """
    styles = (("covered", "#2ca02c", 14), ("empty", "#9e9e9e", 14), ("gaps", "#d62728", 6),
              ("stale", "#ff7f0e", 14))
    now_ms = int(ms([now_ns])[0])
    data: list[dict[str, Any]] = []
    labels = [r["label"] for r in rows]
    for kind, color, width in styles:
        xs: list[int | None] = []
        ys: list[str | None] = []
        for r in rows:
            for a, b in r[kind]:
                xs += [*ms([a, b]).tolist(), None]
                ys += [r["label"], r["label"], None]
        if not xs:
            continue
        data.append({"type": "scatter", "mode": "lines", "name": kind, "x": xs, "y": ys,
                     "line": {"color": color, "width": width}, "connectgaps": False,
                     "hovertemplate": "%{y}<br>%{x|%Y-%m-%d %H:%M}<extra>" + kind + "</extra>"})
    layout = {"height": 120 + 34 * max(1, len(labels)), "margin": {"l": 260, "r": 20, "t": 10, "b": 40},
              "xaxis": {"type": "date"}, "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom"},
              "yaxis": {"type": "category", "categoryorder": "array", "categoryarray": labels[::-1]},
              "shapes": [{"type": "line", "xref": "x", "yref": "paper", "x0": now_ms, "x1": now_ms,
                          "y0": 0, "y1": 1,
                          "line": {"color": "#555", "dash": "dot", "width": 1}}]}
    return {"data": data, "layout": layout}
