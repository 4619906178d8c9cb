"""``backtape backtest``: run a built-in or user strategy, print its metrics, store the run."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from .._symbols import symbol_list
from ..config import RiskConfig
from ..engine import StrategyFactory
from ..engine.run import run_backtest
from ..formatting import money
from ..risk import RiskManager
from ._common import console as make_console
from ._common import html_path, not_a_folder, parse_options, source_option, state
from ._tables import metrics_table
from ._units import parse_duration

#: runs with at least this many clock steps show a progress bar
PROGRESS_MIN_BARS = 20_000
_LATENCY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|ms|)\s*$", re.IGNORECASE)
_LATENCY_UNITS = {"": 1, "ns": 1, "us": 1_000, "ms": 1_000_000}
_LIMITS = {
    "max_position_pct": "largest position", "max_portfolio_heat": "open risk to the stops",
    "max_gross_exposure": "gross exposure", "max_net_exposure": "net exposure",
    "max_drawdown_halt": "refuse new risk from this drawdown on",
    "default_stop_loss_pct": "default stop-loss distance",
}


def _cfg(text: str, key: str) -> str:
    """Help text of an option whose default comes from the configuration key ``key``."""
    return f"{text} (default: {key} in the config)"


def _limit(name: str) -> Any:
    """The ``typer.Option`` of a risk-limit flag (a fraction of equity, of the entry price for the stop)."""
    flag = {"max_portfolio_heat": "--max-heat", "max_gross_exposure": "--max-gross",
            "max_net_exposure": "--max-net", "max_drawdown_halt": "--max-drawdown",
            "default_stop_loss_pct": "--stop-loss-pct"}.get(name, "--" + name.replace("_", "-"))
    return typer.Option(None, flag, help=_cfg(f"{_LIMITS[name]}, as a fraction", f"risk.{name}"))


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


def _parse_latency(text: str) -> int:
    """``'250ms'``, ``'50us'``, ``'1s'``, ``'0'`` (plain numbers are nanoseconds) -> nanoseconds."""
    m = _LATENCY.match(text)
    if m is None:
        return parse_duration(text)
    return int(float(m.group(1)) * _LATENCY_UNITS[m.group(2).lower()])


def _risk_manager(config: RiskConfig, overrides: dict[str, float | None]) -> RiskManager | None:
    """The configured risk limits with the command line's overrides; ``None`` when every one is off."""
    merged = {**config.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
    try:
        limits = RiskConfig.model_validate(merged).model_dump()
    except ValidationError as exc:
        problems = [f"risk.{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e['input']})"
                    for e in exc.errors(include_url=False)]
        raise typer.BadParameter("; ".join(problems)) from None
    return RiskManager(**limits) if any(v is not None for v in limits.values()) else None


def _print_strategies(value: bool) -> None:
    """``--list``: the registered strategy names, one a line, then exit."""
    if value:
        typer.echo("\n".join(StrategyFactory.list_available()))
        raise typer.Exit()


def backtest(
    ctx: typer.Context,
    strategy: str = typer.Argument(..., help="registered name (see --list) or path/to/file.py:ClassName"),
    symbols: str = typer.Option(..., "--symbols", "-s", help="comma-separated symbols"),
    start: str = typer.Option(..., "--start", help="first bar start (inclusive), e.g. 2012-01-01"),
    end: str = typer.Option(..., "--end", help="end of the range (exclusive)"),
    frequency: str = typer.Option("1d", "--frequency", "-f", help="bar size: 1min, 5min, 1h, 1d, 1w"),
    param: list[str] = typer.Option([], "--param", "-p", help="strategy parameter name=value (repeatable)"),
    source: str | None = typer.Option(None, "--source", help=_cfg("data source name", "data.default_source")),
    option: list[str] = source_option(),
    cash: float | None = typer.Option(None, "--cash", help=_cfg("starting cash", "backtesting.cash")),
    commission: float | None = typer.Option(
        None, "--commission", help=_cfg("commission, fraction of notional", "backtesting.commission")),
    slippage_bps: float | None = typer.Option(
        None, "--slippage-bps", help=_cfg("slippage in basis points", "backtesting.slippage_bps")),
    fill: str | None = typer.Option(None, "--fill", help=_cfg("market fills: next_open or close",
                                                              "backtesting.fill")),
    latency: str = typer.Option("0", "--latency", help="order latency of quote-filled runs: 250ms, 50us, 1s"),
    max_position_pct: float | None = _limit("max_position_pct"),
    max_heat: float | None = _limit("max_portfolio_heat"),
    max_gross: float | None = _limit("max_gross_exposure"),
    max_net: float | None = _limit("max_net_exposure"),
    max_drawdown: float | None = _limit("max_drawdown_halt"),
    stop_loss_pct: float | None = _limit("default_stop_loss_pct"),
    db: str | None = typer.Option(None, "--db", help=_cfg("results database path or SQLAlchemy URL",
                                                          "data.results_db")),
    store: bool = typer.Option(True, "--store/--no-store", help="save the run in the results database"),
    report_path: str | None = typer.Option(None, "--report", callback=html_path,
                                           help="also write the run's HTML report here (a .html file)"),
    engine: str = typer.Option("event", "--engine", help="event or vector (backtape's engines; vector for "
                               "strategies with a vector form), or a peer running path/file.py:Name on "
                               "backtape data: backtrader, backtesting, vectorbt"),
    conventions: str | None = typer.Option(None, "--conventions", help="a peer's conventions preset: "
                                           "backtape, backtesting.py, vectorbt or backtrader (README)"),
    dividends: str | None = typer.Option(None, "--dividends", help=_cfg(
        "total-return dividend formula: crsp or ratio", "backtesting.dividends")),
    trades_out: Path | None = typer.Option(None, "--trades", help="write the trades (closed, then open at "
                                           "the end, flagged is_open) to this .csv or .parquet file"),
    list_strategies: bool = typer.Option(False, "--list", is_eager=True, callback=_print_strategies,
                                         help="print the registered strategy names and exit"),
) -> None:
    """Backtest STRATEGY on --symbols over [--start, --end), print its metrics and store the run.

    Options left out take their defaults from the configuration (see: backtape config show).
    """
    st = state(ctx)
    ws = st.workspace()
    if engine not in ("event", "vector"):
        _run_peer(engine, strategy, symbols, start, end, frequency, _parse_params(param), source, cash,
                  commission, ws, db, store)
        return
    if fill is not None and fill not in ("next_open", "close"):
        raise typer.BadParameter(f"--fill must be next_open or close, got {fill!r}")
    risk = _risk_manager(ws.config.risk, {
        "max_position_pct": max_position_pct, "max_portfolio_heat": max_heat,
        "max_gross_exposure": max_gross, "max_net_exposure": max_net, "max_drawdown_halt": max_drawdown,
        "default_stop_loss_pct": stop_loss_pct})
    options = ws.trading_options(conventions=conventions, cash=cash, commission=commission,
                                 slippage_bps=slippage_bps, fill=fill, latency=_parse_latency(latency),
                                 dividends=dividends)
    options = dataclasses.replace(options, risk=risk)
    if trades_out is not None and trades_out.suffix.lower() not in (".csv", ".parquet"):
        raise typer.BadParameter(f"{trades_out}: write .csv or .parquet", param_hint="'--trades'")
    if trades_out is not None:
        not_a_folder(trades_out, "'--trades'")
    console = make_console()
    params = _parse_params(param)
    names = symbol_list(symbols)
    strat = StrategyFactory.create(strategy, **params)
    results = ws.store(db or True) if store else None  # a bad --db fails before the run, not after it
    data = ws.source(source, **parse_options(option))
    columns = (TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.completed:,}/{task.total:,}"), TimeRemainingColumn())
    err = Console(stderr=True)
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as progress, \
            _run_events(st.log_json):
        task = None

        def report(done: int, total: int) -> None:
            nonlocal task
            if total < PROGRESS_MIN_BARS:
                return
            if task is None:
                task = progress.add_task(f"{strat.name}", total=total)
            progress.update(task, completed=done)

        result = run_backtest(strat, names, start, end, frequency, data, options, engine=engine,
                              progress=report)
    console.print(metrics_table(result.metrics, f"{strat!r} on {','.join(result.symbols)} {frequency}"))
    if result.open_trades.height:
        console.print(open_notice(result.open_trades))
    if trades_out is not None:
        from ..results.export import write_frame

        every_trade = result.all_trades()
        write_frame(every_trade, trades_out)
        console.print(f"wrote {every_trade.height} trade(s) to {trades_out}")
    resized = result.rejections.filter(result.rejections["action"] == "resize")
    if resized.height:
        console.print(f"{resized.height} order(s) resized by the limits (first: {resized['reason'][0]})")
    if results is not None:
        run_id = result.save(results)
        console.print(f"stored run [bold]{run_id}[/bold] in {results.url}")
        refused = int(result.metrics.get("orders_refused", 0))
        if refused:
            console.print(f"{refused} refused order(s) with their reasons: backtape runs export {run_id} "
                          "--what rejections -o rejections.csv", soft_wrap=True)  # one line to copy
    if report_path:
        console.print(f"report written to {result.report(report_path)}")


def _run_peer(engine: str, reference: str, symbols: str, start: str, end: str, frequency: str,
              params: dict[str, Any], source: str | None, cash: float | None, commission: float | None,
              ws: Any, db: str | None, store: bool) -> None:
    """``--engine backtrader|backtesting|vectorbt``: run the peer's ``path/file.py:Name`` through its
    adapter on the workspace's data, print backtape's metrics and store the run."""
    from ..adapters import ADAPTERS, adapter
    from ..engine.builtins import load_from_file

    if engine not in ADAPTERS:
        raise typer.BadParameter(f"--engine must be event, vector, {', '.join(ADAPTERS)}; got {engine!r}")
    if ":" not in reference:
        raise typer.BadParameter(f"--engine {engine} runs a peer strategy given as path/file.py:Name, "
                                 f"got {reference!r}")
    result = adapter(engine).run(load_from_file(reference), symbols, start, end, frequency, source,
                                 cash=cash, commission=commission, workspace=ws, **params)
    console = make_console()
    console.print(metrics_table(result.metrics, f"{result.strategy} ({engine}) on "
                                                f"{','.join(result.symbols)} {frequency}"))
    if store:
        results = ws.store(db or True)
        console.print(f"stored run [bold]{result.save(results)}[/bold] in {results.url}")


def open_notice(open_trades: pl.DataFrame) -> str:
    """One line on the lots still open at the end (counted in equity, not in closed trades)."""
    syms = sorted(set(open_trades["symbol"].to_list()))
    names = ", ".join(syms[:3]) + (f" +{len(syms) - 3}" if len(syms) > 3 else "")
    pnl = float(open_trades["pnl"].sum())
    return f"{open_trades.height} trade(s) still open at the end ({names}): P&L {money(pnl)}, in equity"


@contextlib.contextmanager
def _run_events(json_lines: bool) -> Iterator[None]:
    """With ``--log-json`` the run's start/complete/error events (INFO) reach the JSON log lines."""
    logger = logging.getLogger("backtape.backtest")
    level = logger.level
    if json_lines:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.setLevel(level)


#: a sub-app with the one command, for tests; the root app wires ``backtest`` itself
app = typer.Typer(help="Run event-driven backtests.")
app.command("backtest")(backtest)
