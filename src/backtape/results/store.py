"""Results database: one row per backtest with its metrics, trades, equity curve and provenance.

Tables (seed 003's schema, extended): ``backtests`` (strategy, range, parameters, data
fingerprint, package version, duration), ``performance_metrics`` (headline columns plus every
metric as JSON), ``trades`` (one row per round trip), ``equity_curve`` (ts in UTC ns, equity,
drawdown), ``parameters`` (one row per parameter, for queries) and ``optimizations`` (one row per
parameter search: grid, objective, the sorted results, DSR and PBO). Any SQLAlchemy URL works;
a plain path means a SQLite file.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import sqlalchemy as sa

from .._time import to_ns
from ..errors import BacktapeError
from .integrity import damaged_run, reading, run_digest

if TYPE_CHECKING:
    from ..engine.result import BacktestResult

_metadata = sa.MetaData()

_backtests = sa.Table(
    "backtests", _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("strategy_name", sa.String(200), nullable=False),
    sa.Column("start_date", sa.String(40), nullable=False),
    sa.Column("end_date", sa.String(40), nullable=False),
    sa.Column("frequency", sa.String(20), nullable=False),
    sa.Column("symbols", sa.JSON, nullable=False),
    sa.Column("parameters", sa.JSON, nullable=False),
    sa.Column("source", sa.String(200)),
    sa.Column("cash", sa.Float),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("duration_s", sa.Float),
    sa.Column("package_version", sa.String(40)),
    sa.Column("data_fingerprint", sa.JSON),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

_metrics = sa.Table(
    "performance_metrics", _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("backtest_id", sa.Integer, sa.ForeignKey("backtests.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("total_return", sa.Float),
    sa.Column("sharpe_ratio", sa.Float),
    sa.Column("max_drawdown", sa.Float),
    sa.Column("win_rate", sa.Float),
    sa.Column("profit_factor", sa.Float),
    sa.Column("trades_count", sa.Integer),
    sa.Column("final_equity", sa.Float),
    sa.Column("metrics", sa.JSON, nullable=False),
)

_trades = sa.Table(
    "trades", _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("backtest_id", sa.Integer, sa.ForeignKey("backtests.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("symbol", sa.String(64), nullable=False),
    sa.Column("side", sa.Integer),
    sa.Column("entry_time", sa.BigInteger),
    sa.Column("exit_time", sa.BigInteger),
    sa.Column("entry_price", sa.Float),
    sa.Column("exit_price", sa.Float),
    sa.Column("quantity", sa.Float),
    sa.Column("pnl", sa.Float),
    sa.Column("commission", sa.Float),
    sa.Column("slippage", sa.Float),
    sa.Column("mae", sa.Float),
    sa.Column("mfe", sa.Float),
)

_equity = sa.Table(
    "equity_curve", _metadata,
    sa.Column("backtest_id", sa.Integer, sa.ForeignKey("backtests.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("ts", sa.BigInteger, nullable=False),
    sa.Column("equity", sa.Float, nullable=False),
    sa.Column("drawdown", sa.Float),
)

#: idempotency keys of runs written by workers: a retried task finds its run instead of adding one
_run_keys = sa.Table(
    "run_keys", _metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("backtest_id", sa.Integer, sa.ForeignKey("backtests.id", ondelete="CASCADE"), nullable=False),
)

_params = sa.Table(
    "parameters", _metadata,
    sa.Column("backtest_id", sa.Integer, sa.ForeignKey("backtests.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("value", sa.JSON),
)

_optimizations = sa.Table(
    "optimizations", _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("strategy_name", sa.String(200), nullable=False),
    sa.Column("metric", sa.String(40), nullable=False),
    sa.Column("method", sa.String(20), nullable=False),
    sa.Column("engine", sa.String(20), nullable=False),
    sa.Column("symbols", sa.JSON, nullable=False),
    sa.Column("start_date", sa.String(40), nullable=False),
    sa.Column("end_date", sa.String(40), nullable=False),
    sa.Column("frequency", sa.String(20), nullable=False),
    sa.Column("source", sa.String(200)),
    sa.Column("grid", sa.JSON, nullable=False),
    sa.Column("options", sa.JSON),
    sa.Column("n_sets", sa.Integer, nullable=False),
    sa.Column("skipped", sa.Integer),
    sa.Column("best", sa.JSON, nullable=False),
    sa.Column("deflated_sharpe", sa.Float),
    sa.Column("pbo", sa.Float),
    sa.Column("results", sa.JSON, nullable=False),
    sa.Column("best_run_id", sa.Integer, sa.ForeignKey("backtests.id", ondelete="SET NULL")),
    sa.Column("duration_s", sa.Float),
    sa.Column("package_version", sa.String(40)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

#: indexes for browsing many runs (the dashboard sorts and filters in SQL): each sortable run column
#: and headline metric (with the run id); added to databases written before them on open
_BROWSE_INDEXES = [
    *(sa.Index(f"ix_backtests_{name}", _backtests.c[name])
      for name in ("strategy_name", "start_date", "end_date", "frequency", "created_at")),
    *(sa.Index(f"ix_performance_metrics_{name}", _metrics.c[name], _metrics.c.backtest_id)
      for name in ("total_return", "sharpe_ratio", "max_drawdown", "win_rate", "trades_count",
                   "final_equity")),
]

_frames = sa.Table(
    "run_frames", _metadata,
    sa.Column("backtest_id", sa.Integer, sa.ForeignKey("backtests.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.UniqueConstraint("backtest_id", "name"),
)

#: xxh3 of every row of a run, written in the run's transaction and checked by ``get_run``
_checksums = sa.Table(
    "run_checksums", _metadata,
    sa.Column("backtest_id", sa.Integer, sa.ForeignKey("backtests.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("checksum", sa.String(32), nullable=False),
)

_TRADE_COLUMNS = [c.name for c in _trades.columns if c.name not in ("id", "backtest_id")]
_HEADLINE = {
    "total_return": "total_return", "sharpe_ratio": "sharpe", "max_drawdown": "max_drawdown",
    "win_rate": "win_rate", "profit_factor": "profit_factor", "trades_count": "trades",
    "final_equity": "final_equity",
}


@dataclass(frozen=True)
class RunRecord:
    """One stored backtest: its header row, metrics, trades, equity curve and other named frames."""

    id: int
    header: dict[str, Any]
    metrics: dict[str, Any]
    trades: pl.DataFrame
    equity: pl.DataFrame
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)


def _url(target: str | Path | None) -> str:
    """SQLAlchemy URL of ``target``: ``~/.backtape/results.db`` when ``None`` (a ``Workspace`` passes
    its configured one), a path means SQLite, and a bare ``postgresql://`` (or ``postgres://``) URL
    uses the psycopg driver (extra ``postgres``)."""
    if target is None:
        target = Path.home() / ".backtape" / "results.db"
    text = str(target)
    if "\0" in text:
        raise BacktapeError(f"results database {text!r}: a NUL character cannot be part of a path or URL")
    if "://" in text:
        scheme, sep, rest = text.partition("://")
        if scheme in ("postgresql", "postgres"):
            return f"postgresql+psycopg{sep}{rest}"
        if not scheme.startswith(("sqlite", "postgresql+")):
            raise BacktapeError(f"results database {scheme}://... is not supported: use a file path "
                                "(SQLite) or a postgresql:// URL")
        return text
    if text.startswith("file:"):
        raise BacktapeError(f"results database {text!r}: give a plain file path (without 'file:') or a "
                            "postgresql:// URL")
    path = Path(text).expanduser()
    if path.is_dir():
        raise BacktapeError(f"results database {path} is a folder; give a file path such as "
                            f"{path / 'results.db'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BacktapeError(f"results database {path}: cannot create its folder ({exc.strerror}); "
                            "give a path in a writable folder") from exc
    return f"sqlite:///{path}"


def _open_error(url: str, exc: Exception) -> str:
    """One line on why the database at ``url`` cannot be opened and what to do (password hidden)."""
    shown = repr(sa.engine.make_url(url))
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    if "file is not a database" in reason:
        reason += "; the file is not a SQLite database: give a new path or a results database"
    elif "unable to open database file" in reason:
        reason += ("; check that its folder exists and is writable (sqlite:/// then a relative path "
                   "is relative to the current folder; sqlite:////abs/path or a plain path)")
    return f"cannot open results database {shown}: {reason}"


def _clean(value: Any) -> Any:
    """JSON-safe value: NaN/inf become None, numpy scalars become Python numbers."""
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


class ResultsStore:
    """Stores and reads backtest runs. ``ResultsStore("results.db")`` or a PostgreSQL URL.

    >>> store = ResultsStore(":memory:")  # doctest: +SKIP
    """

    def __init__(self, url: str | Path | None = None) -> None:
        text = _url(url) if str(url) != ":memory:" else "sqlite://"
        kwargs: dict[str, Any] = {}
        if text.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        try:
            self.engine = sa.create_engine(text, **kwargs)
            if text.startswith("sqlite"):
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            _metadata.create_all(self.engine)
            with self.engine.begin() as conn:
                for index in _BROWSE_INDEXES:
                    conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))
        except sa.exc.SQLAlchemyError as exc:
            raise BacktapeError(_open_error(text, exc)) from exc

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    def save_run(
        self,
        *,
        strategy: str,
        parameters: dict[str, Any],
        symbols: list[str],
        start: Any,
        end: Any,
        frequency: str,
        metrics: dict[str, Any],
        trades: pl.DataFrame | None = None,
        equity: pl.DataFrame | None = None,
        source: str | None = None,
        cash: float | None = None,
        duration_s: float | None = None,
        fingerprint: dict[str, Any] | None = None,
        status: str = "completed",
        frames: dict[str, pl.DataFrame] | None = None,
        key: str | None = None,
    ) -> int:
        """Insert one run with everything about it in one transaction; return its id.

        With an idempotency ``key`` a run already stored under it is returned instead (a retried
        worker task never adds a second row, even when two copies race).

        ``frames`` are further named result frames (orders, fills, open trades, records, ...), kept
        whole as Parquet so that any run can be rebuilt exactly (``load_result``).
        """
        from .. import __version__

        params = _clean(dict(parameters))
        clean_metrics = _clean(dict(metrics))
        header = {
            "strategy_name": strategy,
            "start_date": _iso(start),
            "end_date": _iso(end),
            "frequency": str(frequency),
            "symbols": list(symbols),
            "parameters": params,
            "source": source,
            "cash": cash,
            "status": status,
            "duration_s": duration_s,
            "package_version": __version__,
            "data_fingerprint": _clean(fingerprint or {}),
            "created_at": dt.datetime.now(dt.UTC),
        }
        if key is not None and (known := self.run_for_key(key)) is not None:
            return known
        try:
            return self._insert_run(header, params, clean_metrics, trades, equity, frames, key)
        except sa.exc.IntegrityError:
            if key is None or (known := self.run_for_key(key)) is None:
                raise
            return known

    def run_for_key(self, key: str) -> int | None:
        """The id of the run stored under idempotency ``key``, if any."""
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(_run_keys.c.backtest_id).where(_run_keys.c.key == key)).first()
        return None if found is None else int(found[0])

    def _insert_run(self, header: dict[str, Any], params: dict[str, Any], clean_metrics: dict[str, Any],
                    trades: pl.DataFrame | None, equity: pl.DataFrame | None,
                    frames: dict[str, pl.DataFrame] | None, key: str | None) -> int:  # fmt: skip
        with self.engine.begin() as conn:
            run_id = _inserted_id(conn.execute(_backtests.insert().values(**header)))
            if key is not None:
                conn.execute(_run_keys.insert().values(key=key, backtest_id=run_id))
            row = {col: clean_metrics.get(name) for col, name in _HEADLINE.items()}
            conn.execute(_metrics.insert().values(backtest_id=run_id, metrics=clean_metrics, **row))
            if params:
                conn.execute(_params.insert(), [
                    {"backtest_id": run_id, "name": k, "value": v} for k, v in params.items()
                ])
            if trades is not None and trades.height:
                conn.execute(_trades.insert(), _trade_rows(run_id, trades))
            if equity is not None and equity.height:
                conn.execute(_equity.insert(), _equity_rows(run_id, equity))
            if frames:
                conn.execute(_frames.insert(), [
                    {"backtest_id": run_id, "name": name, "data": _parquet_bytes(df)}
                    for name, df in frames.items()
                ])
            rows = _run_rows(conn, run_id)
            conn.execute(_checksums.insert().values(backtest_id=run_id, checksum=run_digest(rows)))
        return run_id

    def list_runs(self, limit: int = 50) -> pl.DataFrame:
        """Most recent runs first: id, strategy, range, frequency, symbols and headline metrics."""
        if not 0 <= limit < 2**63:
            raise BacktapeError(f"cannot list {limit} runs: give a limit from 0 to {2**63 - 1}")
        q = (
            sa.select(
                _backtests.c.id, _backtests.c.strategy_name, _backtests.c.start_date, _backtests.c.end_date,
                _backtests.c.frequency, _backtests.c.symbols, _backtests.c.created_at,
                _metrics.c.total_return, _metrics.c.sharpe_ratio,
                _metrics.c.max_drawdown, _metrics.c.trades_count,
                _metrics.c.final_equity,
            )
            .select_from(_backtests.outerjoin(_metrics,
                                             _metrics.c.backtest_id == _backtests.c.id))
            .order_by(_backtests.c.id.desc())
            .limit(limit)
        )
        with reading(self.url), self.engine.connect() as conn:  # headline figures: not checksummed
            rows = [dict(r._mapping) for r in conn.execute(q)]
            for r in rows:
                r["symbols"] = ",".join(r["symbols"] or [])
                r["created_at"] = r["created_at"].isoformat(timespec="seconds") if r["created_at"] else None
        schema = {"id": pl.Int64, "strategy_name": pl.String, "start_date": pl.String,
                  "end_date": pl.String, "frequency": pl.String, "symbols": pl.String,
                  "created_at": pl.String, "total_return": pl.Float64, "sharpe_ratio": pl.Float64,
                  "max_drawdown": pl.Float64, "trades_count": pl.Int64, "final_equity": pl.Float64}
        return pl.DataFrame(rows, schema=schema)

    def get_run(self, run_id: int) -> RunRecord:
        """The whole stored run; raises ``BacktapeError`` naming the id when it does not exist."""
        if not 0 < run_id < 2**63:
            raise BacktapeError(f"no backtest run with id {run_id} in {self.url}")
        with reading(self.url), self.engine.connect() as conn:
            rows = _run_rows(conn, run_id)
            if not rows["backtests"]:
                raise BacktapeError(f"no backtest run with id {run_id} in {self.url}")
            saved = conn.execute(sa.select(_checksums.c.checksum)
                                 .where(_checksums.c.backtest_id == run_id)).scalar_one_or_none()
            if saved is not None and saved != run_digest(rows):  # runs saved before checksums have none
                raise damaged_run(self.url, run_id)
            head = rows["backtests"][0]
            metrics = rows["performance_metrics"][0].metrics if rows["performance_metrics"] else {}
            trade_rows = [{c: r._mapping[c] for c in _TRADE_COLUMNS} for r in rows["trades"]]
            eq_rows = [(r.ts, r.equity, r.drawdown) for r in rows["equity_curve"]]
            frames = {r.name: pl.read_parquet(io.BytesIO(r.data)) for r in rows["run_frames"]}
        trade_df = pl.DataFrame(trade_rows, schema=_trade_schema()).with_columns(
            pl.col("entry_time").cast(pl.Datetime("ns", "UTC")),
            pl.col("exit_time").cast(pl.Datetime("ns", "UTC")),
        )
        eq = pl.DataFrame(
            [tuple(r) for r in eq_rows], orient="row",
            schema={"ts": pl.Int64, "equity": pl.Float64, "drawdown": pl.Float64},
        ).with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))
        return RunRecord(int(run_id), dict(head._mapping), dict(metrics or {}), trade_df, eq, frames)

    def load_result(self, run_id: int) -> BacktestResult:
        """Rebuild a stored run as a ``BacktestResult`` (stored frames are used whole when present)."""
        from ..engine.result import BacktestResult

        rec = self.get_run(run_id)
        head, frames = rec.header, rec.frames
        empty = pl.DataFrame()
        return BacktestResult(
            strategy=head["strategy_name"], parameters=dict(head["parameters"] or {}),
            symbols=list(head["symbols"] or []), start=to_ns(head["start_date"]),
            end=to_ns(head["end_date"]), frequency=head["frequency"], source=head["source"] or "",
            cash=float(head["cash"] or 0.0), metrics=rec.metrics,
            trades=frames.get("trades", rec.trades), orders=frames.get("orders", empty),
            fills=frames.get("fills", empty), equity=frames.get("equity", rec.equity),
            open_trades=frames.get("open_trades", empty), rejections=frames.get("rejections", empty),
            records=frames.get("records", empty), duration_s=float(head["duration_s"] or 0.0),
            fingerprint=dict(head["data_fingerprint"] or {}), run_id=rec.id,
            extra={k: v for k, v in frames.items() if k not in _RESULT_FRAMES},
        )

    def compare(self, run_ids: list[int]) -> pl.DataFrame:
        """Metrics of several runs side by side: one row per metric, one column per run id."""
        records = [self.get_run(i) for i in run_ids]
        names: list[str] = []
        for rec in records:
            names.extend(k for k in rec.metrics if k not in names)
        data: dict[str, list[Any]] = {"metric": names}
        for rec in records:
            data[f"run_{rec.id}"] = [_as_float(rec.metrics.get(n)) for n in names]
        schema = {"metric": pl.String, **{f"run_{r.id}": pl.Float64 for r in records}}
        return pl.DataFrame(data, schema=schema)

    def save_optimization(self, *, strategy: str, metric: str, method: str, engine: str, symbols: list[str],
                          start: Any, end: Any, frequency: str, table: pl.DataFrame, best: dict[str, Any],
                          grid: dict[str, Any], options: dict[str, Any] | None = None,
                          source: str | None = None, deflated_sharpe: float | None = None,
                          pbo: float | None = None, skipped: int = 0, duration_s: float | None = None,
                          best_run_id: int | None = None) -> int:
        """Insert one parameter search (its whole sorted table as JSON rows); return its id."""
        from .. import __version__

        row = {
            "strategy_name": strategy, "metric": metric, "method": method, "engine": engine,
            "symbols": list(symbols), "start_date": _iso(start), "end_date": _iso(end),
            "frequency": str(frequency), "source": source, "grid": _clean(grid),
            "options": _clean({k: v for k, v in (options or {}).items() if _jsonable(v)}),
            "n_sets": table.height, "skipped": skipped, "best": _clean(best),
            "deflated_sharpe": _clean(deflated_sharpe), "pbo": _clean(pbo),
            "results": _clean(table.to_dicts()), "best_run_id": best_run_id, "duration_s": duration_s,
            "package_version": __version__, "created_at": dt.datetime.now(dt.UTC),
        }  # fmt: skip
        with self.engine.begin() as conn:
            return _inserted_id(conn.execute(_optimizations.insert().values(**row)))

    def get_optimization(self, optimization_id: int) -> dict[str, Any]:
        """A stored search as a dict; ``results`` is its table (Polars, best first)."""
        if not 0 < optimization_id < 2**63:
            raise BacktapeError(f"no optimization with id {optimization_id} in {self.url}")
        with self.engine.connect() as conn:
            q = sa.select(_optimizations).where(_optimizations.c.id == optimization_id)
            row = conn.execute(q).first()
        if row is None:
            raise BacktapeError(f"no optimization with id {optimization_id} in {self.url}")
        out = dict(row._mapping)
        out["results"] = pl.DataFrame(out["results"])
        return out

    def delete_run(self, run_id: int) -> None:
        """Remove a run and everything stored with it."""
        with self.engine.begin() as conn:
            for table in (_checksums, _run_keys, _frames, _equity, _trades, _params, _metrics):
                conn.execute(table.delete().where(table.c.backtest_id == run_id))
            conn.execute(_backtests.delete().where(_backtests.c.id == run_id))


_RESULT_FRAMES = ("trades", "orders", "fills", "equity", "open_trades", "rejections", "records")


def _run_rows(conn: sa.Connection, run_id: int) -> dict[str, list[sa.Row[Any]]]:
    """Every row stored for a run, table by table, in a fixed order (what its checksum covers)."""
    def rows(table: sa.Table, *order: sa.ColumnElement[Any]) -> list[sa.Row[Any]]:
        key = table.c.id if table is _backtests else table.c.backtest_id
        return list(conn.execute(sa.select(table).where(key == run_id).order_by(*order)))

    return {"backtests": rows(_backtests), "performance_metrics": rows(_metrics, _metrics.c.id),
            "parameters": rows(_params, _params.c.name), "trades": rows(_trades, _trades.c.id),
            "equity_curve": rows(_equity, _equity.c.ts, _equity.c.equity, _equity.c.drawdown),
            "run_frames": rows(_frames, _frames.c.name)}


def _parquet_bytes(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.write_parquet(buf, compression="zstd")
    return buf.getvalue()


def _inserted_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None:
        raise BacktapeError("the results database returned no id for an inserted row")
    return int(key[0])


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _iso(value: Any) -> str:
    from .._time import format_ns

    return format_ns(to_ns(value))


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | tuple | dict)


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def _ns_column(df: pl.DataFrame, name: str) -> pl.Series:
    col = df[name]
    if isinstance(col.dtype, pl.Datetime):
        return col.dt.cast_time_unit("ns").cast(pl.Int64)
    return col.cast(pl.Int64)


def _trade_schema() -> dict[str, pl.DataType]:
    types: dict[str, Any] = {"symbol": pl.String, "side": pl.Int64, "entry_time": pl.Int64,
                             "exit_time": pl.Int64}
    return {c: types.get(c, pl.Float64) for c in _TRADE_COLUMNS}


def _trade_rows(run_id: int, df: pl.DataFrame) -> list[dict[str, Any]]:
    cols = {}
    if "quantity" not in df.columns and "size" in df.columns:
        df = df.rename({"size": "quantity"})
    for c in _TRADE_COLUMNS:
        if c not in df.columns:
            cols[c] = [None] * df.height
        elif c in ("entry_time", "exit_time"):
            cols[c] = _ns_column(df, c).to_list()
        else:
            cols[c] = [_clean(v) for v in df[c].to_list()]
    return [{"backtest_id": run_id, **{c: cols[c][i] for c in _TRADE_COLUMNS}} for i in range(df.height)]


def _equity_rows(run_id: int, df: pl.DataFrame) -> list[dict[str, Any]]:
    ts = _ns_column(df, "ts").to_list()
    eq = df["equity"].to_list()
    dd = df["drawdown"].to_list() if "drawdown" in df.columns else [None] * df.height
    return [
        {"backtest_id": run_id, "ts": t, "equity": e, "drawdown": d}
        for t, e, d in zip(ts, eq, dd, strict=True)
    ]
