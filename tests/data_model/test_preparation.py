"""backtape.prepare: outliers, missing bars and features, point in time (perturbation tests)."""

from __future__ import annotations

import datetime
from typing import ClassVar

import numpy as np
import polars as pl
import pytest

import backtape as bt
from backtape import indicators as ind
from backtape.errors import ConfigError
from backtape.sources.memory import FrameDataSource

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
    # each session from its first hole on: bars 5.. of the first, 500 - 390 = 110.. of the second
    assert dropped.height == minutes.height - (390 - 5) - (390 - 110)
    row = pl.int_range(pl.len())
    assert dropped["ts"].equals(minutes.filter(~row.is_between(5, 389) & (row < 500))["ts"])
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
    with pytest.raises(ConfigError, match=r"Features\.sma windows must be an integer >= 2"):
        bt.Features(sma=(1,))


def test_vector_strategies_find_features_in_their_arrays() -> None:
    from backtape.optimization.data import load_market_data
    from backtape.vector.portfolio import vector_data

    source = bt.PreparedSource(bt.Workspace().source("sample", cache=False), features=bt.Features(sma=(10,)))
    data = load_market_data(["KO", "IBM"], "2013-01-01", "2014-01-01", "1d", source)  # no split in 2013
    arrays = data.bars["KO"]
    np.testing.assert_array_equal(arrays["sma_10"], ind.sma(arrays["close"], 10))
    vd = vector_data(data, warmup=10)  # steps x symbols, like the prices
    assert vd["sma_10"].shape == vd.close.shape == (vd.n_steps, 2)
    for j, sym in enumerate(vd.symbols):
        np.testing.assert_array_equal(vd["sma_10"][vd.rows[sym], j], vd.series[sym]["sma_10"])
        np.testing.assert_array_equal(vd.series[sym]["sma_10"], data.bars[sym]["sma_10"][-len(vd.rows[sym]):])


# missing bars: inferred grid, point-in-time drop, volume --------------------------------------
@pytest.fixture(scope="module")
def btc() -> pl.DataFrame:
    return bt.Workspace().source("sample").fetch_sync("BTC-PERP", "2022-01-03", "2022-01-05", "1min")


def test_missing_bars_read_the_frequency_and_refuse_a_grid_the_bars_are_not_on(btc: pl.DataFrame) -> None:
    """The defaults used to be XNYS and 1d: 2,880 BTC minutes came back as 2 rows."""
    holes = btc.filter(~pl.int_range(pl.len()).is_in([10, 11, 2000]))
    source = bt.PreparedSource(FrameDataSource(holes, calendar_name="24/7", frequency="1min"),
                               missing="ffill")  # the calendar from the source, the frequency from the bars
    filled = source.fetch_sync("BTC-PERP", "2022-01-03", "2022-01-05", "1min")
    assert filled.height == btc.height and filled["filled"].sum() == 3
    assert filled["ts_end"].equals(btc["ts_end"])
    for wrong in (bt.MissingBars("ffill", calendar="XNYS"),
                  bt.MissingBars("ffill", calendar="24/7", frequency="5min"),
                  bt.MissingBars("drop", calendar="24/7", frequency="1d")):
        with pytest.raises(ConfigError, match=r"not .* bars .* of calendar"):
            bt.prepare(holes, missing=wrong)
    with pytest.raises(ConfigError, match="needs the calendar of BTC-PERP"):
        bt.prepare(holes, missing="ffill")
    daily = bt.Workspace().source("sample").fetch_sync("KO", "2014-01-01", "2015-01-01", "1d")
    for frequency in (None, "1D", "daily"):
        same = bt.prepare(daily, missing=bt.MissingBars("ffill", calendar="XNYS", frequency=frequency))
        assert same.height == daily.height and not same["filled"].any()


@pytest.mark.parametrize("policy", ["drop", "ffill"])
@pytest.mark.parametrize("removed", [300, 1439, 1500])
def test_missing_bars_are_point_in_time(btc: pl.DataFrame, removed: int, policy: str) -> None:
    """Removing a later bar never changes the rows before it (dropping whole sessions did)."""
    spec = bt.MissingBars(policy, calendar="24/7")  # type: ignore[arg-type]
    holes = btc.filter(~pl.int_range(pl.len()).is_in([100, 1800]))
    later = holes.filter(pl.col("ts") != btc["ts"][removed])
    a, b = bt.prepare(holes, missing=spec), bt.prepare(later, missing=spec)
    cut = btc["ts"][removed]
    assert a.filter(pl.col("ts") < cut).equals(b.filter(pl.col("ts") < cut))
    assert a.filter(pl.col("ts") < btc["ts"][100]).height == 100  # the day is kept up to its first hole
    assert a.height == (100 + (1800 - 1440) if policy == "drop" else btc.height)  # two days, 1440 bars each


