"""``backtape config``: the effective configuration, with secrets redacted."""

from __future__ import annotations

import json
from enum import StrEnum

import typer
import yaml

from ..config import locate_config
from ._common import state

app = typer.Typer(help="Inspect the configuration (backtape.yaml and environment overrides).",
                  no_args_is_help=True)


class Format(StrEnum):
    yaml = "yaml"
    json = "json"


@app.command("show")
def show(
    ctx: typer.Context,
    fmt: Format = typer.Option(Format.yaml, "--format", "-f", help="Output format."),
) -> None:
    """Print the effective configuration (file, then environment); secrets appear as ***."""
    config = state(ctx).config()
    body = config.redacted()
    if fmt is Format.json:
        typer.echo(json.dumps(body, indent=2))
        return
    origin = str(config.file) if config.file else "none (defaults)"
    typer.echo(f"# file: {origin}")
    if config.env_overrides:
        typer.echo(f"# environment overrides: {', '.join(config.env_overrides)}")
    typer.echo(yaml.safe_dump(body, sort_keys=False, default_flow_style=False).rstrip())


@app.command("path")
def path(ctx: typer.Context) -> None:
    """Print the configuration file in use, or 'none' when only defaults apply."""
    found = locate_config(state(ctx).config_path)
    typer.echo(str(found) if found else "none")
