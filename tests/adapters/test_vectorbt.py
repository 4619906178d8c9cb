"""vectorbt through the adapter on backtape data == vectorbt run alone on the same files (slow: numba)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from _adapter_data import BTC_RANGE, btc_pandas, daily_pandas, goog_pandas

pytestmark = pytest.mark.slow
vbt = pytest.importorskip("vectorbt")
from backtape.adapters import vectorbt as vba  # noqa: E402

REL = 1e-9


def _cross(close: pd.DataFrame, fast: int, slow: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    f, s = close.rolling(fast).mean(), close.rolling(slow).mean()
    return (f > s) & (f.shift() <= s.shift()), (f < s) & (f.shift() >= s.shift())


def sma_cross(data: Any, fast: int, slow: int) -> dict[str, Any]:
    """Long on a golden cross, flat on a death cross, filled at the next bar's open."""
    entries, exits = _cross(data.wide("close"), fast, slow)
    return {"entries": entries.shift(fill_value=False), "exits": exits.shift(fill_value=False),
            "price": data.wide("open")}


def long_short(data: Any, fast: int, slow: int) -> dict[str, Any]:
    """Long on a golden cross, short on a death cross (reversals), whole units."""
    entries, exits = _cross(data.wide("close"), fast, slow)
    return {"entries": entries, "short_entries": exits, "size_granularity": 1.0}


def _frame(df: pd.DataFrame, name: str, field: str) -> pd.DataFrame:
    return df[[field]].rename(columns={field: name})


def _same(res: Any, pf: Any) -> None:
    ours, theirs = res.trades, pf.trades.values
    closed = theirs[theirs["status"] == 1]
    assert ours.height == len(closed) > 3
    np.testing.assert_allclose(ours["size"].to_numpy(), closed["size"], rtol=REL)
    np.testing.assert_allclose(ours["entry_price"].to_numpy(), closed["entry_price"], rtol=REL)
    np.testing.assert_allclose(ours["exit_price"].to_numpy(), closed["exit_price"], rtol=REL)
    np.testing.assert_allclose(ours["pnl"].to_numpy(), closed["pnl"], rtol=REL)
    final = float(np.asarray(pf.value()).reshape(len(pf.wrapper.index), -1).sum(axis=1)[-1])
    assert res.metrics["final_equity"] == pytest.approx(final, rel=REL)
    assert res.open_trades.height == int((theirs["status"] == 0).sum())
    assert res.fingerprint["engine"] == "vectorbt"


def test_sma_cross_on_goog_daily(ws, goog) -> None:
    df = goog_pandas()
    pf = vbt.Portfolio.from_signals(_frame(df, "GOOG", "Close"), init_cash=10_000, fees=0.002,
                                    **sma_cross(_Wide(df, "GOOG"), 10, 30))
    res = vba.run(sma_cross, "GOOG", "2004-01-01", "2014-01-01", source=goog, cash=10_000, commission=0.002,
                  workspace=ws, fast=10, slow=30)
    _same(res, pf)


def test_long_short_on_btc_minutes(ws, btc) -> None:
    df = btc_pandas()
    pf = vbt.Portfolio.from_signals(_frame(df, "BTC-PERP", "Close"), init_cash=1_000_000, fees=0.0005,
                                    **long_short(_Wide(df, "BTC-PERP"), 20, 60))
    res = vba.run(long_short, "BTC-PERP", *BTC_RANGE, "1min", source=btc, cash=1_000_000, commission=0.0005,
                  workspace=ws, fast=20, slow=60)
    _same(res, pf)
    assert (res.trades["side"] == -1).any()


def test_two_symbols_share_cash_daily(ws) -> None:
    names = ["IBM", "MSFT"]
    frames = {n: daily_pandas(n) for n in names}
    close = pd.concat([_frame(frames[n], n, "Close") for n in names], axis=1)
    entries, exits = _cross(close, 10, 40)
    pf = vbt.Portfolio.from_signals(close, entries, exits, init_cash=100_000, fees=0.001, size=0.5,
                                    size_type="percent", group_by=True, cash_sharing=True)

    def half_each(data: Any, fast: int, slow: int) -> dict[str, Any]:
        e, x = _cross(data.wide("close"), fast, slow)
        return {"entries": e, "exits": x, "size": 0.5, "size_type": "percent"}

    res = vba.run(half_each, names, "2012-01-01", "2015-01-01", source="sample", cash=100_000,
                  commission=0.001, workspace=ws, adjustment="split", fast=10, slow=40)
    _same(res, pf)
    assert set(res.trades["symbol"]) == set(names)


class _Wide:
    """What a strategy reads from ``PeerData``, over a pandas frame read directly (the peer's side)."""

    def __init__(self, df: pd.DataFrame, name: str) -> None:
        self.df, self.name = df, name

    def wide(self, field: str) -> pd.DataFrame:
        return _frame(self.df, self.name, field.capitalize())


@pytest.mark.parametrize(("fast", "slow", "commission", "fill"), [(10, 30, 0.002, "next_open"),
                                                                  (20, 50, 0.0, "close")])
def test_backtape_strategy_with_matched_conventions_equals_the_event_engine(ws, goog, fast: int, slow: int,
                                                                           commission: float,
                                                                           fill: str) -> None:
    from backtape.adapters._data import load
    from backtape.engine import run_backtest, sma_crossover

    args = ("GOOG", "2004-01-01", "2014-01-01")
    ours = run_backtest(sma_crossover(fast, slow), *args, source=goog, cash=10_000, commission=commission,
                        fill=fill)
    data = load(*args, source=goog, workspace=ws)
    pf = vba.signals_portfolio(sma_crossover(fast, slow), data, cash=10_000, commission=commission, fill=fill)
    res = vba.from_portfolio(pf, data, strategy="sma_crossover")
    assert res.trades.height == ours.trades.height > 10
    for col in ("size", "entry_price", "exit_price", "pnl", "commission"):
        np.testing.assert_allclose(res.trades[col].to_numpy(), ours.trades[col].to_numpy(), rtol=REL)
    assert res.metrics["final_equity"] == pytest.approx(ours.metrics["final_equity"], rel=REL)
    np.testing.assert_allclose(res.equity["equity"].to_numpy(), ours.equity["equity"].to_numpy(), rtol=REL)
    via_run = vba.run(sma_crossover(fast, slow), *args, source=goog, cash=10_000, commission=commission,
                      workspace=ws, fill=fill)
    assert via_run.metrics["final_equity"] == res.metrics["final_equity"]
    assert via_run.parameters["fast"] == fast
