"""Read-only queries over the results database for browsing: paged, filtered and sorted in SQL.

The dashboard (``backtape serve``) reads through these so that a page of a database holding tens of
thousands of runs costs one indexed query and one count, never a load of every row. Nothing here
writes: :func:`open_readonly` opens SQLite files with ``mode=ro``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from .._time import to_ns
from ..errors import BacktapeError
from .store import ResultsStore, _backtests, _equity, _frames, _metrics, _optimizations, _url

#: columns a runs listing may be sorted by: name shown in the URL -> column
SORTABLE: dict[str, sa.ColumnElement[Any]] = {
    "id": _backtests.c.id, "strategy": _backtests.c.strategy_name, "start": _backtests.c.start_date,
    "end": _backtests.c.end_date, "frequency": _backtests.c.frequency, "created": _backtests.c.created_at,
    "return": _metrics.c.total_return, "sharpe": _metrics.c.sharpe_ratio,
    "drawdown": _metrics.c.max_drawdown, "trades": _metrics.c.trades_count,
    "final_equity": _metrics.c.final_equity, "win_rate": _metrics.c.win_rate,
}


@dataclass(frozen=True)
class RunFilter:
    """Which runs to list: strategy name, a symbol the run traded, a period the run's range meets
    (ISO dates, inclusive), the sort key (``SORTABLE``) and direction, the page (from 1) and its size."""

    strategy: str = ""
    symbol: str = ""
    date_from: str = ""
    date_to: str = ""
    sort: str = "id"
    descending: bool = True
    page: int = 1
    per_page: int = 50

    def __post_init__(self) -> None:
        if self.sort not in SORTABLE:
            raise BacktapeError(f"cannot sort runs by {self.sort!r}: use one of {', '.join(SORTABLE)}")
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value:
                try:
                    dt.date.fromisoformat(value[:10])
                except ValueError:
                    raise BacktapeError(f"{name} {value!r} is not a date: write YYYY-MM-DD") from None
        if self.page < 1 or not 1 <= self.per_page <= 500:
            raise BacktapeError("page must be >= 1 and per_page between 1 and 500")


@dataclass(frozen=True)
class RunPage:
    """One page of runs (dicts with headline metrics) and how many runs match in all."""

    rows: list[dict[str, Any]]
    total: int
    filter: RunFilter

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.filter.per_page))


def open_readonly(url: str | Path | None) -> ResultsStore:
    """A ``ResultsStore`` over an existing database that cannot write: SQLite files are opened with
    ``mode=ro`` (no tables are created); other databases get a read-only transaction mode where the
    driver has one. Raises ``BacktapeError`` when a SQLite file does not exist."""
    text = _url(url) if str(url) != ":memory:" else "sqlite://"
    engine: sa.Engine
    if text.startswith("sqlite:///"):
        path = Path(text.removeprefix("sqlite:///"))
        if not path.exists():
            raise BacktapeError(f"no results database at {path}: run a backtest with --store first, "
                                "or pass --db")
        engine = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
        sa.event.listen(engine, "connect", _reader_pragmas)
    else:
        engine = sa.create_engine(text)
        if engine.dialect.name == "postgresql":
            engine = engine.execution_options(postgresql_readonly=True)
    store = ResultsStore.__new__(ResultsStore)
    store.engine = engine
    return store


def _reader_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """A browsing connection keeps what it scanned: the run headers and metrics of 10,000 runs are
    ~12 MB, beyond SQLite's default 2 MB page cache, so every listing would read them again."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA cache_size=-131072")  # KiB: 128 MB at most, filled only as pages are read
    cur.execute("PRAGMA mmap_size=1073741824")
    cur.close()


def label(store: ResultsStore) -> str:
    """The database as a person reads it: the file path of SQLite, else the URL without password."""
    url = store.engine.url
    if url.get_backend_name() == "sqlite" and (url.database or "").startswith("file:"):
        return f"{url.database.removeprefix('file:')} (read-only)"  # type: ignore[union-attr]
    return url.render_as_string(hide_password=True)


def _run_columns() -> list[sa.ColumnElement[Any]]:
    b, m = _backtests.c, _metrics.c
    return [b.id, b.strategy_name, b.start_date, b.end_date, b.frequency, b.symbols, b.source, b.created_at,
            m.total_return, m.sharpe_ratio, m.max_drawdown, m.win_rate, m.trades_count, m.final_equity]


def _joined() -> sa.FromClause:
    return _backtests.outerjoin(_metrics, _metrics.c.backtest_id == _backtests.c.id)


