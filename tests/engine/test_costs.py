"""Transaction costs, hand-computed to the cent."""

from __future__ import annotations

import math

import pytest

from backtape.costs import (
    Commission,
    MarketState,
    SlippageModel,
    SpreadModel,
    SquareRootImpact,
    TransactionCostEngine,
)


def test_commission_components_and_minimum() -> None:
    ib_like = Commission(per_share=0.005, minimum=1.0, maximum=0.01)
    assert ib_like(100, 50.0) == 1.0  # 0.50 -> floored at 1.00
    assert ib_like(1000, 50.0) == pytest.approx(5.0)
    assert ib_like(1000, 0.10) == pytest.approx(1.0)  # capped at 1% of 100.00 notional
    mixed = Commission(per_order=2.0, percent=0.001)
    assert mixed(200, 25.0) == pytest.approx(2.0 + 5.0)
    assert mixed(0, 25.0) == 0.0
    with pytest.raises(ValueError, match="percent"):
        Commission(percent=-0.1)


def test_buy_and_sell_move_price_against_the_trader() -> None:
    eng = TransactionCostEngine(commission=Commission(percent=0.001), slippage=SlippageModel(bps=10),
                                spread=SpreadModel(bps=20))
    buy = eng.fill(+1, 100, MarketState(price=100.0))
    # half spread 10 bps + slippage 10 bps = 20 bps
    assert buy.price == pytest.approx(100.20)
    assert buy.spread == pytest.approx(10.0)
    assert buy.slippage == pytest.approx(10.0)
    assert buy.commission == pytest.approx(100 * 100.20 * 0.001)
    assert buy.total == pytest.approx(20.0 + 10.02)
    sell = eng.fill(-1, 100, MarketState(price=100.0))
    assert sell.price == pytest.approx(99.80)


def test_spread_from_quotes_beats_fixed_width() -> None:
    model = SpreadModel(bps=100)
    assert model.fraction(MarketState(price=10.0, bid=9.99, ask=10.01)) == pytest.approx(0.001)
    assert model.fraction(MarketState(price=10.0)) == pytest.approx(0.005)
    assert SpreadModel(bps=100, use_quotes=False).fraction(MarketState(10.0, bid=9.99, ask=10.01)) == 0.005


def test_volatility_slippage_and_square_root_impact() -> None:
    m = MarketState(price=20.0, volume=10_000, volatility=0.01)
    assert SlippageModel(bps=0, volatility_multiple=0.5).fraction(m) == pytest.approx(0.005)
    impact = SquareRootImpact(coefficient=1.0)
    # 1.0 * 0.01 * sqrt(2500 / 10000) = 0.005
    assert impact.fraction(2500, m) == pytest.approx(0.005)
    assert impact.fraction(2500, MarketState(price=20.0)) == 0.0  # no volume known -> no impact
    eng = TransactionCostEngine(impact=impact)
    c = eng.fill(+1, 2500, m)
    assert c.impact == pytest.approx(2500 * 20.0 * 0.005)
    assert math.isclose(c.price, 20.0 * 1.005)


def test_side_must_be_signed_unit() -> None:
    with pytest.raises(ValueError, match="side"):
        TransactionCostEngine().fill(0, 1, MarketState(price=1.0))
