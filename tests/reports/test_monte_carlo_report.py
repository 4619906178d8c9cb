"""The Monte Carlo report and notebook view: the run is marked among the paths on the paths' own basis
(trade by trade for a reshuffle, bar by bar for a bootstrap), and every figure is formatted as the CLI
prints it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from backtape.optimization import monte_carlo
from backtape.reports.research import distribution_spec, monte_carlo_page, monte_carlo_spec

_MONEY, _PERCENT, _RATIO = r"-?\d{1,3}(,\d{3})*\.\d{2}", r"-?\d+\.\d{2}%", r"-?\d+\.\d{2}"


def _marks(mc: Any) -> tuple[list[float], list[str]]:
    layout = distribution_spec(mc)["layout"]
    notes = [a["text"] for a in layout["annotations"] if a.get("xref") != "paper"]
    titles = [a["text"] for a in layout["annotations"] if a.get("xref") == "paper"]
    return [s["x0"] for s in layout["shapes"]], notes + titles


def test_reshuffle_marks_the_runs_trades_measured_as_the_paths(run: Any) -> None:
    mc = monte_carlo(run, 300, seed=1)
    own = mc.observed_trades
    assert own["max_drawdown"] != pytest.approx(mc.observed["max_drawdown"])  # the two bases differ here
    xs, texts = _marks(mc)
    assert xs == [own["max_drawdown"], own["sharpe"]]
    assert all("trade by trade" in t for t in texts) and not any("bar by bar" in t for t in texts)
    page = monte_carlo_page(mc)
    itself = next(s for s in page.sections if s.title == "the run itself")
    assert itself.table is not None and itself.table["measured"] == ["bar by bar", "trade by trade"]
    drawdowns = [f"{mc.observed['max_drawdown']:.2%}", f"{own['max_drawdown']:.2%}"]
    assert itself.table["max drawdown"] == drawdowns
    assert "trade by trade" in itself.note and "bar by bar" in itself.note
    assert "the run (trade by trade)" in [t.get("name") for t in monte_carlo_spec(mc)["data"]]


def test_bootstrap_marks_the_runs_bar_by_bar_figures(run: Any) -> None:
    mc = monte_carlo(run, 300, "bootstrap", seed=2)
    xs, texts = _marks(mc)
    assert xs == [mc.observed["final_equity"], mc.observed["max_drawdown"]]
    assert all("bar by bar" in t for t in texts)
    itself = next(s for s in monte_carlo_page(mc).sections if s.title == "the run itself")
    assert itself.table is not None and itself.table["measured"] == ["bar by bar"]
    assert "the run (bar by bar)" in [t.get("name") for t in monte_carlo_spec(mc)["data"]]


@pytest.mark.parametrize("method", ["reshuffle", "bootstrap"])
def test_percentiles_are_formatted_as_the_cli_prints_them(run: Any, method: str) -> None:
    mc = monte_carlo(run, 300, method, seed=3)
    table = next(s for s in monte_carlo_page(mc).sections if s.title == "percentiles").table
    assert table is not None and list(table) == ["percentile", "final equity", "max drawdown", "Sharpe"]
    assert table["percentile"] == ["5", "25", "50", "75", "95"]
    for column, pattern in (("final equity", _MONEY), ("max drawdown", _PERCENT), ("Sharpe", _RATIO)):
        assert all(re.fullmatch(pattern, v) for v in table[column]), table[column]
    html = mc._repr_html_()
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", html)
    for column, pattern in (("final equity", _MONEY), ("max drawdown", _PERCENT), ("Sharpe", _RATIO)):
        assert all(v in cells for v in table[column])
        assert all(re.fullmatch(pattern, v) for v in table[column])
    assert f"{mc.table['final_equity'][0]:,.3f}" not in html and "e+0" not in html
    assert "bar by bar" in html and ("trade by trade" in html) == (method == "reshuffle")
