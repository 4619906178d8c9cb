"""One formatter: percentages, counts, money, ratios, durations and sides look the same everywhere."""

from __future__ import annotations

import math
import pydoc

import pytest

import backtape
from backtape.formatting import (
    DASH,
    bars,
    count,
    duration,
    metric,
    metric_rows,
    money,
    percent,
    price,
    side,
)


@pytest.mark.parametrize(("name", "value", "text"), [
    ("total_return", 0.4801, "+48.01%"), ("max_drawdown", 0.0971, "9.71%"), ("win_rate", 0.5, "50.00%"),
    ("trades", 7.0, "7"), ("closed_trades", 1234, "1,234"), ("final_equity", 14709.000312, "14,709.00"),
    ("sharpe", 1.14115, "1.14"), ("profit_factor", math.inf, "∞"), ("sqn", math.nan, DASH),
    ("max_drawdown_duration", 145, "145 bars"), ("avg_trade_duration", 5_520_000.0, "63d 21h"),
    ("side", -1, "short"), ("is_sharpe", 0.5, "0.50"), ("oos_cagr", -0.1257, "-12.57%"), ("fast", 10, "10"),
    ("anything", None, DASH), ("anything", float("nan"), DASH), ("entry_price", 81.8286, "81.83"),
])  # fmt: skip
def test_metric_formats(name: str, value: object, text: str) -> None:
    assert metric(name, value) == text


def test_building_blocks() -> None:
    assert percent(None) == DASH and count(math.nan) == DASH and money(None) == DASH
    texts = [duration(s) for s in (5400, 86_400, 90_061, 59, 0.25, 0)]
    assert texts == ["1h 30m", "1d", "1d 1h", "59s", "250ms", "0s"]
    assert bars(1) == "1 bar" and side(1) == "long" and side("long") == "long"
    assert price(0.012345) == "0.01235"


def test_metric_rows_use_labels_in_a_fixed_order() -> None:
    rows = metric_rows({"trades": 3, "total_return": 0.1, "custom": 2.5})
    assert rows == [("total return", "+10.00%"), ("trades", "3"), ("custom", "2.5")]


def test_public_api_is_listed() -> None:
    listed = dir(backtape)
    for name in ("Strategy", "run_backtest", "optimize", "walk_forward", "monte_carlo", "DataPortal",
                 "Context", "BacktestResult", "ResultsStore", "TradingOptions", "Workspace"):
        assert name in listed and getattr(backtape, name) is not None, name
    assert {n for n in listed if not n.startswith("__")} == set(backtape.__all__) - {"__version__"}


def test_help_of_context_lists_what_a_strategy_can_use() -> None:
    text = pydoc.render_doc(backtape.Context, renderer=pydoc.plaintext)  # type: ignore[attr-defined]
    for name in ("history", "spot", "indicator", "position", "positions", "equity", "cash",
                 "order_target_percent", "order_sized", "bracket", "record", "result.records", "open_orders",
                 "cancel"):
        assert name in text, name
    undocumented = [n for n, v in vars(backtape.Context).items()
                    if not n.startswith("_") and callable(getattr(v, "fget", v)) and not (
                        getattr(v, "__doc__", None) or getattr(getattr(v, "fget", None), "__doc__", None))]
    assert undocumented == []


def test_walk_forward_defaults_match_the_cli_and_the_configuration() -> None:
    import inspect

    from backtape.config import WalkForwardConfig
    from backtape.optimization import walk_forward

    sig = inspect.signature(walk_forward).parameters
    cfg = WalkForwardConfig()
    windows = (sig["train_periods"].default, sig["test_periods"].default)
    assert windows == (cfg.train_periods, cfg.test_periods)
    assert sig["step_size"].default is cfg.step_size is None
    defaults = (sig["anchored"].default, sig["metric"].default, sig["engine"].default)
    assert defaults == (False, "sharpe", "vector")
    from backtape.cli.optimize import walkforward as command

    cli = {k: v.default.default for k, v in inspect.signature(command).parameters.items() if k != "ctx"}
    assert (cli["anchored"], cli["metric"], cli["engine"], cli["frequency"]) == (
        sig["anchored"].default, sig["metric"].default, sig["engine"].default, sig["frequency"].default)
    assert cli["train"] is None and cli["test"] is None  # None: the configuration's, the same numbers
