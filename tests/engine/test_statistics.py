"""The statistics users expect, hand-computed on a six-bar run; result frames' types and shapes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
import pytest

from backtape.analytics import buy_and_hold_return, drawdown_time, periods_per_year, trade_durations

UTC = pl.Datetime("ns", "UTC")
DAY = 86_400.0


def _plan() -> dict[int, Any]:
    # closes 100 103 105 99 96 95; orders placed after bar k fill at bar k+1's open (102 104 103 97 96)
    return {
        0: lambda ctx: (ctx.order("T", 10), ctx.record(a=1.0)),
        1: lambda ctx: ctx.close("T"),
        2: lambda ctx: (ctx.order("T", 10), ctx.record(a=3.0, b=2.0)),
        3: lambda ctx: ctx.close("T"),
        4: lambda ctx: ctx.order("T", 5),
    }


@pytest.fixture
def result(run: Any) -> Any:
    res, _ = run(_plan(), cash=10_000, commission=0.0, slippage_bps=0.0)
    return res


def test_trade_statistics_by_hand(result: Any) -> None:
    m = result.metrics
    # trade 1: 10 @ 102 -> 104 (+20); trade 2: 10 @ 103 -> 97 (-60); open: 5 @ 96, marked at 95 (-5)
    assert result.trades["pnl"].to_list() == pytest.approx([20.0, -60.0])
    assert (m["trades"], m["closed_trades"], m["open_trades"]) == (3, 2, 1)
    assert m["open_pnl"] == pytest.approx(-5.0)
    assert m["final_equity"] == pytest.approx(9_955.0)  # the open position counts in equity
    assert m["best_trade"] == pytest.approx(20 / 1020)
    assert m["worst_trade"] == pytest.approx(-60 / 1030)
    assert m["avg_trade"] == pytest.approx((20 / 1020 - 60 / 1030) / 2)
    assert m["expectancy"] == pytest.approx(-20.0)
    assert m["win_rate"] == pytest.approx(0.5) and m["profit_factor"] == pytest.approx(1 / 3)
    # SQN = sqrt(2) * mean(20, -60) / std(20, -60; ddof 1) = sqrt(2) * -20 / (40 sqrt 2) = -0.5
    assert m["sqn"] == pytest.approx(-0.5)
    # entries and exits at the opens: 2024-01-03 -> 01-04 (1 day) and 01-05 -> 01-08 (3 days)
    assert m["avg_trade_duration"] == pytest.approx(2 * DAY)
    assert m["max_trade_duration"] == pytest.approx(3 * DAY)
    assert m["buy_hold_return"] == pytest.approx(95 / 100 - 1)


def test_risk_statistics_by_hand(result: Any) -> None:
    m = result.metrics
    equity = np.array([10_000, 10_010, 10_020, 9_980, 9_960, 9_955], dtype=float)
    np.testing.assert_allclose(result.equity["equity"].to_numpy(), equity)
    ppy = periods_per_year(calendar="XNYS", frequency="1d")
    r = equity[1:] / equity[:-1] - 1
    assert m["exposure"] == pytest.approx(0.5)  # held at the closes of bars 1, 3 and 5
    assert m["max_drawdown"] == pytest.approx(1 - 9_955 / 10_020)
    assert m["max_drawdown_duration"] == 3  # bars since the peak at bar 2, not regained
    assert m["max_drawdown_time"] == pytest.approx(5 * DAY)  # Thursday 01-04 close -> Tuesday 01-09
    downside = math.sqrt(np.mean(np.minimum(r, 0) ** 2))
    assert m["sortino"] == pytest.approx(r.mean() / downside * math.sqrt(ppy))
    cagr = (9_955 / 10_000) ** (ppy / 5) - 1
    assert m["cagr"] == pytest.approx(cagr)
    assert m["calmar"] == pytest.approx(cagr / (1 - 9_955 / 10_020))


def test_open_trades_are_listed_apart(result: Any) -> None:
    open_ = result.open_trades
    assert open_.height == 1 and open_["size"][0] == 5 and open_["exit_price"][0] == 95
    everything = result.all_trades()
    assert everything["is_open"].to_list() == [False, False, True]


def test_every_time_column_is_utc_nanoseconds(result: Any) -> None:
    times = {"orders": ["created_at"], "fills": ["ts"], "equity": ["ts"], "records": ["ts"],
             "trades": ["entry_time", "exit_time"], "open_trades": ["entry_time", "exit_time"]}
    frames = result.frames()
    for name, cols in times.items():
        for col in cols:
            assert frames[name].schema[col] == UTC, (name, col)
    assert result.fills["ts"].to_list()[0] == result.trades["entry_time"][0]


def test_records_are_wide_one_row_per_bar(result: Any) -> None:
    rec = result.records
    assert rec.columns == ["ts", "a", "b"] and rec.height == result.equity.height
    assert rec["ts"].to_list() == result.equity["ts"].to_list()
    assert rec["a"].to_list() == [1.0, None, 3.0, None, None, None]
    assert rec["b"].to_list() == [None, None, 2.0, None, None, None]


def test_no_records_is_an_empty_frame_with_ts(run: Any) -> None:
    res, _ = run({})
    assert res.records.schema == pl.Schema({"ts": UTC}) and res.records.height == 0
    m = res.metrics
    assert m["trades"] == 0 and math.isnan(m["sqn"]) and math.isnan(m["best_trade"])


def test_helpers_on_edge_cases() -> None:
    assert buy_and_hold_return([np.array([10.0, 12.0]), np.array([20.0, 15.0])]) == pytest.approx(-0.025)
    assert math.isnan(buy_and_hold_return([]))
    assert math.isnan(trade_durations(pl.DataFrame())["avg_trade_duration"])
    ts = np.arange(5) * 10**9
    assert drawdown_time(ts, np.array([1.0, 2.0, 1.0, 2.5, 2.0])) == pytest.approx(1.0)
