"""Splits scale positions (P&L continuous), dividends are credited, on hand data and on AAPL's 7:1."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from backtape._async import run_sync
from backtape.engine import Strategy, run_backtest
from backtape.sources import SampleDataSource
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



class _BuyOnce(Strategy):
    """Ten AAPL bought on the first decision (the first bar's close), then held."""

    def on_bar(self, ctx: Any) -> None:
        if ctx.bar_index == 0:
            ctx.order("AAPL", 10)


@pytest.mark.parametrize("engine", ["event", "vector"])
@pytest.mark.parametrize("frequency", ["1mo", "1q"])
def test_a_split_inside_a_month_or_quarter_bar_keeps_equity_true(frequency: str, engine: str) -> None:
    """AAPL's 7:1 of 2014-06-09 falls inside June's and Q2's bars: the engines trade such a bar on the
    post-split basis its close is on, so equity at each bar's end is cash + shares x that day's raw
    close + dividends, never 7x the shares at pre-split prices (a 1mo portfolio showed +216%)."""
    source = SampleDataSource()
    if engine == "vector":
        res = run_backtest("equal_weight", "AAPL", "2014-01-01", "2015-01-01", frequency, engine="vector",
                           params={"rebalance": "1y"})
    else:
        res = run_backtest(_BuyOnce(), "AAPL", "2014-01-01", "2015-01-01", frequency)
    (fill,) = res.fills.iter_rows(named=True)
    daily = source.fetch_sync("AAPL", "2014-01-01", "2015-01-01", "1d")
    actions = run_sync(source.fetch_corporate_actions(["AAPL"], "2014-01-01", "2015-01-01"))
    split_at = actions.filter(pl.col("action") == "split")["ts"][0]
    dividends = actions.filter(pl.col("action") == "dividend").select("ts", "value").rows()
    pre_split = fill["price"] > 300  # filled on the pre-split basis (AAPL ~500), else on the post-split one
    cash = 10_000.0 - fill["quantity"] * fill["price"] - fill["commission"]
    checked = 0
    for bar_end, equity in res.equity.select("ts", "equity").rows():
        if bar_end <= fill["ts"]:
            continue
        day = daily.filter(pl.col("ts_end") <= bar_end).tail(1)  # the bar's last session
        post = fill["quantity"] * (7 if pre_split else 1)  # the shares once split
        shares = post if day["ts"][0] >= split_at else fill["quantity"]
        paid = sum(v * (post if t >= split_at else post / 7) for t, v in dividends
                   if fill["ts"] < t <= day["ts"][0])
        assert equity == pytest.approx(cash + paid + shares * day["close"][0], rel=1e-12), bar_end
        checked += 1
    assert checked >= 3
