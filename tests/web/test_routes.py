"""The dashboard's routes through Starlette's TestClient over a real SQLite database and cache."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from backtape.errors import BacktapeError
from backtape.formatting import metric
from backtape.results import ResultsStore
from backtape.results.queries import RunFilter, open_readonly, query_runs
from backtape.results.store import _url
from backtape.web import create_app
from backtape.web.charts import equity_figure

from .conftest import FAKE_SECRETS, DashWorkspace


@pytest.fixture(scope="module")
def client(dash_ws: DashWorkspace) -> TestClient:
    app = create_app(dash_ws.db, cache_dir=dash_ws.cache_dir, bundles_dir=dash_ws.bundles_dir)
    return TestClient(app)


def _figure(html: str, chart_id: str) -> dict:
    match = re.search(rf'<script type="application/json" id="{chart_id}-data">(.*?)</script>', html, re.S)
    assert match, f"no figure {chart_id}"
    return json.loads(match.group(1))


def _run_ids_listed(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'class="run-link" href="/runs/(\d+)"', html)]


def test_runs_page_lists_sorts_filters_and_pages(client: TestClient, dash_ws: DashWorkspace) -> None:
    everything = client.get("/runs")
    assert everything.status_code == 200
    listed = _run_ids_listed(everything.text)
    assert set(dash_ws.run_ids) <= set(listed) and listed == sorted(listed, reverse=True)
    store = ResultsStore(dash_ws.db)
    sharpe = {int(r["id"]): r["sharpe_ratio"] for r in store.list_runs(1000).iter_rows(named=True)}
    by_sharpe = _run_ids_listed(client.get("/runs?sort=sharpe&dir=asc").text)
    values = [sharpe[i] for i in by_sharpe if sharpe[i] is not None]
    assert values == sorted(values)
    only_ko = _run_ids_listed(client.get("/runs?symbol=ko").text)
    assert only_ko == [dash_ws.run_ids[1]]
    donchian = _run_ids_listed(client.get("/runs?strategy=DonchianBreakout").text)
    assert donchian == [dash_ws.run_ids[2]]
    late = _run_ids_listed(client.get("/runs?from=2014-06-01").text)
    assert dash_ws.run_ids[1] not in late and dash_ws.run_ids[0] in late
    early = _run_ids_listed(client.get("/runs?to=2012-12-31").text)
    assert dash_ws.run_ids[2] not in early and dash_ws.run_ids[1] in early
    first = client.get("/runs?per=2&page=1").text
    second = client.get("/runs?per=2&page=2").text
    assert len(_run_ids_listed(first)) == 2 and 'rel="next"' in first and 'rel="prev"' in second
    assert not set(_run_ids_listed(first)) & set(_run_ids_listed(second))


def _message(html: str) -> str:
    match = re.search(r'<p class="error">(.*?)</p>', html, re.S)
    assert match, "no error message"
    return match.group(1)


@pytest.mark.parametrize(("url", "words"), [
    ("/runs?start=notadate", ["&#39;start&#39;", "from=", "YYYY-MM-DD"]),  # not a parameter: not ignored
    ("/runs?from=yesterday", ["from=", "yesterday", "YYYY-MM-DD"]),
    ("/runs?to=2014-13-01", ["to=", "2014-13-01", "YYYY-MM-DD"]),
    ("/runs?from=2014-06-01garbage", ["from=", "garbage", "YYYY-MM-DD"]),
    ("/runs?from=2015-01-01&to=2014-01-01", ["from=2015-01-01", "to=2014-01-01"]),
    ("/runs?sort=nonsense", ["sort=", "nonsense", "sharpe"]),
    ("/runs?dir=up", ["dir=", "up", "asc or desc"]),
    ("/runs?page=x", ["page=", "x", "whole number"]),
    ("/runs?page=0", ["page=", "whole number from 1"]),
    ("/runs?per=10000", ["per=", "10000", "1 to 500"]),
    ("/compare?ids=1,x", ["run id", "x", "ids=1,2"]),
])
def test_bad_query_is_a_400_page_naming_the_parameter_and_its_form(client: TestClient, url: str,
                                                                    words: list[str]) -> None:
    response = client.get(url)
    assert response.status_code == 400 and "Cannot show this page" in response.text
    message = _message(response.text)
    assert all(w in message for w in words), message


def test_good_queries_and_missing_things_are_not_400(client: TestClient) -> None:
    ok = "/runs?strategy=&symbol=&from=&to=&sort=sharpe&dir=asc&page=1&per=50"
    assert client.get(ok).status_code == 200  # the filter form's empty fields are no filter
    assert client.get("/runs?page=99").status_code == 200  # past the last page: an empty page
    missing = client.get("/runs/999999")
    assert missing.status_code == 404 and "Not available" in missing.text


def test_run_page_has_statistics_trades_and_chart(client: TestClient, dash_ws: DashWorkspace) -> None:
    run_id = dash_ws.run_ids[0]
    html = client.get(f"/runs/{run_id}").text
    result = ResultsStore(dash_ws.db).load_result(run_id)
    sharpe = metric("sharpe", result.metrics["sharpe"])
    assert "SmaCrossover" in html and f'<th>Sharpe</th><td class="num">{sharpe}</td>' in html
    assert f"Trades ({result.trades.height}" in html and "Open positions at the end" in html
    figure = _figure(html, "equity-chart")
    assert [t["name"] for t in figure["data"]] == ["equity", "equity drawdown"]
    assert figure["data"][0]["y"][-1] == pytest.approx(result.equity["equity"][-1])
    assert client.get("/runs/999999").status_code == 404


def _without_plotly_and_footer(html: str) -> str:
    html = re.sub(r'<script id="bt-plotly"[^>]*>[^<]*</script>|<script src="/static/plotly.min.js"></script>',
                  "", html)
    return re.sub(r"<footer>.*?</footer>", "", html)


def test_run_report_is_the_report_result_report_writes(client: TestClient, dash_ws: DashWorkspace,
                                                        tmp_path: Path) -> None:
    """One implementation: the served report is ``result.report()``'s page, loading plotly.js from the
    server instead of carrying it, under a policy allowing only its own inline script."""
    run_id = dash_ws.run_ids[0]
    served = client.get(f"/runs/{run_id}/report")
    assert served.status_code == 200 and served.text.startswith("<!DOCTYPE html>")
    written = ResultsStore(dash_ws.db).load_result(run_id).report(tmp_path / "run.html").read_text()
    assert 'id="bt-plotly"' in written and 'id="bt-plotly"' not in served.text
    assert '<script src="/static/plotly.min.js"></script>' in served.text
    assert _without_plotly_and_footer(served.text) == _without_plotly_and_footer(written)
    assert len(served.content) < len(written) / 5
    csp = served.headers["content-security-policy"]
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0] and "'sha256-" in csp
    assert client.get(f"/runs/{run_id}/report").content == served.content  # kept, not rebuilt
    assert client.get("/runs/999999/report").status_code == 404
    opt = client.get(f"/optimizations/{dash_ws.optimization_id}/report")
    assert opt.status_code == 200 and 'data-figures="' in opt.text and "PBO" in opt.text


def test_compare_overlays_runs_and_lists_statistics_side_by_side(client: TestClient,
                                                                  dash_ws: DashWorkspace) -> None:
    a, b = dash_ws.run_ids[:2]
    html = client.get(f"/compare?ids={a}&ids={b}").text
    figure = _figure(html, "compare-chart")
    assert len(figure["data"]) == 4 and figure["data"][0]["y"][0] == pytest.approx(1.0)
    assert f"#{a} SmaCrossover" in html and f"#{b} SmaCrossover" in html
    assert client.get(f"/compare?ids={a},{b}").text == html
    alone = client.get(f"/compare?ids={a}")
    assert alone.status_code == 400 and "two or more" in alone.text
    assert "999999" in client.get(f"/compare?ids={a},999999").text


def test_optimization_pages_heatmap_and_best_sets_link_runs(client: TestClient,
                                                            dash_ws: DashWorkspace) -> None:
    listing = client.get("/optimizations").text
    assert f'href="/optimizations/{dash_ws.optimization_id}"' in listing
    html = client.get(f"/optimizations/{dash_ws.optimization_id}").text
    figure = _figure(html, "heatmap-chart")
    heat = figure["data"][0]
    assert heat["type"] == "heatmap" and heat["x"] == ["5", "10"] and heat["y"] == ["20", "40"]
    best_row = html.split('id="best-sets"')[1].split("<tr>")[2]
    assert f'href="/runs/{dash_ws.best_run_id}"' in best_row
    assert client.get(f"/optimizations/{dash_ws.optimization_id}?x=nope").status_code == 400


def test_data_page_shows_coverage_gaps_empty_ranges_and_bundle_quality(client: TestClient) -> None:
    html = client.get("/data").text
    figure = _figure(html, "coverage-chart")
    by_name = {t["name"]: t for t in figure["data"]}
    assert set(by_name) == {"covered", "empty", "gaps", "stale"}
    assert set(by_name["stale"]["y"]) - {None} == {"cache · polygon · SPY · 1d"}  # local data never stale
    labels = set(by_name["covered"]["y"]) - {None}
    assert {"cache · sample · AAPL · 1d", "cache · sample · MSFT · 1d",
            "bundle sample-bundle · sample · KO · 1d"} <= labels
    assert "cache · sample · AAPL · 1d" in by_name["empty"]["y"]
    assert "cache · sample · AAPL · 1d" in by_name["gaps"]["y"]
    assert 'id="bundle-sample-bundle"' in html and "quality 100.0%" in html


def test_read_only_get_only_and_database_unchanged(client: TestClient, dash_ws: DashWorkspace) -> None:
    digest = hashlib.sha256(dash_ws.db.read_bytes()).hexdigest()
    for url in ("/runs", f"/runs/{dash_ws.run_ids[0]}", "/data", "/optimizations"):
        assert client.get(url).status_code == 200
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            assert client.request(method, url).status_code == 405
    assert hashlib.sha256(dash_ws.db.read_bytes()).hexdigest() == digest
    with pytest.raises(Exception, match="readonly"):
        open_readonly(dash_ws.db).delete_run(dash_ws.run_ids[0])
    with pytest.raises(BacktapeError, match="no results database"):
        open_readonly(dash_ws.db.parent / "missing.db")


def test_every_page_is_offline_and_locked_down(client: TestClient, dash_ws: DashWorkspace) -> None:
    html = client.get(f"/runs/{dash_ws.run_ids[0]}").text
    assert not re.search(r'(src|href)="(https?:)?//', html)
    csp = client.get("/runs").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000


@pytest.mark.filterwarnings("ignore:XDG_RUNTIME_DIR is not set")
def test_no_secrets_in_any_page(dash_ws: DashWorkspace, postgres_url: str,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A PostgreSQL results database reached with a password, and provider keys in the environment:
    neither appears in any page (the test server trusts local connections, so any password works)."""
    for name, value in FAKE_SECRETS.items():
        monkeypatch.setenv(name, value)
    password = "hunter2SECRETpw"
    url = sa.make_url(_url(postgres_url)).set(username="postgres", password=password)
    full = url.render_as_string(hide_password=False)
    source = ResultsStore(dash_ws.db)
    a, b = (source.load_result(i).save(ResultsStore(full)) for i in dash_ws.run_ids[:2])
    client = TestClient(create_app(full, cache_dir=dash_ws.cache_dir, bundles_dir=dash_ws.bundles_dir))
    urls = ["/runs", f"/runs/{a}", f"/runs/{a}/report", f"/compare?ids={a},{b}", "/optimizations", "/data",
            "/runs/999999", "/runs?sort=bad"]
    for page in urls:
        response = client.get(page)
        assert response.status_code in (200, 400, 404), page
        assert password not in response.text, page
        for value in FAKE_SECRETS.values():
            assert value not in response.text, page
    assert "postgres:***@" in client.get("/runs").text


