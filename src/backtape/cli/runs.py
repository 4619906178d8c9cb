"""``backtape runs``: list, show, compare and export stored backtests (the results database)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import typer
from rich.table import Table

from ..formatting import DASH, daily, duration, metric, money, parameters
from ..results import ResultsStore
from ..results.export import DEFAULT_FRAMES
from ._common import console, state
from ._tables import compare_table, metrics_table, new_table, trades_table

app = typer.Typer(help="Stored backtest runs: list, show, compare, export.", no_args_is_help=True)

DB = typer.Option(None, "--db", help="results database path or SQLAlchemy URL "
                                     "(default: data.results_db in the config)")
LIMIT = typer.Option(50, "--limit", "-n", help="most recent runs to show")
RUN_ID = typer.Argument(..., help="run id (see `backtape runs list`)")
RUN_IDS = typer.Argument(..., help="two or more run ids")


def _store(ctx: typer.Context, db: str | None) -> ResultsStore:
    """The results database named by ``--db``, else by the configuration's ``data.results_db``."""
    store = state(ctx).workspace().store(db or True)
    assert store is not None
    return store


@app.command("list")
def list_runs(ctx: typer.Context, limit: int = LIMIT, db: str | None = DB) -> None:
    """The most recent runs with their headline metrics (full figures: runs show ID)."""
    frame = _store(ctx, db).list_runs(limit)
    table = new_table(f"backtest runs ({frame.height} most recent)")
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("strategy, symbols, bars", ratio=1, overflow="fold", min_width=12)
    for name in ("start", "end"):
        table.add_column(name, no_wrap=True)
    for name in ("return", "sharpe", "max dd", "trades"):
        table.add_column(name, justify="right", no_wrap=True)
    for r in frame.iter_rows(named=True):
        table.add_row(str(r["id"]), f"{r['strategy_name']} {r['symbols']} {r['frequency']}",
                      r["start_date"][:10], r["end_date"][:10],
                      *(metric(name, r[name]) for name in ("total_return", "sharpe_ratio", "max_drawdown",
                                                           "trades_count")))
    console().print(table)


@app.command("show")
def show(ctx: typer.Context, run_id: int = RUN_ID, db: str | None = DB) -> None:
    """One run: what ran, its statistics, the positions open at the end and its trades."""
    out = console()
    store = _store(ctx, db)
    rec = store.get_run(run_id)
    still_open = rec.frames.get("open_trades", pl.DataFrame())
    h = rec.header
    params = parameters(h.get("parameters"))
    created = h.get("created_at")
    head = Table(title=f"run {rec.id}", title_justify="left", show_header=False, box=None, padding=(0, 1))
    for key, value in (
        ("strategy", f"{h['strategy_name']}({params})"), ("symbols", ", ".join(h.get("symbols") or [])),
        ("period", f"{h['start_date'][:10]} .. {h['end_date'][:10]} (end excluded)"),
        ("frequency", h["frequency"]), ("source", h.get("source") or DASH), ("cash", money(h.get("cash"))),
        ("ran", f"{created:%Y-%m-%d %H:%M} UTC" if created else DASH),
        ("took", duration(h.get("duration_s"))), ("backtape", h.get("package_version") or DASH),
    ):
        head.add_row(key, str(value))
    out.print(head)
    out.print(metrics_table(rec.metrics, "statistics"))
    dates = daily(h["frequency"])
    if still_open.height:
        out.print(trades_table(still_open, f"open at the end ({still_open.height}, marked at the last close, "
                                           "counted in equity)", dates=dates))
    trades = rec.frames.get("trades", rec.trades)
    out.print(trades_table(trades, f"closed trades ({trades.height})", dates=dates))


@app.command("compare")
def compare(ctx: typer.Context, run_ids: list[int] = RUN_IDS, db: str | None = DB) -> None:
    """Statistics of several runs side by side."""
    if len(run_ids) < 2:
        raise typer.BadParameter("compare needs at least two run ids")
    twice = sorted({i for i in run_ids if run_ids.count(i) > 1})
    if twice:
        raise typer.BadParameter(f"run id(s) {', '.join(map(str, twice))} given more than once; "
                                 "name each run once")
    store = _store(ctx, db)
    records = [store.get_run(i) for i in run_ids]
    console().print(compare_table({f"run {r.id}": r.metrics for r in records}, "compare runs"))


@app.command("export")
def export(
    ctx: typer.Context,
    run_id: int = RUN_ID,
    what: str = typer.Option(",".join(DEFAULT_FRAMES), "--what", "-w",
                             help="comma-separated frames: trades (closed), open_trades, orders, fills, "
                                  "equity, records, rejections"),
    output: Path = typer.Option(..., "--output", "-o",
                                help="a folder (one file per frame), or a .csv/.parquet file for one frame"),
    fmt: str = typer.Option("csv", "--format", help="csv or parquet, for files written into a folder"),
    db: str | None = DB,
) -> None:
    """Write a stored run's trades (closed and still open), orders, fills and equity (or other frames)
    as CSV or Parquet."""
    from ..results.export import export_frames

    names = [w.strip() for w in what.split(",") if w.strip()]
    frames = _store(ctx, db).load_result(run_id).frames()
    for path in export_frames(frames, names, output, fmt):
        console().print(f"wrote {path}")
