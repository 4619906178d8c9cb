"""The report page: sections of figures and tables in one self-contained HTML file.

plotly.js and the figures' data are embedded gzip-compressed (base64) and unpacked in the browser
with ``DecompressionStream``, so the page needs no network and stays small (plotly.js alone is
4.8 MB uncompressed). Tables are plain HTML; long ones (trade lists) are built from the payload.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import math
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ReportDependencyError
from .figure import Figure, dumps

_NEEDS_PLOTLY = "reports need plotly, in the 'report' extra: pip install 'backtape[report]'"


def graph_objects() -> Any:
    """``plotly.graph_objects`` (``.plot()`` returns its figures), or a one-line ``ReportDependencyError``."""
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise ReportDependencyError(_NEEDS_PLOTLY) from None
    return go


@dataclass
class Section:
    """A titled block of the page: a figure (a plotly.js spec, ``figure.Figure``), an HTML fragment,
    or a table from the payload."""

    title: str
    figure: Figure | None = None
    html: str = ""
    table: dict[str, list[Any]] | None = None
    note: str = ""


@dataclass
class Page:
    title: str
    subtitle: str
    sections: list[Section] = field(default_factory=list)


def stats_table(metrics: dict[str, Any], names: list[str] | None = None) -> str:
    """An HTML two-column table of ``metrics`` (all of them in the commands' order, or ``names`` in
    that order), labelled and formatted as every command shows them (``backtape.formatting``)."""
    from ..formatting import label, metric, metric_rows

    pairs = metric_rows(metrics) if names is None else [
        (label(k), metric(k, metrics[k])) for k in names if k in metrics]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in pairs)
    return f'<table class="stats">{rows}</table>'


def columns(frame: Any, limit: int | None = None) -> dict[str, list[Any]]:
    """A Polars frame as JSON-ready columns (times as ISO text, floats rounded, NaN as null)."""
    import polars as pl

    df = frame.head(limit) if limit else frame
    df = df.with_columns(pl.col(pl.Datetime).dt.strftime("%Y-%m-%d %H:%M"), pl.col(pl.Float64).round(6))
    out: dict[str, list[Any]] = {}
    for name in df.columns:
        vals = df[name].to_list()
        out[name] = [None if isinstance(v, float) and not math.isfinite(v) else v for v in vals]
    return out


def plotly_js_path() -> Path:
    """The minified plotly.js shipped inside the ``plotly`` package (what reports embed and
    ``backtape serve`` serves), or a one-line ``ReportDependencyError``."""
    import importlib.util

    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise ReportDependencyError(_NEEDS_PLOTLY)
    path = Path(spec.origin).parent / "package_data" / "plotly.min.js"
    if not path.exists():
        raise ReportDependencyError(f"plotly is installed without its JavaScript ({path}): reinstall plotly")
    return path


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    """plotly.js, gzip-compressed and base64-encoded (computed once per process)."""
    return base64.b64encode(gzip.compress(plotly_js_path().read_bytes(), 6, mtime=0)).decode()


def render(page: Page, plotly_src: str | None = None) -> str:
    """The complete HTML document of ``page``: self-contained, or loading plotly.js from
    ``plotly_src`` (a same-origin URL, as ``backtape serve`` does) instead of carrying it."""
    started = time.perf_counter()
    body: list[str] = []
    figs: list[bytes] = []
    tables: list[bytes] = []
    for i, sec in enumerate(page.sections):
        parts = [f"<h2>{html.escape(sec.title)}</h2>"]
        if sec.note:
            parts.append(f'<p class="note">{html.escape(sec.note)}</p>')
        if sec.figure is not None:
            fid = f"fig{i}"
            parts.append(f'<div class="chart" id="{fid}"></div>')
            figs.append(b'{"id":"%s","fig":%s}' % (fid.encode(), dumps(sec.figure)))
        if sec.table is not None:
            tid = f"tab{i}"
            parts.append(f'<div class="tablewrap"><table class="list" id="{tid}"></table></div>')
            tables.append(b'{"id":"%s","cols":%s}' % (tid.encode(), dumps(sec.table)))
        parts.append(sec.html)
        body.append(f"<section>{''.join(parts)}</section>")
    payload = b'{"figures":[%s],"tables":[%s]}' % (b",".join(figs), b",".join(tables))
    data = base64.b64encode(gzip.compress(payload, 3, mtime=0)).decode()  # 3: a third of 6's time, 10% larger
    if plotly_src is None:
        plotly = f'<script id="bt-plotly" type="application/octet-stream">{_plotly_js()}</script>'
        where = "plotly.js embedded, works offline"
    else:
        plotly = f'<script src="{html.escape(plotly_src)}"></script>'
        where = "plotly.js served by backtape serve"
    return _TEMPLATE.format(
        title=html.escape(page.title),
        subtitle=html.escape(page.subtitle),
        body="\n".join(body),
        plotly=plotly,
        data=data,
        css=_CSS,
        js=_JS,
        n_figures=len(figs),
        elapsed=f"{time.perf_counter() - started:.2f}",
        where=where,
    )


def script_source() -> str:
    """The page's one inline script as a Content-Security-Policy source (``'sha256-...'``), so a
    server that hands out the report (``render(page, plotly_src=...)``) can allow it and nothing else."""
    digest = base64.b64encode(hashlib.sha256(_JS.encode()).digest()).decode()
    return f"'sha256-{digest}'"


def write_page(path: str | Path, page: Page) -> Path:
    """Write ``page`` to ``path`` (parent folders created); returns the path."""
    plotly_js_path()
    out = Path(path)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"the report path must end in .html, got {str(path)!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(page), encoding="utf-8")
    return out


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#b8c0cc;font-size:13px}main{padding:8px 24px 40px}
section{background:#fff;border-radius:6px;padding:10px 16px;margin:14px 0;box-shadow:0 1px 2px #0002}
h2{font-size:15px;margin:4px 0 8px}.note{font-size:12px;color:#5b6475;margin:0 0 6px}
table{border-collapse:collapse;font-size:12px}td,th{padding:3px 10px;border-bottom:1px solid #eceef2}
table.stats{columns:2}table.stats th{text-align:left;font-weight:500;color:#5b6475}
table.stats td{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:0 24px}
.tablewrap{max-height:420px;overflow:auto}table.list td{text-align:right;font-variant-numeric:tabular-nums}
table.list th{position:sticky;top:0;background:#fff}footer{font-size:11px;color:#8a93a3;padding:0 24px 20px}
"""

