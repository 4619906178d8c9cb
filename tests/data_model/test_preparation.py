"""backtape.prepare: outliers, missing bars and features, point in time (perturbation tests)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import backtape as bt
from backtape import indicators as ind
from backtape.errors import ConfigError

FEATURES = bt.Features(returns=True, log_returns=True, volatility=(5,), zscore=(10,), sma=(10,), ema=(5,),
                       rsi=(14,), atr=(14,))


@pytest.fixture(scope="module")
def daily() -> pl.DataFrame:
    return bt.Workspace().source("sample").fetch_sync(["KO", "IBM"], "2012-01-01", "2013-01-01", "1d")


def test_features_are_the_one_indicator_set_and_plain_definitions(daily: pl.DataFrame) -> None:
    out = bt.prepare(daily, features=FEATURES)
    ko = out.filter(pl.col("symbol") == "KO")
    close = ko["close"].to_numpy()
    np.testing.assert_allclose(ko["returns"].to_numpy()[1:], close[1:] / close[:-1] - 1)
    np.testing.assert_array_equal(ko["sma_10"].to_numpy(), ind.sma(close, 10))
    np.testing.assert_array_equal(ko["rsi_14"].to_numpy(), ind.rsi(close, 14))
    vol = ko["returns"].to_numpy()[1:6].std(ddof=1)
    assert ko["volatility_5"][5] == pytest.approx(vol)
    z = (close[9] - close[:10].mean()) / close[:10].std(ddof=1)
    assert ko["zscore_10"][9] == pytest.approx(z)


@pytest.mark.parametrize("row", [20, 100, 200])
def test_changing_a_later_bar_never_changes_an_earlier_value(daily: pl.DataFrame, row: int) -> None:
    """Perturbation: every feature and outlier flag before ``row`` ignores what happens at ``row``."""
    ko = daily.filter(pl.col("symbol") == "KO")
    bumped = ko.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(pl.col(c) * 1.5).otherwise(pl.col(c)).alias(c)
        for c in ("open", "high", "low", "close"))
    steps = {"features": FEATURES, "outliers": bt.Outliers(window=10)}
    a, b = bt.prepare(ko, **steps), bt.prepare(bumped, **steps)
    cols = [*FEATURES.names, "outlier"]
    assert a.head(row).select(cols).equals(b.head(row).select(cols))
    assert not a.slice(row, 2).select(cols).equals(b.slice(row, 2).select(cols))


def test_outliers_flag_or_drop_a_bad_print(daily: pl.DataFrame) -> None:
    ko = daily.filter(pl.col("symbol") == "KO")
    bad = ko.with_columns(pl.when(pl.int_range(pl.len()) == 120).then(pl.col("close") * 3)
                          .otherwise(pl.col("close")).alias("close"),
                          pl.when(pl.int_range(pl.len()) == 120).then(pl.col("high") * 3)
                          .otherwise(pl.col("high")).alias("high"))
    for method in ("hampel", "zscore"):
        flagged = bt.prepare(bad, outliers=bt.Outliers(method=method))
        clean = bt.prepare(ko, outliers=bt.Outliers(method=method))
        # the bad bar (and perhaps the return back from it); a year of KO has few natural flags
        assert flagged["outlier"][120]
        assert flagged["outlier"].sum() - clean["outlier"].sum() <= 2 and clean["outlier"].sum() <= 6
    dropped = bt.prepare(bad, outliers=bt.Outliers(action="drop"))
    assert dropped.height < bad.height and 3 * ko["close"][120] not in dropped["close"].to_list()


def test_missing_bars_leave_fill_or_drop() -> None:
    synthetic = bt.Workspace().source("synthetic", seed=2)
    minutes = synthetic.fetch_sync("ACME", "2024-03-04", "2024-03-06", "1min")
    holes = minutes.filter(~pl.int_range(pl.len()).is_in([5, 6, 7, 500]))
    spec = bt.MissingBars("ffill", calendar="XNYS", frequency="1min")
    filled = bt.prepare(holes, missing=spec)
    assert filled.height == minutes.height and filled["filled"].sum() == 4
    gap = filled.filter(pl.col("filled"))
    assert (gap["volume"] == 0).all() and (gap["open"] == gap["close"]).all()
    assert gap["close"][0] == holes["close"][4]  # carried from the last bar before the hole
    dropped = bt.prepare(holes, missing=bt.MissingBars("drop", calendar="XNYS", frequency="1min"))
    assert dropped.height == minutes.height - 2 * 390  # both sessions had a hole
    assert bt.prepare(holes, missing=bt.MissingBars("leave")).height == holes.height


def test_strategies_read_features_through_the_portal() -> None:
    source = bt.PreparedSource(bt.Workspace().source("sample", cache=False), features=bt.Features(rsi=(14,)))
    seen = []

    class ReadsRsi(bt.Strategy):
        warmup = 20

        def on_bar(self, ctx):
            seen.append(ctx.history("KO", 1, field="rsi_14")[-1])

    bt.run_backtest(ReadsRsi(), "KO", "2012-03-01", "2012-04-01", "1d", source=source, store=False)
    assert len(seen) == 22 and all(0 < v < 100 for v in seen)


def test_bad_steps_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"Outliers\.method"):
        bt.Outliers(method="iqr")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"MissingBars\.policy"):
        bt.MissingBars("interpolate")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="windows must be integers"):
        bt.Features(sma=(1,))


def test_vector_strategies_find_features_in_their_arrays() -> None:
    from backtape.optimization.data import load_market_data

    source = bt.PreparedSource(bt.Workspace().source("sample", cache=False), features=bt.Features(sma=(10,)))
    data = load_market_data(["KO"], "2012-01-01", "2013-01-01", "1d", source)
    arrays = data.bars["KO"]
    np.testing.assert_array_equal(arrays["sma_10"], ind.sma(arrays["close"], 10))
