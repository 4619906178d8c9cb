"""A run streamed in windows of sessions gives exactly the results of the same run held whole.

Windows are forced tiny (1 to 7 sessions) so boundaries fall mid-trade, mid-session (intraday),
across the sample's AAPL 7:1 split (2014-06-09) and KO 2:1 split (2012-08-13) and their dividends.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import polars as pl
import pytest

from backtape import indicators as ind
from backtape.costs import Commission, SlippageModel, TransactionCostEngine
from backtape.engine import BacktestEngine, BacktestResult, Context, Strategy
from backtape.engine.run import build_strategy
from backtape.errors import LookAheadError
from backtape.sources import get_source
from backtape.sources.synthetic import SyntheticDataSource

SAMPLE = get_source("sample")
FOUR = ["AAPL", "KO", "MSFT", "IBM"]


def run(strategy: Strategy, symbols: list[str], start: str, end: str, frequency: str = "1d", *,
        windows: int, source: Any = SAMPLE, **options: Any) -> BacktestResult:
    engine = BacktestEngine(source=source, window_sessions=windows, **options)
    return engine.run(strategy, symbols, start, end, frequency)


def bar_fetches(result: BacktestResult) -> int:
    return sum(1 for f in result.fingerprint["fetches"] if f["kind"] == "bars")


def _ids(frame: pl.DataFrame, *cols: str) -> pl.DataFrame:
    """Order ids count up across runs: compare them relative to the run's first."""
    low = frame["order_id" if "order_id" in frame.columns else "id"].min() if frame.height else 0
    return frame.with_columns(*(pl.col(c) - low for c in cols if c in frame.columns))


def assert_same(whole: BacktestResult, streamed: BacktestResult) -> None:
    assert bar_fetches(streamed) > 1, "the run was not streamed"
    assert whole.trades.equals(streamed.trades)
    assert whole.equity.equals(streamed.equity)
    assert whole.records.equals(streamed.records)
    assert whole.open_trades.equals(streamed.open_trades)
    assert _ids(whole.fills, "order_id").equals(_ids(streamed.fills, "order_id"))
    assert _ids(whole.orders, "id", "parent_id").equals(_ids(streamed.orders, "id", "parent_id"))
    assert _ids(whole.rejections, "order_id").equals(_ids(streamed.rejections, "order_id"))
    a, b = whole.metrics, streamed.metrics
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]), k


def check(make: Any, symbols: list[str], start: str, end: str, frequency: str = "1d",
          windows: tuple[int, ...] = (1, 3, 7), **options: Any) -> BacktestResult:
    whole = run(make(), symbols, start, end, frequency, windows=0, **options)
    assert whole.trades.height + whole.open_trades.height > 0
    for n in windows:
        assert_same(whole, run(make(), symbols, start, end, frequency, windows=n, **options))
    return whole


class HistoryAndIndicators(Strategy):
    """Reads ``ctx.history`` (up to 30 bars, more than its warm-up: a streamed run keeps the largest
    count asked so far) and two indicators, one 25 bars back; records values."""

    params: ClassVar[dict[str, Any]] = {}
    warmup = 5

    def initialize(self, ctx: Context) -> None:
        self.fast = {s: ctx.indicator(ind.ema, 8, symbol=s) for s in ctx.symbols}
        self.rsi = {s: ctx.indicator(ind.rsi, 14, symbol=s, name="rsi") for s in ctx.symbols}

    def on_bar(self, ctx: Context) -> None:
        window = ctx.history(ctx.symbols, min(ctx.bar_index + 1, 30), "close")
        if ctx.bar_index < 30:
            return
        ctx.record(mean=float(np.nanmean(window)), rsi=self.rsi[ctx.symbols[0]][-1],
                   far=self.fast[ctx.symbols[0]][-25])
        for j, s in enumerate(ctx.symbols):
            trend = window[-1, j] > np.nanmean(window[:, j]) and self.fast[s][-1] > self.fast[s][-2]
            if trend and not ctx.position(s):
                ctx.order_target_percent(s, 0.9 / len(ctx.symbols))
            elif not trend and ctx.position(s) and self.rsi[s][-1] < 50:
                ctx.close(s)


@pytest.mark.parametrize(("name", "params", "start"), [
    ("sma_crossover", {"fast": 5, "slow": 20}, "2012-03-01"),
    ("equal_weight", {"rebalance": "1mo"}, "2012-01-01"),
    ("momentum_rotation", {"lookback": 20, "top_n": 2, "rebalance": "1mo"}, "2012-03-01"),
])
def test_builtins_streamed_equal_whole_across_splits(name: str, params: dict, start: str) -> None:
    check(lambda: build_strategy(name, params), FOUR, start, "2015-01-01")


def test_history_indicators_costs_and_total_return() -> None:
    costs = TransactionCostEngine(commission=Commission(percent=0.001),
                                  slippage=SlippageModel(bps=2, volatility_multiple=0.5))
    whole = check(HistoryAndIndicators, ["AAPL", "KO"], "2012-03-01", "2015-01-01", costs=costs,
                  adjustment="total_return", windows=(2, 5))
    assert whole.records.height and whole.metrics["commission"] > 0


def test_close_fills_finalize_and_open_trades() -> None:
    check(lambda: build_strategy("sma_crossover", {"fast": 3, "slow": 12}), ["AAPL", "KO"], "2012-02-01",
          "2014-06-20", fill="close", finalize_trades=True, windows=(4,))
    whole = check(lambda: build_strategy("sma_crossover", {"fast": 3, "slow": 12}), ["AAPL", "KO"],
                  "2012-02-01", "2014-06-20", windows=(4,))
    assert whole.open_trades.height  # the run ends holding


