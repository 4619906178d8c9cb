"""Refused orders are the same on both engines: the vector engine lists them in ``result.rejections``
(time, symbol, requested quantity and the broker's reason), counts them in the metrics, rejects them
in ``result.orders`` and warns once, as the event engine does."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import backtape as bt
from backtape import check_vector_form
from backtape.engine import Strategy, StrategyFactory
from backtape.errors import _SAID, BacktapeWarning
from backtape.fills import FRACTIONAL_HINT


class AllIn(Strategy):
    """All of equity in every symbol on the first bar: the first fills, the rest find no margin left."""

    def on_bar(self, ctx: bt.Context) -> None:
        if ctx.bar_index == 0:
            for s in ctx.symbols:
                ctx.order_target_percent(s, 1.0)

    def target_weights(self, data: Any) -> np.ndarray:
        w = np.full((data.n_steps, len(data.symbols)), np.nan)
        w[data.start_row] = 1.0
        return w


CASES = [
    ("sma_crossover", {}, ["BTC-PERP"], "2022-01-01", "2022-02-01", "1h", {"fractional": False}),
    ("sma_crossover", {}, ["BTC-PERP"], "2022-01-01", "2022-02-01", "1h", {"fractional": False,
                                                                         "fill": "close"}),
    ("momentum_rotation", {}, ["AAPL", "KO", "IBM", "MSFT", "BRK_A"], "2010-01-01", "2020-01-01", "1d", {}),
    (AllIn, {}, ["KO", "MSFT", "IBM"], "2013-01-01", "2013-03-01", "1d", {"commission": 0.001}),
    (AllIn, {}, ["KO", "IBM"], "2013-01-01", "2013-03-01", "1d", {"fill": "close", "slippage_bps": 5.0}),
]


def _both(strategy: Any, params: dict, symbols: list[str], start: str, end: str, frequency: str,
          options: dict) -> tuple[Any, Any, list[str]]:
    strat = StrategyFactory.create(strategy, **params) if isinstance(strategy, str) else strategy(**params)
    _SAID.clear()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        event, vector = check_vector_form(strat, symbols, start, end, frequency, **options)
    said = [str(w.message) for w in seen if issubclass(w.category, BacktapeWarning) and "refused" in
            str(w.message)]
    return event, vector, said


@pytest.mark.parametrize(("strategy", "params", "symbols", "start", "end", "frequency", "options"), CASES)
def test_both_engines_refuse_the_same_orders_for_the_same_reasons(strategy: Any, params: dict,
                                                                   symbols: list[str], start: str, end: str,
                                                                   frequency: str, options: dict) -> None:
    event, vector, said = _both(strategy, params, symbols, start, end, frequency, options)
    assert event.rejections.height > 0
    assert event.rejections.drop("order_id").equals(vector.rejections.drop("order_id"))
    assert vector.rejections.schema == event.rejections.schema
    assert vector.metrics["orders_refused"] == event.metrics["orders_refused"] == event.rejections.height
    rejected = vector.orders.filter(vector.orders["status"] == "rejected")
    assert rejected["id"].to_list() == vector.rejections["order_id"].to_list()
    assert rejected["reason"].to_list() == vector.rejections["reason"].to_list()
    assert (rejected["filled"] == 0).all()
    assert vector.orders["id"].is_sorted() and vector.orders["id"].n_unique() == vector.orders.height
    assert set(vector.fills["order_id"]).isdisjoint(set(rejected["id"]))
    assert (vector.fills["quantity"] != 0).all()  # never a fill of quantity 0
    # the vector engine's own one-line warning counts them, in the event engine's words
    _SAID.clear()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        bt.run_backtest(strategy if isinstance(strategy, str) else strategy(), symbols, start, end,
                        frequency, source="sample", engine="vector", params=params, store=False, **options)
    lines = [str(w.message) for w in seen if "refused" in str(w.message)]
    assert lines == [m for m in said if "refused" in m]
    assert lines[0].startswith(f"{vector.rejections.height:,} order(s) of ")


def test_a_vector_refusal_for_margin_says_what_it_wanted_and_what_was_left() -> None:
    _, vector, _ = _both(AllIn, {}, ["KO", "MSFT"], "2013-01-01", "2013-03-01", "1d", {})
    row = vector.rejections.row(0, named=True)
    assert row["symbol"] == "MSFT" and row["requested"] > 300
    # equity marks KO at its last close and MSFT at the open it would fill at; the room left is the cash
    assert row["reason"].startswith(f"no margin left for {row['requested']:g} MSFT (100% of equity): "
                                    "1x equity 10,0")
    ko = vector.fills.row(0, named=True)
    left = 10_000 - ko["quantity"] * ko["price"]
    assert row["reason"].endswith(f"held leaves {left:,.2f}")


def test_a_budget_below_one_whole_unit_is_refused_with_the_fractional_hint() -> None:
    _, vector, _ = _both("sma_crossover", {}, ["BTC-PERP"], "2022-01-01", "2022-02-01", "1h",
                         {"fractional": False})
    assert vector.metrics["trades"] == 0 and vector.fills.height == 0
    reasons = vector.rejections["reason"]
    assert all(r.startswith("10,000.00 (100% of equity) buys no whole unit of BTC-PERP at ")
               and r.endswith(FRACTIONAL_HINT) for r in reasons)


def test_runs_without_records_keep_the_same_equity() -> None:
    """Runs without fill records (the optimizer's) keep the same equity as a full run with refusals."""
    from backtape.optimization.data import load_market_data
    from backtape.options import TradingOptions
    from backtape.vector.form import decisions
    from backtape.vector.portfolio import run, vector_data

    market = load_market_data(["KO", "MSFT"], "2013-01-01", "2013-03-01", "1d", "sample")
    data = vector_data(market)
    opts = TradingOptions(fractional=False)
    full = run(data, decisions(AllIn(), data), opts)
    quick = run(data, decisions(AllIn(), data), opts, fills=False)
    assert full.refusals.shape[0] == 1 and quick.refusals.shape[0] == 0
    np.testing.assert_array_equal(full.equity, quick.equity)