_JS = """
(async () => {
  const unzip = async (id) => {
    const raw = atob(document.getElementById(id).textContent.trim());
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    return await new Response(stream).text();
  };
  const esc = (v) => String(v).replace(/[&<>]/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;'})[c]);
  if (typeof Plotly === 'undefined') {
    const lib = document.createElement('script');
    lib.textContent = await unzip('bt-plotly');
    document.head.appendChild(lib);
  }
  const data = JSON.parse(await unzip('bt-data'));
  for (const t of data.tables) {
    const el = document.getElementById(t.id), names = Object.keys(t.cols);
    const n = names.length ? t.cols[names[0]].length : 0;
    const head = '<tr>' + names.map((c) => '<th>' + esc(c) + '</th>').join('') + '</tr>';
    const rows = [];
    for (let i = 0; i < n; i++) {
      rows.push('<tr>' + names.map((c) => {
        const v = t.cols[c][i];
        return '<td>' + (v === null ? '' : (typeof v === 'number' ? v.toLocaleString() : esc(v))) + '</td>';
      }).join('') + '</tr>');
    }
    el.innerHTML = '<thead>' + head + '</thead><tbody>' + rows.join('') + '</tbody>';
  }
  for (const f of data.figures) {
    await Plotly.newPlot(f.id, f.fig.data, f.fig.layout, {responsive: true, displaylogo: false});
  }
  document.body.dataset.rendered = String(data.figures.length);
})().catch((e) => { document.body.dataset.error = String(e); console.error(e); });
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<style>{css}</style></head>
<body data-figures="{n_figures}"><header><h1>{title}</h1><p>{subtitle}</p></header><main>
{body}
</main><footer>backtape report · written in {elapsed} s · {where}</footer>
{plotly}
<script id="bt-data" type="application/octet-stream">{data}</script>
<script>{js}</script></body></html>
"""
