"""Warm-up without guards, refused orders reported (never "filled" at 0), fractional crypto by
default, and a strategy's own exception named by its file, line and bar time."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import backtape as bt
from backtape._time import format_ns
from backtape.errors import BacktapeWarning, StrategyError


class Breakout(bt.Strategy):
    """Buys a 30-bar high; reads its history without checking that it exists."""

    warmup = 30

    def initialize(self, ctx):
        self.first_call = None

    def on_bar(self, ctx):
        if self.first_call is None:
            self.first_call = format_ns(ctx.now)
        for s in ctx.symbols:
            closes = ctx.history(s, 30)
            if closes[-1] >= closes.max() and ctx.position(s) == 0:
                ctx.order_target_percent(s, 0.5)


class Broken(bt.Strategy):
    def on_bar(self, ctx):
        if ctx.bar_index == 3:
            {}["missing_key"]


def _run(strategy, symbols="AAPL", start="2012-01-03", end="2013-01-01", frequency="1d", **kw):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = bt.run_backtest(strategy, symbols, start, end, frequency, source="sample", store=False, **kw)
    return result, [str(w.message) for w in seen if issubclass(w.category, BacktapeWarning)]


def test_warmup_from_the_first_date_of_the_data_starts_once_history_exists() -> None:
    strategy = Breakout()
    result, said = _run(strategy, symbols=["AAPL", "MSFT"])
    assert result.fills.height >= 1
    # the 30th daily bar of 2012 closes on 2012-02-14: the strategy is first called then
    assert strategy.first_call.startswith("2012-02-14")
    assert [m for m in said if "needs 30 bars" in m and "2012-02-14" in m]


def test_warmup_loads_history_before_start_when_the_data_has_it() -> None:
    strategy = Breakout()
    _, said = _run(strategy, start="2012-06-01")
    assert strategy.first_call.startswith("2012-06-01") and not [m for m in said if "needs" in m]


def test_orders_that_buy_nothing_are_refused_with_a_reason() -> None:
    result, said = _run("sma_crossover", symbols="BTC-PERP", start="2022-01-01", end="2022-02-01",
                        frequency="1h", fractional=False)
    filled = result.orders.filter(result.orders["status"] == "filled")
    assert filled.height == 0 or (filled["filled"].abs() > 0).all()
    refused = result.rejections.filter(result.rejections["action"] == "reject")
    assert refused.height > 0 and "buys no whole unit of BTC-PERP" in refused["reason"][0]
    assert refused.schema["ts"] == bt_datetime()
    assert [m for m in said if "refused" in m and "result.rejections" in m]


def test_crypto_trades_fractions_by_default_and_shares_stay_whole() -> None:
    crypto, _ = _run("sma_crossover", symbols="BTC-PERP", start="2022-01-01", end="2022-02-01",
                     frequency="1h")
    assert crypto.metrics["trades"] > 0 and crypto.rejections.height == 0
    assert (crypto.fills["quantity"].abs() < 1).any()
    stock, _ = _run("sma_crossover", symbols="AAPL", start="2012-01-01", end="2015-01-01")
    q = stock.fills["quantity"].to_numpy()
    assert np.array_equal(q, np.round(q))


def test_a_strategy_exception_names_its_file_line_and_bar() -> None:
    with pytest.raises(StrategyError, match=r"KeyError in Broken\.on_bar \(.*test_run_guards\.py:\d+\) "
                                            r"at 2012-01-06"):
        _run(Broken())


def test_fractional_option_is_validated() -> None:
    with pytest.raises(bt.errors.ConfigError, match="fractional must be"):
        bt.TradingOptions(fractional="sometimes")


def bt_datetime():
    import polars as pl

    return pl.Datetime("ns", "UTC")


def test_target_orders_that_need_no_trade_are_cancelled_not_filled_at_zero() -> None:
    result = bt.run_backtest("momentum_rotation", ["AAPL", "KO", "IBM", "MSFT"], "2012-01-01", "2015-01-01",
                             source="sample")
    orders = result.orders
    assert orders.filter((orders["status"] == "filled") & (orders["filled"] == 0)).height == 0
    unchanged = orders.filter(orders["status"] == "cancelled")
    assert unchanged.height > 0
    assert all(r.startswith(("already at the target (", "no ")) for r in unchanged["reason"])
    assert orders.filter(orders["status"] == "filled").height == result.fills["order_id"].n_unique()


class _Leveraged(bt.Strategy):
    """All in KO, then 200% of equity in MSFT with no margin left."""

    def on_bar(self, ctx: bt.Context) -> None:
        if ctx.bar_index == 0:
            ctx.order_target_percent("KO", 1.0)
        if ctx.bar_index == 5:
            ctx.order_target_percent("MSFT", 2.0)


def test_a_target_order_refused_for_margin_says_so_with_the_quantity_it_wanted() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BacktapeWarning)
        result = bt.run_backtest(_Leveraged(), ["KO", "MSFT"], "2013-01-01", "2013-03-01", source="sample")
    refused = result.rejections.row(0, named=True)
    assert refused["symbol"] == "MSFT" and refused["requested"] > 700
    assert refused["reason"].startswith(f"no margin left for {refused['requested']:g} MSFT (200% of equity)")


class _ReadsHistoryWithoutWarmup(bt.Strategy):
    def on_bar(self, ctx: bt.Context) -> None:
        ctx.history("AAPL", 5)


def test_history_before_the_data_names_the_strategy_line_and_asks_for_warmup() -> None:
    with pytest.raises(StrategyError, match=r"HistoryWindowStartsBeforeData in _ReadsHistoryWithoutWarmup"
                                            r"\.on_bar \(.*test_run_guards\.py:\d+\) at 2012-01-03.*"
                                            r"declare `warmup = N`"):
        _run(_ReadsHistoryWithoutWarmup())


def test_a_range_without_any_bar_is_one_error_without_a_coverage_warning() -> None:
    with warnings.catch_warnings(record=True) as seen, pytest.raises(bt.BacktapeError, match="no 1d bars"):
        warnings.simplefilter("always")
        bt.run_backtest("sma_crossover", "AAPL", "2014-01-04", "2014-01-05", source="sample", store=False)
    assert not [w for w in seen if "cover less" in str(w.message)]
