"""The RiskManager inside the engine: sizing through the context, default stops, heat, drawdown halt.

Hand series (``conftest.HAND``), cash 10,000, no costs unless said:

    bar:      0      1      2      3      4      5
    open    100    102    104    103     97     96
    high    101    104    106    107    100     97
    low      99    101    103     98     95     94
    close   100    103    105     99     96     95
"""

from __future__ import annotations

import math
import statistics
from typing import Any, ClassVar

import polars as pl
import pytest

from backtape._time import NS_PER_SECOND, to_ns
from backtape.analytics import periods_per_year
from backtape.engine import Strategy, run_backtest
from backtape.errors import BacktapeError
from backtape.portal import DataRequirement
from backtape.risk import CappedKelly, FixedFractional, RiskManager, VolatilityTarget
from backtape.schema import TS
from backtape.sources.memory import FrameDataSource


def _sized(run: Any, risk: RiskManager, bar: int = 0) -> list[float]:
    """``[ctx.size("T", +1), ctx.size("T", -1)]`` at ``bar``."""
    seen: list[float] = []
    run({bar: lambda ctx: seen.extend([ctx.size("T", +1), ctx.size("T", -1)])}, risk=risk)
    return seen


def _orders(result: Any, tag: str) -> pl.DataFrame:
    return result.orders.filter(pl.col("tag") == tag)


# ------------------------------------------------------------------------------------------ sizing
def test_fixed_fractional_sizes_by_the_stop_distance(run: Any) -> None:
    # 2% of 10,000 = 200 at risk; close 100, stop 95: 200 / 5 = 40 shares
    seen: list[float] = []
    result, _ = run({0: lambda ctx: (seen.append(ctx.size("T", +1, stop=95.0)),  # type: ignore[func-returns-value]
                                          ctx.order_sized("T", +1, stop=95.0))},
                         risk=RiskManager(sizer=FixedFractional(0.02)))
    assert seen == [40.0]
    entry = result.fills.row(0, named=True)
    assert entry["quantity"] == 40.0 and entry["price"] == 102.0  # next open
    # the stop is the bracket's own (no default stop): low 95 at bar 4 touches it, 40 * (95 - 102)
    stop = _orders(result, "stop_loss").row(0, named=True)
    assert stop["stop_price"] == 95.0 and stop["status"] == "filled"
    assert result.trades["pnl"].to_list() == [pytest.approx(-280.0)]
    assert result.metrics["final_equity"] == pytest.approx(9_720.0)


def test_sizing_without_a_stop_uses_the_default_stop_then_the_sizers_fallback(run: Any) -> None:
    # default stop 4% of the close 100: 200 / 4 = 50 shares, long or short
    sizes = _sized(run, RiskManager(sizer=FixedFractional(0.02), default_stop_loss_pct=0.04))
    assert sizes == [50.0, -50.0]
    # no default stop: the sizer's fallback 2% -> 200 / 2 = 100
    sizes = _sized(run, RiskManager(sizer=FixedFractional(0.02)))
    assert sizes == [100.0, -100.0]


def test_whole_shares_unless_fractional(run: Any) -> None:
    # 1% of 10,000 = 100 at risk over a 3.00 stop distance: 33.33 shares
    seen: list[float] = []
    rm = RiskManager(sizer=FixedFractional(0.01))
    run({0: lambda ctx: seen.append(ctx.size("T", +1, stop=97.0))}, risk=rm)
    run({0: lambda ctx: seen.append(ctx.size("T", +1, stop=97.0))}, risk=rm, fractional=True)
    assert seen[0] == 33.0 and seen[1] == pytest.approx(100.0 / 3.0)


def test_capped_kelly_sizes_a_fraction_of_equity(run: Any) -> None:
    # Kelly 0.6 - 0.4 / 2 = 0.4, half-Kelly 0.2 of 10,000 at 100 = 20 shares
    sizes = _sized(run, RiskManager(sizer=CappedKelly(win_rate=0.6, payoff_ratio=2.0, multiplier=0.5)))
    assert sizes == [20.0, -20.0]


