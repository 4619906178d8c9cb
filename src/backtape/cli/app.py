"""The ``backtape`` typer application: wires the command groups and turns errors into one line.

Exit codes: 0 success, 1 the command ran and found problems (``validate``), 2 an error (bad
arguments, unreadable file, unknown source...), 130 interrupted. An error prints one line,
``error: ...``, on stderr; ``--verbose`` adds the traceback.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand, TyperGroup

from .. import __version__
from .._logging import configure_logging
from .._secrets import redact
from ..errors import BacktapeError
from ._state import State

ERROR_EXIT = 2
INTERRUPTED_EXIT = 130


def _click_class(name: str, of: type) -> Any:
    """Click's class ``name`` as typer uses it, from the bases of ``of`` (typer may vendor its own click)."""
    return next(c for c in of.__mro__ if c.__name__ == name)


if TYPE_CHECKING:  # the click that this typer vendors (type checking runs against the dev extra's typer)
    from typer._click.core import Command, Context
    from typer._click.exceptions import ClickException as _ClickException
    from typer._click.exceptions import UsageError as _UsageError
    from typer._click.formatting import HelpFormatter
else:
    Command = _click_class("Command", TyperGroup)
    _ClickException = _click_class("ClickException", typer.BadParameter)
    _UsageError = _click_class("UsageError", typer.BadParameter)


