"""Paging runs in SQL: every order, every page, runs without the sort metric last; the page cache."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from backtape.results import ResultsStore
from backtape.results.queries import RunFilter, open_readonly, query_runs, run_view
from backtape.web.cache import PageCache


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[ResultsStore, dict[int, float | None]]:
    path = tmp_path_factory.mktemp("paging") / "runs.db"
    writer = ResultsStore(path)
    sharpe: dict[int, float | None] = {}
    for i in range(37):
        value = math.nan if i % 5 == 0 else float((i * 13) % 7)  # NaN is stored as NULL; ties too
        run_id = writer.save_run(strategy=f"s{i % 2}", parameters={"n": i}, symbols=["AAA"],
                                 start="2020-01-01", end="2021-01-01", frequency="1d",
                                 metrics={"sharpe": value, "total_return": i})
        sharpe[run_id] = None if math.isnan(value) else value
    return open_readonly(path), sharpe


@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize("per_page", [4, 7, 50])
def test_pages_of_a_metric_sort_cover_every_run_once_missing_values_last(
        store: tuple[ResultsStore, dict[int, float | None]], descending: bool, per_page: int) -> None:
    ro, sharpe = store
    seen: list[int] = []
    pages = -(-len(sharpe) // per_page)
    for number in range(1, pages + 2):
        page = query_runs(ro, RunFilter(sort="sharpe", descending=descending, page=number, per_page=per_page))
        assert page.total == len(sharpe) and page.pages == pages
        seen += [r["id"] for r in page.rows]
    assert sorted(seen) == sorted(sharpe)  # each once, the page past the end empty
    values = [sharpe[i] for i in seen]
    present = [v for v in values if v is not None]
    assert values == present + [None] * (len(values) - len(present))
    assert present == sorted(present, reverse=descending)
    missing = [i for i in seen if sharpe[i] is None]
    assert missing == sorted(missing, reverse=True)  # newest first


def test_filtered_metric_sort_counts_and_orders_within_the_filter(
        store: tuple[ResultsStore, dict[int, float | None]]) -> None:
    ro, sharpe = store
    page = query_runs(ro, RunFilter(strategy="s1", sort="sharpe", descending=False, per_page=500))
    assert page.total == 18 and {r["strategy_name"] for r in page.rows} == {"s1"}
    values = [sharpe[r["id"]] for r in page.rows]
    present = [v for v in values if v is not None]
    assert values[: len(present)] == sorted(present) and all(v is None for v in values[len(present):])


def test_run_view_reads_what_the_run_page_shows(tmp_path: Path) -> None:
    from backtape import Workspace

    ws = Workspace()
    result = ws.run_backtest("sma_crossover", ["KO"], "2012-01-01", "2013-01-01", source="sample",
                             params={"fast": 5, "slow": 20})
    run_id = result.save(ResultsStore(tmp_path / "one.db"))
    view = run_view(open_readonly(tmp_path / "one.db"), run_id)
    assert view.trades.equals(result.trades) and view.equity.equals(result.equity)
    assert view.metrics.keys() == result.metrics.keys()
    assert view.metrics["sharpe"] == pytest.approx(result.metrics["sharpe"])
    assert (view.strategy, view.symbols, view.start, view.end, view.cash) == (
        result.strategy, result.symbols, result.start, result.end, result.cash)


def test_page_cache_keeps_the_most_recently_used_within_its_bytes() -> None:
    cache = PageCache(max_bytes=10)
    cache.put("a", b"1234")
    cache.put("b", b"1234")
    assert cache.get("a") == b"1234"  # a is now the most recent
    cache.put("c", b"1234")
    assert cache.get("b") is None and cache.get("a") == b"1234" and len(cache) == 2
