"""A real two-symbol run of the sample data (with an open position at the end) shared by the tests."""

from __future__ import annotations

from typing import Any

import pytest

from backtape.engine import run_backtest


@pytest.fixture(scope="package")
def run() -> Any:
    return run_backtest(
        "sma_crossover",
        "AAPL,MSFT",
        "2012-01-01",
        "2016-01-01",
        source="sample",
        params={"fast": 10, "slow": 50},
        cash=10_000,
    )
