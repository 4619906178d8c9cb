"""Shared helpers: hand-made daily series in memory and a scripted strategy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import polars as pl
import pytest

from backtape.engine import BacktestResult, Context, Strategy, run_backtest
from backtape.sources.memory import FrameDataSource, daily_bars

# bar:      0      1      2      3      4      5
# open    100    102    104    103     97     96
# high    101    104    106    107    100     97
# low      99    101    103     98     95     94
# close   100    103    105     99     96     95
HAND = [(100, 101, 99, 100), (102, 104, 101, 103), (104, 106, 103, 105), (103, 107, 98, 99),
        (97, 100, 95, 96), (96, 97, 94, 95)]
FIRST = "2024-01-02"  # a Tuesday; six NYSE sessions 2024-01-02 .. 2024-01-09
END = "2024-01-10"


class Script(Strategy):
    """Runs ``plan[bar_index](ctx)`` after that bar; records every fill it is told about."""

    params: ClassVar[dict[str, Any]] = {"plan": None}

    def initialize(self, ctx: Context) -> None:
        self.seen: list[Any] = []

    def on_bar(self, ctx: Context) -> None:
        action = (self.plan or {}).get(ctx.bar_index)
        if action is not None:
            action(ctx)

    def on_fill(self, ctx: Context, fill: Any) -> None:
        self.seen.append(fill)


def hand_source(rows: list[tuple[float, ...]] = HAND, actions: pl.DataFrame | None = None,
                symbol: str = "T") -> FrameDataSource:
    return FrameDataSource(daily_bars(symbol, rows, FIRST), actions=actions)


def run_plan(plan: dict[int, Callable[[Context], Any]], *, rows: list[tuple[float, ...]] = HAND,
             actions: pl.DataFrame | None = None, **options: Any) -> tuple[BacktestResult, Script]:
    strategy = Script(plan=plan)
    result = run_backtest(strategy, "T", FIRST, END, source=hand_source(rows, actions), **options)
    return result, strategy


@pytest.fixture
def run() -> Callable[..., tuple[BacktestResult, Script]]:
    return run_plan
