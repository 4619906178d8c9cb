"""Python mistakes that ran silently or raised raw errors: a walk-forward window of 0 bars was
replaced by the configured one, and a source that is neither a name nor a DataSource was an
``AttributeError``."""

from __future__ import annotations

import pytest

import backtape as bt
from backtape.errors import ConfigError


def test_a_zero_window_is_refused_not_replaced_by_the_configured_one() -> None:
    for kwargs in ({"train_periods": 0, "test_periods": 50}, {"train_periods": 200, "test_periods": 0}):
        with pytest.raises(ConfigError, match=r"_periods must be a positive whole number of bars, got 0"):
            bt.walk_forward("sma_crossover", {"fast": [5, 10]}, "AAPL", "2012-01-01", "2015-01-01",
                            source="sample", **kwargs)


def test_a_source_of_the_wrong_type_is_named() -> None:
    with pytest.raises(ConfigError, match=r"source must be a registered name such as 'sample' or a "
                                          r"DataSource, got 42 \(int\)"):
        bt.run_backtest("sma_crossover", "AAPL", "2012-01-01", "2013-01-01", source=42)


def test_a_workspace_config_that_is_a_folder_or_not_a_path_is_named(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"is a folder; give the path of its backtape\.yaml file"):
        bt.Workspace(tmp_path)
    with pytest.raises(ConfigError, match=r"must be the path of a backtape\.yaml file, got 42 \(int\)"):
        bt.Workspace(42)  # type: ignore[arg-type]
