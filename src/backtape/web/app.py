"""The dashboard's Starlette application: read-only GET pages over the results database and the data.

Pages: ``/runs`` (sortable, filterable, paged), ``/runs/{id}`` (one run), ``/runs/{id}/report`` (its
full report: the one ``result.report()`` writes, from ``backtape.reports``), ``/compare?ids=1,2``
(overlaid equity and drawdown, statistics side by side), ``/optimizations`` and
``/optimizations/{id}`` (table, heatmap over two parameters, best sets linked to their runs; its full
report at ``/optimizations/{id}/report``) and ``/data`` (cache and bundle coverage, freshness and
quality). Every script, style and the plotly bundle are served by the app itself; the
Content-Security-Policy forbids anything else, so a page works offline and never calls out.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._secrets import redact
from ..errors import BacktapeError
from ..reports.figure import dumps
from ..reports.page import plotly_js_path, script_source
from ..results import queries
from ..results.store import ResultsStore
from . import charts, pages
from .cache import PageCache, StaticAsset
from .coverage import data_overview

_HERE = Path(__file__).parent
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
#: a full report (``backtape.reports``) loads plotly.js from here and runs its one inline script, by hash;
#: its WebGL traces (long series) draw through regl, which compiles its draw calls with ``new Function``
REPORT_CSP = CSP.replace("script-src 'self'", f"script-src 'self' 'unsafe-eval' {script_source()}")
PLOTLY_URL = "/static/plotly.min.js"
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]


@dataclass
class Settings:
    """What the dashboard reads: the results database and, optionally, the workspace's data folders."""

    results: ResultsStore
    cache_dir: Path | None = None
    bundles_dir: Path | None = None


@functools.cache
def _env() -> jinja2.Environment:
    """The templates, compiled once per process. Every text a template writes passes ``_redacted``:
    the page around the values is the templates' own text, so the values are all that can leak."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_HERE / "templates"), finalize=_redacted,
                             autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined)
    env.filters.update(pages.FILTERS)
    env.globals["figure_json"] = figure_json
    return env


def _redacted(value: Any) -> Any:
    """A template's value with secrets masked; numbers cannot hold one, and markup marked safe is the
    templates' own (a figure's JSON is redacted where it is built)."""
    if isinstance(value, str) and value and not isinstance(value, markupsafe.Markup):
        return redact(value)
    return value


def figure_json(figure: dict[str, Any]) -> markupsafe.Markup:
    """A figure as JSON safe inside ``<script type="application/json">`` (no ``</`` sequence), every
    text in it (trace names, labels, titles) redacted."""
    text = dumps(_redact_texts(figure)).decode()
    return markupsafe.Markup(text.replace("</", "<\\/"))


def _redact_texts(value: Any) -> Any:
    """``value`` with every string redacted; arrays and lists of numbers (a series) are passed over whole."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_texts(v) for k, v in value.items()}
    if isinstance(value, list) and not (value and isinstance(value[0], int | float)):
        return [_redact_texts(v) for v in value]
    return value


