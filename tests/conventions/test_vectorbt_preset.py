"""With ``conventions="vectorbt"`` both engines reproduce ``vbt.Portfolio.from_signals`` (its defaults:
fills at the signal bar's close, a repeated entry ignored, all-in divided exactly; whole shares are
its ``size_granularity=1``) on the repository's GOOG data, long only and long/short (slow: numba)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from _peers import goog_frame, goog_source
from backtape.engine import run_backtest, sma_crossover

pytestmark = pytest.mark.slow
vbt = pytest.importorskip("vectorbt")
REL = 1e-9
CASES = [(10, 20, 0.002, False), (5, 30, 0.002, True), (5, 25, 0.001, True), (5, 25, 0.0, False),
         (20, 50, 0.001, False)]


def _vectorbt(fast: int, slow: int, commission: float, allow_short: bool) -> Any:
    close = goog_frame()[["Close"]].rename(columns={"Close": "GOOG"})
    f, s = close.rolling(fast).mean(), close.rolling(slow).mean()
    up = (f > s) & (f.shift() < s.shift())
    down = (f < s) & (f.shift() > s.shift())
    shorts = {"short_entries": down, "short_exits": up} if allow_short else {}
    return vbt.Portfolio.from_signals(close, entries=up, exits=down, init_cash=10_000, fees=commission,
                                      size_granularity=1.0, **shorts)


@pytest.mark.parametrize("engine", ["event", "vector"])
@pytest.mark.parametrize(("fast", "slow", "commission", "allow_short"), CASES)
def test_engines_reproduce_vectorbt_from_signals(engine: str, fast: int, slow: int, commission: float,
                                                 allow_short: bool) -> None:
    pf = _vectorbt(fast, slow, commission, allow_short)
    source, opens = goog_source()
    res = run_backtest(sma_crossover(fast, slow, allow_short), "GOOG", int(opens[0]), int(opens[-1]) + 1,
                       source=source, cash=10_000, commission=commission, engine=engine,
                       conventions="vectorbt")
    records = pf.trades.values
    closed = records[records["status"] == 1]
    ours = res.trades
    assert ours.height == len(closed) > 10
    index = pd.DatetimeIndex(goog_frame().index)
    bars = np.searchsorted(res.equity["ts"].cast(int).to_numpy(), ours["entry_time"].cast(int).to_numpy())
    np.testing.assert_array_equal(bars, closed["entry_idx"])
    np.testing.assert_array_equal(ours["size"].to_numpy(), closed["size"])
    np.testing.assert_array_equal(ours["side"].to_numpy(), np.where(closed["direction"] == 0, 1, -1))
    for col in ("entry_price", "exit_price", "pnl"):
        np.testing.assert_allclose(ours[col].to_numpy(), closed[col], rtol=REL, err_msg=col)
    np.testing.assert_allclose(ours["commission"].to_numpy(), closed["entry_fees"] + closed["exit_fees"],
                               rtol=REL, atol=1e-12)
    assert res.open_trades.height == int((records["status"] == 0).sum())
    value = np.asarray(pf.value()).ravel()
    assert len(value) == len(index)
    np.testing.assert_allclose(res.equity["equity"].to_numpy(), value, rtol=REL)
