"""Shared fixtures of the cache tests: the counting upstream and a fixed clock."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _upstream import CountingSource

from backtape._time import to_ns

#: a "now" long after every range the tests ask for: everything fetched is immutable
LATE = to_ns("2030-01-01")


@pytest.fixture
def upstream() -> CountingSource:
    return CountingSource()
