"""Event-engine tick benchmark: trades and quotes dispatched to ``on_trade``/``on_quote``.

Synthetic ticks (24/7 calendar, ``--trades``/``--quotes`` per minute) are generated once and served
from memory (``FrameDataSource``), on a tick-only one-minute clock. Three strategies:

* ``listen``: subscribes and does nothing (the cost of streaming, classifying and dispatching);
* ``delta``: reads ``ctx.delta`` and ``ctx.quote`` on every event and every 500 trades flips a
  position toward the delta's direction (quote fills at bid/ask);
* ``quotes only``: quotes without trades (no classification).

Timings are the best of ``--repeat`` runs after a warm-up (numba caches), for the clock loop alone
(``_Run.execute``) and for ``run_backtest`` end to end; events/s counts trades plus quotes.

    python benchmarks/bench_engine_ticks.py [--minutes 1440] [--trades 100] [--quotes 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from typing import Any, ClassVar

from backtape._time import NS_PER_MINUTE, to_ns
from backtape.engine import Strategy, run_backtest
from backtape.engine.engine import _Run
from backtape.options import TradingOptions
from backtape.portal import DataRequirement
from backtape.sources.memory import FrameDataSource
from backtape.sources.synthetic import SyntheticDataSource

START = "2024-01-01"


class Listen(Strategy):
    """Subscribes to ``kinds`` and ignores every event."""

    params: ClassVar[dict[str, Any]] = {"kinds": ("trades", "quotes")}

    def get_data_requirements(self) -> list[DataRequirement]:
        return [DataRequirement(k, "1min") for k in self.kinds]

    def on_trade(self, ctx, trade) -> None:
        pass

    def on_quote(self, ctx, quote) -> None:
        pass


class Delta(Listen):
    """Every 500 trades, hold +-1 unit in the direction the cumulative delta moved."""

    def initialize(self, ctx) -> None:
        self.n, self.anchor, self.spread = 0, 0.0, 0.0

    def on_quote(self, ctx, quote) -> None:
        self.spread = quote.ask - quote.bid

    def on_trade(self, ctx, trade) -> None:
        self.n += 1
        if self.n % 500 == 0:
            d = ctx.delta()
            if ctx.quote() is not None:
                ctx.order_target(ctx.symbols[0], 1.0 if d > self.anchor else -1.0)
            self.anchor = d


def _source(minutes: int, trades: int, quotes: int) -> tuple[FrameDataSource, int, int]:
    syn = SyntheticDataSource(seed=7, calendar="24/7", trades_per_minute=trades, quotes_per_minute=quotes)
    start = to_ns(START)
    end = start + minutes * NS_PER_MINUTE
    t = syn.fetch_kind_sync("trades", ["SYN"], start, end)
    q = syn.fetch_kind_sync("quotes", ["SYN"], start, end)
    return FrameDataSource(frequency="1min", calendar_name="24/7", trades=t, quotes=q), start, end


def _best(fn, repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _loop(strategy: Strategy, src: FrameDataSource, start: int, end: int, repeat: int) -> tuple[float, int]:
    opts = TradingOptions(cash=1e9, fractional=True)
    best, events = float("inf"), 0
    for _ in range(repeat + 1):
        run = _Run(strategy, ["SYN"], start, end, "1min", src, opts)
        t0 = time.perf_counter()
        run.execute(None)
        best = min(best, time.perf_counter() - t0)
        events = run.feed.events  # type: ignore[union-attr]
    return best, events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=int, default=1440)
    ap.add_argument("--trades", type=int, default=100)
    ap.add_argument("--quotes", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    src, start, end = _source(args.minutes, args.trades, args.quotes)
    cases = [("listen", lambda: Listen()), ("delta", lambda: Delta()),
             ("quotes only", lambda: Listen(kinds=("quotes",)))]
    print(f"{'strategy':<14}{'events':>12}{'loop s':>10}{'events/s':>14}{'run s':>10}{'events/s':>14}")
    for name, make in cases:
        loop_s, events = _loop(make(), src, start, end, args.repeat)
        run_s = _best(lambda make=make: run_backtest(make(), "SYN", start, end, "1min", source=src,
                                                    cash=1e9, fractional=True), args.repeat)
        print(f"{name:<14}{events:>12,}{loop_s:>10.3f}{events / loop_s:>14,.0f}{run_s:>10.3f}"
              f"{events / run_s:>14,.0f}")


if __name__ == "__main__":
    main()
