"""plotly.js figure specifications as plain data: the one way reports and the dashboard build charts.

A page needs only the JSON that ``Plotly.newPlot`` takes, so figures are dicts of numpy arrays and
numbers, laid out here (``Grid``: subplots sharing a time axis, as ``make_subplots`` would) and
serialized once (``dumps``: orjson when installed). ``plotly.graph_objects`` validates every
property and point and costs tens of milliseconds per figure; it is used only where a user asks for
a figure object to style (``as_plotly``, behind ``.plot()``). Times are epoch milliseconds on
``type: "date"`` axes, which plotly.js shows as UTC.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .decimate import minmax_indices

Figure = dict[str, Any]
_NS_PER_MS = 1_000_000
#: colours of successive series
PALETTE = ("#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477", "#8c564b")
#: red (losses) to green (gains), ColorBrewer's RdYlGn: plotly.js has no such named scale
RED_YELLOW_GREEN = [[i / 10, c] for i, c in enumerate((
    "#a50026", "#d73027", "#f46d43", "#fdae61", "#fee08b", "#ffffbf", "#d9ef8b", "#a6d96a", "#66bd63",
    "#1a9850", "#006837"))]  # fmt: skip

#: a light look without plotly's named templates
TEMPLATE = {
    "layout": {
        "paper_bgcolor": "#fff",
        "plot_bgcolor": "#fff",
        "font": {"size": 11},
        "xaxis": {"gridcolor": "#eceef2", "zerolinecolor": "#d5d9e0"},
        "yaxis": {"gridcolor": "#eceef2", "zerolinecolor": "#d5d9e0"},
    }
}


def ms(ns: np.ndarray | Sequence[int]) -> np.ndarray:
    """Epoch nanoseconds as epoch milliseconds (what plotly.js reads as dates)."""
    return np.asarray(ns, dtype=np.int64) // _NS_PER_MS


def line(
    ts: np.ndarray | Sequence[int],
    y: np.ndarray | Sequence[float],
    name: str,
    color: str,
    keep: np.ndarray | None = None,
    *,
    width: float = 1.3,
    dash: str = "solid",
    webgl: bool = True,
    **props: Any,
) -> dict[str, Any]:
    """A line of ``y`` over times ``ts`` (ns), decimated to each bucket's minimum and maximum plus the
    rows ``keep`` (``decimate.minmax_indices``); ``props`` are more trace properties. WebGL draws long
    lines fastest but needs ``eval`` (regl); ``webgl=False`` draws SVG."""
    values = np.asarray(y, dtype=np.float64)
    idx = minmax_indices(values, keep=keep)
    return {
        "type": "scattergl" if webgl else "scatter",
        "mode": "lines",
        "name": name,
        "x": ms(np.asarray(ts)[idx]),
        "y": values[idx],
        "line": {"color": color, "width": width, "dash": dash},
        **props,
    }


class Grid:
    """Subplots in ``rows`` x ``cols`` cells, one x and one y axis per cell, as plotly's
    ``make_subplots`` lays them out: row 1 on top, domains in proportion to ``heights``/``widths``,
    ``titles`` above the cells, and with ``shared_x`` every column's x axes move together with only
    the bottom one labelled. ``dates`` makes the x axes time axes."""

    def __init__(
        self,
        rows: int = 1,
        cols: int = 1,
        *,
        heights: Sequence[float] | None = None,
        widths: Sequence[float] | None = None,
        titles: Sequence[str] = (),
        vspace: float = 0.08,
        hspace: float = 0.08,
        shared_x: bool = False,
        dates: bool = False,
    ) -> None:
        self.rows, self.cols = rows, cols
        self.data: list[dict[str, Any]] = []
        self.layout: dict[str, Any] = {}
        ys = _domains(list(heights or [1.0] * rows)[::-1], vspace)[::-1]  # row 1 on top
        xs = _domains(widths or [1.0] * cols, hspace)
        notes = []
        for r in range(rows):
            for c in range(cols):
                k = r * cols + c + 1
                bottom = (rows - 1) * cols + c + 1
                x: dict[str, Any] = {"domain": list(xs[c]), "anchor": _ref("y", k)}
                if dates:
                    x["type"] = "date"
                if shared_x and k != bottom:
                    x.update(matches=_ref("x", bottom), showticklabels=False)
                self.layout[_axis("x", k)] = x
                self.layout[_axis("y", k)] = {"domain": list(ys[r]), "anchor": _ref("x", k)}
                if k <= len(titles) and titles[k - 1]:
                    notes.append(_title(titles[k - 1], sum(xs[c]) / 2, ys[r][1]))
        if notes:
            self.layout["annotations"] = notes

    def add(self, trace: dict[str, Any], row: int = 1, col: int = 1) -> None:
        """Place ``trace`` in the cell at ``row``, ``col`` (both from 1)."""
        k = self._cell(row, col)
        trace["xaxis"], trace["yaxis"] = _ref("x", k), _ref("y", k)
        self.data.append(trace)

    def axis(self, which: str, row: int = 1, col: int = 1, **props: Any) -> None:
        """Set properties of the ``"x"`` or ``"y"`` axis of a cell (``tickformat=".0%"``, ...)."""
        self.layout[_axis(which, self._cell(row, col))].update(props)

    def figure(self, **layout: Any) -> Figure:
        """The figure: traces and the grid's layout updated with ``layout`` (a light template)."""
        return {"data": self.data, "layout": {"template": TEMPLATE, **self.layout, **layout}}

    def _cell(self, row: int, col: int) -> int:
        if not (1 <= row <= self.rows and 1 <= col <= self.cols):
            raise ValueError(f"no cell ({row}, {col}) in a {self.rows} x {self.cols} grid")
        return (row - 1) * self.cols + col


