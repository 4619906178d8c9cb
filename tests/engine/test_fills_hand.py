"""Hand-computed fills and P&L, to the cent, on a six-bar daily series (see conftest.HAND)."""

from __future__ import annotations

import math

import pytest

from backtape.costs import Commission, TransactionCostEngine
from backtape.risk import RiskManager

CENT = 0.005


def fills(result):
    return [(round(q, 6), round(p, 6)) for q, p in result.fills.select("quantity", "price").rows()]


def test_market_next_open_with_percent_commission(run) -> None:
    res, _ = run({0: lambda c: c.order("T", 10), 2: lambda c: c.order("T", -10)}, commission=0.001)
    assert fills(res) == [(10, 102.0), (-10, 103.0)]
    trade = res.trades.row(0, named=True)
    # 10 * (103 - 102) - 1.02 - 1.03
    assert trade["pnl"] == pytest.approx(7.95, abs=CENT)
    assert trade["commission"] == pytest.approx(2.05, abs=CENT)
    eq = res.equity["equity"].to_list()
    assert eq[0] == 10_000.0
    assert eq[1] == pytest.approx(10_000 - 1.02 + 10 * (103 - 102), abs=CENT)  # marked at bar 1's close
    assert eq[-1] == pytest.approx(10_007.95, abs=CENT)
    assert res.metrics["final_equity"] == pytest.approx(10_007.95, abs=CENT)
    assert type(res.metrics["commission"]) is float and res.metrics["commission"] == pytest.approx(2.05)


def test_market_at_signal_close(run) -> None:
    res, _ = run({0: lambda c: c.order("T", 10), 2: lambda c: c.order("T", -10)}, commission=0.001,
                 fill="close")
    assert fills(res) == [(10, 100.0), (-10, 105.0)]
    assert res.trades["pnl"][0] == pytest.approx(50 - 1.00 - 1.05, abs=CENT)
    assert res.equity["equity"][0] == pytest.approx(10_000 - 1.00, abs=CENT)


def test_limit_fills_at_limit_or_at_a_gapped_open(run) -> None:
    res, _ = run({0: lambda c: c.order("T", 10, limit=101.5),     # bar 1: low 101 <= 101.5 < open
                  2: lambda c: c.order("T", 5, limit=105.0),      # bar 3 opens 103 <= 105: gap
                  3: lambda c: c.order("T", -15, limit=99.5)})    # bar 4 opens 97, high 100 >= 99.5
    assert fills(res) == [(10, 101.5), (5, 103.0), (-15, 99.5)]
    # FIFO: 10 @ 101.5 and 5 @ 103 closed at 99.5
    assert res.trades["pnl"].sum() == pytest.approx(10 * -2.0 + 5 * -3.5, abs=CENT)


def test_stop_fills_at_stop_or_at_a_gapped_open(run) -> None:
    res, _ = run({0: lambda c: c.order("T", 10, stop=105.0),      # bar 2: high 106 >= 105 > open 104
                  2: lambda c: c.order("T", -4, stop=100.0),      # bar 3: low 98 <= 100 < open 103
                  3: lambda c: c.order("T", -6, stop=98.0)})      # bar 4 opens 97 <= 98: gap
    assert fills(res) == [(10, 105.0), (-4, 100.0), (-6, 97.0)]
    assert res.metrics["final_equity"] == pytest.approx(10_000 + 4 * -5.0 + 6 * -8.0, abs=CENT)


def test_stop_limit_fills_at_trigger_or_rests_as_limit(run) -> None:
    res, _ = run({0: lambda c: c.order("T", 10, stop=105.0, limit=105.5),
                  3: lambda c: c.order("T", -10, stop=98.5, limit=98.0)})
    assert fills(res) == [(10, 105.0)]  # the sell triggers at bar 4's open 97 < 98, never reaches 98
    assert [r["status"] for r in res.orders.iter_rows(named=True)] == ["filled", "open"]


def test_bracket_stop_loss_and_take_profit(run) -> None:
    # entry fills at bar 1's open (102): legs live on bar 1 already; low 101 hits the 101 stop
    res, _ = run({0: lambda c: c.bracket("T", 10, stop_loss=101.0, take_profit=110.0)})
    assert fills(res) == [(10, 102.0), (-10, 101.0)]
    # take-profit at 103.5 is touched on bar 1 (high 104) while the stop at 95 is not
    res, _ = run({0: lambda c: c.bracket("T", 10, stop_loss=95.0, take_profit=103.5)})
    assert fills(res) == [(10, 102.0), (-10, 103.5)]
    assert [r["status"] for r in res.orders.iter_rows(named=True)] == ["filled", "cancelled", "filled"]