def test_ffill_keeps_null_volume_on_real_bars(btc: pl.DataFrame) -> None:
    row = pl.int_range(pl.len())
    no_volume = btc.with_columns(pl.when(row < 1000).then(None).otherwise(pl.col("volume")).alias("volume"))
    spec = bt.MissingBars("ffill", calendar="24/7")
    out = bt.prepare(no_volume.filter(~row.is_in([500, 1500])), missing=spec)
    real, gaps = out.filter(~pl.col("filled")), out.filter(pl.col("filled"))
    assert real["volume"].null_count() == 999  # rows 0..999 but the removed 500
    assert gaps["volume"].to_list() == [None, 0.0]  # like the bar before each gap


# outliers ------------------------------------------------------------------------------------
def _textbook_hampel(x: np.ndarray, w: int, t: float) -> np.ndarray:
    out = np.zeros(len(x), dtype=bool)
    for i in range(w, len(x)):
        win = x[i - w:i]
        if not np.isnan(win).any():
            med = np.median(win)
            out[i] = abs(x[i] - med) > t * 1.4826 * np.median(np.abs(win - med))
    return out


def test_hampel_is_the_textbook_filter() -> None:
    ko = bt.Workspace().source("sample").fetch_sync("KO", "2013-01-01", "2016-01-01", "1d")  # no split
    flagged = bt.prepare(ko, outliers=bt.Outliers("hampel", window=21, threshold=3))["outlier"].to_numpy()
    c, h, lo = (ko[k].to_numpy() for k in ("close", "high", "low"))
    returns = np.r_[np.nan, np.log(c[1:] / c[:-1])]
    expected = _textbook_hampel(returns, 21, 3) | _textbook_hampel(np.log(h / lo), 21, 3)
    # the textbook flags both ways of a spike; the return back to the last good bar is not one
    assert flagged.sum() > 10 and not (flagged & ~expected).any()
    back = np.flatnonzero(expected & ~flagged)
    assert all(flagged[i - 1] for i in back)


def test_dropping_a_spike_keeps_the_good_bar_after_it(daily: pl.DataFrame) -> None:
    ko = daily.filter(pl.col("symbol") == "KO")
    spike = pl.int_range(pl.len()) == 100
    bad = ko.with_columns(pl.when(spike).then(pl.col(c) * 1.3).otherwise(pl.col(c)).alias(c)
                          for c in ("high", "close"))
    dropped = bt.prepare(bad, outliers=bt.Outliers(action="drop"))
    clean = bt.prepare(ko, outliers=bt.Outliers(action="drop"))  # a year of KO has a few natural ones
    assert set(clean["ts"]) - set(dropped["ts"]) == {ko["ts"][100]}
    assert not bt.prepare(bad, outliers=bt.Outliers())["outlier"][101]
    after = pl.int_range(pl.len()) >= 100
    lasting = ko.with_columns(pl.when(after).then(pl.col(c) * 1.3).otherwise(pl.col(c))
                              .alias(c) for c in ("open", "high", "low", "close"))
    assert bt.prepare(lasting, outliers=bt.Outliers())["outlier"].slice(101).sum() <= 1  # not all after it


def test_bad_parameters_are_one_config_error_each(daily: pl.DataFrame) -> None:
    source = bt.Workspace().source("sample")
    bad = [lambda: bt.Outliers(window="21"), lambda: bt.Outliers(window=3.5),
           lambda: bt.Outliers(threshold="6"),
           lambda: bt.Outliers(threshold=float("nan")), lambda: bt.Features(sma="20"),
           lambda: bt.Features(rsi=[14.0]), lambda: bt.Features(returns="yes"),
           lambda: bt.MissingBars(frequency="1mo"), lambda: bt.MissingBars(frequency="fortnightly"),
           lambda: bt.prepare(daily, missing=bt.MissingBars("ffill", calendar="NOPE")),
           lambda: bt.prepare(daily, outliers="mad"), lambda: bt.prepare(daily, missing="fill"),
           lambda: bt.prepare(daily.to_pandas()), lambda: bt.prepare(daily.drop("symbol")),
           lambda: bt.PreparedSource(source, features={"rsi": (14,)}),
           lambda: bt.PreparedSource(source, adjust="dividends")]
    for make in bad:
        with pytest.raises(ConfigError):
            make()
    assert bt.Features(volatility=20, rsi=(14, 14)).names == ("returns", "volatility_20", "rsi_14")
    assert "outlier" in bt.prepare(daily, outliers="hampel").columns


