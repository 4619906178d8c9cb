"""Hand-computed fills, costs, sizing, stops and targets of the vector engine (small arrays)."""

from __future__ import annotations

import numpy as np
import pytest

from backtape.errors import ConfigError
from backtape.vector import simulate

OPEN = np.array([10.0, 10.5, 11.0, 11.5, 12.0, 12.5])
CLOSE = np.array([10.0, 10.0, 11.0, 12.0, 11.0, 13.0])
ENTRY = np.array([0, 1, 0, 0, 0, 0], dtype=bool)
EXIT = np.array([0, 0, 0, 1, 0, 0], dtype=bool)


def _run(**kw):
    base = {"open": OPEN, "entries": ENTRY, "exits": EXIT, "cash": 100.0}
    return simulate(CLOSE, **{**base, **kw})


def test_next_open_fill_with_percent_commission_to_the_cent() -> None:
    res = _run(commission=0.01)
    # Buy at open[2] = 11: floor(100 / (11 * 1.01)) = 9 shares, commission 0.99.
    # Sell at open[4] = 12: commission 1.08; P&L = 9 * 1 - 0.99 - 1.08 = 6.93.
    trade = res.trades.row(0, named=True)
    assert (trade["entry_idx"], trade["exit_idx"], trade["size"]) == (2, 4, 9.0)
    assert (trade["entry_price"], trade["exit_price"]) == (11.0, 12.0)
    assert trade["pnl"] == pytest.approx(6.93, abs=1e-12)
    assert trade["commission"] == pytest.approx(2.07, abs=1e-12)
    np.testing.assert_allclose(res.equity[:, 0], [100, 100, 99.01, 108.01, 106.93, 106.93], atol=1e-12)
    m = res.column_metrics()
    assert m["trades"] == 1 and m["win_rate"] == 1.0
    assert m["final_equity"] == pytest.approx(106.93)
    assert m["exposure"] == pytest.approx(2 / 6)


def test_close_fill_uses_the_signal_bar_close() -> None:
    res = _run(commission=0.01, fill="close")
    trade = res.trades.row(0, named=True)
    # Buy 9 at close[1] = 10 (floor(100 / 10.1) = 9), sell at close[3] = 12.
    assert (trade["entry_idx"], trade["exit_idx"], trade["size"]) == (1, 3, 9.0)
    assert trade["pnl"] == pytest.approx(18 - 0.9 - 1.08, abs=1e-12)
    assert res.equity[-1, 0] == pytest.approx(116.02, abs=1e-12)


def test_slippage_is_adverse_on_both_sides_and_sizes_with_the_slipped_price() -> None:
    res = _run(slippage_bps=100.0)
    trade = res.trades.row(0, named=True)
    assert trade["entry_price"] == pytest.approx(11.11)
    assert trade["exit_price"] == pytest.approx(11.88)
    assert trade["size"] == 9.0  # floor(100 / 11.11) = 9
    assert trade["pnl"] == pytest.approx(9 * (11.88 - 11.11))


def test_fixed_commission_comes_off_the_budget() -> None:
    res = _run(fixed_commission=1.0)
    trade = res.trades.row(0, named=True)
    assert trade["size"] == 9.0  # floor((100 - 1) / 11)
    assert trade["commission"] == 2.0
    assert res.equity[-1, 0] == pytest.approx(100 + 9 - 2)


def test_fractional_sizing_spends_all_cash() -> None:
    res = _run(fractional=True)
    assert res.trades["size"][0] == pytest.approx(100 / 11)


def test_open_position_is_reported_and_counted_as_open() -> None:
    res = simulate(CLOSE, open=OPEN, entries=ENTRY, cash=100.0)
    row = res.trades.row(0, named=True)
    assert row["is_open"] and row["reason"] == "open" and row["exit_idx"] == 5
    assert row["pnl"] == pytest.approx(9 * (13 - 11))
    m = res.column_metrics()
    assert (m["trades"], m["closed_trades"], m["open_trades"]) == (1, 0, 1)
    assert m["open_pnl"] == pytest.approx(9 * (13 - 11))


def test_short_entry_and_reversal() -> None:
    short = np.array([0, 0, 0, 1, 0, 0], dtype=bool)
    res = simulate(CLOSE, open=OPEN, entries=ENTRY, short_entries=short, cash=100.0)
    long_leg, short_leg = res.trades.row(0, named=True), res.trades.row(1, named=True)
    assert long_leg["size"] == 9 and long_leg["exit_idx"] == 4 and long_leg["pnl"] == pytest.approx(9.0)
    # After closing at 12 the cash is 109: short floor(109 / 12) = 9 shares at 12, marked at 13.
    assert short_leg["size"] == -9 and short_leg["is_open"]
    assert res.equity[-1, 0] == pytest.approx(109 - 9)