def _where(flt: RunFilter) -> list[sa.ColumnElement[bool]]:
    b = _backtests.c
    where: list[sa.ColumnElement[bool]] = []
    if flt.strategy:
        where.append(b.strategy_name == flt.strategy)
    if flt.symbol:
        where.append(sa.cast(b.symbols, sa.String).like(f"%{json.dumps(flt.symbol.strip().upper())}%"))
    if flt.date_from:
        where.append(b.end_date >= flt.date_from[:10])
    if flt.date_to:
        where.append(b.start_date <= f"{flt.date_to[:10]}T99")
    return where


def query_runs(store: ResultsStore, flt: RunFilter) -> RunPage:
    """The page of runs ``flt`` asks for, sorted (missing metrics last, newest first), with the match
    count; only the rows shown are read whole.

    Unfiltered, the page's ids come from narrow queries the indexes answer (a metric's index holds
    the run id), so sorting and skipping pages never touch the wide run rows. A filter has to read
    the rows it tests anyway, so the matches' ids and sort keys are read in that one pass and the
    page is cut from them here, rather than scanning once to count and again to order.
    """
    b = _backtests.c
    where = _where(flt)
    key = SORTABLE[flt.sort]
    offset, limit = (flt.page - 1) * flt.per_page, flt.per_page
    with store.engine.connect() as conn:
        if where:
            matches = conn.execute(sa.select(b.id, key).select_from(_joined()).where(*where)).all()
            total = len(matches)
            ids = _in_order(matches, flt.descending)[offset:offset + limit]
        else:
            total = int(conn.execute(sa.select(sa.func.count()).select_from(_backtests)).scalar_one())
            ids = _indexed_page(conn, key, flt.descending, offset, limit, total)
        q = sa.select(*_run_columns()).select_from(_joined()).where(b.id.in_(ids))
        found = {int(r.id): dict(r._mapping) for r in conn.execute(q)} if ids else {}
    return RunPage([found[i] for i in ids if i in found], total, flt)


def _in_order(matches: Sequence[Any], descending: bool) -> list[int]:
    """Run ids of ``(id, key)`` rows by key then id in the direction asked, missing keys last."""
    present = sorted(((k, i) for i, k in matches if k is not None), reverse=descending)
    missing = sorted((i for i, k in matches if k is None), reverse=True)
    return [i for _, i in present] + missing


def _indexed_page(conn: sa.Connection, key: sa.ColumnElement[Any], descending: bool, offset: int,
                  limit: int, total: int) -> list[int]:
    """The ids of one page of all runs by ``key``, walked along its index (with the run id as tie)."""
    b, m = _backtests.c, _metrics.c

    def ordered(column: sa.ColumnElement[Any], tie: sa.ColumnElement[Any]) -> list[sa.ColumnElement[Any]]:
        return [column.desc(), tie.desc()] if descending else [column.asc(), tie.asc()]

    if key.table is not _metrics:  # run columns: never missing
        return list(conn.execute(sa.select(b.id).order_by(*ordered(key, b.id)).limit(limit).offset(offset))
                    .scalars())
    present = sa.select(m.backtest_id).where(key.is_not(None))
    ids = list(conn.execute(present.order_by(*ordered(key, m.backtest_id)).limit(limit).offset(offset))
               .scalars())
    n_present = offset + len(ids) if ids else int(conn.execute(
        sa.select(sa.func.count()).select_from(present.subquery())).scalar_one())
    if len(ids) < limit and n_present < total:  # the page reaches the runs without this metric
        missing = (sa.select(b.id).select_from(_joined()).where(key.is_(None))
                   .order_by(b.id.desc()).limit(limit - len(ids)).offset(max(0, offset - n_present)))
        ids += conn.execute(missing).scalars()
    return ids


#: the stored frames a run's page shows; orders, fills, records and prices stay unread
RUN_PAGE_FRAMES = ("trades", "open_trades", "equity")


@dataclass(frozen=True)
class RunView:
    """A stored run as its page shows it: header, statistics, trades, open positions and equity."""

    run_id: int
    strategy: str
    parameters: dict[str, Any]
    symbols: list[str]
    start: int
    end: int
    frequency: str
    source: str
    cash: float
    duration_s: float
    metrics: dict[str, Any]
    trades: pl.DataFrame
    open_trades: pl.DataFrame
    equity: pl.DataFrame


