"""Adapter parity fixtures: a workspace on a temporary folder and the real data files as sources."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from _adapter_data import BTC, GOOG
from backtape import Workspace
from backtape.sources.files import CSVDataSource


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    body = {"data": {"cache_dir": str(tmp_path / "cache"), "bundles_dir": str(tmp_path / "bundles"),
                     "results_db": str(tmp_path / "results.db")}}
    path = tmp_path / "backtape.yaml"
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return Workspace(path)


@pytest.fixture
def goog() -> CSVDataSource:
    return CSVDataSource(GOOG)


@pytest.fixture
def btc() -> CSVDataSource:
    return CSVDataSource(BTC, calendar="24/7")