def _domains(sizes: Sequence[float], space: float) -> list[tuple[float, float]]:
    """Consecutive ``(start, end)`` fractions of [0, 1] in proportion to ``sizes``, ``space`` apart."""
    free = 1.0 - space * (len(sizes) - 1)
    total = float(sum(sizes))
    out, at = [], 0.0
    for s in sizes:
        end = at + free * s / total
        out.append((round(at, 6), round(min(end, 1.0), 6)))
        at = end + space
    return out


def _axis(which: str, k: int) -> str:
    return f"{which}axis" if k == 1 else f"{which}axis{k}"


def _ref(which: str, k: int) -> str:
    return which if k == 1 else f"{which}{k}"


def _title(text: str, x: float, y: float) -> dict[str, Any]:
    """A cell's title above it, as ``make_subplots`` writes one."""
    return {"text": text, "x": x, "y": y, "xref": "paper", "yref": "paper", "xanchor": "center",
            "yanchor": "bottom", "showarrow": False, "font": {"size": 16}}  # fmt: skip


def dumps(value: Any) -> bytes:
    """``value`` (figures, tables: dicts, lists, numpy arrays, numbers) as JSON; NaN and infinities
    are ``null`` (plotly.js draws a gap). orjson when installed, else the standard library."""
    try:
        import orjson
    except ImportError:
        return json.dumps(_plain(value), separators=(",", ":"), allow_nan=False, default=str).encode()
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS, default=_default)


def _default(value: Any) -> Any:
    """What orjson cannot write natively: non-contiguous or object arrays, numpy scalars, others as text."""
    if isinstance(value, np.ndarray):
        return _plain(value.tolist()) if value.dtype == object else np.ascontiguousarray(value)
    if isinstance(value, np.generic):
        return _plain(value.item())
    return str(value)


def _plain(value: Any) -> Any:
    """``value`` with numpy arrays as lists and non-finite floats as ``None`` (standard JSON)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def as_plotly(figure: Figure) -> Any:
    """``figure`` as a ``plotly.graph_objects.Figure``, for a user to style (``.plot()``)."""
    from .page import graph_objects

    return graph_objects().Figure(figure)