def run_view(store: ResultsStore, run_id: int) -> RunView:
    """What the run page needs of ``run_id``, reading only ``RUN_PAGE_FRAMES`` of its stored frames
    (a run stored without frames is read whole); raises ``BacktapeError`` naming a missing id."""
    b = _backtests.c
    with store.engine.connect() as conn:
        head = conn.execute(sa.select(b.strategy_name, b.parameters, b.symbols, b.start_date, b.end_date,
                                      b.frequency, b.source, b.cash, b.duration_s)
                            .where(b.id == run_id)).first()
        if head is None:
            raise BacktapeError(f"no backtest run with id {run_id} in {store.url}")
        metrics = conn.execute(sa.select(_metrics.c.metrics).where(_metrics.c.backtest_id == run_id)
                               ).scalar_one_or_none() or {}
        frames = {r.name: pl.read_parquet(io.BytesIO(r.data)) for r in conn.execute(
            sa.select(_frames.c.name, _frames.c.data)
            .where(_frames.c.backtest_id == run_id, _frames.c.name.in_(RUN_PAGE_FRAMES)))}
    if not {"trades", "equity"} <= frames.keys():
        whole = store.load_result(run_id)
        frames = {name: getattr(whole, name) for name in RUN_PAGE_FRAMES}
    return RunView(int(run_id), head.strategy_name, dict(head.parameters or {}), list(head.symbols or []),
                   to_ns(head.start_date), to_ns(head.end_date), head.frequency, head.source or "",
                   float(head.cash or 0.0), float(head.duration_s or 0.0), dict(metrics), frames["trades"],
                   frames.get("open_trades", pl.DataFrame()), frames["equity"])


def stamp(store: ResultsStore, kind: str, item_id: int) -> str:
    """When stored run (``kind`` "run") or optimization ("optimization") ``item_id`` was written: with
    its id, a key for caching what is built from it (a deleted id may be reused by a later row)."""
    table = _backtests if kind == "run" else _optimizations
    with store.engine.connect() as conn:
        q = sa.select(table.c.created_at).where(table.c.id == item_id)
        created = conn.execute(q).scalar_one_or_none()
    if created is None:
        what = "backtest run" if kind == "run" else "optimization"
        raise BacktapeError(f"no {what} with id {item_id} in {store.url}")
    return str(created)


def run_rows(store: ResultsStore, run_ids: list[int]) -> list[dict[str, Any]]:
    """Header and headline metrics of ``run_ids``, in that order; raises naming a missing id."""
    q = sa.select(*_run_columns(), _metrics.c.metrics).select_from(_joined()).where(
        _backtests.c.id.in_(run_ids))
    with store.engine.connect() as conn:
        found = {int(r.id): dict(r._mapping) for r in conn.execute(q)}
    missing = [i for i in run_ids if i not in found]
    if missing:
        raise BacktapeError(f"no backtest run with id {missing[0]} in {store.url}")
    return [found[i] for i in run_ids]


def strategies(store: ResultsStore) -> list[str]:
    """Every strategy name with a stored run, sorted."""
    q = sa.select(_backtests.c.strategy_name).distinct().order_by(_backtests.c.strategy_name)
    with store.engine.connect() as conn:
        return [r[0] for r in conn.execute(q)]


def equity_curves(store: ResultsStore, run_ids: list[int]) -> dict[int, tuple[list[int], list[float]]]:
    """``run_id -> (ts ns, equity)`` from the equity table, in time order."""
    q = (sa.select(_equity.c.backtest_id, _equity.c.ts, _equity.c.equity)
         .where(_equity.c.backtest_id.in_(run_ids)).order_by(_equity.c.backtest_id, _equity.c.ts))
    with store.engine.connect() as conn:
        rows = conn.execute(q).all()
    out: dict[int, tuple[list[int], list[float]]] = {i: ([], []) for i in run_ids}
    for run_id in run_ids:
        mine = [r for r in rows if r[0] == run_id]
        out[run_id] = ([r[1] for r in mine], [r[2] for r in mine])
    return out


def list_optimizations(store: ResultsStore, limit: int = 200) -> list[dict[str, Any]]:
    """Most recent parameter searches first, without their result tables."""
    o = _optimizations.c
    q = (sa.select(o.id, o.strategy_name, o.metric, o.method, o.engine, o.symbols, o.start_date, o.end_date,
                   o.frequency, o.n_sets, o.best, o.deflated_sharpe, o.pbo, o.best_run_id, o.created_at)
         .order_by(o.id.desc()).limit(limit))
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def runs_with_parameters(store: ResultsStore, strategy: str, start: str, end: str,
                         symbols: list[str]) -> dict[str, int]:
    """Stored runs of ``strategy`` over exactly ``symbols`` and ``[start, end]``: canonical JSON of their
    parameters -> the newest run id (links an optimization's parameter sets to runs)."""
    b = _backtests.c
    q = (sa.select(b.id, b.parameters, b.symbols)
         .where(b.strategy_name == strategy, b.start_date == start, b.end_date == end).order_by(b.id))
    with store.engine.connect() as conn:
        return {canonical(r.parameters or {}): int(r.id) for r in conn.execute(q)
                if list(r.symbols or []) == list(symbols)}


def canonical(params: dict[str, Any]) -> str:
    """One text per parameter set, whatever the key order or int/float spelling (``10`` == ``10.0``)."""
    def norm(v: Any) -> Any:
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
    return json.dumps({str(k): norm(v) for k, v in params.items()}, sort_keys=True, default=str)
