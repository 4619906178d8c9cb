"""Metrics definitions, calendar-aware annualization, and one implementation for both paths."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from backtape.analytics import compute_metrics, periods_per_year, sessions_per_year
from backtape.vector import crossed_above, crossed_below, simulate, sma


def test_metrics_of_a_small_curve() -> None:
    eq = np.array([100.0, 110.0, 99.0, 120.0, 120.0])
    trades = pl.DataFrame(
        {"pnl": [30.0, -10.0, 5.0], "size": [1.0, 2.0, 1.0], "entry_price": [100.0, 50.0, 10.0]}
    )
    m = compute_metrics(eq, trades, periods_per_year=252, positions=np.array([0, 1, 1, 1, 0]))
    r = eq[1:] / eq[:-1] - 1
    assert m["total_return"] == pytest.approx(0.2)
    assert m["cagr"] == pytest.approx(1.2 ** (252 / 4) - 1)
    assert m["volatility"] == pytest.approx(r.std(ddof=1) * math.sqrt(252))
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252))
    assert m["sortino"] == pytest.approx(
        r.mean() / math.sqrt(np.mean(np.minimum(r, 0) ** 2)) * math.sqrt(252)
    )
    assert m["max_drawdown"] == pytest.approx(0.1)
    assert m["max_drawdown_duration"] == 1
    assert m["calmar"] == pytest.approx(m["cagr"] / 0.1)
    assert m["win_rate"] == pytest.approx(2 / 3)
    assert m["profit_factor"] == pytest.approx(3.5)
    assert m["expectancy"] == pytest.approx(25 / 3)
    assert m["avg_trade"] == pytest.approx((0.3 - 0.1 + 0.5) / 3)
    assert m["exposure"] == pytest.approx(0.6)
    assert m["trades"] == 3


def test_annualization_follows_calendar_and_frequency() -> None:
    assert sessions_per_year("XNYS") == 252
    assert sessions_per_year("24/7") == 365
    assert periods_per_year(calendar="XNYS", frequency="1d") == 252
    assert periods_per_year(calendar="24/7", frequency="1d") == 365
    assert periods_per_year(calendar="XNYS", frequency="1min") == 390 * 252
    assert periods_per_year(calendar="XNYS", frequency="5min") == 78 * 252
    assert periods_per_year(calendar="24/7", frequency="1h") == 24 * 365
    assert periods_per_year(calendar="XNYS", frequency="1w") == 52


def test_annualization_inferred_from_bar_timestamps() -> None:
    from backtape.calendars import get_calendar

    cal = get_calendar("XNYS")
    lo = int(np.searchsorted(cal.labels, np.datetime64("2024-03-04", "ns").astype(np.int64)))
    opens = cal.opens[lo : lo + 5]
    minutes = (opens[:, None] + np.arange(390)[None, :] * 60_000_000_000).ravel()
    assert periods_per_year(minutes, calendar="XNYS") == pytest.approx(
        390 * sessions_per_year("XNYS", (2024, 2024))
    )
    assert periods_per_year(opens, calendar="XNYS") == sessions_per_year("XNYS", (2024, 2024))


def test_engine_and_compute_metrics_agree() -> None:
    rng = np.random.default_rng(11)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    f, s = sma(close, 5), sma(close, 20)
    res = simulate(close, entries=crossed_above(f, s), exits=crossed_below(f, s), commission=0.001,
                   periods_per_year=365)  # fmt: skip
    ours = res.column_metrics()
    trades = res.trades
    traded = np.zeros(400)
    closed = trades.filter(~pl.col("is_open"))
    np.add.at(
        traded, trades["entry_idx"].to_numpy(), (trades["size"].abs() * trades["entry_price"]).to_numpy()
    )
    np.add.at(traded, closed["exit_idx"].to_numpy(), (closed["size"].abs() * closed["exit_price"]).to_numpy())
    position = np.zeros(400)
    for row in trades.iter_rows(named=True):
        position[row["entry_idx"] : row["exit_idx"] + (1 if row["is_open"] else 0)] = row["size"]
    theirs = compute_metrics(
        res.equity[:, 0], trades, periods_per_year=365, positions=position, traded_value=traded
    )
    for name, value in ours.items():
        assert theirs[name] == pytest.approx(value, rel=1e-12, nan_ok=True), name
