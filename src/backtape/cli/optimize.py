"""``backtape optimize``, ``backtape walkforward`` and ``backtape montecarlo``.

Grids are given per parameter: ``--grid fast=5:55:5`` (start:stop:step, stop excluded, like
``range``), ``--grid slow=20,50,100`` (a list) or ``--grid allow_short=true`` (one value).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import polars as pl
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..formatting import metric as show_metric
from ..formatting import ratio
from ._common import console as make_console
from ._common import html_path, parse_options, source_option, state
from ._tables import frame_table

if TYPE_CHECKING:
    from ..options import TradingOptions


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``name=start:stop:step``, ``name=a,b,c`` or ``name=value`` items as a parameter grid."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        name, sep, spec = item.partition("=")
        name = name.strip()
        if not sep or not name or not spec:
            raise typer.BadParameter(f"--grid expects name=start:stop:step or name=a,b,c, got {item!r}")
        if ":" in spec:
            parts = [_value(p) for p in spec.split(":")]
            if len(parts) not in (2, 3) or not all(isinstance(p, int | float) for p in parts):
                raise typer.BadParameter(f"--grid {name}: a range is start:stop[:step] numbers, got {spec!r}")
            start, stop, step = (*parts, 1) if len(parts) == 2 else parts
            if step <= 0:
                raise typer.BadParameter(f"--grid {name}: step must be positive, got {step}")
            count = max(0, math.ceil((stop - start) / step))
            values = [start + k * step for k in range(count)]
            if all(isinstance(p, int) for p in parts):
                values = [int(v) for v in values]
        else:
            values = [_value(v.strip()) for v in spec.split(",")]
        if not values:
            raise typer.BadParameter(f"--grid {name}: {spec!r} holds no value")
        grid[name] = values
    if not grid:
        raise typer.BadParameter("give at least one --grid name=values")
    return grid


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar with ETA on stderr when it is a terminal (elsewhere a transient bar only
    leaves a blank line in the output); yields the ``progress(done, total)`` callback."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    err = Console(stderr=True)
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = None

        def report(done: int, total: int) -> None:
            nonlocal task
            if task is None:
                task = bar.add_task(label, total=total)
            bar.update(task, completed=done, total=total)

        yield report


def _cfg(text: str, key: str) -> str:
    return f"{text} (default: {key} in the config)"


def _trading(ctx: typer.Context, cash: float | None, commission: float | None,
             fill: str | None) -> TradingOptions:
    """The workspace's trading options (backtesting and risk sections) with the command line's."""
    return state(ctx).workspace().trading_options(cash=cash, commission=commission, fill=fill)


REPORT = typer.Option(None, "--report", callback=html_path,
                      help="also write the HTML report here (a .html file)")
_SHOWN = ("final_equity", "total_return", "sharpe", "max_drawdown", "trades")


def optimize(
    ctx: typer.Context,
    strategy: str = typer.Argument(..., help="registered name or path/to/file.py:ClassName"),
    grid: list[str] = typer.Option(..., "--grid", "-g", help="name=start:stop:step or name=a,b,c (repeat)"),
    symbols: str = typer.Option(..., "--symbols", "-s", help="comma-separated symbols"),
    start: str = typer.Option(..., "--start", help="first bar start (inclusive)"),
    end: str = typer.Option(..., "--end", help="end of the range (exclusive)"),
    metric: str = typer.Option("sharpe", "--metric", "-m", help="objective (any metric name)"),
    frequency: str = typer.Option("1d", "--frequency", "-f", help="bar size"),
    source: str | None = typer.Option(None, "--source", help=_cfg("data source name", "data.default_source")),
    option: list[str] = source_option(),
    engine: str = typer.Option("vector", "--engine", help="vector or event"),
    executor: str | None = typer.Option(None, "--executor",
                                        help=_cfg("local or ray", "optimization.executor")),
    address: str | None = typer.Option(None, "--address",
                                       help=_cfg("Ray cluster address", "optimization.ray_address")),
    n_jobs: int | None = typer.Option(None, "--jobs", "-j",
                                      help=_cfg("worker processes/threads, -1 = all", "optimization.n_jobs")),
    method: str = typer.Option("grid", "--method", help="grid, random or tpe"),
    n_samples: int | None = typer.Option(None, "--samples", help="sets to try with random/tpe"),
    constraint: str | None = typer.Option(None, "--constraint", help='e.g. "fast < slow"'),
    top: int = typer.Option(10, "--top", help="rows of the table to show"),
    cash: float | None = typer.Option(None, "--cash", help=_cfg("starting cash", "backtesting.cash")),
    commission: float | None = typer.Option(
        None, "--commission", help=_cfg("commission, fraction of notional", "backtesting.commission")
    ),
    fill: str | None = typer.Option(None, "--fill", help=_cfg("next_open or close", "backtesting.fill")),
    db: str | None = typer.Option(None, "--db", help=_cfg("results database path or URL", "data.results_db")),
    store: bool = typer.Option(True, "--store/--no-store", help="save the search in the results database"),
    resume: bool = typer.Option(False, "--resume",
                                help="continue the newest unfinished (interrupted) search of this command"),
    resume_id: int | None = typer.Option(None, "--resume-id", help="continue the stored search with this id"),
    report_path: str | None = REPORT,
) -> None:
    """Search --grid for STRATEGY's best --metric, print the top sets, DSR and PBO, store the search."""
    console = make_console()
    params = parse_grid(grid)
    ws = state(ctx).workspace()
    with progress_bar(f"{strategy} ({engine})") as report:
        res = ws.optimize(
            strategy, params, symbols, start, end, frequency, _source(ws, source, option), metric, engine,
            executor,
            constraint=constraint, n_jobs=n_jobs, method=method, n_samples=n_samples, address=address,
            progress=report, store=(db or True) if store else None,
            options=_trading(ctx, cash, commission, fill), resume=resume_id or resume or None,
        )
    shown = res.table.select(*res.params, *dict.fromkeys((metric, *_SHOWN))).head(top)
    console.print(
        frame_table(
            shown, f"{strategy} on {symbols}: top {shown.height} of {res.table.height} by {metric}"
        )
    )
    console.print(
        f"best {res.best}  deflated Sharpe {ratio(res.deflated_sharpe)}  PBO {show_metric('pbo', res.pbo)}  "
        f"({res.skipped} set(s) skipped, {show_metric('duration_s', res.duration_s)})"
    )
    if res.optimization_id is not None:
        console.print(f"stored optimization [bold]{res.optimization_id}[/bold] (search "
                      f"{res.details['search_id']}, {res.details['sets_reused']} set(s) resumed)")
    _report(console, res, report_path)


