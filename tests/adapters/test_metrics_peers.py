"""backtape's metrics (``backtape.analytics``) against empyrical-reloaded and quantstats on the same real
equity curves: arithmetic Sharpe, Sortino, volatility, max drawdown, CAGR and Calmar agree to 1e-9."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from _adapter_data import GOOG, btc_pandas, goog_pandas
from backtape.analytics import compute_metrics, periods_per_year

ep = pytest.importorskip("empyrical")
qs = pytest.importorskip("quantstats")
REL = 1e-9


def _strategy_equity(ws) -> pd.Series:
    """A real strategy's equity: backtesting.py's SMA(10/20) long/short on GOOG through the adapter."""
    pytest.importorskip("backtesting")
    from _peers import backtesting_sma_cross
    from backtape.adapters import backtesting_py
    from backtape.sources.files import CSVDataSource

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = backtesting_py.run(backtesting_sma_cross(10, 20, True), "GOOG", "2004-01-01", "2014-01-01",
                                 source=CSVDataSource(GOOG), cash=10_000, commission=0.002, workspace=ws)
    return pd.Series(res.equity["equity"].to_numpy(), index=res.equity["ts"].to_pandas())


@pytest.mark.parametrize("curve", ["goog_close", "btc_minute_close", "strategy_equity"])
def test_metrics_agree_with_empyrical_and_quantstats(ws, curve: str) -> None:
    if curve == "goog_close":
        equity, ppy = goog_pandas().Close, periods_per_year(calendar="XNYS", frequency="1d")
    elif curve == "btc_minute_close":
        equity, ppy = btc_pandas().Close, periods_per_year(calendar="24/7", frequency="1min")
    else:
        equity, ppy = _strategy_equity(ws), periods_per_year(calendar="XNYS", frequency="1d")
    ours = compute_metrics(equity.to_numpy(), periods_per_year=ppy)
    returns = equity.pct_change().iloc[1:]
    assert (returns == 0).any() or curve != "strategy_equity"  # flat stretches are part of the check
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = {
            "sharpe": (ep.sharpe_ratio(returns, annualization=ppy), qs.stats.sharpe(returns, periods=ppy)),
            "sortino": (ep.sortino_ratio(returns, annualization=ppy), qs.stats.sortino(returns, periods=ppy)),
            "volatility": (ep.annual_volatility(returns, annualization=ppy),
                           qs.stats.volatility(returns, periods=ppy)),
            "max_drawdown": (-ep.max_drawdown(returns), -qs.stats.max_drawdown(returns)),
            "cagr": (ep.cagr(returns, annualization=ppy), qs.stats.cagr(returns, periods=ppy)),
            "calmar": (ep.calmar_ratio(returns, annualization=ppy), qs.stats.calmar(returns, periods=ppy)),
        }
    for name, (empyrical_value, quantstats_value) in theirs.items():
        assert np.isfinite(ours[name]), name
        assert ours[name] == pytest.approx(float(empyrical_value), rel=REL), f"{name} vs empyrical"
        assert ours[name] == pytest.approx(float(quantstats_value), rel=REL), f"{name} vs quantstats"
