"""Corporate actions in a run: which fall inside it, and what each does to the account (when, at
which clock step: ``backtape.actions``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from ..actions import place_actions
from ..timeframes import Timeframe

if TYPE_CHECKING:
    from .engine import _Run


def scheduled_actions(run: _Run) -> list[tuple[int, str, str, float]]:
    """Splits and dividends inside the run, sorted by ex-date (known to the engine, not the strategy)."""
    clock = run.portal.clock_ns
    run.portal.set_clock(run.end)
    actions = run.portal.get_corporate_actions()
    if clock is not None:
        run.portal.set_clock(clock)
    actions = actions.filter(pl.col("symbol").is_in(run.symbols)).with_columns(
        pl.col("ts").cast(pl.Int64))
    rows = sorted(zip(actions["ts"], actions["symbol"], actions["action"], actions["value"], strict=True))
    run._all_actions = rows
    inside = [a for a in rows if run.start < a[0] <= run.end]
    return place_actions(inside, run.portal.calendar, Timeframe.parse(run.frequency))


def apply_action(run: _Run, ts: int, symbol: str, action: str, value: float) -> None:
    """A split scales the position, its lots, its price and working orders; a dividend pays cash."""
    pf = run.portfolio
    qty = pf.positions.get(symbol, 0.0)
    if action == "split" and value > 0 and value != 1.0:
        j = run.symbols.index(symbol)
        run._flush_extremes(j, run.rows[j])
        pf.split(symbol, value)
        if symbol in pf.prices:
            pf.prices[symbol] /= value
        for order in run.broker.working(symbol):
            order.quantity *= value
            order.filled *= value
            if order.limit_price is not None:
                order.limit_price /= value
            if order.stop_price is not None:
                order.stop_price /= value
    elif action in ("dividend", "dividend_in") and qty:
        pf.cash += qty * value
