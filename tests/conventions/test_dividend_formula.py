"""The total-return dividend formula is a choice: ``"crsp"`` (``1 - d / previous close``, default) or
``"ratio"`` (``close_ex / (close_ex + d)``); hand-computed factors on a six-bar series."""

from __future__ import annotations

import polars as pl
import pytest

from backtape.errors import ConfigError
from backtape.options import TradingOptions
from backtape.portal import DataPortal
from backtape.portal.adjustments import Adjustments
from backtape.sources.memory import FrameDataSource, daily_bars

# closes 100, 103, 105, 99, 96, 95 on the six NYSE sessions from 2024-01-02; a $2 dividend goes ex
# on the fourth session (2024-01-05, close 99; the close before it is 105)
ROWS = [(100, 101, 99, 100), (102, 104, 101, 103), (104, 106, 103, 105), (103, 107, 98, 99),
        (97, 100, 95, 96), (96, 97, 94, 95)]
BARS = daily_bars("T", ROWS, "2024-01-02")
EX = BARS["ts"][3]
ACTIONS = pl.DataFrame({"symbol": ["T"], "ts": [EX], "action": ["dividend"], "value": [2.0]})


def _closes(dividends: str) -> list[float]:
    portal = DataPortal(FrameDataSource(BARS, actions=ACTIONS), adjustment="total_return",
                        dividends=dividends)  # type: ignore[arg-type]
    portal.load_data("2024-01-02", "2024-01-10", "T")
    portal.set_clock("2024-01-09T22:00Z")
    return portal.get_history_window("T", None, 6, "1d", "close")[:, 0].tolist()


def test_crsp_formula_divides_by_the_previous_close() -> None:
    factor = 1 - 2 / 105  # 0.980952...
    assert _closes("crsp") == pytest.approx([100 * factor, 103 * factor, 105 * factor, 99, 96, 95], rel=1e-15)


def test_ratio_formula_uses_the_ex_date_close() -> None:
    factor = 99 / (99 + 2)  # 0.980198...
    expected = [100 * factor, 103 * factor, 105 * factor, 99, 96, 95]
    assert _closes("ratio") == pytest.approx(expected, rel=1e-15)
    assert _closes("ratio")[2] == pytest.approx(102.9207920792, rel=1e-10)  # 105 * 99 / 101


def test_the_formula_is_a_trading_option_and_the_run_reads_it() -> None:
    from backtape.engine import Context, Strategy, run_backtest

    class Buy(Strategy):
        def on_bar(self, ctx: Context) -> None:
            if ctx.bar_index == 5:
                ctx.record(first=float(ctx.history("T", 6, "close")[0]))

    src = FrameDataSource(BARS, actions=ACTIONS)
    seen = {}
    for formula in ("crsp", "ratio"):
        res = run_backtest(Buy(), "T", "2024-01-02", "2024-01-10", source=src, adjustment="total_return",
                           dividends=formula)
        seen[formula] = res.records["first"].drop_nulls()[0]
    assert seen == pytest.approx({"crsp": 100 * (1 - 2 / 105), "ratio": 100 * 99 / 101}, rel=1e-15)
    with pytest.raises(ConfigError, match="dividends must be one of crsp, ratio"):
        TradingOptions(dividends="vendor")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown dividend formula"):
        Adjustments(ACTIONS, None, "total_return", "vendor")  # type: ignore[arg-type]
