"""The dashboard in real headless Chromium against a real ``backtape serve`` on 127.0.0.1.

Every chart must render (plotly traces in the DOM), the console stays free of errors, no request
leaves 127.0.0.1, and a person's path works: runs page -> a run -> back -> tick two runs -> compare.
Screenshots go to the test's output folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .conftest import DashWorkspace

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                                reason=f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")


#: a script the policy blocks (say, a library's ``new Function``) may fail quietly: say it as an error
_REPORT_CSP_VIOLATIONS = """document.addEventListener('securitypolicyviolation', (e) =>
    console.error('Content-Security-Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI));"""
#: what plotly draws instead of a WebGL chart it cannot draw
NO_WEBGL = "WebGL is not supported"


class Watched:
    """A page with its console errors, uncaught exceptions and every requested URL recorded."""

    def __init__(self, page: object) -> None:
        self.page = page
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)  # type: ignore[attr-defined]
        page.on("pageerror", lambda e: self.errors.append(str(e)))  # type: ignore[attr-defined]
        page.on("request", lambda r: self.requests.append(r.url))  # type: ignore[attr-defined]
        page.add_init_script(_REPORT_CSP_VIOLATIONS)  # type: ignore[attr-defined]

    def outside(self) -> list[str]:
        return [u for u in self.requests if urlsplit(u).scheme not in ("data", "blob", "about")
                and urlsplit(u).hostname != "127.0.0.1"]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (extra dev)")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def watched(browser: object) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    yield Watched(context.new_page())
    context.close()


def _charts_rendered(page: object, expected: dict[str, int]) -> None:
    """Each chart id drew exactly its number of traces (plotly's own trace elements in the DOM)."""
    for chart_id, traces in expected.items():
        page.wait_for_selector(f"#{chart_id}[data-rendered]", timeout=30_000)  # type: ignore[attr-defined]
        assert page.get_attribute(f"#{chart_id}", "data-rendered") == str(traces)  # type: ignore[attr-defined]
        selector = f"#{chart_id} .main-svg g.trace, #{chart_id} .main-svg g.hm"  # scatter, heatmap
        drawn = page.locator(selector).count()  # type: ignore[attr-defined]
        assert drawn == traces, f"{chart_id}: {drawn} traces drawn, {traces} expected"
    assert NO_WEBGL not in page.inner_text("body")  # type: ignore[attr-defined]


def test_click_from_runs_to_a_run_and_to_a_comparison(watched: Watched, live_server: str,
                                                       dash_ws: DashWorkspace, tmp_path: Path) -> None:
    page = watched.page
    page.goto(f"{live_server}/runs")  # type: ignore[attr-defined]
    page.screenshot(path=str(tmp_path / "runs.png"), full_page=True)  # type: ignore[attr-defined]
    first = dash_ws.run_ids[0]
    page.click(f'a.run-link[href="/runs/{first}"]')  # type: ignore[attr-defined]
    page.wait_for_url(f"**/runs/{first}")  # type: ignore[attr-defined]
    _charts_rendered(page, {"equity-chart": 2})
    assert page.locator("#trades tbody tr").count() > 0  # type: ignore[attr-defined]
    page.screenshot(path=str(tmp_path / "run.png"), full_page=True)  # type: ignore[attr-defined]
    page.go_back()  # type: ignore[attr-defined]
    for run_id in dash_ws.run_ids[:2]:
        page.check(f'input[name="ids"][value="{run_id}"]')  # type: ignore[attr-defined]
    page.click("#compare-button")  # type: ignore[attr-defined]
    page.wait_for_url("**/compare?*")  # type: ignore[attr-defined]
    _charts_rendered(page, {"compare-chart": 4})
    assert page.locator("#compare-stats tbody tr").count() > 10  # type: ignore[attr-defined]
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)  # type: ignore[attr-defined]
    assert watched.errors == []
    assert watched.outside() == []


@pytest.mark.parametrize(("path", "charts"), [
    ("/optimizations/{opt}", {"heatmap-chart": 2}),  # the heatmap and the best set's star
    ("/data", {"coverage-chart": 4}),  # covered, empty, gaps and the provider key's stale tail
])
def test_every_chart_renders_without_errors_or_outside_requests(
        watched: Watched, live_server: str, dash_ws: DashWorkspace, tmp_path: Path,
        path: str, charts: dict[str, int]) -> None:
    url = live_server + path.format(opt=dash_ws.optimization_id, run=dash_ws.run_ids[0])
    response = watched.page.goto(url)  # type: ignore[attr-defined]
    assert response.status == 200
    _charts_rendered(watched.page, charts)
    name = path.strip("/").split("/")[0]
    watched.page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]
    assert watched.errors == []
    assert watched.outside() == []


#: what a report page says of itself once drawn (see ``backtape.reports.page``)
_REPORT_STATE = """() => ({
    error: document.body.dataset.error || null,
    expected: Number(document.body.dataset.figures), rendered: Number(document.body.dataset.rendered),
    plotted: [...document.querySelectorAll('div.chart')]
        .filter((d) => d.classList.contains('js-plotly-plot') && d.querySelector('.main-svg')).length,
    traces: Math.min(...[...document.querySelectorAll('div.chart')].map((d) => (d.data || []).length)),
})"""