def test_bracket_stop_first_when_both_legs_touch(run) -> None:
    # entry at bar 3's open (103); bar 3 spans 98..107: both 99 and 106 are touched -> the stop
    res, _ = run({2: lambda c: c.bracket("T", 10, stop_loss=99.0, take_profit=106.0)})
    assert fills(res) == [(10, 103.0), (-10, 99.0)]
    assert res.trades["pnl"][0] == pytest.approx(-40.0, abs=CENT)


def test_day_order_expires_gtc_works(run) -> None:
    res, _ = run({0: lambda c: c.order("T", 10, limit=98.5, tif="day")})
    assert fills(res) == []
    row = res.orders.row(0, named=True)
    assert row["status"] == "expired"
    res, _ = run({0: lambda c: c.order("T", 10, limit=98.5)})
    assert fills(res) == [(10, 98.5)]  # bar 3: low 98


def test_partial_fills_under_volume_participation(run) -> None:
    rows = [(*r, 1000.0) for r in [(100, 101, 99, 100), (102, 104, 101, 103), (104, 106, 103, 105),
                                    (103, 107, 98, 99), (97, 100, 95, 96), (96, 97, 94, 95)]]
    res, _ = run({0: lambda c: c.order("T", 250)}, rows=rows, max_participation=0.1, cash=100_000)
    assert fills(res) == [(100, 102.0), (100, 104.0), (50, 103.0)]
    assert res.orders.row(0, named=True)["status"] == "filled"


def test_participation_cap_on_bars_without_volume_fills_whole_and_says_so(run) -> None:
    import warnings

    from backtape.errors import _SAID, BacktapeWarning

    rows = [(*r, float("nan")) for r in [(100, 101, 99, 100), (102, 104, 101, 103), (104, 106, 103, 105),
                                         (103, 107, 98, 99), (97, 100, 95, 96), (96, 97, 94, 95)]]
    _SAID.clear()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        res, _ = run({0: lambda c: c.order("T", 250)}, rows=rows, max_participation=0.1, cash=100_000)
    assert fills(res) == [(250, 102.0)]
    said = [str(w.message) for w in seen if issubclass(w.category, BacktapeWarning)]
    assert said == ["max_participation cannot limit T: its bars have no volume, so its orders fill "
                    "without the cap"]


def test_short_round_trip(run) -> None:
    res, _ = run({0: lambda c: c.sell("T", 10), 3: lambda c: c.buy("T", 10)}, commission=0.001)
    assert fills(res) == [(-10, 102.0), (10, 97.0)]
    t = res.trades.row(0, named=True)
    assert t["side"] == -1
    assert t["pnl"] == pytest.approx(50 - 1.02 - 0.97, abs=CENT)
    # equity while short, bar 2 close 105: 10000 - 1.02 + 10 * (102 - 105)
    assert res.equity["equity"][2] == pytest.approx(10_000 - 1.02 - 30, abs=CENT)


def test_leverage_limit_resizes_and_is_recorded(run) -> None:
    res, _ = run({0: lambda c: c.order("T", 200)})
    assert fills(res) == [(98, 102.0)]  # floor(10000 / 102)
    rej = res.rejections.row(0, named=True)
    assert rej["action"] == "resize" and rej["approved"] == 98 and "leverage" in rej["reason"]
    res, _ = run({0: lambda c: c.order("T", 200)}, leverage=2.0)
    assert fills(res) == [(196, 102.0)]


def test_whole_and_fractional_all_in(run) -> None:
    res, _ = run({0: lambda c: c.order_target_percent("T", 1.0)})
    assert fills(res) == [(98, 102.0)]
    res, _ = run({0: lambda c: c.order_target_percent("T", 1.0)}, commission=0.001)
    assert fills(res) == [(97, 102.0)]  # floor(10000 / (102 * 1.001)) = 97
    res, _ = run({0: lambda c: c.order_target_percent("T", 1.0)}, fractional=True)
    assert res.fills["quantity"][0] == pytest.approx(10_000 / 102, rel=1e-12)


