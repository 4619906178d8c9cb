"""Orders the account cannot take whole say so: a buy beyond the cash is filled smaller with one
warning (its ``resize`` row in ``result.rejections``), and a target beyond the margin left is
cancelled with that reason, not "already at the target"."""

from __future__ import annotations

from typing import Any

import pytest

import backtape as bt


class _Oversized(bt.Strategy):
    def on_bar(self, ctx: Any) -> None:
        if ctx.bar_index == 0:
            ctx.buy("AAPL", 1000)


class _Levered(bt.Strategy):
    def on_bar(self, ctx: Any) -> None:
        if ctx.bar_index in (0, 5):
            ctx.order_target_percent("AAPL", 1.0 if ctx.bar_index == 0 else 3.0)


def test_an_order_beyond_the_cash_is_filled_smaller_with_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("backtape.errors._SAID", set())
    with pytest.warns(bt.BacktapeWarning) as caught:
        result = bt.run_backtest(_Oversized(), "AAPL", "2012-01-01", "2012-03-01")
    said = [str(w.message) for w in caught if "smaller" in str(w.message)]
    assert said == ["1 order(s) of _Oversized filled smaller than asked, first at 2012-01-04T14:30:00Z: "
                    "resized to the leverage limit 1x of equity; see result.rejections"]
    (row,) = result.rejections.rows(named=True)
    assert (row["action"], row["requested"], row["approved"]) == ("resize", 1000.0, 24.0)
    assert result.fills["quantity"].to_list() == [24.0]


def test_a_target_beyond_the_margin_left_names_the_margin() -> None:
    result = bt.run_backtest(_Levered(), "AAPL", "2012-01-01", "2012-03-01")
    second = result.orders.sort("id").row(1, named=True)
    assert second["status"] == "cancelled"
    assert second["reason"].startswith("no margin left for 49 AAPL (300% of equity): 1x equity ")


def test_the_results_repr_counts_refused_orders() -> None:
    result = bt.run_backtest("equal_weight", "BRK_A,KO", "2014-01-01", "2014-06-01")
    assert repr(result).splitlines()[-1] == "  refused       5 order(s) (result.rejections)"
    assert "refused" not in repr(bt.run_backtest("equal_weight", "KO,IBM", "2014-01-01", "2014-06-01"))
