"""What each dashboard page shows, as plain data for its template.

Kept apart from the routes so what a page shows and the query-string parsing can be tested without a
server. Values are written by ``backtape.formatting``, as every command writes them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import markupsafe

from .. import formatting
from .._time import format_ns
from ..errors import BacktapeError
from ..results import queries
from ..results.store import ResultsStore
from . import charts

#: the runs table: (sort key in ``queries.SORTABLE`` or "", header, row field)
RUN_COLUMNS = [("id", "id", "id"), ("strategy", "strategy", "strategy_name"), ("", "symbols", "symbols"),
               ("start", "start", "start_date"), ("end", "end", "end_date"),
               ("frequency", "freq", "frequency"),
               ("return", "return", "total_return"), ("sharpe", "sharpe", "sharpe_ratio"),
               ("drawdown", "max dd", "max_drawdown"), ("trades", "trades", "trades_count"),
               ("final_equity", "final equity", "final_equity"), ("created", "created", "created_at")]
MAX_TRADES_SHOWN = 500
TOP_SETS = 20


def fmt(value: Any, name: str = "") -> str:
    """A value as the dashboard writes it, which is how the commands write it (``backtape.formatting``):
    ``name``, a metric or a result column, picks the format; lists are joined, parameter sets written
    ``k=v``, missing or NaN values an en dash."""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return formatting.parameters(value) or formatting.DASH
    return formatting.cell(name, value)


def fmt_ns(value: int | None) -> str:
    """Epoch nanoseconds as an ISO date and time (UTC)."""
    return "–" if value is None else format_ns(int(value))


def fmt_age(value: int | None, now: int) -> str:
    """How long ago ``value`` (ns) was, in the largest sensible unit."""
    if value is None:
        return "–"
    seconds = max(0.0, (now - value) / 1e9)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit} ago"
    return f"{seconds:.0f} s ago"


FILTERS = {"fmt": fmt, "fmt_ns": fmt_ns, "fmt_age": fmt_age, "fmt_bytes": formatting.data_size}


def cell(value: Any, name: str = "") -> tuple[str, bool]:
    """A table cell: its text and whether it is a number. Numbers and times are written here and
    marked safe (digits, signs and separators: nothing to escape, no secret to mask), which spares
    the template its per-value work on the pages with the most cells; texts stay plain, for the
    template to redact and escape."""
    if value is None or isinstance(value, int | float | dt.datetime):
        return markupsafe.Markup(fmt(value, name)), isinstance(value, int | float)
    return fmt(value, name), False


def run_cells(page: queries.RunPage) -> list[tuple[int, list[tuple[str, bool]]]]:
    """The runs table: each run's id and its cells in ``RUN_COLUMNS`` order after the id."""
    return [(r["id"], [cell(r[field], field) for _, _, field in RUN_COLUMNS[1:]]) for r in page.rows]


class BadQuery(BacktapeError):
    """A query-string value a page cannot use: answered ``400``, naming the parameter and its form."""


#: the runs page's parameters and the form each takes (what a ``BadQuery`` tells the reader)
RUN_PARAMETERS = {"strategy": "a strategy name", "symbol": "a symbol, e.g. AAPL",
                  "from": "a date, YYYY-MM-DD", "to": "a date, YYYY-MM-DD",
                  "sort": f"one of {', '.join(queries.SORTABLE)}", "dir": "asc or desc",
                  "page": "a whole number from 1", "per": "a whole number from 1 to 500"}  # fmt: skip


#: a good use of each parameter, shown with its error
_EXAMPLES = {"from": "from=2014-06-01", "to": "to=2014-12-31", "sort": "sort=sharpe&dir=asc",
             "dir": "sort=sharpe&dir=asc", "page": "page=2", "per": "per=100"}


def _bad(name: str, text: str) -> BadQuery:
    return BadQuery(f"{name}={text!r} is not {RUN_PARAMETERS[name]}: e.g. /runs?{_EXAMPLES[name]}")


def _int(params: Mapping[str, str], name: str, default: int, top: int = 10**9) -> int:
    text = params.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or not 1 <= int(text) <= top:
        raise _bad(name, text)
    return int(text)


def _date(params: Mapping[str, str], name: str) -> str:
    text = params.get(name, "").strip()
    if not text:
        return ""
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise _bad(name, text) from None


def run_filter(params: Mapping[str, str]) -> queries.RunFilter:
    """The runs listing asked for in a query string (``RUN_PARAMETERS``). Nothing is ignored: an
    unknown parameter or a value out of its form is a ``BadQuery`` naming it and the form it takes."""
    unknown = [k for k in params if k not in RUN_PARAMETERS]
    if unknown:
        takes = "; ".join(f"{k}: {form}" for k, form in RUN_PARAMETERS.items())
        raise BadQuery(f"the runs page has no parameter {unknown[0]!r} (runs whose range meets a period are "
                       f"filtered with from= and to=); it takes {takes}")
    sort, direction = params.get("sort", "").strip() or "id", params.get("dir", "").strip() or "desc"
    if sort not in queries.SORTABLE:
        raise _bad("sort", sort)
    if direction not in ("asc", "desc"):
        raise _bad("dir", direction)
    date_from, date_to = _date(params, "from"), _date(params, "to")
    if date_from and date_to and date_from > date_to:
        raise BadQuery(f"from={date_from} is after to={date_to}: give the earlier date as from")
    return queries.RunFilter(
        strategy=params.get("strategy", "").strip(), symbol=params.get("symbol", "").strip(),
        date_from=date_from, date_to=date_to, sort=sort, descending=direction == "desc",
        page=_int(params, "page", 1), per_page=_int(params, "per", 50, 500))


