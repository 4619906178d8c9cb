"""Splits scale positions (P&L continuous), dividends are credited, on hand data and on AAPL's 7:1."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from backtape.engine import run_backtest
from backtape.sources.memory import daily_bars

from .conftest import FIRST


def _actions(rows: list[tuple[str, str, str, float]]) -> pl.DataFrame:
    bars = daily_bars("T", [(1, 1, 1, 1)] * 6, FIRST)
    opens = dict(zip(bars["ts"].dt.strftime("%Y-%m-%d").to_list(), bars["ts"].to_list(), strict=True))
    return pl.DataFrame({"symbol": [r[0] for r in rows], "ts": [opens[r[1]] for r in rows],
                         "action": [r[2] for r in rows], "value": [r[3] for r in rows]})


def test_split_scales_position_and_dividend_is_credited(run) -> None:
    rows = [(100, 101, 99, 100), (102, 104, 101, 103), (104, 106, 103, 105),
            (52, 53, 51, 52.5), (52, 53, 51, 52), (51, 52, 50, 51)]
    actions = _actions([("T", "2024-01-05", "split", 2.0), ("T", "2024-01-08", "dividend", 0.5)])
    res, _ = run({0: lambda c: c.order("T", 10), 4: lambda c: c.close("T")}, rows=rows, actions=actions)
    eq = res.equity["equity"].to_list()
    assert eq[2] == pytest.approx(10_000 + 10 * (105 - 102))
    # after the 2:1 split: 20 shares at an entry of 51, marked at 52.5: the same 10030
    assert eq[3] == pytest.approx(10_030.0)
    # dividend of 0.50 on 20 shares on 2024-01-08 (bar 4), then the close at bar 4 = 52
    assert eq[4] == pytest.approx(10_000 + 20 * (52 - 51) + 10.0)
    assert res.fills["quantity"].to_list() == [10.0, -20.0]
    assert res.trades["size"][0] == 20 and res.trades["entry_price"][0] == pytest.approx(51.0)
    assert res.metrics["final_equity"] == pytest.approx(10_000 + 20 * (51 - 51) + 10.0)


def test_short_pays_the_dividend(run) -> None:
    actions = _actions([("T", "2024-01-05", "dividend", 1.0)])
    res, _ = run({0: lambda c: c.order("T", -10)}, actions=actions)
    # short 10 @ 102, dividend debited 10, marked at bar 3 close 99
    assert res.equity["equity"][3] == pytest.approx(10_000 + 10 * (102 - 99) - 10.0)


def test_aapl_seven_for_one_split_keeps_pnl_continuous() -> None:
    res = run_backtest("sma_crossover", "AAPL", "2014-01-01", "2015-01-01", params={"fast": 10, "slow": 50})
    fills = res.fills
    trade = res.trades.filter(pl.col("entry_time") < pl.datetime(2014, 6, 9, time_zone="UTC"))
    held_over = trade.filter(pl.col("exit_time") > pl.datetime(2014, 6, 10, time_zone="UTC"))
    assert held_over.height == 1
    entry_ns = held_over["entry_time"].cast(pl.Int64)[0]
    pre = fills.filter(pl.col("ts") == entry_ns)["quantity"][0]
    assert held_over["size"][0] == pre * 7  # position scaled by the split
    eq = res.equity.with_columns(pl.col("ts").dt.strftime("%Y-%m-%d").alias("day"))
    before = eq.filter(pl.col("day") == "2014-06-06")["equity"][0]
    after = eq.filter(pl.col("day") == "2014-06-09")["equity"][0]
    # 2014-06-06 raw close 645.57 (92.2243 adjusted), 2014-06-09 close 93.70: equity moves by the
    # position times the adjusted price change, not by the 7:1 price drop
    assert after - before == pytest.approx(pre * 7 * (93.70 - 645.57 / 7), abs=0.05)
    assert np.all(np.abs(np.diff(eq["equity"].to_numpy()) / eq["equity"].to_numpy()[:-1]) < 0.1)
