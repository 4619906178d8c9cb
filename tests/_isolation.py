"""Keep the machine's own backtape configuration out of a test: no variables, no user files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backtape.config import ALIAS_ENV, CONFIG_ENV, ENV_PREFIX


def isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, work: Path | None = None) -> None:
    """Drop backtape's variables, point HOME and XDG_CONFIG_HOME into ``tmp_path``, and work in
    ``work`` (default ``tmp_path``)."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX) or name in ALIAS_ENV or name == CONFIG_ENV:
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(work or tmp_path)
