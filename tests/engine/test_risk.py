"""Risk sizing and limits: resize or reject with the reason recorded."""

from __future__ import annotations

import pytest

from backtape.errors import ConfigError
from backtape.risk import CappedKelly, FixedFractional, PortfolioSnapshot, RiskManager, VolatilityTarget


def snap(**kw) -> PortfolioSnapshot:
    base = {"equity": 100_000.0, "peak_equity": 100_000.0}
    base.update(kw)
    return PortfolioSnapshot(**base)


def test_sizers() -> None:
    assert FixedFractional(0.01).size(100_000, 50.0, stop_price=48.0) == pytest.approx(500)
    assert FixedFractional(0.01, fallback_stop_pct=0.05).size(100_000, 50.0) == pytest.approx(400)
    k = CappedKelly(win_rate=0.55, payoff_ratio=1.5, multiplier=1.0, cap=0.25)
    assert k.fraction() == pytest.approx(0.55 - 0.45 / 1.5)
    assert CappedKelly(0.9, 5.0, multiplier=1.0, cap=0.2).fraction() == 0.2
    assert CappedKelly(0.2, 1.0).fraction() == 0.0
    vt = VolatilityTarget(target=0.10, periods_per_year=256)
    # per-bar vol 1% -> 16% annual -> weight 0.625
    assert vt.size(100_000, 100.0, volatility=0.01) == pytest.approx(625)


def test_max_position_resizes() -> None:
    rm = RiskManager(max_position_pct=0.10)
    d = rm.check("AAPL", 500, 100.0, snap())
    assert d.action == "resize" and d.approved == pytest.approx(100) and "max_position_pct" in d.reason
    d = rm.check("AAPL", 50, 100.0, snap())
    assert d.action == "accept" and d.approved == 50
    held = snap(positions={"AAPL": 100.0}, prices={"AAPL": 100.0})
    d = rm.check("AAPL", 10, 100.0, held)
    assert d.action == "reject" and d.approved == 0


def test_reducing_orders_always_pass() -> None:
    rm = RiskManager(max_position_pct=0.01, max_drawdown_halt=0.1)
    held = snap(equity=50_000.0, positions={"AAPL": 1000.0}, prices={"AAPL": 100.0})
    d = rm.check("AAPL", -400, 100.0, held)
    assert d.action == "accept" and d.approved == -400


def test_drawdown_halt_rejects_new_risk() -> None:
    rm = RiskManager(max_drawdown_halt=0.20)
    d = rm.check("MSFT", 10, 10.0, snap(equity=79_000.0))
    assert d.action == "reject" and "drawdown" in d.reason


def test_gross_net_and_heat() -> None:
    held = snap(positions={"A": 600.0, "B": -300.0}, prices={"A": 100.0, "B": 100.0}, stops={"A": 95.0})
    gross = RiskManager(max_gross_exposure=1.0).check("C", 500, 100.0, held)
    assert gross.approved == pytest.approx(100)  # 90k used, 10k left
    net = RiskManager(max_net_exposure=0.5).check("C", 500, 100.0, held)
    assert net.approved == pytest.approx(200)  # net 30k, room 20k
    short = RiskManager(max_net_exposure=0.5).check("C", -1000, 100.0, held)
    assert short.approved == pytest.approx(-800)
    heat = RiskManager(max_portfolio_heat=0.06, default_stop_loss_pct=0.05)
    # open risk: A 600*5 = 3000; B (short, default stop 105) 300*5 = 1500; room 6000-4500 = 1500
    d = heat.check("C", 1000, 100.0, held, stop_price=98.0)
    assert d.approved == pytest.approx(750) and "heat" in d.reason


def test_default_stop() -> None:
    rm = RiskManager(default_stop_loss_pct=0.02)
    assert rm.default_stop(1, 100.0) == pytest.approx(98.0)
    assert rm.default_stop(-1, 100.0) == pytest.approx(102.0)
    assert RiskManager().default_stop(1, 100.0) is None


@pytest.mark.parametrize(("limits", "message"), [
    ({"max_drawdown_halt": 20}, r"max_drawdown_halt must be a fraction of equity in \(0, 1\]"),
    ({"default_stop_loss_pct": 0}, r"default_stop_loss_pct must be a fraction of equity in \(0, 1\]"),
    ({"max_position_pct": float("nan")}, r"max_position_pct must be a fraction of equity > 0"),
    ({"max_gross_exposure": -1}, r"max_gross_exposure must be a fraction of equity > 0"),
])
def test_a_risk_limit_that_is_no_fraction_is_refused(limits: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RiskManager(**limits)


def test_an_exposure_limit_above_the_leverage_is_refused_as_a_percent_typo() -> None:
    from backtape import TradingOptions

    with pytest.raises(ConfigError, match=r"max_position_pct 5 is 500% of equity, more than the leverage 1x"):
        TradingOptions(risk=RiskManager(max_position_pct=5))
    assert TradingOptions(leverage=2, risk=RiskManager(max_gross_exposure=2)).risk is not None
