"""``backtape sources``: the registered data sources, what each delivers and what it needs."""

from __future__ import annotations

import re

import typer
from rich.table import Table

from .._async import run_sync
from ..errors import ConfigError
from ..sources import DataSource, registry
from ..workspace import Workspace
from ._common import console, state

_MISSING_ARGS = re.compile(r"missing (?:\d+|a) required (?:positional |keyword-only )?arguments?: "
                           r"('[^']+'(?:(?:, | and )'[^']+')*)")


def _describe(source: DataSource) -> tuple[str, str, str, str]:
    meta = source.get_metadata()
    caps = meta.capabilities
    kinds = ", ".join(sorted(caps.kinds | ({"actions"} if caps.corporate_actions else set())))
    return kinds, ", ".join(caps.frequencies).replace("*", "any"), meta.calendar, "ready"


def _probe(name: str, ws: Workspace) -> tuple[str, str, str, str]:
    """Capabilities of source ``name`` built from the configuration alone, or why it cannot be."""
    try:
        source = ws.source(name, cache=False)
    except (TypeError, ConfigError) as exc:  # a missing option, or a setting the configuration lacks
        missing = _MISSING_ARGS.search(str(exc))
        if missing or isinstance(exc, TypeError):
            return "", "", "", f"needs options: {missing.group(1).replace(chr(39), '') if missing else exc}"
        return "", "", "", f"needs settings: {exc}"
    except ImportError as exc:
        return "", "", "", f"unavailable: {exc}"
    except Exception as exc:  # a broken provider must not hide the others
        return "", "", "", f"unavailable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    try:
        return _describe(source)
    finally:
        run_sync(source.aclose())


def sources(ctx: typer.Context) -> None:
    """List the registered data sources with their kinds, frequencies and calendar."""
    ws = state(ctx).workspace()
    table = Table(title="Data sources", title_justify="left", header_style="bold")
    for column in ("name", "description", "kinds", "frequencies", "calendar", "status"):
        table.add_column(column, overflow="fold")
    for name, description in registry.list():
        table.add_row(name, description, *_probe(name, ws))
    table.caption = ("Options are keyword arguments: get_source(name, **options); providers also take "
                     "their providers.<name> settings from backtape.yaml and the environment.")
    table.caption_justify = "left"
    console().print(table)
