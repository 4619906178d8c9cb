"""The global options of a command and its one workspace (light: ``backtape --help`` imports it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from ..config import Config
    from ..workspace import Workspace


@dataclass
class State:
    """The root options, stored on the click context for every command, and the one workspace
    every command builds its parts from."""

    verbose: bool = False
    log_json: bool = False
    config_path: Path | None = None
    _workspace: Workspace | None = field(default=None, repr=False)

    def workspace(self) -> Workspace:
        """The command's ``Workspace``, built once from ``--config`` (or the documented lookup)."""
        if self._workspace is None:
            from ..workspace import Workspace

            self._workspace = Workspace(self.config_path)
        return self._workspace

    def config(self) -> Config:
        return self.workspace().config


def state(ctx: typer.Context) -> State:
    """The global options of the running command (defaults when run outside the root app)."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()