def test_order_target_percent_and_value(run) -> None:
    res, _ = run({0: lambda c: c.order_target_percent("T", 0.5),
                  2: lambda c: c.order_target_percent("T", 0.0)})
    assert fills(res) == [(49, 102.0), (-49, 103.0)]  # floor(5000 / 102)
    res, _ = run({0: lambda c: c.order_target_value("T", 5_000.0),
                  1: lambda c: c.order_target_value("T", 2_000)})
    # 5000 / close 100 = 50 shares; then 2000 / 103 -> 19 shares: sell 31
    assert fills(res) == [(50, 102.0), (-31, 104.0)]


def test_reversal_closes_first_then_sizes_from_cash_left(run) -> None:
    res, _ = run({0: lambda c: c.order_target_percent("T", 1.0),
                  2: lambda c: c.order_target_percent("T", -1.0)}, commission=0.001)
    # long 97 @ 102 (fee 9.894), closed @ 103 (fee 9.991): cash 10000 + 97 - 19.885 = 10077.115
    # short floor(10077.115 / (103 * 1.001)) = 97
    assert fills(res) == [(97, 102.0), (-97, 103.0), (-97, 103.0)]
    assert res.trades["pnl"][0] == pytest.approx(97 - 9.894 - 9.991, abs=CENT)


def test_cancel(run) -> None:
    seen = {}

    def cancel(c):
        order = c.open_orders("T")[0]
        seen["first"] = c.cancel(order)
        seen["again"] = c.cancel(order)

    res, _ = run({0: lambda c: c.order("T", 10, limit=90.0), 2: cancel})
    assert seen == {"first": True, "again": False}
    assert fills(res) == [] and res.orders["status"][0] == "cancelled"


def test_on_fill_callbacks(run) -> None:
    _, strat = run({0: lambda c: c.order("T", 10), 2: lambda c: c.order("T", -10)})
    assert [(f.quantity, f.price) for f in strat.seen] == [(10, 102.0), (-10, 103.0)]


def test_risk_manager_resize_and_reject_are_recorded(run) -> None:
    res, _ = run({0: lambda c: c.order("T", 80)}, risk=RiskManager(max_position_pct=0.5))
    assert fills(res) == [(49, 102.0)]  # 0.5 * 10000 / 102 = 49.02
    rej = res.rejections.row(0, named=True)
    assert rej["action"] == "resize" and "max_position_pct" in rej["reason"]
    res, _ = run({0: lambda c: c.order("T", 10)}, risk=RiskManager(max_gross_exposure=0.005))
    assert fills(res) == []
    rej = res.rejections.row(0, named=True)
    assert rej["action"] == "reject" and "max_gross_exposure" in rej["reason"]
    assert res.orders["status"][0] == "rejected"


def test_costs_itemized_on_fills(run) -> None:
    costs = TransactionCostEngine.simple(commission=0.0, slippage_bps=10)
    costs = TransactionCostEngine(commission=Commission(per_share=0.01, minimum=1.0), slippage=costs.slippage)
    res, _ = run({0: lambda c: c.order("T", 10), 2: lambda c: c.order("T", -10)}, costs=costs)
    f = res.fills.row(0, named=True)
    assert f["price"] == pytest.approx(102 * 1.001) and f["reference_price"] == 102.0
    assert f["slippage"] == pytest.approx(10 * 102 * 0.001) and f["commission"] == 1.0  # minimum
    assert res.metrics["final_equity"] == pytest.approx(10_000 + 10 * (103 * 0.999 - 102 * 1.001) - 2.0,
                                                        abs=CENT)
    assert math.isclose(res.metrics["slippage"], 10 * 102 * 0.001 + 10 * 103 * 0.001)


def test_closing_by_hand_cancels_the_bracket_legs(run) -> None:
    # bracket at bar 0 (entry 102 at bar 1's open; legs far away), closed by hand at bar 1 (exit at
    # bar 2's open 104). The stop at 99 is touched on bar 3 (low 98): it must not open a short.
    res, _ = run({0: lambda c: c.bracket("T", 10, stop_loss=99.0, take_profit=120.0),
                  1: lambda c: c.close("T")})
    assert fills(res) == [(10, 102.0), (-10, 104.0)]
    statuses = {r["tag"]: (r["status"], r["reason"]) for r in res.orders.iter_rows(named=True)}
    assert statuses["stop_loss"][0] == "cancelled" and "closed by order" in statuses["stop_loss"][1]
    assert statuses["take_profit"][0] == "cancelled"
    assert res.metrics["final_equity"] == pytest.approx(10_000 + 20.0, abs=CENT)