def test_volatility_target_reads_the_volatility_point_in_time(run: Any) -> None:
    # at bar 3 the last four closes are 100, 103, 105, 99 (nothing after the clock)
    returns = [103 / 100 - 1, 105 / 103 - 1, 99 / 105 - 1]
    vol = statistics.stdev(returns)  # 0.0475529...
    rm = RiskManager(sizer=VolatilityTarget(target=0.10, periods_per_year=252, window=3))
    sizes = _sized(run, rm, bar=3)
    weight = 0.10 / (vol * math.sqrt(252))
    assert sizes == [float(math.floor(10_000 * weight / 99.0)), -13.0] and sizes[0] == 13.0
    # without periods_per_year the run's own (NYSE daily sessions per year) annualizes
    ppy = periods_per_year(calendar="XNYS", frequency="1d")
    sizes = _sized(run, RiskManager(sizer=VolatilityTarget(target=0.10, window=3)), bar=3)
    assert sizes[0] == math.floor(10_000 * 0.10 / (vol * math.sqrt(ppy)) / 99.0)


def test_sizing_needs_a_sizer_and_a_stop_on_the_right_side(run: Any) -> None:
    with pytest.raises(BacktapeError, match="RiskManager with a sizer"):
        run({0: lambda ctx: ctx.order_sized("T")})
    with pytest.raises(ValueError, match=r"stop 101\.0 of a long T entry must be below the price 100"):
        run({0: lambda ctx: ctx.size("T", +1, stop=101.0)}, risk=RiskManager(sizer=FixedFractional()))
    seen: list[Any] = []
    run({0: lambda ctx: seen.append(ctx.order_sized("T", +1, stop=1.0))},
             risk=RiskManager(sizer=FixedFractional(0.001)), cash=10.0)
    assert seen == [None]  # 0.01 at risk over 99.00: rounds to no shares, no order


# ------------------------------------------------------------------------------- default stop-loss
def test_default_stop_protects_a_new_long_and_fills_to_the_cent(run: Any) -> None:
    # bought 50 at 102 (bar 1 open): stop 102 * 0.95 = 96.90; bar 4 (open 97, low 95) hits it
    result, _ = run({0: lambda ctx: ctx.buy("T", 50)}, risk=RiskManager(default_stop_loss_pct=0.05))
    entry_id = result.orders.row(0, named=True)["id"]
    stop = _orders(result, "default_stop").row(0, named=True)
    assert stop["stop_price"] == pytest.approx(96.90) and stop["quantity"] == -50.0
    assert stop["tif"] == "gtc" and stop["status"] == "filled" and stop["parent_id"] == entry_id
    assert result.fills["price"].to_list() == [102.0, pytest.approx(96.90)]
    assert round(result.trades["pnl"].item(), 2) == -255.00
    assert round(result.metrics["final_equity"], 2) == 9_745.00


def test_default_stop_of_a_short_fills_at_its_price_inside_the_bar(run: Any) -> None:
    # short 50 at 102: stop 102 * 1.03 = 105.06; bar 2 (open 104, high 106) reaches it
    result, _ = run({0: lambda ctx: ctx.sell("T", 50)}, risk=RiskManager(default_stop_loss_pct=0.03))
    stop = _orders(result, "default_stop").row(0, named=True)
    assert stop["stop_price"] == pytest.approx(105.06) and stop["quantity"] == 50.0
    assert result.fills["price"].to_list() == [102.0, pytest.approx(105.06)]
    assert round(result.trades["pnl"].item(), 2) == -153.00


def test_default_stop_is_cancelled_when_another_order_closes_the_position(run: Any) -> None:
    # the exit placed at bar 3 fills at bar 4's open (97) before the stop (96.90) could, so the stop
    # is cancelled instead of opening a short
    result, _ = run({0: lambda ctx: ctx.buy("T", 50), 3: lambda ctx: ctx.close("T")},
                         risk=RiskManager(default_stop_loss_pct=0.05))
    stop = _orders(result, "default_stop").row(0, named=True)
    exit_id = result.orders.filter(pl.col("quantity") == -50.0, pl.col("type") == "market")["id"].item()
    assert stop["status"] == "cancelled" and stop["reason"] == f"position closed by order {exit_id}"
    assert result.fills["price"].to_list() == [102.0, 97.0]
    assert round(result.trades["pnl"].item(), 2) == -250.00 and not result.open_trades.height


