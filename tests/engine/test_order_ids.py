"""Order ids count from 1 in each run, so the same run gives the same ids (and the same stored
tables) whatever ran before it in the process; a bracket's legs are numbered after their entry."""

from __future__ import annotations

from typing import Any

import backtape as bt
from backtape.engine import Strategy


class Bracketed(Strategy):
    """One bracket on the first bar: a market entry with a stop-loss and a take-profit."""

    def on_bar(self, ctx: Any) -> None:
        if ctx.bar_index == 0:
            price = ctx.spot("AAPL")
            ctx.bracket("AAPL", 10, stop_loss=price * 0.9, take_profit=price * 1.05)


def test_the_same_run_twice_numbers_its_orders_alike() -> None:
    first, second = (bt.run_backtest("sma_crossover", "AAPL", "2012-01-01", "2013-01-01",
                                     params={"fast": 5, "slow": 20}) for _ in range(2))
    assert first.orders["id"].to_list()[:3] == [1, 2, 3]
    assert first.orders.equals(second.orders) and first.fills.equals(second.fills)


def test_a_brackets_legs_follow_their_entry_and_cancel_each_other() -> None:
    result = bt.run_backtest(Bracketed(), "AAPL", "2012-01-01", "2013-01-01")
    orders = result.orders.sort("id")
    assert orders["id"].to_list() == [1, 2, 3]
    assert orders["parent_id"].to_list() == [None, 1, 1]
    assert sorted(orders["status"].to_list()[1:]) == ["cancelled", "filled"]
