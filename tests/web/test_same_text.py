"""One formatter: the dashboard writes every value as the commands do (``backtape.formatting``), so a
run's figures read the same in ``backtape serve`` as in ``runs list``, ``runs show`` and ``runs compare``."""

from __future__ import annotations

import datetime as dt
import html as markup
import os
import re
import subprocess
import sys

import pytest
from starlette.testclient import TestClient

from backtape import formatting
from backtape.web import create_app, pages

from .conftest import SRC, DashWorkspace


@pytest.mark.parametrize(("name", "value", "text"), [
    ("total_return", 0.4801, "+48.01%"), ("max_drawdown", 0.0971, "9.71%"), ("sharpe_ratio", 1.1432, "1.14"),
    ("sharpe", float("nan"), "–"), ("trades_count", 7.0, "7"), ("final_equity", 14709.8003, "14,709.80"),
    ("side", -1, "short"), ("return", 0.0123, "+1.23%"), ("size", 156.0, "156"), ("pnl", None, "–"),
    ("created_at", dt.datetime(2024, 3, 7, 15, 30), "2024-03-07 15:30"),
    ("avg_trade_duration", 5_520_000, "63d 21h"),
])  # fmt: skip
def test_the_dashboard_writes_a_value_as_the_formatter_does(name: str, value: object, text: str) -> None:
    assert pages.fmt(value, name) == formatting.cell(name, value) == text
    assert pages.cell(value, name)[0] == text
    params = {"fast": 10, "slow": 50}
    assert pages.fmt(params) == formatting.parameters(params) == "fast=10, slow=50"


def _cli(dash_ws: DashWorkspace, *args: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "backtape.cli.app", *args, "--db", str(dash_ws.db)],
                          env=env, capture_output=True, text=True, timeout=120, check=True)
    return [" ".join(line.split()) for line in done.stdout.splitlines()]


def _cells(row: str) -> list[str]:
    """The texts of a table row's cells (tags, sort arrows and spaces around dropped)."""
    cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
    return [markup.unescape(re.sub(r"<[^>]+>|[▲▼]", "", c)).strip() for c in cells]


def test_runs_list_show_and_compare_read_the_same_in_the_dashboard(dash_ws: DashWorkspace) -> None:
    client = TestClient(create_app(dash_ws.db))
    a, b = dash_ws.run_ids[:2]
    listing = client.get("/runs").text
    listed = _cli(dash_ws, "runs", "list")
    header = _cells(listing.split('<table class="grid" id="runs">')[1].split("</thead>")[0])
    for run_id in (a, b):
        row = re.search(rf'<tr>\s*<td><input[^>]*value="{run_id}".*?</tr>', listing, re.S)
        assert row is not None
        cells = dict(zip(header[1:], _cells(row.group(0))[1:], strict=True))
        shown = " ".join(cells[k] for k in ("return", "sharpe", "max dd", "trades"))
        line = next(s for s in listed if s.startswith(f"{run_id} "))
        assert line.endswith(shown), (line, shown)

    page = client.get(f"/runs/{a}").text
    stats = page.split("<caption>Statistics</caption>")[1].split("</table>")[0]
    pairs = [_cells(r) for r in stats.split("</tr>") if "<th>" in r]
    assert len(pairs) > 20
    shown = _cli(dash_ws, "runs", "show", str(a))
    for label, value in pairs:
        assert f"{label} {value}" in shown, (label, value)

    compared = client.get(f"/compare?ids={a},{b}").text.split('id="compare-stats"')[1].split("</table>")[0]
    rows = [" ".join(_cells(r)) for r in compared.split("<tbody>")[1].split("</tr>") if "<th>" in r]
    assert len(rows) > 20 and rows == [line for line in _cli(dash_ws, "runs", "compare", str(a), str(b))
                                       if line in rows]  # the same rows, in the same order
