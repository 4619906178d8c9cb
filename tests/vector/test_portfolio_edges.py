"""Portfolios at their edges, on both engines: symbols whose data starts on different dates, a symbol
with no bar yet, fewer symbols than ``top_n``, two calendars in one run, and vector forms that fail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import numpy as np
import polars as pl
import pytest

import backtape as bt
from backtape import check_vector_form
from backtape.engine import StrategyFactory
from backtape.errors import ConfigError, StrategyError


@pytest.mark.parametrize(("name", "params", "symbols", "options"), [
    ("sma_crossover", {"fast": 5, "slow": 20}, ["ZEN", "KO"], {}),
    ("donchian_breakout", {}, ["ZEN", "KO"], {}),
    ("rsi_mean_reversion", {}, ["ZEN", "IBM"], {}),
    ("momentum", {"lookback": 20}, ["BRK_A", "KO"], {"fractional": True}),
])
def test_symbols_starting_on_different_dates_trade_alike_on_both_engines(name: str, params: dict,
                                                                         symbols: list[str],
                                                                         options: dict) -> None:
    """ZEN's data starts in 2014: both engines wait for its warm-up (the event engine's on_bar does)."""
    event, _ = check_vector_form(StrategyFactory.create(name, **params), symbols, "2012-01-01",
                                 "2015-01-01", **options)
    assert event.fills.height > 0
    ready = datetime(2014, 1, 1, tzinfo=UTC)
    assert event.fills["ts"].min() > ready  # nothing before every symbol has its warm-up


def test_a_symbol_without_bars_yet_gets_one_waiting_order_not_a_pile() -> None:
    """BRK_A's sample data starts in 2014: equal_weight's orders for it replace each other until then."""
    event, vector = check_vector_form(StrategyFactory.create("equal_weight", rebalance="2w"),
                                      ["AAPL", "BRK_A", "KO"], "2012-01-01", "2015-01-01")
    assert event.metrics["orders_refused"] == vector.metrics["orders_refused"] == event.rejections.height
    first_bar = event.rejections.filter(event.rejections["symbol"] == "BRK_A")["ts"].min()
    assert event.rejections.filter(event.rejections["ts"] == first_bar).height == 1
    replaced = event.orders.filter(event.orders["reason"].str.starts_with("replaced by target order"))
    assert replaced.height > 10 and (replaced["status"] == "cancelled").all()


def test_momentum_rotation_with_fewer_symbols_than_top_n_invests_everything() -> None:
    event, _ = check_vector_form(StrategyFactory.create("momentum_rotation", lookback=20),
                                 ["AAPL", "KO", "IBM", "MSFT"], "2013-01-01", "2014-01-01")
    first = event.fills.filter(event.fills["ts"] == event.fills["ts"].min())
    assert first.height == 4
    spent = (first["quantity"] * first["price"]).sum()
    assert spent > 0.9 * 10_000  # 25% each, whole shares (top_n=10 would have left 60% in cash)


@pytest.mark.parametrize("engine", ["event", "vector"])
def test_symbols_of_two_calendars_are_refused_by_name(engine: str) -> None:
    with pytest.raises(ConfigError, match=r"AAPL trades on the XNYS calendar and BTC-PERP on 24/7: .*"
                                          r"run them separately"):
        bt.run_backtest("equal_weight", ["AAPL", "BTC-PERP"], "2021-06-01", "2022-02-01", engine=engine,
                        source="sample", store=False)


def test_optimize_refuses_two_calendars_too() -> None:
    with pytest.raises(ConfigError, match="BTC-PERP trades on the 24/7 calendar and KO on XNYS"):
        bt.optimize("equal_weight", {"rebalance": ["1mo", "1w"]}, ["BTC-PERP", "KO"], "2021-06-01",
                    "2022-02-01", source="sample", store=False)


class _Raises(bt.Strategy):
    def on_bar(self, ctx: bt.Context) -> None:
        pass

    def target_weights(self, data) -> np.ndarray:  # type: ignore[no-untyped-def]
        return np.full((data.n_steps, len(data.symbols)), np.nan)[[1.5]]


class _Infinite(bt.Strategy):
    def on_bar(self, ctx: bt.Context) -> None:
        pass

    def target_weights(self, data) -> np.ndarray:  # type: ignore[no-untyped-def]
        w = np.full((data.n_steps, len(data.symbols)), np.nan)
        w[5, 1] = np.inf
        return w


class _NoSignals(bt.Strategy):
    def on_bar(self, ctx: bt.Context) -> None:
        pass

    def generate_signals(self, data):  # type: ignore[no-untyped-def]
        return None


class _InfiniteSize(bt.Strategy):
    def on_bar(self, ctx: bt.Context) -> None:
        pass

    def generate_signals(self, data):  # type: ignore[no-untyped-def]
        return {"entries": np.zeros((data.n_steps, len(data.symbols)), dtype=bool), "size": np.inf}


class _Form(bt.Strategy):
    def on_bar(self, ctx: bt.Context) -> None:
        pass


class _NanSignal(_Form):
    def generate_signals(self, data):  # type: ignore[no-untyped-def]
        return {"entries": np.full(data.close.shape, np.nan)}


class _SizeShape(_Form):
    def generate_signals(self, data):  # type: ignore[no-untyped-def]
        return {"entries": np.zeros(data.close.shape, dtype=bool), "size": np.ones(5)}


class _Words(_Form):
    def target_weights(self, data):  # type: ignore[no-untyped-def]
        return [["half"] * len(data.symbols)] * data.n_steps


@pytest.mark.parametrize(("strategy", "error", "match"), [
    (_NanSignal, ConfigError, r"_NanSignal\.generate_signals: entries must be True/False \(or 0/1\), got "
                              r"values such as nan; NaN is not False"),
    (_SizeShape, ConfigError, r"_SizeShape\.generate_signals: size has shape \(5,\), expected one number"),
    (_Words, ConfigError, r"_Words\.target_weights must be numbers \(a numpy array of steps x symbols\), "
                          r"got list"),
    (_Raises, StrategyError, r"IndexError in _Raises\.target_weights \(.*test_portfolio_edges\.py:\d+\): "),
    (_Infinite, ConfigError, r"_Infinite\.target_weights: weight inf for IBM at step 5 \(2013-01-09"),
    (_NoSignals, ConfigError, r"_NoSignals\.generate_signals must return a dict .* got NoneType"),
    (_InfiniteSize, ConfigError, r"_InfiniteSize\.generate_signals: size must be finite weights >= 0"),
])
def test_a_failing_vector_form_is_named(strategy: type, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        bt.run_backtest(strategy(), ["KO", "IBM"], "2013-01-01", "2014-01-01", engine="vector",
                        source="sample", store=False)


def test_a_refused_order_below_one_unit_reports_the_fraction_it_wanted() -> None:
    _, vector = check_vector_form("sma_crossover", ["BTC-PERP"], "2022-01-01", "2022-02-01", "1h",
                                  fractional=False)
    row = vector.rejections.row(0, named=True)
    price = float(row["reason"].split(" at ")[1].split(" ")[0].replace(",", ""))
    assert row["requested"] == pytest.approx(10_000 / price, rel=1e-9)


@pytest.mark.parametrize("engine", ["event", "vector"])
def test_both_engines_say_once_when_trading_waits_for_the_warm_up(engine: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("backtape.errors._SAID", set())
    with pytest.warns(bt.BacktapeWarning) as caught:
        bt.run_backtest("sma_crossover", "AAPL", "2012-01-01", "2012-06-01", engine=engine,
                        params={"fast": 10, "slow": 30})
    said = [str(w.message) for w in caught if "history" in str(w.message)]
    assert said == ["SmaCrossover needs 30 bars of 1d history; the data has them from 2012-02-14T21:00:00Z "
                    "on, so on_bar is first called then"]


class _RequiredHistory(bt.Strategy):
    """Half in each symbol at its ``n``-bar high; declares its look-back as ``required_history``."""

    params: ClassVar[dict[str, Any]] = {"n": 21}

    @property
    def required_history(self) -> int:  # type: ignore[override]
        return int(self.n)

    def on_bar(self, ctx: Any) -> None:
        for sym in ctx.symbols:
            ctx.order_target_percent(sym, 0.5 if ctx.spot(sym) >= ctx.history(sym, self.n).max() else 0.0)

    def target_weights(self, data: Any) -> np.ndarray:
        close, out = data.close, np.full(data.close.shape, np.nan)
        for i in range(self.n - 1, len(close)):
            out[i] = np.where(close[i] >= close[i - self.n + 1 : i + 1].max(axis=0), 0.5, 0.0)
        return out


def test_required_history_is_the_warm_up_on_both_engines() -> None:
    event, vector = check_vector_form(_RequiredHistory(), ["KO", "IBM"], "2012-01-01", "2014-01-01")
    assert _RequiredHistory().warmup == 21 and event.fills.height == vector.fills.height > 0


@pytest.mark.parametrize(("symbols", "start", "end", "frequency", "params", "options"), [
    (["BRK_A", "MSFT"], "2013-06-01", "2014-03-01", "1d", {"rebalance": 3}, {"cash": 1_000_000}),
    (["BRK_A", "MSFT"], "2013-06-01", "2014-03-01", "1d", {"rebalance": 3},
     {"cash": 1_000_000, "fill": "close"}),
    (["AAPL", "ZEN"], "2012-01-01", "2015-01-01", "1mo", {}, {"fill": "close", "commission": 0.001,
                                                             "slippage_bps": 5}),
    (["ZEN", "KO", "BRK_A"], "2013-01-01", "2015-01-01", "1d", {"rebalance": "1mo"}, {"fill": "close"}),
])
def test_an_order_that_waited_for_a_symbols_first_bar_fills_alike(symbols: list[str], start: str, end: str,
                                                                   frequency: str, params: dict,
                                                                   options: dict) -> None:
    """A symbol's first fill values it at that fill until its first close (both engines), and with
    ``fill="close"`` an order that waited for the symbol's first bar fills at that bar's close."""
    event, _ = check_vector_form(StrategyFactory.create("equal_weight", **params), symbols, start, end,
                                 frequency, **options)
    late = symbols[0] if symbols[0] != "AAPL" else "ZEN"
    assert event.fills.filter(pl.col("symbol") == late).height > 0


def test_fractional_targets_leave_no_dust_fills() -> None:
    """At its target a fractional position is not moved by float noise (a fill of 8e-15 AAPL was
    booked, and counted as a trade); the same on both engines."""
    strategy = StrategyFactory.create("momentum_rotation", lookback=20, top_n=2, rebalance="1w")
    event, _ = check_vector_form(strategy, ["AAPL", "MSFT", "KO", "IBM"], "2012-01-01", "2015-01-01",
                                 fractional=True)
    assert event.fills.filter(pl.col("quantity").abs() < 1e-6).height == 0
    assert event.trades.filter(pl.col("size").abs() < 1e-6).height == 0