def _source(ws: Any, name: str | None, option: list[str]) -> Any:
    """``--source`` as given (a name, stored with the search), or built with its ``--option``s."""
    return ws.source(name, **parse_options(option)) if option else name


def _report(console: Console, result: Any, path: str | None) -> None:
    """``--report PATH``: write the result's HTML report there."""
    if path:
        console.print(f"report written to {result.report(path)}")


def walkforward(
    ctx: typer.Context,
    strategy: str = typer.Argument(..., help="registered name or path/to/file.py:ClassName"),
    grid: list[str] = typer.Option(..., "--grid", "-g", help="name=start:stop:step or name=a,b,c (repeat)"),
    symbols: str = typer.Option(..., "--symbols", "-s", help="one symbol (vector) or several (event)"),
    start: str = typer.Option(..., "--start", help="first bar start (inclusive)"),
    end: str = typer.Option(..., "--end", help="end of the range (exclusive)"),
    train: int | None = typer.Option(
        None, "--train", help=_cfg("training window, in bars", "optimization.walk_forward.train_periods")
    ),
    test: int | None = typer.Option(
        None, "--test", help=_cfg("test window, in bars", "optimization.walk_forward.test_periods")
    ),
    step: int | None = typer.Option(
        None, "--step", help=_cfg("bars between windows", "optimization.walk_forward.step_size")),
    anchored: bool = typer.Option(
        False, "--anchored/--rolling", help="training windows all start at --start"
    ),
    metric: str = typer.Option("sharpe", "--metric", "-m", help="objective (any metric name)"),
    frequency: str = typer.Option("1d", "--frequency", "-f", help="bar size"),
    source: str | None = typer.Option(None, "--source", help=_cfg("data source name", "data.default_source")),
    option: list[str] = source_option(),
    engine: str = typer.Option("vector", "--engine", help="vector or event"),
    constraint: str | None = typer.Option(None, "--constraint", help='e.g. "fast < slow"'),
    cash: float | None = typer.Option(None, "--cash", help=_cfg("starting cash", "backtesting.cash")),
    commission: float | None = typer.Option(
        None, "--commission", help=_cfg("commission, fraction of notional", "backtesting.commission")
    ),
    report_path: str | None = REPORT,
) -> None:
    """Walk-forward optimization: per window the winner's in- and out-of-sample results, and the
    stitched out-of-sample metrics and walk-forward efficiency."""
    console = make_console()
    params = parse_grid(grid)
    ws = state(ctx).workspace()
    with progress_bar(f"{strategy} walk-forward") as report:
        res = ws.walk_forward(
            strategy, params, symbols, start, end, train, test, step, anchored, metric,
            frequency=frequency, source=_source(ws, source, option), engine=engine,
            constraint=constraint, progress=report,
            options=_trading(ctx, cash, commission, None),
        )
    windows = res.windows.with_columns(pl.col("train_start", "test_start", "test_end").dt.date())
    shown = windows.drop("train_end", "test_end")  # a test window ends where the next one starts
    names = {"window": "#", "train_start": "train from", "test_start": "test from",
             **{f"{p}_{m}": f"{p.upper()} {m if m != 'cagr' else 'CAGR'}"
                for p in ("is", "oos") for m in (metric, "cagr", "return", "trades")}}
    console.print(frame_table(shown, f"{strategy}: {windows.height} windows", names=names))
    oos = {k: res.metrics[k] for k in _SHOWN}
    console.print(frame_table(pl.DataFrame([oos]), "stitched out-of-sample"))
    console.print(f"walk-forward efficiency {ratio(res.efficiency)} (OOS CAGR / mean in-sample CAGR)")
    _report(console, res, report_path)


