"""Plotly figure specifications (plain JSON-able dicts) for the dashboard's pages.

Figures are built as data, not with ``plotly.graph_objects``: a page needs only the JSON that
``Plotly.newPlot`` takes, and building dicts costs microseconds where the object model costs
milliseconds per figure. Long series are thinned to the first, last, minimum and maximum point of
each of at most ``MAX_BUCKETS`` buckets, so every peak and trough of an equity curve stays visible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

import numpy as np

MAX_BUCKETS = 1000
_NS_PER_MS = 1_000_000
_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


def decimate(ts: Sequence[int] | np.ndarray, values: Sequence[float] | np.ndarray,
             buckets: int = MAX_BUCKETS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``4 * buckets`` points of ``(ts, values)``: per bucket its first, last, min and max."""
    t = np.asarray(ts, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    n = len(t)
    if n <= 4 * buckets:
        return t, v
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    keep = np.zeros(n, dtype=bool)
    keep[edges[:-1]] = True
    keep[edges[1:] - 1] = True
    filled = np.where(np.isnan(v), np.inf, v)
    keep[_arg_extreme(filled, edges, np.argmin)] = True
    keep[_arg_extreme(np.where(np.isnan(v), -np.inf, v), edges, np.argmax)] = True
    return t[keep], v[keep]


def _arg_extreme(v: np.ndarray, edges: np.ndarray, fn: Any) -> np.ndarray:
    return np.array([a + int(fn(v[a:b])) for a, b in pairwise(edges.tolist())], dtype=np.int64)


def drawdown(values: np.ndarray) -> np.ndarray:
    """Drawdown from the running peak, as a fraction (0 at a new high, negative below it)."""
    if not len(values):
        return values
    peak = np.maximum.accumulate(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peak > 0, values / peak - 1.0, 0.0)


def _ms(ts: np.ndarray) -> list[int]:
    """Epoch milliseconds: plotly reads them as UTC dates on a ``type: date`` axis."""
    return (ts // _NS_PER_MS).tolist()


def equity_figure(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]], *, normalize: bool = False,
                  title: str = "") -> dict[str, Any]:
    """Equity (top) and drawdown (bottom) of one or more named curves on one shared time axis.

    ``normalize`` divides each curve by its first value, so runs with different cash compare.
    """
    data: list[dict[str, Any]] = []
    for i, (name, (ts, eq)) in enumerate(curves.items()):
        t = np.asarray(ts, dtype=np.int64)
        v = np.asarray(eq, dtype=np.float64)
        if normalize and len(v) and v[0]:
            v = v / v[0]
        dd = drawdown(v)
        color = _PALETTE[i % len(_PALETTE)]
        et, ev = decimate(t, v)
        dt_, dv = decimate(t, dd)
        data.append({"type": "scatter", "mode": "lines", "name": name, "x": _ms(et), "y": ev.tolist(),
                     "line": {"color": color, "width": 1.5}, "legendgroup": name,
                     "hovertemplate": "%{x|%Y-%m-%d %H:%M}<br>%{y:,.4g}<extra>" + name + "</extra>"})
        data.append({"type": "scatter", "mode": "lines", "name": f"{name} drawdown", "x": _ms(dt_),
                     "y": (dv * 100).tolist(), "xaxis": "x", "yaxis": "y2", "fill": "tozeroy",
                     "line": {"color": color, "width": 1}, "legendgroup": name, "showlegend": False,
                     "hovertemplate": "%{x|%Y-%m-%d}<br>%{y:.2f}%<extra>" + name + "</extra>"})
    layout = {
        "title": {"text": title}, "height": 520,
        "margin": {"l": 70, "r": 20, "t": 40 if title else 10, "b": 40},
        "xaxis": {"type": "date", "anchor": "y2"},
        "yaxis": {"domain": [0.34, 1.0], "title": {"text": "equity (x start)" if normalize else "equity"}},
        "yaxis2": {"domain": [0.0, 0.28], "title": {"text": "drawdown %"}},
        "legend": {"orientation": "h", "y": 1.08}, "hovermode": "x unified",
    }
    return {"data": data, "layout": layout}


def heatmap_figure(x_name: str, y_name: str, xs: list[Any], ys: list[Any], z: list[list[float | None]],
                   metric: str) -> dict[str, Any]:
    """The metric over two parameters (best value over any other parameters), labelled axes."""
    trace = {"type": "heatmap", "x": [str(x) for x in xs], "y": [str(y) for y in ys], "z": z,
             "colorscale": "RdYlGn", "colorbar": {"title": {"text": metric}},
             "hovertemplate": f"{x_name}=%{{x}}<br>{y_name}=%{{y}}<br>{metric}=%{{z:.4g}}<extra></extra>"}
    layout = {"height": 420, "margin": {"l": 70, "r": 20, "t": 20, "b": 50},
              "xaxis": {"title": {"text": x_name}, "type": "category"},
              "yaxis": {"title": {"text": y_name}, "type": "category"}}
    return {"data": [trace], "layout": layout}


def timeline_figure(rows: list[dict[str, Any]], now_ns: int) -> dict[str, Any]:
    """Coverage timeline: one line per (source, symbol, frequency) with covered ranges in green,
    covered-but-empty ranges in grey, gaps between them in red and stale tails in orange.

    ``rows`` are ``{"label", "covered", "empty", "gaps", "stale"}`` with lists of ``(start, end)`` ns; a
    kind no row has draws no trace.
    """
    styles = (("covered", "#2ca02c", 14), ("empty", "#9e9e9e", 14), ("gaps", "#d62728", 6),
              ("stale", "#ff7f0e", 14))
    data: list[dict[str, Any]] = []
    labels = [r["label"] for r in rows]
    for kind, color, width in styles:
        xs: list[int | None] = []
        ys: list[str | None] = []
        for r in rows:
            for a, b in r[kind]:
                xs += [a // _NS_PER_MS, b // _NS_PER_MS, None]
                ys += [r["label"], r["label"], None]
        if not xs:
            continue
        data.append({"type": "scatter", "mode": "lines", "name": kind, "x": xs, "y": ys,
                     "line": {"color": color, "width": width}, "connectgaps": False,
                     "hovertemplate": "%{y}<br>%{x|%Y-%m-%d %H:%M}<extra>" + kind + "</extra>"})
    layout = {"height": 120 + 34 * max(1, len(labels)), "margin": {"l": 260, "r": 20, "t": 10, "b": 40},
              "xaxis": {"type": "date"}, "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom"},
              "yaxis": {"type": "category", "categoryorder": "array", "categoryarray": labels[::-1]},
              "shapes": [{"type": "line", "xref": "x", "yref": "paper", "x0": now_ns // _NS_PER_MS,
                          "x1": now_ns // _NS_PER_MS, "y0": 0, "y1": 1,
                          "line": {"color": "#555", "dash": "dot", "width": 1}}]}
    return {"data": data, "layout": layout}
