"""A rebalance sells before it buys on both engines: at each step the orders that reduce a position
fill first (``fills.reduces``), whatever the order of the symbols or of the strategy's orders."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

import backtape as bt
from backtape import check_vector_form
from backtape.fills import reduces
from backtape.sources.memory import FrameDataSource, daily_bars


class Rotate(bt.Strategy):
    """All in B on the first bar; on the third, all in A and out of B (A's order placed first)."""

    def on_bar(self, ctx: bt.Context) -> None:
        if ctx.bar_index == 0:
            ctx.order_target_percent("B", 1.0)
        elif ctx.bar_index == 2:
            ctx.order_target_percent("A", 1.0)
            ctx.order_target_percent("B", 0.0)

    def target_weights(self, data: Any) -> np.ndarray:
        w = np.full((data.n_steps, 2), np.nan)
        w[data.start_row] = [np.nan, 1.0]
        w[data.start_row + 2] = [1.0, 0.0]
        return w


def _source() -> FrameDataSource:
    a = [(100, 101, 99, 100)] * 5
    b = [(50, 51, 49, 50), (50, 53, 49, 52), (52, 55, 51, 54), (60, 61, 59, 60), (60, 61, 59, 60)]
    return FrameDataSource(pl.concat([daily_bars("A", a, "2024-01-02"), daily_bars("B", b, "2024-01-02")]))


@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_a_rotation_sells_first_and_buys_with_the_cash_it_freed(fill: str) -> None:
    """B: 200 shares at 50 (next_open) or 50 (close); sold on the rotation, and all of it buys A.

    next_open: B sells 200 at 60 (step 3's open) = 12,000 of cash, which buys 120 A at 100. Column
    order alone (A before B) would have found no cash for A and refused it.
    """
    event, vector = check_vector_form(Rotate(), ["A", "B"], "2024-01-02", "2024-01-09", source=_source(),
                                      fill=fill)
    for res in (event, vector):
        rows = res.fills.select("symbol", "quantity", "price").rows()
        if fill == "next_open":
            assert rows == [("B", 200.0, 50.0), ("B", -200.0, 60.0), ("A", 120.0, 100.0)]
        else:
            assert rows == [("B", 200.0, 50.0), ("B", -200.0, 54.0), ("A", 108.0, 100.0)]
        assert res.rejections.height == 0
    np.testing.assert_array_equal(event.equity["equity"].to_numpy(), vector.equity["equity"].to_numpy())


def test_what_reduces_a_position() -> None:
    assert not reduces(0.0, 1.0, 10_000.0, 50.0, 1.0)  # flat: nothing to reduce
    assert reduces(10.0, 0.0, 10_000.0, 50.0, 1.0) and reduces(10.0, -0.5, 10_000.0, 50.0, 1.0)
    assert reduces(-10.0, 0.5, 10_000.0, 50.0, 1.0)
    assert reduces(100.0, 0.4, 10_000.0, 50.0, 1.0)  # 4,000 of target < 5,000 held
    assert not reduces(100.0, 0.5, 10_000.0, 50.0, 1.0)  # at the target: not a reduction
    assert not reduces(-100.0, -0.6, 10_000.0, 50.0, 1.0)  # a bigger short adds