class Dashboard:
    """The routes, bound to one ``Settings`` and one template environment."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env = _env()
        self.db_label = queries.label(settings.results)
        self.reports = PageCache()
        self._plotly: StaticAsset | None = None

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        """The page, every value it shows redacted (see ``_env``)."""
        html = self.env.get_template(template).render(db_label=self.db_label, **context)
        return HTMLResponse(html, status_code=status)

    async def index(self, request: Request) -> Response:
        return RedirectResponse("/runs", status_code=307)

    async def runs(self, request: Request) -> Response:
        flt = pages.run_filter(request.query_params)
        page = queries.query_runs(self.settings.results, flt)
        return self.render("runs.html", page=page, rows=pages.run_cells(page), flt=flt,
                           links=pages.RunLinks(flt), strategies=queries.strategies(self.settings.results),
                           columns=pages.RUN_COLUMNS)

    async def run(self, request: Request) -> Response:
        view = queries.run_view(self.settings.results, int(request.path_params["run_id"]))
        return self.render("run.html", **pages.run_context(view))

    async def run_report(self, request: Request) -> Response:
        return self._report_response(self.run_report_body(int(request.path_params["run_id"])))

    async def optimization_report(self, request: Request) -> Response:
        return self._report_response(self.optimization_report_body(int(request.path_params["opt_id"])))

    def run_report_body(self, run_id: int) -> bytes:
        """The report ``result.report()`` writes for stored run ``run_id`` (see ``_report_body``)."""
        def build() -> Any:
            from ..reports.backtest import backtest_page

            return backtest_page(self.settings.results.load_result(run_id))

        return self._report_body(("run", run_id, queries.stamp(self.settings.results, "run", run_id)), build)

    def optimization_report_body(self, opt_id: int) -> bytes:
        """The report of stored optimization ``opt_id`` (``backtape report --optimization``)."""
        def build() -> Any:
            from ..reports import research, stored_optimization

            return research.optimization_page(stored_optimization(self.settings.results, opt_id))

        key = ("optimization", opt_id, queries.stamp(self.settings.results, "optimization", opt_id))
        return self._report_body(key, build)

    def _report_body(self, key: Hashable, build: Callable[[], Any]) -> bytes:
        """The report ``build`` makes (a ``backtape.reports`` page), rendered to load plotly.js from
        this server, redacted, and kept: the stored result behind ``key`` never changes."""
        body = self.reports.get(key)
        if body is None:
            from ..reports.page import render

            body = redact(render(build(), plotly_src=PLOTLY_URL)).encode()
            self.reports.put(key, body)
        return body

    @staticmethod
    def _report_response(body: bytes) -> Response:
        return Response(body, media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": REPORT_CSP})

    def warm_up(self) -> None:
        """Compile the templates, import what the optimization pages use and build the newest run's
        report (the first one imports and initializes what every report uses), so that a person's
        first pages cost only their own work. Meant for a background thread while the server already
        answers."""
        import importlib

        for name in self.env.list_templates(extensions=["html"]):
            self.env.get_template(name)
        for module in ("backtape.optimization.search", "backtape.reports.research"):
            importlib.import_module(module)
        newest = queries.query_runs(self.settings.results, queries.RunFilter(per_page=1)).rows
        if newest:
            self.run_report_body(int(newest[0]["id"]))

    async def compare(self, request: Request) -> Response:
        ids = pages.run_ids(request.query_params)
        rows = queries.run_rows(self.settings.results, ids)
        curves = queries.equity_curves(self.settings.results, ids)
        named = {f"#{i} {r['strategy_name']}": curves[i] for i, r in zip(ids, rows, strict=True)}
        figure = charts.equity_figure(named, normalize=True)
        return self.render("compare.html", rows=rows, figure=figure, table=pages.compare_table(rows))

    async def optimizations(self, request: Request) -> Response:
        return self.render("optimizations.html", rows=queries.list_optimizations(self.settings.results))

    async def optimization(self, request: Request) -> Response:
        opt = self.settings.results.get_optimization(int(request.path_params["opt_id"]))
        return self.render("optimization.html", **pages.optimization_context(
            self.settings.results, opt, request.query_params))

    async def data(self, request: Request) -> Response:
        now = time.time_ns()
        overview = data_overview(self.settings.cache_dir, self.settings.bundles_dir, now)
        rows = [k.timeline_row() for k in overview.keys]
        figure = charts.timeline_figure(rows, now) if rows else None
        return self.render("data.html", overview=overview, figure=figure, now=now,
                           cache_dir=self.settings.cache_dir, bundles_dir=self.settings.bundles_dir)

    async def plotly(self, request: Request) -> Response:
        """plotly.js from memory: gzip when the browser takes it, ``304`` when it already has it."""
        if self._plotly is None:
            self._plotly = StaticAsset.read(plotly_js_path())
        asset = self._plotly
        headers = {"Cache-Control": "public, max-age=86400", "ETag": asset.etag, "Vary": "Accept-Encoding"}
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(asset.gzipped, media_type="text/javascript",
                            headers={**headers, "Content-Encoding": "gzip"})
        return Response(asset.raw, media_type="text/javascript", headers=headers)

    async def failed(self, request: Request, exc: Exception) -> Response:
        """The error page: ``400`` for a query it cannot use (``pages.BadQuery``), ``404`` for anything
        else the store does not hold."""
        if isinstance(exc, HTTPException):
            return self.render("error.html", exc.status_code, code=exc.status_code, message=exc.detail)
        status = 400 if isinstance(exc, pages.BadQuery) else 404
        return self.render("error.html", status, code=status, message=str(exc))


class SecurityHeaders:
    """Lock every response down, and say what it cost: ``Server-Timing`` carries the wall time and the
    CPU time of the event-loop thread, where pages are built (requests are handled one at a time).
    Plain ASGI: it edits the response start message and leaves the body as it streams."""

    _FIXED = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
              (b"x-frame-options", b"DENY")]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wall, cpu = time.perf_counter(), time.thread_time()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                timing = (f"app;dur={(time.perf_counter() - wall) * 1000:.1f}, "
                          f"cpu;dur={(time.thread_time() - cpu) * 1000:.1f}")
                headers.append((b"server-timing", timing.encode()))
                if not any(k.lower() == b"content-security-policy" for k, _ in headers):
                    headers.append((b"content-security-policy", CSP.encode()))
                message = {**message, "headers": headers + self._FIXED}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(results: ResultsStore | str | Path | None, *, cache_dir: Path | None = None,
               bundles_dir: Path | None = None, allowed_hosts: list[str] | None = None) -> Starlette:
    """The dashboard over ``results`` (a store, or a database path/URL opened read-only).

    ``allowed_hosts`` restricts the ``Host`` header (``serve`` passes the loopback names when bound to
    127.0.0.1, so a page of another site cannot reach the dashboard through DNS rebinding).
    """
    store = results if isinstance(results, ResultsStore) else queries.open_readonly(results)
    dash = Dashboard(Settings(store, cache_dir, bundles_dir))
    get = ["GET"]
    routes = [
        Route("/", dash.index, methods=get),
        Route("/runs", dash.runs, methods=get),
        Route("/runs/{run_id:int}", dash.run, methods=get),
        Route("/runs/{run_id:int}/report", dash.run_report, methods=get),
        Route("/compare", dash.compare, methods=get),
        Route("/optimizations", dash.optimizations, methods=get),
        Route("/optimizations/{opt_id:int}", dash.optimization, methods=get),
        Route("/optimizations/{opt_id:int}/report", dash.optimization_report, methods=get),
        Route("/data", dash.data, methods=get),
        Route(PLOTLY_URL, dash.plotly, methods=get),
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
    ]
    middleware = [Middleware(SecurityHeaders)]
    if allowed_hosts:
        middleware.insert(0, Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    handlers: dict[Any, Any] = {BacktapeError: dash.failed, HTTPException: dash.failed}
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=handlers)
    app.state.dashboard = dash
    return app
