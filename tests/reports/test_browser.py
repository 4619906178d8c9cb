"""The written reports in a real headless Chromium: every chart drawn, no console error, no request
beyond the file itself, and a screenshot under the test's folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backtape.optimization import monte_carlo, optimize

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Any:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def _open(browser: Any, path: Path, shot: Path) -> dict[str, Any]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.resolve().as_uri())
    page.wait_for_selector("body[data-rendered], body[data-error]", timeout=60_000)
    info = page.evaluate("""() => ({
        error: document.body.dataset.error || null,
        expected: Number(document.body.dataset.figures),
        rendered: Number(document.body.dataset.rendered),
        charts: document.querySelectorAll('div.chart').length,
        plotted: [...document.querySelectorAll('div.chart')]
            .filter((d) => d.classList.contains('js-plotly-plot') && d.querySelector('.main-svg')).length,
        traces: [...document.querySelectorAll('div.chart')].map((d) => (d.data || []).length),
        rows: [...document.querySelectorAll('table.list')].map((t) => t.querySelectorAll('tbody tr').length),
    })""")
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    info["errors"], info["requests"] = errors, requests
    return info


def _check(info: dict[str, Any], path: Path) -> None:
    assert info["error"] is None and info["errors"] == []
    assert info["expected"] == info["rendered"] == info["charts"] == info["plotted"] >= 1
    assert all(n >= 1 for n in info["traces"])
    allowed = (path.resolve().as_uri(), "http://127.0.0.1")
    assert all(u.startswith(allowed) for u in info["requests"]), info["requests"]


def test_backtest_report_renders_in_chromium(browser: Any, run: Any, tmp_path: Path) -> None:
    path = run.report(tmp_path / "run.html")
    info = _open(browser, path, tmp_path / "run.png")
    _check(info, path)
    assert info["traces"][0] >= 2 * 3 + 3  # two price panels with entries and exits, equity, B&H, ...
    assert info["rows"] == [run.trades.height + run.open_trades.height]
    assert (tmp_path / "run.png").stat().st_size > 50_000


def test_research_reports_render_in_chromium(browser: Any, run: Any, tmp_path: Path) -> None:
    opt = optimize(
        "sma_crossover",
        {"fast": [5, 10, 20], "slow": [30, 50, 80]},
        "AAPL",
        "2012-01-01",
        "2015-01-01",
        source="sample",
    )
    for name, res in (("opt", opt), ("mc", monte_carlo(run, 300, seed=1))):
        path = res.report(tmp_path / f"{name}.html")
        _check(_open(browser, path, tmp_path / f"{name}.png"), path)
