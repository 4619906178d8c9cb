"""A rebalancing schedule starts where the strategy is first called, in both engines.

Run from the first date of the data, a strategy with a warm-up is first called once its history
exists (mid-month); the event engine's schedule fired there while the vector engine's counted from
the run's first step, so momentum_rotation traded on different days: 12,155.62 against 12,056.85
(45 against 41 trades) on the sample from 2012-01-01."""

from __future__ import annotations

import polars as pl
import pytest

import backtape as bt

SYMBOLS = ["AAPL", "KO", "IBM", "MSFT"]


@pytest.mark.parametrize("rebalance", ["1mo", "1w", 21])
def test_both_engines_trade_the_same_days_from_the_first_date_of_the_data(rebalance) -> None:
    runs = [bt.run_backtest("momentum_rotation", SYMBOLS, "2012-01-01", "2015-01-01", source="sample",
                            params={"lookback": 60, "top_n": 2, "rebalance": rebalance}, engine=engine)
            for engine in ("event", "vector")]
    event, vector = (r.fills.select("symbol", "ts", "quantity", "price") for r in runs)
    assert event.height > 20 and event.equals(vector)
    assert event["ts"].min() == pl.Series(["2012-03-30 13:30"]).str.to_datetime(time_unit="ns",
                                                                                time_zone="UTC")[0]
    assert runs[0].metrics["final_equity"] == pytest.approx(runs[1].metrics["final_equity"], rel=1e-9)
