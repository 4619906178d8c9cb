"""The multi-asset vector engine against the event engine: same fills, trades and equity (1e-9).

Sample data: AAPL with its 7:1 split (2014-06-09) and the dividend payers KO, IBM, MSFT; a
hand-computed two-symbol case with commission, slippage, a split and a dividend.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import polars as pl
import pytest

from backtape import check_vector_form
from backtape.engine import Strategy, StrategyFactory, run_backtest
from backtape.errors import ConfigError
from backtape.sources.memory import FrameDataSource, daily_bars
from backtape.vector.form import VectorFormMismatch
from backtape.vector.portfolio import rebalance_mask

PAYERS = ["AAPL", "KO", "IBM", "MSFT"]
CASES = [
    ("equal_weight", {"rebalance": "1mo"}, PAYERS, {"commission": 0.001, "slippage_bps": 2.0}),
    ("equal_weight", {"rebalance": "1w"}, ["AAPL", "KO"], {"fractional": True, "fill": "close"}),
    ("momentum_rotation", {"lookback": 60, "top_n": 2}, PAYERS, {"commission": 0.002}),
    ("momentum_rotation", {"lookback": 20, "top_n": 1, "rebalance": 10}, PAYERS, {"fill": "close"}),
    ("sma_crossover", {"fast": 10, "slow": 30}, ["AAPL"], {"commission": 0.001}),
    ("sma_crossover", {"fast": 5, "slow": 20, "allow_short": True}, ["AAPL", "KO"], {}),
    ("rsi_mean_reversion", {}, ["KO", "IBM"], {"slippage_bps": 5.0}),
    ("donchian_breakout", {}, ["AAPL", "MSFT"], {"fill": "close"}),
    ("momentum", {"lookback": 20}, PAYERS, {}),
    ("momentum", {"lookback": 20}, ["MSFT"], {"commission": 0.001}),
]


@pytest.mark.parametrize(("name", "params", "symbols", "options"), CASES)
def test_every_builtin_agrees_on_both_engines(name: str, params: dict, symbols: list[str],
                                              options: dict) -> None:
    event, vector = check_vector_form(StrategyFactory.create(name, **params), symbols, "2013-01-01",
                                      "2019-01-01", **options)
    assert event.fills.height >= 4
    assert event.trades.equals(vector.trades) or _close(event.trades, vector.trades)
    assert event.open_trades.equals(vector.open_trades) or _close(event.open_trades, vector.open_trades)
    assert _close(event.extra["prices"], vector.extra["prices"])  # what the report draws
    for key in ("final_equity", "sharpe", "max_drawdown", "exposure", "turnover", "trades", "commission",
                "open_trades", "open_pnl", "buy_hold_return", "max_drawdown_time", "avg_trade_duration"):
        assert vector.metrics[key] == pytest.approx(event.metrics[key], rel=1e-9, abs=1e-12), key


def _close(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    assert a.columns == b.columns and a.height == b.height
    for col in a.columns:
        if a[col].dtype == pl.Float64:
            np.testing.assert_allclose(a[col].to_numpy(), b[col].to_numpy(), rtol=1e-9, atol=1e-12)
        else:
            assert a[col].to_list() == b[col].to_list(), col
    return True


def test_every_builtin_is_covered() -> None:
    assert {c[0] for c in CASES} == set(StrategyFactory.list_available())


def test_split_and_dividends_are_booked_not_adjusted() -> None:
    """AAPL's 7:1 split multiplies the shares held; KO's dividends are cash on the ex-dates."""
    _, vec = check_vector_form("equal_weight", ["AAPL", "KO"], "2014-01-01", "2015-01-01")
    fills = vec.fills.with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))
    aapl = fills.filter(pl.col("symbol") == "AAPL")
    before = aapl.filter(pl.col("ts") < pl.datetime(2014, 6, 9, time_zone="UTC"))["price"]
    after = aapl.filter(pl.col("ts") > pl.datetime(2014, 6, 9, time_zone="UTC"))["price"]
    assert before.min() > 400 and after.max() < 130  # raw prices traded on either side of the split


def _hand_source() -> FrameDataSource:
    a = [(100, 101, 99, 100), (100, 103, 99, 102), (102, 105, 101, 104), (104, 107, 103, 106),
         (106, 109, 105, 108)]
    b = [(50, 51, 49, 50), (50, 53, 49, 52), (52, 55, 51, 54), (27, 28, 26, 28), (28, 30, 27, 29)]
    bars = pl.concat([daily_bars("A", a, "2024-01-02"), daily_bars("B", b, "2024-01-02")])
    ex = bars.filter(pl.col("symbol") == "A")["ts"][3]
    actions = pl.DataFrame({"symbol": ["B", "A"], "ts": [ex, ex], "action": ["split", "dividend"],
                            "value": [2.0, 1.0]})
    return FrameDataSource(bars, actions=actions)


@pytest.mark.parametrize("engine", ["event", "vector"])
def test_hand_computed_portfolio_with_costs_split_and_dividend(engine: str) -> None:
    """Half of equity in each of A and B, 1% commission, 10 bps slippage, B splits 2:1 and A pays $1.

    A fills 49 shares at 100.1 (floor(5000 / (100.1 * 1.01))), paying 49.049 commission. B is sized
    from the equity with A marked at its last close 100: 0.5 * 9946.051 buys 98 shares at 50.05.
    """
    res = run_backtest("equal_weight", ["A", "B"], "2024-01-02", "2024-01-09", source=_hand_source(),
                       params={"rebalance": 100}, commission=0.01, slippage_bps=10.0, engine=engine)
    assert res.fills["quantity"].to_list() == [49.0, 98.0]
    np.testing.assert_allclose(res.fills["price"].to_numpy(), [100.1, 50.05], rtol=1e-12)
    np.testing.assert_allclose(res.fills["commission"].to_numpy(), [49.049, 49.049], rtol=1e-12)
    cash = 10_000 - 2 * (4904.9 + 49.049)
    expected = [10_000.0, cash + 49 * 102 + 98 * 52, cash + 49 * 104 + 98 * 54,
                cash + 49 + 49 * 106 + 196 * 28, cash + 49 + 49 * 108 + 196 * 29]
    np.testing.assert_allclose(res.equity["equity"].to_numpy(), expected, rtol=1e-12)
    assert res.open_trades["size"].to_list() == [49.0, 196.0]


def test_rebalance_schedules() -> None:
    closes = np.array(["2024-01-30T21", "2024-01-31T21", "2024-02-01T21", "2024-02-05T21", "2024-03-01T21",
                       "2024-04-01T20"], dtype="datetime64[ns]").astype(np.int64)
    assert rebalance_mask(closes, "1mo").tolist() == [True, False, True, False, True, True]
    assert rebalance_mask(closes, "2mo").tolist() == [True, False, False, False, True, False]
    assert rebalance_mask(closes, "1w").tolist() == [True, False, False, True, True, True]
    assert rebalance_mask(closes, 2).tolist() == [True, False, True, False, True, False]
    midnight = np.array(["2024-01-31", "2024-02-01", "2024-02-02"], dtype="datetime64[ns]").astype(np.int64)
    assert rebalance_mask(midnight, "1mo").tolist() == [True, False, True]  # 24/7 bars end at midnight
    for bad in ("2h", "3d", "soon", 0):
        with pytest.raises(ConfigError, match="rebalance"):
            rebalance_mask(closes, bad)


class Drifting(Strategy):
    """A user strategy whose vector form forgets the rebalancing (so check_vector_form objects)."""

    params: ClassVar[dict[str, Any]] = {"rebalance": "1mo"}

    def on_bar(self, ctx) -> None:  # type: ignore[no-untyped-def]
        if ctx.bar_index % 21 == 0:
            for s in ctx.symbols:
                ctx.order_target_percent(s, 0.5)

    def target_weights(self, data) -> np.ndarray:  # type: ignore[no-untyped-def]
        w = np.full((data.n_steps, len(data.symbols)), np.nan)
        w[data.rebalance(self.rebalance)] = 0.5
        return w


def test_check_vector_form_reports_the_first_difference() -> None:
    with pytest.raises(VectorFormMismatch, match=r"first difference: fill 2: event \(AAPL, "
                                                 r"2014-03-06T14:30:00Z, -1, 532\.79, 0\), vector \(AAPL, "
                                                 r"2014-03-04T14:30:00Z, -1, 531, 0\)"):
        check_vector_form(Drifting(), ["AAPL", "KO"], "2014-01-01", "2015-01-01")


def test_a_strategy_without_a_vector_form_is_refused_by_the_vector_engine() -> None:
    with pytest.raises(ConfigError, match="no vector form"):
        run_backtest(Strategy(), "KO", "2014-01-01", "2015-01-01", engine="vector")


@pytest.mark.parametrize("name", ["momentum_rotation", "sma_crossover"])
def test_sweep_metrics_from_fifo_lots_equal_the_full_run(name: str) -> None:
    """The optimizer's frame-free metrics (numba FIFO lots) equal those of the full result."""
    from backtape.optimization.data import load_market_data
    from backtape.optimization.evaluate import EvalSpec, _portfolio_set
    from backtape.options import TradingOptions

    params = {"lookback": 20, "top_n": 2} if name == "momentum_rotation" else {"fast": 5, "slow": 20,
                                                                               "allow_short": True}
    strat = StrategyFactory.create(name, **params)
    data = load_market_data(PAYERS, "2013-01-01", "2019-01-01", "1d", "sample", warmup=strat.warmup)
    spec = EvalSpec(name, "vector", TradingOptions(commission=0.001))
    full = _portfolio_set(data, spec, params, {})
    quick, equity = _portfolio_set(data, spec, params, {}, full=False)
    assert full.trades.height >= 10
    np.testing.assert_array_equal(equity, full.equity["equity"].to_numpy())
    for key, value in quick.items():
        assert value == pytest.approx(full.metrics[key], rel=1e-9, nan_ok=True), key
