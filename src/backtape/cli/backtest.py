"""``backtape backtest``: run a built-in or user strategy, print its metrics, store the run."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..engine import StrategyFactory, run_backtest
from ..results import ResultsStore

#: runs with at least this many clock steps show a progress bar
PROGRESS_MIN_BARS = 20_000


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    """``name=value`` pairs; values are read as JSON when they parse (numbers, booleans), else text."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"--param expects name=value, got {pair!r}")
        try:
            out[name.strip()] = json.loads(text)
        except json.JSONDecodeError:
            out[name.strip()] = text
    return out


def metrics_table(metrics: dict[str, Any], title: str) -> Table:
    """The metrics of a run as a two-column rich table (fractions shown as percentages)."""
    percent = {"total_return", "cagr", "volatility", "max_drawdown", "win_rate", "exposure", "avg_trade"}
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        if isinstance(value, float):
            text = f"{value:.2%}" if name in percent else f"{value:,.4f}"
        else:
            text = str(value)
        table.add_row(name, text)
    return table


def backtest(
    strategy: str = typer.Argument(..., help="registered name (see --list) or path/to/file.py:ClassName"),
    symbols: str = typer.Option(..., "--symbols", "-s", help="comma-separated symbols"),
    start: str = typer.Option(..., "--start", help="first bar start (inclusive), e.g. 2012-01-01"),
    end: str = typer.Option(..., "--end", help="end of the range (exclusive)"),
    frequency: str = typer.Option("1d", "--frequency", "-f", help="bar size: 1min, 5min, 1h, 1d, 1w"),
    param: list[str] = typer.Option([], "--param", "-p", help="strategy parameter name=value (repeatable)"),
    source: str = typer.Option("sample", "--source", help="data source name"),
    cash: float = typer.Option(10_000.0, "--cash", help="starting cash"),
    commission: float = typer.Option(0.0, "--commission", help="commission as a fraction of notional"),
    fill: str = typer.Option("next_open", "--fill", help="market fills: next_open or close"),
    db: str | None = typer.Option(None, "--db", help="results database path or SQLAlchemy URL "
                                                    "(default ~/.backtape/results.db)"),
    store: bool = typer.Option(True, "--store/--no-store", help="save the run in the results database"),
) -> None:
    """Backtest STRATEGY on --symbols over [--start, --end), print its metrics and store the run."""
    console = Console()
    params = _parse_params(param)
    strat = StrategyFactory.create(strategy, **params)
    columns = (TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.completed:,}/{task.total:,}"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = None

        def report(done: int, total: int) -> None:
            nonlocal task
            if total < PROGRESS_MIN_BARS:
                return
            if task is None:
                task = progress.add_task(f"{strat.name}", total=total)
            progress.update(task, completed=done)

        result = run_backtest(strat, symbols, start, end, frequency, source=source, cash=cash,
                              commission=commission, fill=fill, progress=report)
    console.print(metrics_table(result.metrics, f"{strat!r} on {','.join(result.symbols)} {frequency}"))
    if store:
        results = ResultsStore(db)
        run_id = result.save(results)
        console.print(f"stored run [bold]{run_id}[/bold] in {results.url}")


#: a sub-app with the one command, for tests; the root app wires ``backtest`` itself
app = typer.Typer(help="Run event-driven backtests.")
app.command("backtest")(backtest)