def test_rejections_stream_the_same() -> None:
    whole = check(lambda: build_strategy("equal_weight", {"rebalance": "1w"}), FOUR, "2012-01-01",
                  "2013-01-01", cash=150.0, windows=(3,))
    assert whole.rejections.height


def test_intraday_windows_cut_sessions_and_trades() -> None:
    """One-session windows of 1-minute bars on a synthetic 24/7 symbol and two XNYS ones."""
    crypto = SyntheticDataSource(seed=3, calendar="24/7")
    check(lambda: build_strategy("sma_crossover", {"fast": 10, "slow": 40}), ["BTC"], "2024-03-04",
          "2024-03-09", "1min", source=crypto, windows=(1,))
    stocks = SyntheticDataSource(seed=5)
    check(lambda: build_strategy("sma_crossover", {"fast": 10, "slow": 40}), ["A", "B"], "2024-03-04",
          "2024-03-12", "5min", source=stocks, windows=(1, 2), commission=0.0005)


def test_progress_reaches_the_end_and_results_save(tmp_path: Any) -> None:
    from backtape.results import ResultsStore

    calls: list[tuple[int, int]] = []
    engine = BacktestEngine(source=SAMPLE, window_sessions=20)
    result = engine.run(build_strategy("equal_weight", {"rebalance": "1mo"}), FOUR, "2012-01-01",
                        "2015-01-01", progress=lambda done, total: calls.append((done, total)))
    assert bar_fetches(result) > 1
    n = result.equity.height
    assert calls[-1] == (n, n) and len(calls) > 10
    assert all(d < t for d, t in calls[:-1]) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    prices = result.extra["prices"]
    assert set(prices["symbol"]) == set(FOUR) and prices["ts"].is_sorted() is not None
    whole = BacktestEngine(source=SAMPLE, window_sessions=0).run(
        build_strategy("equal_weight", {"rebalance": "1mo"}), FOUR, "2012-01-01", "2015-01-01")
    assert prices.sort("symbol", "ts").equals(whole.extra["prices"].sort("symbol", "ts"))
    store = ResultsStore(tmp_path / "runs.db")
    run_id = result.save(store)
    assert store.load_result(run_id).equity.equals(result.equity)


class Peeks(Strategy):
    """At every step: the portal refuses anything after the clock, and its newest bar is the one
    that just ended, also on the first step of each window."""

    params: ClassVar[dict[str, Any]] = {}

    def initialize(self, ctx: Context) -> None:
        self.errors = 0
        self.steps = 0

    def on_bar(self, ctx: Context) -> None:
        self.steps += 1
        for s in ctx.symbols:
            bars = ctx.portal.get_bars(s, 0, ctx.now)
            assert bars["ts_end"][-1] <= ctx.now
            assert ctx.portal.store.series(s).ts_end.max() < ctx.now + 7 * 86_400 * 10**9
            try:
                ctx.portal.get_spot_value(s, "close", ctx.now + 1)
            except LookAheadError:
                self.errors += 1


def test_no_look_ahead_at_window_boundaries() -> None:
    strategy = Peeks()
    result = run(strategy, ["AAPL", "KO"], "2014-05-01", "2014-07-01", windows=1)
    assert bar_fetches(result) > 30
    assert strategy.errors == 2 * strategy.steps == 2 * result.equity.height


class LateHistory(Strategy):
    """Asks for 30 bars of history only from its 30th bar on, with no warm-up declared."""

    params: ClassVar[dict[str, Any]] = {}

    def on_bar(self, ctx: Context) -> None:
        if ctx.bar_index >= 30:
            ctx.history("AAPL", 30)


def test_undeclared_history_in_a_later_window_says_to_declare_warmup() -> None:
    assert run(LateHistory(), ["AAPL"], "2012-03-01", "2012-06-01", windows=0).equity.height
    with pytest.raises(Exception, match="warmup = 30"):
        run(LateHistory(), ["AAPL"], "2012-03-01", "2012-06-01", windows=2)


def test_warmup_the_data_lacks_loads_the_run_whole() -> None:
    """``ready`` (first step with ``warmup`` bars for every symbol) is past the first window: the
    run cannot know it while streaming, so it is loaded whole, with the same results."""
    make = lambda: build_strategy("sma_crossover", {"fast": 10, "slow": 30})  # noqa: E731
    whole = run(make(), ["AAPL", "KO"], "2012-01-01", "2013-01-01", windows=0)
    streamed = run(make(), ["AAPL", "KO"], "2012-01-01", "2013-01-01", windows=3)
    assert bar_fetches(streamed) == 2 and whole.trades.equals(streamed.trades)  # window, then whole
    assert whole.equity.equals(streamed.equity)


def test_window_plan() -> None:
    from backtape.calendars import get_calendar
    from backtape.engine.windows import plan_windows

    xnys = get_calendar("XNYS")
    s, e = int(np.datetime64("2023-01-01", "ns").astype(np.int64)), int(np.datetime64("2024-01-01", "ns")
                                                                         .astype(np.int64))
    months = plan_windows(xnys, "1min", 100, s, e, None)  # 9.8M bars: whole months (the cache's files)
    assert [str(np.datetime64(t, "ns"))[:10] for t in months[:2]] == ["2023-02-01", "2023-03-01"]
    assert len(months) == 11
    assert plan_windows(xnys, "1min", 5, s, e, None) == []  # 0.5M bars: one window
    assert plan_windows(xnys, "1d", 5000, s, e, None) == []  # daily streams only when forced
    assert len(plan_windows(xnys, "1d", 5, s, e, 50)) == 4  # 250 sessions: five windows
    assert plan_windows(xnys, "1w", 5, s, e, 5) == [] and plan_windows(xnys, "1min", 100, s, e, 0) == []
