"""The ``backtape`` typer application: wires the command groups and turns errors into one line."""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    name="backtape",
    help="Backtesting whose heart is its data layer.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="backtape")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