def _message(exc: BaseException) -> str:
    """What went wrong, in the words of the exception (file names for OS errors)."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    text = str(exc).strip() or type(exc).__name__
    if not isinstance(exc, BacktapeError | OSError | ValueError):
        text = f"unexpected {type(exc).__name__}: {text}"
    return text


def _one_line(text: str, *, verbose: bool) -> str:
    """The first line of ``text``; the whole text when verbose."""
    lines = [line for line in text.splitlines() if line.strip()]
    if verbose or len(lines) <= 1:
        return "\n".join(lines) or text
    return f"{lines[0]} (+{len(lines) - 1} more lines; --verbose shows all)"


def _report_error(text: str, *, verbose: bool = False, log_json: bool = False,
                 exc: BaseException | None = None) -> None:
    """Print one ``error: ...`` line (or one JSON object with --log-json) on stderr, secrets scrubbed."""
    if verbose and exc is not None:
        sys.stderr.write(redact("".join(traceback.format_exception(exc))))
    line = redact(_one_line(text, verbose=verbose))
    if log_json:
        payload: dict[str, Any] = {"level": "error", "message": line}
        if exc is not None:
            payload["error"] = type(exc).__name__
        sys.stderr.write(json.dumps(payload, ensure_ascii=False) + "\n")
    else:
        sys.stderr.write(f"error: {line}\n")
    sys.stderr.flush()


#: sub-commands, imported only when run: name -> (module of backtape.cli, attribute, short help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("demo", "demo", "Tour the real sample data shipped with backtape, then run a backtest."),
    "sources": ("sources", "sources", "List the registered data sources with their kinds and status."),
    "data": ("data", "app", "Fetch and show data from any source (providers through the cache)."),
    "validate": ("validate", "validate", "Check a bar file and report every violation with its line."),
    "config": ("config", "app", "Inspect the configuration (backtape.yaml and environment)."),
    "cache": ("cache", "app", "Inspect and maintain the local data cache."),
    "bundles": ("bundles", "app", "Named Parquet snapshots with quality metrics."),
    "ingest": ("bundles", "ingest", "Fetch bars into a bundle (only what it lacks)."),
    "calc": ("calc", "calc", "Entry-time calculations from one pre-load."),
    "backtest": ("backtest", "backtest", "Backtest a strategy, print its metrics, store the run."),
    "runs": ("runs", "app", "Stored backtest runs: list, show, compare."),
    "report": ("report", "report", "Write the HTML report of a stored run or optimization."),
    "optimize": ("optimize", "optimize", "Search a parameter grid; deflated Sharpe and PBO."),
    "walkforward": ("optimize", "walkforward", "Walk-forward optimization, stitched out-of-sample."),
    "montecarlo": ("optimize", "montecarlo", "Percentiles over resampled paths of a stored run."),
    "serve": ("serve", "serve", "Local read-only web dashboard: runs, comparisons, optimizations, data."),
}


def _load_command(name: str) -> Command:
    """The click command of sub-command ``name``, importing its module now."""
    import importlib

    import typer.main

    module, attribute, _ = COMMANDS[name]
    target = getattr(importlib.import_module(f"{__package__}.{module}"), attribute)
    command: Command
    if isinstance(target, typer.Typer):  # a group even when it holds one command (``data show``)
        command = typer.main.get_group(target)
        completion = ("install_completion", "show_completion")
        command.params = [p for p in command.params if p.name not in completion]
    else:
        holder = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
        holder.command(name)(target)
        command = typer.main.get_command(holder)
    command.name = name
    return command


class _Listed(TyperCommand):
    """What ``backtape --help`` shows of a sub-command that has not been imported."""


class _OneLineErrors(TyperGroup):
    """Root group: library errors and bad usage become one line on stderr and a non-zero exit.

    Sub-commands are imported when they run (``COMMANDS``): ``backtape --help`` lists them from
    their short help alone, so the first command stays fast.
    """

    _listing = False

    def list_commands(self, ctx: Context) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in COMMANDS if n not in self.commands)]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            if self._listing:
                return _Listed(cmd_name, short_help=COMMANDS[cmd_name][2], help=COMMANDS[cmd_name][2])
            self.commands[cmd_name] = _load_command(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except (_ClickException, typer.Exit, typer.Abort, BrokenPipeError):
            raise
        except KeyboardInterrupt:
            _report_error("interrupted")
            raise typer.Exit(INTERRUPTED_EXIT) from None
        except Exception as exc:
            st = ctx.obj if isinstance(ctx.obj, State) else State()
            if not st.verbose and not isinstance(exc, BacktapeError | OSError | ValueError):
                note = " (rerun with --verbose for the traceback)"
            else:
                note = ""
            _report_error(_message(exc) + note, verbose=st.verbose, log_json=st.log_json, exc=exc)
            raise typer.Exit(ERROR_EXIT) from None

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, windows_expand_args: bool = True,
             **extra: Any) -> Any:
        args = _hoist_globals(list(args) if args is not None else sys.argv[1:])
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except _ClickException as exc:
            hint = ""
            if isinstance(exc, _UsageError) and exc.ctx is not None:
                hint = f" (see '{exc.ctx.command_path} --help')"
            _report_error(exc.format_message() + hint, log_json="--log-json" in (args or sys.argv))
            sys.exit(exc.exit_code)
        except typer.Abort:
            _report_error("aborted")
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    name="backtape",
    cls=_OneLineErrors,
    help="Backtesting whose heart is its data layer.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"backtape {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging and full tracebacks."),
    log_json: bool = typer.Option(False, "--log-json", help="Logs and errors as JSON lines on stderr."),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="backtape.yaml to use (else $BACKTAPE_CONFIG, ./backtape.yaml, "
        "~/.config/backtape/backtape.yaml).", dir_okay=False,
    ),
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Backtesting whose heart is its data layer: fetch once, point in time, every resolution."""
    ctx.obj = State(verbose=verbose, log_json=log_json, config_path=config)
    configure_logging(verbose=verbose, json_lines=log_json)




_GLOBAL_FLAGS = frozenset(("--verbose", "-v", "--log-json"))
_GLOBAL_VALUED = frozenset(("--config", "-c"))


def _hoist_globals(args: list[str]) -> list[str]:
    """Global options given after the sub-command (``backtape runs list --verbose``) moved before it."""
    front: list[str] = []
    rest: list[str] = []
    i, seen_command = 0, False
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if seen_command and arg in _GLOBAL_FLAGS:
            front.append(arg)
        elif seen_command and arg in _GLOBAL_VALUED and i + 1 < len(args):
            front += args[i:i + 2]
            i += 1
        elif seen_command and arg.startswith("--config="):
            front.append(arg)
        else:
            if not arg.startswith("-") and not (rest and rest[-1] in _GLOBAL_VALUED):
                seen_command = True
            rest.append(arg)
        i += 1
    return front + rest


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (``backtape``, ``python -m backtape``)."""
    app(args=list(argv) if argv is not None else None, prog_name="backtape")


if __name__ == "__main__":  # pragma: no cover
    main()