def test_a_large_database_pages_quickly(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "many.db")
    for i in range(120):
        store.save_run(strategy=f"s{i % 3}", parameters={"n": i}, symbols=["AAA" if i % 2 else "BBB"],
                       start="2020-01-01", end="2021-01-01", frequency="1d",
                       metrics={"sharpe": (i * 37 % 101) / 10, "total_return": i / 100, "trades": i})
    flt = RunFilter(strategy="s1", symbol="AAA", sort="sharpe", descending=False, page=2, per_page=5)
    page = query_runs(open_readonly(tmp_path / "many.db"), flt)
    assert page.total == 20 and len(page.rows) == 5
    sharpes = [r["sharpe_ratio"] for r in page.rows]
    assert sharpes == sorted(sharpes) and all(r["strategy_name"] == "s1" for r in page.rows)


def test_long_equity_curves_are_decimated_keeping_extremes_and_ends() -> None:
    """The dashboard's charts thin long curves as the reports do (``reports.decimate``), drawn as SVG
    (its pages allow no ``eval``, which WebGL traces need)."""
    rng = np.random.default_rng(3)
    v = 10_000 + np.cumsum(rng.normal(size=100_000))
    t = np.arange(len(v), dtype=np.int64) * 60_000_000_000
    equity, under = equity_figure({"run": (t, v)})["data"]
    assert equity["type"] == under["type"] == "scatter" and len(equity["y"]) <= 2 * 1500 + 2
    assert equity["x"][0] == 0 and equity["x"][-1] == t[-1] // 1_000_000 and np.all(np.diff(equity["x"]) > 0)
    assert equity["y"].max() == v.max() and equity["y"].min() == v.min()
    assert under["y"].min() == pytest.approx(100 * (v / np.maximum.accumulate(v) - 1).min())


def test_secrets_stored_inside_a_run_are_masked_on_every_page(tmp_path: Path) -> None:
    """A key-bearing source URL, a registered key among the parameters and in the strategy name: the
    pages that show them (text, links, chart names and the full report) mask them all."""
    from backtape._secrets import register

    secret = "zzSECRETinRUN98765"
    register(secret)
    store = ResultsStore(tmp_path / "leaky.db")
    ids = [store.save_run(strategy=f"Leaky{secret}", parameters={"token": secret, "n": i}, symbols=["AAA"],
                          start="2020-01-01", end="2021-01-01", frequency="1d", source=f"http://x/?apikey={secret}",
                          metrics={"sharpe": 1.0 + i, "total_return": 0.1}) for i in range(2)]
    client = TestClient(create_app(tmp_path / "leaky.db"))
    for url in ("/runs", f"/runs/{ids[0]}", f"/compare?ids={ids[0]},{ids[1]}",
                f"/runs?strategy=Leaky{secret}", f"/runs/{ids[0]}/report"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert secret not in response.text and "***" in response.text, url