# corporate actions and engines -----------------------------------------------------------------
def test_features_see_prices_adjusted_as_of_each_bar() -> None:
    """AAPL's 7:1 split (ex 2014-06-09) is no -86% return; levels are in each bar's own prices."""
    sample = bt.Workspace().source("sample")
    spec = bt.Features(returns=True, rsi=(14,), sma=(5,))
    prepared = bt.PreparedSource(sample, features=spec, outliers="hampel")
    out = prepared.fetch_sync("AAPL", "2014-04-01", "2014-08-01", "1d")
    ex = out["ts"].dt.date().to_list().index(datetime.date(2014, 6, 9))
    close = out["close"].to_numpy()
    assert out["returns"][ex] == pytest.approx(close[ex] / (close[ex - 1] / 7) - 1)
    assert not out["outlier"][ex] and out["rsi_14"].slice(ex, 10).min() > 50
    assert out["sma_5"][ex] == pytest.approx((close[ex - 4:ex].sum() / 7 + close[ex]) / 5)
    assert out["sma_5"][ex - 1] == pytest.approx(close[ex - 5:ex].mean())
    before = bt.PreparedSource(sample, features=spec).fetch_sync("AAPL", "2014-04-01", "2014-06-07", "1d")
    for name in spec.names:  # the split is not seen early
        np.testing.assert_allclose(out[name].head(before.height).to_numpy(), before[name].to_numpy(),
                                   rtol=1e-9, atol=1e-12)
    raw_source = bt.PreparedSource(sample, features=spec, adjust="raw")
    raw = raw_source.fetch_sync("AAPL", "2014-04-01", "2014-08-01")
    assert raw["returns"][ex] < -0.85
    total = bt.PreparedSource(sample, features=spec, adjust="total_return")
    aug = total.fetch_sync("AAPL", "2014-08-01", "2014-08-15")  # 0.47 goes ex on 2014-08-07
    div = aug["ts"].dt.date().to_list().index(datetime.date(2014, 8, 7))
    c = aug["close"].to_numpy()
    assert aug["returns"][div] == pytest.approx(c[div] / (c[div - 1] - 0.47) - 1)  # CRSP: p (1 - d / p)


def test_vector_engine_and_optimize_read_features() -> None:
    source = bt.PreparedSource(bt.Workspace().source("sample", cache=False), features=bt.Features(rsi=14))

    class RsiDip(bt.Strategy):
        params: ClassVar[dict[str, float]] = {"lower": 40.0}
        warmup = 20

        def on_bar(self, ctx):
            v = ctx.history("KO", 1, field="rsi_14")[-1]
            if v < self.lower:
                ctx.enter("KO", 1.0)
            elif v > 70:
                ctx.close("KO")

        def vector_signals(self, bars):
            return {"entries": bars["rsi_14"] < self.lower, "exits": bars["rsi_14"] > 70}

    runs = [bt.run_backtest(RsiDip, ["KO"], "2013-01-01", "2015-01-01", source=source, engine=engine,
                            store=False) for engine in ("event", "vector")]
    assert runs[0].trades.height == runs[1].trades.height > 0
    assert runs[0].metrics["total_return"] == pytest.approx(runs[1].metrics["total_return"])
    opt = bt.optimize(RsiDip, {"lower": [30.0, 40.0]}, "KO", "2013-01-01", "2015-01-01", source=source)
    assert opt.table.height == 2


def test_a_frame_without_volume_is_prepared_with_null_volume(daily: pl.DataFrame) -> None:
    out = bt.prepare(daily.drop("volume").head(60), missing=bt.MissingBars("ffill", calendar="XNYS"),
                     features=bt.Features(rsi=5))
    assert out["volume"].null_count() == out.height and "rsi_5" in out.columns


def test_two_bars_at_one_time_are_refused(daily: pl.DataFrame) -> None:
    twice = pl.concat([daily.head(10), daily.slice(4, 1)])
    with pytest.raises(ConfigError, match=r"prepare: 2 bars share a \(symbol, ts\) with another, first "):
        bt.prepare(twice, features=bt.Features())


def test_every_features_warm_up_is_null_not_nan(daily: pl.DataFrame) -> None:
    out = bt.prepare(daily.head(60), features=FEATURES)
    for name in FEATURES.names:
        assert out[name].is_nan().sum() == 0, name
        assert out[name].null_count() > 0 or name == "returns", name


def test_drop_says_how_many_real_bars_it_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("backtape.errors._SAID", set())
    day = bt.Workspace().source("sample").fetch_sync("BTC-PERP", "2022-01-03", "2022-01-04", "1min")
    holed = day.filter(~pl.col("ts").dt.minute().is_in([10, 11, 12]) | (pl.col("ts").dt.hour() != 0))
    with pytest.warns(bt.BacktapeWarning, match=r"MissingBars\('drop'\) removed 1,427 of BTC-PERP's 1,437 "
                                                r"bars \(each 24/7 session's bars from its first missing"):
        out = bt.prepare(holed, missing=bt.MissingBars("drop", calendar="24/7"))
    assert out.height == 10
