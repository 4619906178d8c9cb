"""Trades and quotes in the event engine: event order, look-ahead, quote fills, tick-only clock, real data.

The hand-built stream (24/7 calendar, symbol X, one-minute bars from 00:00), seconds after 00:00:

    q@5 (99.9/100.1)  t@10 100.1x1  t@20 100.05x2  q@20 (100.0/100.2)  | bar end 60 |
    t@60 100.2x1  q@60 (100.1/100.3)  q@90 (100.4/100.6)  t@100 100.4x3  q@110 (99.7/99.9)  | 120 | 180

The trade at 20 ties with the quote at 20: trade first, so it is judged by q@5 (mid 100: +1) and
not by q@20 (mid 100.1, which would make it -1).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import polars as pl
import pytest

from backtape._time import NS_PER_SECOND, to_ns
from backtape.costs import Commission, TransactionCostEngine
from backtape.engine import Strategy, run_backtest
from backtape.engine.ticks import Quote, Trade, tick_clock
from backtape.errors import BacktapeError, ConfigError
from backtape.portal import DataRequirement
from backtape.schema import TS, conform, empty
from backtape.sources.files import read_ticks
from backtape.sources.memory import FrameDataSource
from backtape.sources.sample import sample_data_dir
from backtape.ticks import classify_trades, cumulative_delta

T0 = to_ns("2024-01-01T00:00:00Z")
S = NS_PER_SECOND
TRADES = [("X", 10, 100.1, 1.0), ("X", 20, 100.05, 2.0), ("X", 60, 100.2, 1.0), ("X", 100, 100.4, 3.0)]
QUOTES = [("X", 5, 99.9, 100.1), ("X", 20, 100.0, 100.2), ("X", 60, 100.1, 100.3), ("X", 90, 100.4, 100.6),
          ("X", 110, 99.7, 99.9)]
BARS = [(100.0, 100.2, 99.9, 100.0), (100.2, 100.5, 100.1, 100.4), (100.5, 100.6, 100.3, 100.5)]
COSTS = TransactionCostEngine(commission=Commission(per_order=1.0))


def _stamps(rows: list[tuple[str, int, float, float]]) -> dict[str, Any]:
    return {"symbol": [r[0] for r in rows], "ts": pl.Series([T0 + r[1] * S for r in rows]).cast(TS)}


def _trades(rows: list[tuple[str, int, float, float]]) -> pl.DataFrame:
    return pl.DataFrame({**_stamps(rows), "price": [r[2] for r in rows], "size": [r[3] for r in rows]})


def _quotes(rows: list[tuple[str, int, float, float]]) -> pl.DataFrame:
    return pl.DataFrame({**_stamps(rows), "bid": [r[2] for r in rows], "ask": [r[3] for r in rows],
                         "bid_size": [5.0] * len(rows), "ask_size": [7.0] * len(rows)})


def _bars(symbol: str = "X") -> pl.DataFrame:
    ts = [T0 + i * 60 * S for i in range(len(BARS))]
    return pl.DataFrame({"symbol": [symbol] * len(BARS), "ts": pl.Series(ts).cast(TS),
                         "ts_end": pl.Series([t + 60 * S for t in ts]).cast(TS),
                         "open": [b[0] for b in BARS], "high": [b[1] for b in BARS],
                         "low": [b[2] for b in BARS], "close": [b[3] for b in BARS],
                         "volume": [10.0] * len(BARS)})


def _source(trades: list = TRADES, quotes: list | None = QUOTES,
            bars: pl.DataFrame | None = None) -> FrameDataSource:
    return FrameDataSource(_bars() if bars is None else bars, frequency="1min", calendar_name="24/7",
                           trades=_trades(trades), quotes=None if quotes is None else _quotes(quotes))


class Recorder(Strategy):
    """Logs every callback as (kind, event ts, ctx.now, portal clock); ``plan[(kind, i)](ctx, event)``
    runs at the i-th callback of that kind."""

    params: ClassVar[dict[str, Any]] = {"kinds": ("trades", "quotes"), "bars": True, "plan": None}

    def get_data_requirements(self) -> list[DataRequirement]:
        ticks = [DataRequirement(k, self.frequency) for k in self.kinds]
        return [DataRequirement("bars", self.frequency), *ticks] if self.bars else ticks

    def initialize(self, ctx) -> None:
        self.log: list[tuple] = []
        self.fills: list = []
        self.seen: dict[str, int] = {"bar": 0, "trade": 0, "quote": 0}
        self.quotes_seen: list[Quote | None] = []

    def _event(self, kind: str, ctx, event: Any) -> None:
        ts = ctx.now if event is None else event.ts
        self.log.append((kind, (ts - T0) // S, (ctx.now - T0) // S, (ctx.portal.clock_ns - T0) // S))
        action = (self.plan or {}).get((kind, self.seen[kind]))
        self.seen[kind] += 1
        if action is not None:
            action(ctx, event)

    def on_bar(self, ctx) -> None:
        self._event("bar", ctx, None)

    def on_trade(self, ctx, trade: Trade) -> None:
        self.quotes_seen.append(ctx.quote("X") if "quotes" in self.kinds else None)
        self._event("trade", ctx, trade)

    def on_quote(self, ctx, quote: Quote) -> None:
        self._event("quote", ctx, quote)

    def on_fill(self, ctx, fill) -> None:
        self.fills.append(fill)


def _run(strategy: Strategy, source: FrameDataSource | None = None, symbols: str = "X", end: int = 180,
         **options: Any):
    return run_backtest(strategy, symbols, T0, T0 + end * S, "1min", source=source or _source(),
                        cash=100_000.0, costs=options.pop("costs", COSTS), fractional=True, **options)


# ---------------------------------------------------------------------------------- event order
def test_events_are_dispatched_in_time_order_between_bar_ends_with_trades_first_at_ties() -> None:
    s = Recorder()
    _run(s)
    assert s.log == [
        ("quote", 5, 5, 5), ("trade", 10, 10, 10), ("trade", 20, 20, 20), ("quote", 20, 20, 20),
        ("bar", 60, 60, 60),  # the bar [0, 60) completes before the events stamped at 60
        ("trade", 60, 60, 60), ("quote", 60, 60, 60), ("quote", 90, 90, 90), ("trade", 100, 100, 100),
        ("quote", 110, 110, 110), ("bar", 120, 120, 120), ("bar", 180, 180, 180),
    ]
    assert s.seen == {"bar": 3, "trade": 4, "quote": 5}


def test_several_symbols_merge_by_time_then_trades_first_then_symbol_order() -> None:
    trades = [*TRADES, ("Y", 20, 50.0, 1.0), ("Y", 15, 50.1, 1.0)]
    quotes = [*QUOTES, ("Y", 20, 49.9, 50.1), ("Y", 12, 49.8, 50.2)]
    bars = pl.concat([_bars("X"), _bars("Y")])
    got: list[tuple[str, str, int]] = []

    class Both(Recorder):
        def on_trade(self, ctx, trade: Trade) -> None:
            got.append(("trade", trade.symbol, (trade.ts - T0) // S))

        def on_quote(self, ctx, quote: Quote) -> None:
            got.append(("quote", quote.symbol, (quote.ts - T0) // S))

    _run(Both(), _source(trades, quotes, bars), symbols="X,Y", end=60)
    assert got == [("quote", "X", 5), ("trade", "X", 10), ("quote", "Y", 12), ("trade", "Y", 15),
                   ("trade", "X", 20), ("trade", "Y", 20), ("quote", "X", 20), ("quote", "Y", 20)]


# ---------------------------------------------------------------------------------- look-ahead and delta
def test_a_quote_at_a_trades_timestamp_is_not_visible_to_it_and_delta_matches_the_classifier() -> None:
    s = Recorder()
    sides: list[tuple[int, float]] = []
    s.on_trade = lambda ctx, t: (Recorder.on_trade(s, ctx, t), sides.append((t.side, ctx.delta())))  # type: ignore[method-assign,assignment,func-returns-value]
    _run(s)
    # prevailing quote seen in on_trade: q@5 for t@10 and t@20 (q@20 comes after the trade), q@20 for t@60
    assert [(q.ts - T0) // S for q in s.quotes_seen] == [5, 5, 20, 90]  # type: ignore[union-attr]
    assert sides == [(1, 1.0), (1, 3.0), (1, 4.0), (-1, 1.0)]
    ref = cumulative_delta(classify_trades(_trades(TRADES), _quotes(QUOTES)))
    assert [(int(a), b) for a, b in zip(ref["side"], ref["cum_delta"], strict=True)] == sides


def test_history_and_spot_stay_point_in_time_during_ticks() -> None:
    spots: list[float] = []

    class Spot(Recorder):
        def on_trade(self, ctx, trade: Trade) -> None:
            spots.append(ctx.spot("X"))

    _run(Spot())
    # trades before 60 see no complete bar (NaN); the trades at 60 and 100 see bar [0, 60) only
    assert np.isnan(spots[0]) and np.isnan(spots[1])
    assert spots[2:] == [BARS[0][3], BARS[0][3]]


def test_tick_accessors_need_the_subscription() -> None:
    def ask(ctx, _event) -> None:
        ctx.quote("X")

    with pytest.raises(BacktapeError, match="no quotes in this run"):
        _run(Recorder(kinds=("trades",), plan={("trade", 0): ask}), _source(quotes=None))


# ---------------------------------------------------------------------------------- quote fills
def _fill_rows(result) -> list[tuple]:
    f = result.fills.with_columns(pl.col("ts").cast(pl.Int64))
    return list(zip(((f["ts"] - T0) // S).to_list(), f["quantity"].to_list(), f["price"].to_list(),
                    f["reference_price"].to_list(), f["spread"].to_list(), f["commission"].to_list(),
                    strict=True))


def test_market_orders_fill_at_the_ask_and_bid_with_the_half_spread_itemized() -> None:
    plan = {("quote", 0): lambda ctx, q: ctx.order("X", 10), ("quote", 3): lambda ctx, q: ctx.order("X", -10)}
    s = Recorder(plan=plan)
    r = _run(s)
    rows = _fill_rows(r)
    assert [row[:2] for row in rows] == [(5, 10.0), (90, -10.0)]
    (_, _, buy, buy_ref, buy_spread, buy_comm), (_, _, sell, sell_ref, sell_spread, _) = rows
    assert buy == pytest.approx(100.1, abs=1e-9) and buy_ref == pytest.approx(100.0)  # ask; mid
    assert sell == pytest.approx(100.4, abs=1e-9) and sell_ref == pytest.approx(100.5)  # bid; mid
    # spread cost: |qty| * distance from the mid
    assert buy_spread == pytest.approx(10 * 0.1) and sell_spread == pytest.approx(10 * 0.1)
    assert buy_comm == 1.0
    assert r.metrics["final_equity"] == pytest.approx(100_000 + 10 * (100.4 - 100.1) - 2.0)
    assert r.trades["pnl"].to_list() == pytest.approx([10 * 0.3 - 2.0])


def test_an_order_from_on_trade_fills_at_the_quote_strictly_before_the_trade() -> None:
    r = _run(Recorder(plan={("trade", 1): lambda ctx, t: ctx.order("X", 1)}))  # t@20, tied with q@20
    assert _fill_rows(r)[0][:3] == (20, 1.0, pytest.approx(100.1))  # q@5's ask, not q@20's 100.2


@pytest.mark.parametrize(("latency_s", "fill_s", "price"), [(0, 5, 100.1), (15, 20, 100.1), (16, 21, 100.2)])
def test_latency_fills_at_the_last_quote_strictly_before_arrival(latency_s: int, fill_s: int,
                                                                  price: float) -> None:
    r = _run(Recorder(plan={("quote", 0): lambda ctx, q: ctx.order("X", 1)}), latency=latency_s * S)
    # arriving at 20 exactly: q@20 is not strictly before the arrival, q@5 is used
    assert _fill_rows(r)[0][:3] == (fill_s, 1.0, pytest.approx(price))


def test_on_bar_orders_fill_against_quotes_not_the_next_open() -> None:
    plan = {("bar", 0): lambda ctx, _e: ctx.order("X", 1)}
    with_quotes = _run(Recorder(plan=plan))
    assert _fill_rows(with_quotes)[0][:3] == (60, 1.0, pytest.approx(100.2))  # q@20's ask; q@60 comes after
    # without quotes (trades only) the bar rules stand: the next bar's open
    bars_only = _run(Recorder(kinds=("trades",), plan=plan), _source(quotes=None))
    assert _fill_rows(bars_only)[0][:4] == (60, 1.0, BARS[1][0], BARS[1][0])


def test_limit_and_stop_orders_against_quotes() -> None:
    plan = {
        ("quote", 0): lambda ctx, q: (ctx.order("X", 5, limit=100.0, tag="rest"),   # ask 100.1 > 100: rests
                                      ctx.order("X", 2, stop=100.5, tag="stop")),   # ask 100.1 < 100.5
        ("quote", 3): lambda ctx, q: ctx.order("X", -2, limit=100.3, tag="cross"),  # bid 100.4 >= 100.3
    }
    r = _run(Recorder(plan=plan))
    f = r.fills.sort("order_id")
    cols = (f["tag"], f["ts"].cast(pl.Int64), f["price"], f["spread"])
    by_tag = {t: (int((ts - T0) // S), p, sp) for t, ts, p, sp in zip(*cols, strict=True)}
    assert by_tag["stop"] == (90, pytest.approx(100.6), pytest.approx(2 * 0.1))   # q@90: ask 100.6 >= 100.5
    assert by_tag["cross"] == (90, pytest.approx(100.4), pytest.approx(2 * 0.1))  # marketable: bid, taking
    assert by_tag["rest"] == (110, 100.0, 0.0)  # q@110 ask 99.9 <= 100: at the limit, providing liquidity


def test_bracket_legs_arrive_when_the_entry_fills() -> None:
    plan = {("quote", 0): lambda ctx, q: ctx.bracket("X", 1, stop_loss=99.5, take_profit=100.35)}
    r = _run(Recorder(plan=plan))
    f = r.fills
    assert ((f["ts"].cast(pl.Int64) - T0) // S).to_list() == [5, 90]
    assert f["tag"].to_list() == ["", "take_profit"]  # q@90 bid 100.4 >= 100.35 (resting: at the limit)
    assert f["price"].to_list() == [pytest.approx(100.1), 100.35]
    assert r.orders.filter(pl.col("tag") == "stop_loss")["status"].to_list() == ["cancelled"]


def test_latency_must_be_non_negative() -> None:
    with pytest.raises(ConfigError, match="latency"):
        _run(Recorder(), latency=-1)


# ---------------------------------------------------------------------------------- tick-only clock
def test_tick_only_clock_steps_at_window_ends_and_marks_at_the_last_trade() -> None:
    s = Recorder(bars=False, plan={("quote", 0): lambda ctx, q: ctx.order("X", 1)})
    r = _run(s, _source(bars=empty("bars")), end=150)
    assert [e[1] for e in s.log if e[0] == "bar"] == [60, 120, 150]
    assert s.seen == {"bar": 3, "trade": 4, "quote": 5}
    cash = 100_000 - 100.1 - 1.0
    # marked at t@20 (100.05) at 60, at t@100 (100.4) at 120 and 150
    assert r.equity["equity"].to_list() == pytest.approx([cash + 100.05, cash + 100.4, cash + 100.4])
    assert ((r.equity["ts"].dt.epoch("ns") - T0) // S).to_list() == [60, 120, 150]


def test_tick_clock_follows_sessions() -> None:
    from backtape.calendars import get_calendar

    nyse = get_calendar("XNYS")
    start, end = to_ns("2024-01-02T14:00:00Z"), to_ns("2024-01-03T15:00:00Z")
    hours = tick_clock(nyse, "1h", start, end)
    # 15:00 (window 14:00-15:00 touches the 14:30 open) .. 21:00 close, then 15:00 next day
    assert [int((t - start) // (3600 * S)) for t in hours] == [1, 2, 3, 4, 5, 6, 7, 25]
    days = tick_clock(nyse, "1d", start, to_ns("2024-01-05T00:00:00Z"))
    assert days[:2].tolist() == [to_ns("2024-01-02T21:00:00Z"), to_ns("2024-01-03T21:00:00Z")]
    with pytest.raises(ConfigError, match="tick-only"):
        tick_clock(nyse, "1w", start, end)


# ---------------------------------------------------------------------------------- real data
BTC_START, BTC_END = to_ns("2024-08-08T23:54:00Z"), to_ns("2024-08-09T00:00:02Z")


class DeltaFollow(Strategy):
    """Every ``every`` trades, hold ``size`` BTC long if the cumulative delta rose since the last
    decision, short if it fell. Records each trade's side and the final delta."""

    params: ClassVar[dict[str, Any]] = {"every": 250, "size": 0.05}

    def get_data_requirements(self) -> list[DataRequirement]:
        return [DataRequirement("trades", "1min"), DataRequirement("quotes", "1min")]

    def initialize(self, ctx) -> None:
        self.sides: list[int] = []
        self.quotes = 0
        self.anchor = 0.0

    def on_quote(self, ctx, quote: Quote) -> None:
        self.quotes += 1

    def on_trade(self, ctx, trade: Trade) -> None:
        self.sides.append(trade.side)
        if len(self.sides) % self.every == 0:
            d = ctx.delta("BTCUSDT")
            ctx.order_target("BTCUSDT", self.size if d > self.anchor else -self.size)
            self.anchor = d

    def on_end(self, ctx) -> None:
        self.final_delta = ctx.delta("BTCUSDT")


