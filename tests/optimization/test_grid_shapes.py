"""A grid parameter given one value or a string is named, not iterated: ``{"fast": 5}`` was an
``unexpected TypeError`` and ``{"fast": "5,10"}`` was searched as the characters '5', ',', '1', '0'."""

from __future__ import annotations

import pytest

import backtape as bt
from backtape.errors import ConfigError


@pytest.mark.parametrize("values", [5, "5,10", None])
def test_a_grid_value_that_is_not_a_list_is_named(values) -> None:
    with pytest.raises(ConfigError, match=r"grid parameter 'fast' must be a list or range of values"):
        bt.optimize("sma_crossover", {"fast": values}, "AAPL", "2012-01-01", "2015-01-01", source="sample")
    with pytest.raises(ConfigError, match=r"grid parameter 'fast' must be a list"):
        bt.walk_forward("sma_crossover", {"fast": values}, "AAPL", "2012-01-01", "2015-01-01", 200, 100,
                        source="sample")


def test_ranges_tuples_and_lists_still_work() -> None:
    opt = bt.optimize("sma_crossover", {"fast": range(5, 15, 5), "slow": (30, 50)}, "AAPL", "2012-01-01",
                      "2015-01-01", source="sample")
    assert opt.table.height == 4
