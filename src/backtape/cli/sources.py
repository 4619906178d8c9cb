"""``backtape sources``: the registered data sources, what each delivers and what it needs."""

from __future__ import annotations

import re

from rich.table import Table

from .._async import run_sync
from ..sources import DataSource, registry
from ._common import console

_MISSING_ARGS = re.compile(r"missing \d+ required (?:positional |keyword-only )?arguments?: (.+)$")


def _describe(source: DataSource) -> tuple[str, str, str, str]:
    meta = source.get_metadata()
    caps = meta.capabilities
    kinds = ", ".join(sorted(caps.kinds | ({"actions"} if caps.corporate_actions else set())))
    return kinds, ", ".join(caps.frequencies).replace("*", "any"), meta.calendar, "ready"


def _probe(name: str) -> tuple[str, str, str, str]:
    """Capabilities of source ``name`` built without options, or why it cannot be built so."""
    try:
        source = registry.get_source(name)
    except TypeError as exc:
        missing = _MISSING_ARGS.search(str(exc))
        needs = missing.group(1).replace("'", "") if missing else str(exc)
        return "", "", "", f"needs options: {needs}"
    except ImportError as exc:
        return "", "", "", f"unavailable: {exc}"
    except Exception as exc:  # a broken provider must not hide the others
        return "", "", "", f"unavailable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    try:
        return _describe(source)
    finally:
        run_sync(source.aclose())


def sources() -> None:
    """List the registered data sources with their kinds, frequencies and calendar."""
    table = Table(title="Data sources", title_justify="left", header_style="bold")
    for column in ("name", "description", "kinds", "frequencies", "calendar", "status"):
        table.add_column(column, overflow="fold")
    for name, description in registry.list():
        table.add_row(name, description, *_probe(name))
    table.caption = "Options are passed as keyword arguments: get_source(name, **options)."
    table.caption_justify = "left"
    console().print(table)
