"""``_repr_html_`` of results in notebooks: the statistics table and a small equity chart as inline
SVG (no JavaScript, so a notebook of many results stays light and needs no plotting library)."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from .decimate import minmax_indices
from .page import stats_table

_HEADLINE = [
    "final_equity",
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "win_rate",
    "profit_factor",
    "trades",
    "exposure",
]


def sparkline(values: np.ndarray, width: int = 360, height: int = 110, color: str = "#3366cc") -> str:
    """An SVG polyline of ``values`` (min/max decimated to the pixel width)."""
    y = np.asarray(values, dtype=np.float64)
    y = y[np.isfinite(y)]
    if y.size < 2:
        return ""
    y = y[minmax_indices(y, buckets=width // 2)]
    lo, hi = float(y.min()), float(y.max())
    span = hi - lo or 1.0
    xs = np.linspace(2, width - 2, y.size)
    ys = height - 2 - (y - lo) / span * (height - 4)
    pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys, strict=True))
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
        f'<polyline fill="none" stroke="{color}" stroke-width="1.4" points="{pts}"/>'
        f'<text x="4" y="12" font-size="10" fill="#666">{hi:,.0f}</text>'
        f'<text x="4" y="{height - 4}" font-size="10" fill="#666">{lo:,.0f}</text></svg>'
    )


def _box(title: str, table: str, chart: str) -> str:
    return (
        f'<div style="display:flex;gap:16px;align-items:flex-start"><div><b>{html.escape(title)}</b>'
        f"{table}</div><div>{chart}</div></div>"
    )


def backtest_html(result: Any) -> str:
    params = ", ".join(f"{k}={v}" for k, v in result.parameters.items())
    title = f"{result.strategy}({params}) on {', '.join(result.symbols)} {result.frequency}"
    return _box(title, stats_table(result.metrics, _HEADLINE), sparkline(result.equity["equity"].to_numpy()))


def optimization_html(opt: Any) -> str:
    best = ", ".join(f"{k}={v}" for k, v in opt.best.items())
    info = {
        "sets": opt.table.height,
        "skipped": opt.skipped,
        "deflated_sharpe": opt.deflated_sharpe,
        "pbo": opt.pbo,
        f"best {opt.metric}": opt.table[opt.metric][0],
    }
    run = opt.best_run
    eq = (
        run.equity["equity"].to_numpy()
        if hasattr(run, "frames")
        else getattr(run, "equity", np.zeros((0, 1)))
    )
    eq = eq[:, 0] if getattr(eq, "ndim", 1) == 2 else eq
    return _box(f"optimization of {opt.metric}, best {best}", stats_table(info), sparkline(eq))


def walk_forward_html(wf: Any) -> str:
    info = {"windows": wf.windows.height, "efficiency": wf.efficiency, **wf.metrics}
    return _box(
        "walk-forward (stitched out-of-sample)",
        stats_table(info, ["windows", "efficiency", *_HEADLINE]),
        sparkline(wf.equity["equity"].to_numpy()),
    )


def _text_table(cols: dict[str, list[str]]) -> str:
    """An HTML table of columns of text (``research.text_columns``)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    rows = "".join("<tr>" + "".join(f'<td style="text-align:right">{html.escape(v)}</td>' for v in row)
                   + "</tr>" for row in zip(*cols.values(), strict=True))  # fmt: skip
    return f"<table><tr>{head}</tr>{rows}</table>"


def monte_carlo_html(mc: Any) -> str:
    from .research import observed_columns, text_columns

    table = (f"{_text_table(text_columns(mc.table))}<b>the run itself</b>"
             f"{_text_table(observed_columns(mc))}")  # fmt: skip
    chart = sparkline(mc.fan["p50"].to_numpy()) if mc.fan.height else ""
    return _box(f"Monte Carlo ({mc.method}, {mc.n_simulations} simulations, seed {mc.seed})", table, chart)
