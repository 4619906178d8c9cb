"""The warm-up warning when the look-back never arrives says so plainly (it read "the data has them at
no step of the run, so on_bar is first called then")."""

from __future__ import annotations

import pytest

from backtape import BacktapeWarning, run_backtest


def test_warmup_that_never_arrives_says_on_bar_is_never_called() -> None:
    with pytest.warns(BacktapeWarning) as caught:
        result = run_backtest("sma_crossover", "ZEN", "2014-06-01", "2014-12-01", "1mo",
                              params={"fast": 5, "slow": 40})
    texts = [str(w.message) for w in caught]
    assert any("the data never has them in the run, so on_bar is never called: start earlier or shorten "
               "the look-back" in t for t in texts), texts
    assert not any("at no step" in t for t in texts)
    assert result.trades.height == 0
