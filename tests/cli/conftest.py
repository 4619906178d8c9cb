"""Every CLI test runs in an empty folder, with no backtape or provider variables, 200 columns wide."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backtape.config import ALIAS_ENV, CONFIG_ENV, ENV_PREFIX


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX) or name in ALIAS_ENV or name == CONFIG_ENV:
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps tables to $COLUMNS (80 under pytest-xdist)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path
