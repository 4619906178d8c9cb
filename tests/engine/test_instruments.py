"""Lot sizes, minimum quantities and minimum order values: from the source, applied by the broker."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

from backtape import Instrument, TradingOptions, optimize, run_backtest
from backtape.cache import CachedDataSource
from backtape.errors import BacktapeWarning, ConfigError
from backtape.sources.memory import FrameDataSource
from backtape.sources.sample import SampleDataSource

RANGE = ("2022-01-03", "2022-01-10")


@pytest.fixture(scope="module")
def btc_hours() -> pl.DataFrame:
    return SampleDataSource().fetch_sync(["BTC-PERP"], "2022-01-01", "2022-01-15", "1min")


def _source(bars: pl.DataFrame, rule: Instrument | None) -> FrameDataSource:
    return FrameDataSource(bars, frequency="1min", calendar_name="24/7", name="btc",
                           rules={"BTC-PERP": rule} if rule else {})


def test_rules_round_and_refuse() -> None:
    rule = Instrument(lot_size=0.001, min_notional=10.0, min_quantity=0.002)
    assert rule.round_down(0.2345678) == pytest.approx(0.234)
    assert rule.round_down(0.0009) == 0.0
    assert rule.too_small(0.001, 50_000) == "quantity 0.001 is below the minimum 0.002"
    assert rule.too_small(0.003, 1_000) == "order value 3.00 is below the minimum 10.00"
    assert rule.too_small(0.003, 50_000) == ""
    for bad in (0, -1, math.nan, "1", True):
        with pytest.raises(ConfigError, match="instrument"):
            Instrument(lot_size=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="instruments must map"):
        TradingOptions(instruments={"BTC": 0.001})  # type: ignore[dict-item]


def test_the_source_rules_trade_whole_lots_on_the_event_engine(btc_hours: pl.DataFrame) -> None:
    free = run_backtest("sma_crossover", "BTC-PERP", *RANGE, "1h", _source(btc_hours, None))
    lots = run_backtest("sma_crossover", "BTC-PERP", *RANGE, "1h",
                        _source(btc_hours, Instrument(lot_size=0.001)))
    q_free, q_lots = free.fills["quantity"].to_numpy(), lots.fills["quantity"].to_numpy()
    assert q_free.size and not np.allclose(q_free * 1000, np.round(q_free * 1000))  # fractions
    np.testing.assert_allclose(q_lots * 1000, np.round(q_lots * 1000), atol=1e-6)   # whole lots
    assert (np.abs(q_lots) <= np.abs(q_free) + 1e-12).all()
    assert lots.metrics["final_equity"] != free.metrics["final_equity"]


def test_orders_below_the_minimum_value_are_refused_with_a_reason(btc_hours: pl.DataFrame) -> None:
    with pytest.warns(BacktapeWarning, match="refused"):
        res = run_backtest("sma_crossover", "BTC-PERP", *RANGE, "1h",
                           _source(btc_hours, Instrument(min_notional=1e9)))
    assert res.fills.height == 0 and res.rejections.height > 0
    assert res.rejections["reason"][0].startswith("BTC-PERP: order value") and "below the minimum" in \
        res.rejections["reason"][0]


def test_given_rules_win_and_the_vector_engine_says_it_cannot(btc_hours: pl.DataFrame) -> None:
    src = _source(btc_hours, Instrument(min_notional=1e9))
    res = run_backtest("sma_crossover", "BTC-PERP", *RANGE, "1h", src, instruments={})
    assert res.fills.height > 0  # an empty mapping given: no rules
    with pytest.raises(ConfigError, match="instruments"):
        run_backtest("sma_crossover", "BTC-PERP", *RANGE, "1h", src, engine="vector")
    with pytest.warns(BacktapeWarning, match="event engine: .*instruments"):
        opt = optimize("sma_crossover", {"fast": [5, 10], "slow": [20]}, "BTC-PERP", *RANGE,
                       frequency="1h", source=src, n_jobs=1)
    assert opt.engine == "event" and (opt.table["trades"] == 0).all()


def test_a_cached_provider_is_asked_once_per_symbol(tmp_path, btc_hours: pl.DataFrame) -> None:
    class Counting(FrameDataSource):
        remote = True
        asked: list[list[str]] = []

        def instruments(self, symbols):  # type: ignore[no-untyped-def]
            Counting.asked.append(list(symbols))
            return super().instruments(symbols)

    src = Counting(btc_hours, frequency="1min", calendar_name="24/7", name="btc",
                   rules={"BTC-PERP": Instrument(lot_size=0.001)})
    first = CachedDataSource(src, tmp_path).instruments(["BTC-PERP", "ETH"])
    again = CachedDataSource(src, tmp_path).instruments(["ETH", "BTC-PERP"])
    assert first == again == {"BTC-PERP": Instrument(lot_size=0.001)}
    assert Counting.asked == [["BTC-PERP", "ETH"]]
    book = next((tmp_path / "instruments").glob("*.json"))
    book.write_text(json.dumps({"BTC-PERP": {"lot_size": -3}}))  # damaged: asked again
    assert CachedDataSource(src, tmp_path).instruments(["BTC-PERP"]) == first
    assert Counting.asked[-1] == ["BTC-PERP"]