def montecarlo(
    ctx: typer.Context,
    run_id: int = typer.Argument(..., help="id of a stored backtest run (backtape runs list)"),
    n: int = typer.Option(1000, "--n", help="number of simulations"),
    method: str = typer.Option(
        "reshuffle", "--method", help="reshuffle (trade order) or bootstrap (returns)"
    ),
    block: int = typer.Option(20, "--block", help="bootstrap block length, in bars"),
    seed: int = typer.Option(0, "--seed", help="random seed"),
    db: str | None = typer.Option(None, "--db", help=_cfg("results database path or URL", "data.results_db")),
    executor: str | None = typer.Option(None, "--executor",
                                        help=_cfg("local or ray", "optimization.executor")),
    address: str | None = typer.Option(None, "--address",
                                       help=_cfg("Ray cluster address", "optimization.ray_address")),
    report_path: str | None = REPORT,
) -> None:
    """Percentiles of final equity, max drawdown and Sharpe over resampled paths of a stored run."""
    console = make_console()
    res = state(ctx).workspace().monte_carlo(run_id, n, method, block=block, seed=seed, store=db or True,
                                             executor=executor, address=address)  # fmt: skip
    console.print(frame_table(res.table, f"run {run_id}: {method}, {n} simulations, seed {seed}"))
    if res.observed_trades:
        rows = pl.DataFrame([{"measured": "bar by bar", **res.observed},
                             {"measured": "trade by trade", **res.observed_trades}])
        console.print(frame_table(rows, "the run itself: its metrics (bar by bar) and its trades in their "
                                        "order measured as the simulations are (trade by trade)"))
    else:
        console.print(frame_table(pl.DataFrame([res.observed]), "the run itself"))
    _report(console, res, report_path)


#: a sub-app holding the three commands, for tests; the root app wires them itself
app = typer.Typer(help="Parameter optimization, walk-forward and Monte Carlo.")
app.command("optimize")(optimize)
app.command("walkforward")(walkforward)
app.command("montecarlo")(montecarlo)