def test_default_stop_follows_adds_and_partial_exits(run: Any) -> None:
    # +50 at 102 (stop 96.90 from the first entry), +30 at 104, -20 at 103: the stop sells 60 at 96.90
    plan = {0: lambda ctx: ctx.buy("T", 50), 1: lambda ctx: ctx.buy("T", 30),
            2: lambda ctx: ctx.sell("T", 20)}
    result, _ = run(plan, risk=RiskManager(default_stop_loss_pct=0.05))
    stops = _orders(result, "default_stop")
    assert stops.height == 1
    stop = stops.row(0, named=True)
    assert stop["quantity"] == -60.0 and stop["filled"] == -60.0 and stop["status"] == "filled"
    assert result.fills["quantity"].to_list() == [50.0, 30.0, -20.0, -60.0]
    # FIFO: 20 of the 102 lot at 103, then 30 at 102 and 30 at 104 stopped at 96.90
    expected = 20 * (103 - 102) + 30 * (96.90 - 102) + 30 * (96.90 - 104)
    assert round(result.trades["pnl"].sum(), 2) == round(expected, 2) == -346.00


def test_default_stop_is_one_cancels_other_with_a_take_profit(run: Any) -> None:
    # bracket with a take-profit only: the default stop joins it; take-profit 105 fills at bar 2
    result, _ = run({0: lambda ctx: ctx.bracket("T", 50, take_profit=105.0)},
                         risk=RiskManager(default_stop_loss_pct=0.05))
    stop = _orders(result, "default_stop").row(0, named=True)
    tp_id = _orders(result, "take_profit")["id"].item()
    assert stop["status"] == "cancelled" and stop["reason"] == f"one-cancels-other: order {tp_id} filled"
    assert round(result.trades["pnl"].item(), 2) == 150.00


def test_own_stops_need_no_default_stop_and_a_later_stop_replaces_it(run: Any) -> None:
    rm = RiskManager(default_stop_loss_pct=0.05)
    result, _ = run({0: lambda ctx: ctx.bracket("T", 50, stop_loss=90.0)}, risk=rm)
    assert _orders(result, "default_stop").height == 0
    result, _ = run({0: lambda ctx: ctx.buy("T", 50), 1: lambda ctx: ctx.order("T", -50, stop=98.5)},
                         risk=rm)
    stop = _orders(result, "default_stop").row(0, named=True)
    own = result.orders.filter(pl.col("stop_price") == 98.5)["id"].item()
    assert stop["status"] == "cancelled" and stop["reason"] == f"replaced by the strategy's stop order {own}"
    assert result.fills["price"].to_list() == [102.0, 98.5]  # bar 3 low 98 reaches the strategy's stop


def test_portfolio_heat_measures_risk_to_the_default_stop(run: Any) -> None:
    # +50 at 102 with stop 96.90. Adding 100 at bar 2's open (104): equity 4,900 + 50 * 103 = 10,050,
    # heat room 6% = 603.00 over 104 - 96.90 = 7.10 per share -> 84.93 shares in all, 34 more.
    # (Assuming a fresh 5% stop below 104 instead would have allowed 65.)
    rm = RiskManager(default_stop_loss_pct=0.05, max_portfolio_heat=0.06)
    result, _ = run({0: lambda ctx: ctx.buy("T", 50), 1: lambda ctx: ctx.buy("T", 100)}, risk=rm)
    rej = result.rejections.row(0, named=True)
    assert rej["action"] == "resize" and rej["requested"] == 100.0 and rej["approved"] == 34.0
    assert "max_portfolio_heat" in rej["reason"]
    assert result.fills["quantity"].to_list()[:2] == [50.0, 34.0]
    assert _orders(result, "default_stop")["quantity"].item() == -84.0


# ---------------------------------------------------------------------------------- drawdown halt
HALT_ROWS = [(100, 101, 99, 100), (100, 101, 99, 100), (100, 100, 90, 90), (95, 100, 94, 99),
             (99, 100, 98, 99), (99, 100, 98, 99)]


