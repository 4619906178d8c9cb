"""Every CLI test runs in an empty folder, with no backtape or provider variables, 200 columns wide."""

from __future__ import annotations

from pathlib import Path

import pytest

from _isolation import isolate


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps tables to $COLUMNS (80 under pytest-xdist)
    work = tmp_path / "work"
    work.mkdir()
    isolate(monkeypatch, tmp_path, work)
    return tmp_path