def _stop_run(o, h, lo, c, **kw):
    entries = np.zeros(len(c), dtype=bool)
    entries[0] = True
    return simulate(c, open=o, high=h, low=lo, entries=entries, cash=1000.0, **kw)


def test_stop_loss_fills_at_the_level_or_at_a_gapping_open() -> None:
    o = np.array([100.0, 100.0, 99.0, 90.0])
    h = np.array([101.0, 101.0, 99.5, 91.0])
    lo = np.array([99.0, 96.0, 98.0, 89.0])
    c = np.array([100.0, 97.0, 99.0, 90.0])
    res = _stop_run(o, h, lo, c, stop_loss=0.03)
    row = res.trades.row(0, named=True)
    assert (row["exit_idx"], row["exit_price"], row["reason"]) == (1, 97.0, "stop_loss")
    res = _stop_run(o, h, lo, c, stop_loss=0.05)
    row = res.trades.row(0, named=True)
    assert (row["exit_idx"], row["exit_price"]) == (3, 90.0)  # gapped through 95: the open


def test_take_profit_and_trailing_stop() -> None:
    o = np.array([100.0, 100.0, 104.0, 108.0, 106.0])
    h = np.array([100.0, 105.0, 109.0, 110.0, 106.0])
    lo = np.array([100.0, 99.0, 103.0, 104.0, 100.0])
    c = np.array([100.0, 104.0, 108.0, 106.0, 101.0])
    tp = _stop_run(o, h, lo, c, take_profit=0.08).trades.row(0, named=True)
    assert (tp["exit_idx"], tp["exit_price"], tp["reason"]) == (2, 108.0, "take_profit")
    # Highest high before bar 4 is 110: a 5% trail sits at 104.5; bar 4 opens 106, trades down to 100.
    tr = _stop_run(o, h, lo, c, trailing_stop=0.05).trades.row(0, named=True)
    assert (tr["exit_idx"], tr["exit_price"], tr["reason"]) == (4, pytest.approx(104.5), "trailing_stop")


def test_targets_percent_shares_and_nan_hold() -> None:
    c = np.array([10.0, 10.0, 20.0, 20.0])
    tg = np.array([0.5, np.nan, 0.0, np.nan])
    res = simulate(c, targets=tg, cash=100.0, fill="close")
    row = res.trades.row(0, named=True)
    assert (row["size"], row["entry_idx"], row["exit_idx"]) == (5.0, 0, 2)
    assert res.equity[-1, 0] == pytest.approx(150.0)
    res = simulate(
        c, targets=np.array([3.0, 5.0, np.nan, -2.0]), cash=100.0, fill="close", size_type="shares"
    )
    t = res.trades
    assert t["size"].to_list() == [5.0, -2.0]  # 3 then 5 shares (average 10), then reversal to short 2
    assert t["entry_price"][0] == 10.0 and t["pnl"][0] == pytest.approx(50.0)


def test_columns_are_independent() -> None:
    entries = np.stack([ENTRY, np.roll(ENTRY, 1)], axis=1)
    both = simulate(CLOSE, open=OPEN, entries=entries, exits=EXIT, cash=100.0, commission=[0.0, 0.01])
    for col, comm in enumerate((0.0, 0.01)):
        one = simulate(CLOSE, open=OPEN, entries=entries[:, col], exits=EXIT, cash=100.0, commission=comm)
        np.testing.assert_array_equal(both.equity[:, col], one.equity[:, 0])
    assert both.trades["column"].to_list() == [0, 1]


def test_bad_input_is_named() -> None:
    bad = CLOSE.copy()
    bad[3] = np.nan
    with pytest.raises(ConfigError, match="close must be finite and positive: bar 3"):
        simulate(bad, entries=ENTRY)
    for value, bar in ((0.0, 1), (-2.0, 4), (np.inf, len(CLOSE) - 1)):
        bad_open = OPEN.copy()
        bad_open[bar] = value
        with pytest.raises(ConfigError, match=f"open must be finite and positive: bar {bar}, column 0"):
            simulate(CLOSE, open=bad_open, entries=ENTRY)
    with pytest.raises(ConfigError, match="entries has 2 bars"):
        simulate(CLOSE, entries=ENTRY[:2])
    with pytest.raises(ConfigError, match="fill must be one of"):
        simulate(CLOSE, entries=ENTRY, fill="vwap")
    with pytest.raises(ConfigError, match="either targets or entry/exit"):
        simulate(CLOSE, entries=ENTRY, targets=np.zeros(6))