def _btc() -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Sample trades, raw quotes and the capture-clock offset (tests/ticks: max exchange - receive time)."""
    folder = sample_data_dir()
    raw = read_ticks(folder / "BTCUSDT_binance_spot_trades_2024-08-08.parquet", "trades", symbol="BTCUSDT",
                     keep_extra=True)
    offset = int((raw["ts"].dt.epoch("ns") - raw["local_recv_ts_ns"]).max())
    quotes = read_ticks(folder / "BTCUSDT_binance_spot_bookticker_quotes_2024-08-08.parquet", "quotes",
                        symbol="BTCUSDT")
    return conform(raw, "trades"), quotes, offset


def _check_btc_run(strategy: DeltaFollow, result, trades: pl.DataFrame, quotes: pl.DataFrame) -> None:
    ref = cumulative_delta(classify_trades(trades, quotes))
    assert len(strategy.sides) == trades.height and strategy.quotes == quotes.height
    assert strategy.sides == ref["side"].to_list()
    assert strategy.final_delta == pytest.approx(float(ref["cum_delta"][-1]), abs=1e-9)
    fills = result.fills.with_columns(pl.col("ts").cast(TS)).sort("ts")
    assert fills.height > 10
    # every fill is at the ask (buys) or bid (sells) of the last quote stamped strictly before it
    book = fills.join_asof(quotes.sort("ts").select("ts", "bid", "ask"), on="ts", strategy="backward",
                           allow_exact_matches=False)
    want = np.where(book["quantity"] > 0, book["ask"], book["bid"])
    np.testing.assert_allclose(book["price"].to_numpy(), want, rtol=1e-12)
    assert (book["spread"] >= 0).all()
    assert result.equity.height == 7 and np.isfinite(result.metrics["final_equity"])


def test_delta_following_on_the_btcusdt_sample_with_aligned_quotes() -> None:
    """The strategy run uses quotes shifted onto the exchange clock: raw, they are stamped ~1.27 s
    late on the receive clock, i.e. they reach trades from the future (look-ahead in fills)."""
    trades, quotes, offset = _btc()
    assert 1_200_000_000 < offset < 1_300_000_000
    aligned = quotes.with_columns(pl.col("ts") + pl.duration(nanoseconds=offset))
    source = FrameDataSource(frequency="1min", calendar_name="24/7", trades=trades, quotes=aligned)
    s = DeltaFollow()
    r = run_backtest(s, "BTCUSDT", BTC_START, BTC_END, "1min", source=source, cash=100_000.0, fractional=True)
    _check_btc_run(s, r, trades, aligned.filter(pl.col("ts").dt.epoch("ns") < BTC_END))


def test_the_sample_source_streams_raw_quotes_unchanged() -> None:
    """Through ``source="sample"`` the engine applies no alignment: delta equals the raw classification."""
    trades, quotes, _ = _btc()
    s = DeltaFollow()
    r = run_backtest(s, "BTCUSDT", BTC_START, BTC_END, "1min", source="sample", cash=100_000.0,
                     fractional=True)
    _check_btc_run(s, r, trades, quotes)