def test_drawdown_halt_latches_and_refusals_are_recorded(run: Any) -> None:
    # 90 shares bought at 100: equity 10,000 -> 9,100 at bar 2 (9% down, halt at 5%) -> 9,910 at
    # bar 3 (0.9% down). The add placed at bar 3 is refused even though equity recovered; the exit
    # at bar 4 still passes.
    plan = {0: lambda ctx: ctx.buy("T", 90), 3: lambda ctx: ctx.buy("T", 5), 4: lambda ctx: ctx.close("T")}
    result, _ = run(plan, rows=HALT_ROWS, risk=RiskManager(max_drawdown_halt=0.05))
    rej = result.rejections.to_dicts()
    assert len(rej) == 1 and rej[0]["action"] == "reject" and rej[0]["requested"] == 5.0
    assert rej[0]["approved"] == 0.0
    assert rej[0]["reason"] == "max drawdown halt: drawdown reached 5.00% earlier in the run (now 0.90%)"
    refused = result.orders.filter(pl.col("quantity") == 5.0).row(0, named=True)
    assert refused["status"] == "rejected" and refused["reason"] == rej[0]["reason"]
    assert result.fills["quantity"].to_list() == [90.0, -90.0]


def test_no_halt_below_the_threshold(run: Any) -> None:
    plan = {0: lambda ctx: ctx.buy("T", 90), 3: lambda ctx: ctx.buy("T", 5)}
    result, _ = run(plan, rows=HALT_ROWS, risk=RiskManager(max_drawdown_halt=0.10))
    assert result.rejections.height == 0 and result.fills["quantity"].to_list() == [90.0, 5.0]


# ------------------------------------------------------------------------------------ with quotes
T0 = to_ns("2024-01-01T00:00:00Z")
QUOTES = [(5, 99.9, 100.1), (20, 100.0, 100.2), (60, 100.1, 100.3), (90, 100.4, 100.6), (110, 99.7, 99.9)]


class _QuoteBuyer(Strategy):
    """Buys one unit at the first quote (bars and quotes loaded, quote fills)."""

    params: ClassVar[dict[str, Any]] = {}

    def get_data_requirements(self) -> list[DataRequirement]:
        return [DataRequirement("bars", self.frequency), DataRequirement("quotes", self.frequency)]

    def on_quote(self, ctx: Any, quote: Any) -> None:
        if not ctx.position("X") and not ctx.open_orders("X") and not ctx.state.get("done"):
            ctx.state["done"] = ctx.buy("X", 1)


def test_default_stop_of_a_quote_filled_position_triggers_on_the_bid() -> None:
    # bought at the ask 100.10 (q@5): stop 100.10 * 0.997 = 99.7997; q@110 bid 99.70 triggers it,
    # selling at the bid
    ts = [T0 + i * 60 * NS_PER_SECOND for i in range(3)]
    bars = pl.DataFrame({"symbol": ["X"] * 3, "ts": pl.Series(ts).cast(TS),
                         "ts_end": pl.Series([t + 60 * NS_PER_SECOND for t in ts]).cast(TS),
                         "open": [100.0] * 3, "high": [100.5] * 3, "low": [99.5] * 3, "close": [100.0] * 3,
                         "volume": [10.0] * 3})
    quotes = pl.DataFrame({"symbol": ["X"] * len(QUOTES),
                           "ts": pl.Series([T0 + q[0] * NS_PER_SECOND for q in QUOTES]).cast(TS),
                           "bid": [q[1] for q in QUOTES], "ask": [q[2] for q in QUOTES],
                           "bid_size": [5.0] * len(QUOTES), "ask_size": [5.0] * len(QUOTES)})
    src = FrameDataSource(bars, frequency="1min", calendar_name="24/7", quotes=quotes)
    result = run_backtest(_QuoteBuyer(), "X", T0, T0 + 180 * NS_PER_SECOND, "1min", source=src,
                          cash=1_000.0, risk=RiskManager(default_stop_loss_pct=0.003))
    stop = _orders(result, "default_stop").row(0, named=True)
    assert stop["stop_price"] == pytest.approx(99.7997) and stop["status"] == "filled"
    f = result.fills
    assert ((f["ts"].cast(pl.Int64) - T0) // NS_PER_SECOND).to_list() == [5, 110]
    assert f["price"].to_list() == [pytest.approx(100.1), pytest.approx(99.7)]