@pytest.mark.parametrize("path", ["/runs/{run}/report", "/optimizations/{opt}/report"])
def test_full_reports_render_from_the_server(watched: Watched, live_server: str, dash_ws: DashWorkspace,
                                            tmp_path: Path, path: str) -> None:
    """The reports package's page, served: plotly.js from the server, every figure drawn."""
    page = watched.page
    response = page.goto(live_server + path.format(run=dash_ws.run_ids[0], opt=dash_ws.optimization_id))  # type: ignore[attr-defined]
    assert response.status == 200
    page.wait_for_selector("body[data-rendered], body[data-error]", timeout=60_000)  # type: ignore[attr-defined]
    info = page.evaluate(_REPORT_STATE)  # type: ignore[attr-defined]
    assert info["error"] is None and info["expected"] >= 1
    assert info["rendered"] == info["expected"] == info["plotted"] and info["traces"] >= 1
    assert NO_WEBGL not in page.inner_text("body")  # type: ignore[attr-defined]
    kind = path.strip("/").split("/")[0]
    page.screenshot(path=str(tmp_path / f"{kind}-report.png"), full_page=True)  # type: ignore[attr-defined]
    assert watched.errors == []
    assert watched.outside() == []


def _listed(page: object) -> list[int]:
    links = page.locator("a.run-link").all_text_contents()  # type: ignore[attr-defined]
    return [int(x) for x in links]


def test_runs_filter_sort_and_page_by_clicking(watched: Watched, live_server: str, dash_ws: DashWorkspace,
                                               tmp_path: Path) -> None:
    """A person's use of the runs page: next page, a strategy chosen in the form, a symbol typed, a
    column header clicked to sort (each a real navigation in the browser)."""
    from backtape.results import ResultsStore

    page = watched.page
    page.goto(f"{live_server}/runs?per=2")  # type: ignore[attr-defined]
    first = _listed(page)
    page.click('a[rel="next"]')  # type: ignore[attr-defined]
    page.wait_for_url("**page=2**")  # type: ignore[attr-defined]
    second = _listed(page)
    assert len(first) == 2 and second and not set(first) & set(second)
    assert first + second == sorted(first + second, reverse=True)
    page.screenshot(path=str(tmp_path / "runs-page-2.png"), full_page=True)  # type: ignore[attr-defined]

    page.goto(f"{live_server}/runs")  # type: ignore[attr-defined]
    page.select_option('select[name="strategy"]', "DonchianBreakout")  # type: ignore[attr-defined]
    page.click('form.filters button[type="submit"]')  # type: ignore[attr-defined]
    page.wait_for_url("**strategy=DonchianBreakout**")  # type: ignore[attr-defined]
    assert _listed(page) == [dash_ws.run_ids[2]]
    page.screenshot(path=str(tmp_path / "runs-filtered.png"), full_page=True)  # type: ignore[attr-defined]

    page.click("text=clear")  # type: ignore[attr-defined]
    page.fill('input[name="symbol"]', "ko")  # type: ignore[attr-defined]
    page.press('input[name="symbol"]', "Enter")  # type: ignore[attr-defined]
    page.wait_for_url("**symbol=ko**")  # type: ignore[attr-defined]
    assert _listed(page) == [dash_ws.run_ids[1]]

    page.goto(f"{live_server}/runs")  # type: ignore[attr-defined]
    page.click('#runs thead a:text-is("sharpe")')  # type: ignore[attr-defined]
    page.wait_for_url("**sort=sharpe**")  # type: ignore[attr-defined]
    stored = ResultsStore(dash_ws.db).list_runs(100).iter_rows(named=True)
    sharpe = {int(r["id"]): r["sharpe_ratio"] for r in stored}
    shown = [sharpe[i] for i in _listed(page)]
    assert shown == sorted(shown, reverse=True) and len(shown) == len(sharpe)
    page.screenshot(path=str(tmp_path / "runs-by-sharpe.png"), full_page=True)  # type: ignore[attr-defined]
    assert watched.errors == []
    assert watched.outside() == []


def test_optimization_best_set_links_to_its_run(watched: Watched, live_server: str, dash_ws: DashWorkspace,
                                                tmp_path: Path) -> None:
    page = watched.page
    page.goto(f"{live_server}/optimizations")  # type: ignore[attr-defined]
    page.click(f'#optimizations a[href="/optimizations/{dash_ws.optimization_id}"]')  # type: ignore[attr-defined]
    _charts_rendered(page, {"heatmap-chart": 2})
    page.click(f'#best-sets a[href="/runs/{dash_ws.best_run_id}"]')  # type: ignore[attr-defined]
    page.wait_for_url(f"**/runs/{dash_ws.best_run_id}")  # type: ignore[attr-defined]
    _charts_rendered(page, {"equity-chart": 2})
    page.screenshot(path=str(tmp_path / "best-set-run.png"), full_page=True)  # type: ignore[attr-defined]
    assert watched.errors == []
    assert watched.outside() == []