class RunLinks:
    """URLs of the runs page that keep the current filter: sorted by a column, or another page."""

    def __init__(self, flt: queries.RunFilter) -> None:
        self.flt = flt

    def _url(self, **changes: Any) -> str:
        f = self.flt
        state = {"strategy": f.strategy, "symbol": f.symbol, "from": f.date_from, "to": f.date_to,
                 "sort": f.sort, "dir": "desc" if f.descending else "asc", "page": f.page, "per": f.per_page}
        state.update(changes)
        return "/runs?" + urlencode({k: v for k, v in state.items() if v not in ("", None)})

    def sort(self, key: str) -> str:
        flip = "asc" if self.flt.sort == key and self.flt.descending else "desc"
        return self._url(sort=key, dir=flip, page=1)

    def page(self, number: int) -> str:
        return self._url(page=number)

    def arrow(self, key: str) -> str:
        return ("▼" if self.flt.descending else "▲") if self.flt.sort == key else ""


def run_ids(params: Any) -> list[int]:
    """Run ids from ``?ids=1,2`` or ``?ids=1&ids=2``: at least two, each once, in the order given."""
    out: list[int] = []
    for part in params.getlist("ids"):
        for text in str(part).split(","):
            if not text.strip():
                continue
            try:
                value = int(text)
            except ValueError:
                raise BadQuery(f"run id {text!r} is not a number: e.g. /compare?ids=1,2") from None
            if value not in out:
                out.append(value)
    if len(out) < 2:
        raise BadQuery("compare needs two or more run ids: tick them on the runs page "
                            "or open /compare?ids=1,2")
    return out


def _frame_rows(frame: Any, limit: int, dates: bool) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of a result frame, as ``runs show`` writes them (dates for daily bars)."""
    if frame is None or not getattr(frame, "height", 0):
        return [], []
    cols = list(frame.columns)
    rows = [[formatting.cell(c, v, dates=dates) for c, v in zip(cols, row, strict=True)]
            for row in frame.head(limit).iter_rows()]
    return cols, rows


def run_context(result: Any) -> dict[str, Any]:
    """Header, statistics, equity/drawdown figure, trades and open positions of one run."""
    eq = result.equity
    ts = eq["ts"].dt.cast_time_unit("ns").cast(int).to_numpy() if eq.height else []
    values = eq["equity"].to_numpy() if eq.height else []
    figure = charts.equity_figure({"equity": (ts, values)})
    dates = formatting.daily(result.frequency)
    trade_cols, trades = _frame_rows(result.trades, MAX_TRADES_SHOWN, dates)
    open_cols, open_rows = _frame_rows(result.open_trades, MAX_TRADES_SHOWN, dates)
    header = [("strategy", result.strategy), ("symbols", ", ".join(result.symbols)),
              ("range", f"{format_ns(result.start)} → {format_ns(result.end)}"),
              ("frequency", result.frequency), ("source", result.source),
              ("cash", formatting.money(result.cash)), ("parameters", fmt(result.parameters)),
              ("took", formatting.duration(result.duration_s))]
    return {"result": result, "run_id": result.run_id, "header": header,
            "metrics": formatting.metric_rows(result.metrics), "figure": figure,
            "trade_cols": trade_cols, "trades": trades, "n_trades": result.trades.height,
            "open_cols": open_cols, "open_rows": open_rows}


def compare_table(rows: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """One line per metric (the union over the runs, in ``runs compare``'s order and labels), one cell
    per run."""
    metrics = [r["metrics"] or {} for r in rows]
    names = formatting.ordered(*metrics)
    return [(formatting.label(n), [cell(m.get(n), n)[0] for m in metrics]) for n in names]


def optimization_context(store: ResultsStore, opt: dict[str, Any],
                         params: Mapping[str, str]) -> dict[str, Any]:
    """The search's table (best first), a heatmap of its metric over two parameters (``?x=&y=``,
    default the first two with several values) and the best sets with links to stored runs."""
    table = opt["results"]
    grid = {k: v for k, v in (opt["grid"] or {}).items() if k in table.columns}
    metric = opt["metric"] if opt["metric"] in table.columns else None
    varied = [k for k, v in grid.items() if isinstance(v, list) and len(v) > 1]
    x = params.get("x") or (varied[0] if varied else "")
    y = params.get("y") or (next((k for k in varied if k != x), ""))
    for name in (x, y):
        if name and name not in grid:
            raise BadQuery(f"optimization {opt['id']} has no parameter {name!r}: "
                                f"use one of {', '.join(grid)}")
    figure = None
    if metric and x and y and x != y and table.height:
        from ..optimization.search import LOWER_IS_BETTER
        from ..reports.research import parameter_heatmap

        first = table.row(0, named=True)
        figure = parameter_heatmap(table, x, y, metric, metric not in LOWER_IS_BETTER, first)
    linked = queries.runs_with_parameters(store, opt["strategy_name"], opt["start_date"], opt["end_date"],
                                          list(opt["symbols"] or []))
    best = []
    for row in table.head(TOP_SETS).iter_rows(named=True):
        chosen = {k: row[k] for k in grid}
        run_id = linked.get(queries.canonical(chosen))
        best.append({"params": fmt(chosen), "metric": fmt(row.get(metric), metric or ""), "run_id": run_id,
                     "cells": [fmt(row[c], c) for c in table.columns]})
    if best and best[0]["run_id"] is None and opt.get("best_run_id"):
        best[0]["run_id"] = opt["best_run_id"]
    return {"opt": opt, "columns": list(table.columns), "best": best, "figure": figure, "x": x, "y": y,
            "params": list(grid), "metric": metric, "n_rows": table.height}
