"""``backtape demo``: a tour of the real market data shipped with backtape.

What is in the sample, a validated 5-minute view built from 1-minute bars, daily views that follow
exchange sessions (a split, an early close), the quality report of every sample file, and a real
backtest on the sample's daily equities. It reads
only the package's own files, so it runs offline in a few seconds.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import polars as pl
from rich.console import Console

from .._time import NS_PER_MINUTE, to_ns
from ._common import console, frame_table
from .validate import quality, report_table, violations_table

if TYPE_CHECKING:
    from ..sources.sample import SampleDataSource

INTRADAY = ("BTC-PERP", "2022-01-03", "2022-01-04")  # one 24/7 session of 1-minute bars
SPLIT = ("AAPL", "2014-06-04", "2014-06-13")  # AAPL's 7-for-1 split took effect on 2014-06-09
EARLY_CLOSE = ("IBM", "2013-11-27", "2013-12-03")  # NYSE closed at 13:00 New York on 2013-11-29


def _section(out: Console, title: str, text: str) -> None:
    out.print()
    out.rule(f"[bold]{title}", align="left")
    out.print(text)


def _inventory(out: Console, sample: SampleDataSource) -> pl.DataFrame:
    inventory = sample.describe()
    _section(out, "1. What is in the sample",
             "Real data, stored raw (splits and dividends kept beside the prices), served as the "
             "canonical schemas of backtape.schema.")
    shown = inventory.select("symbol", "kind", "frequency", "first", "last", "rows", "calendar")
    out.print(frame_table(shown, max_rows=0, caption="first/last = ts of the first and last row, UTC"))
    return inventory


def _five_minute_view(out: Console, sample: SampleDataSource) -> None:
    symbol, start, end = INTRADAY
    minute = sample.fetch_sync(symbol, start, end, "1min")
    minute_report = quality(minute, "bars")
    from ..aggregation import aggregate  # imported on use, like every heavy module of the CLI

    five = aggregate(minute, "5min", calendar="24/7")
    five_report = quality(five, "bars")
    _section(out, "2. A validated 5-minute view",
             f"{symbol} on {start}: {minute.height:,} one-minute bars (quality score "
             f"{minute_report.score:.4f}) aggregated by session into {five.height:,} five-minute bars "
             f"(score {five_report.score:.4f}). A bar covers [ts, ts_end) and may be seen once "
             "ts_end <= now.")
    out.print(frame_table(five, max_rows=12))
    minute_volume = float(minute.get_column("volume").sum())
    five_volume = float(five.get_column("volume").sum())
    same_volume = abs(minute_volume - five_volume) < 1e-6 * max(1.0, minute_volume)
    highs_match = minute.get_column("high").max() == five.get_column("high").max()
    out.print(f"checks: volume preserved [{'green' if same_volume else 'red'}]{same_volume}[/], "
              f"day's high preserved [{'green' if highs_match else 'red'}]{highs_match}[/]")


def _daily_views(out: Console, sample: SampleDataSource) -> None:
    symbol, start, end = SPLIT
    daily = sample.fetch_sync(symbol, start, end, "1d")
    actions = sample.fetch_kind_sync("actions", symbol, "2014-01-01", "2015-01-01")
    _section(out, "3. Daily views follow exchange sessions",
             f"{symbol} around its 7-for-1 split: raw prices (about 7x lower from 2014-06-09), ts = "
             "session open, ts_end = session close (13:30 and 20:00 UTC in summer).")
    out.print(frame_table(daily, max_rows=0))
    title = f"{symbol} corporate actions in 2014 (applied on read; prices stay raw)"
    out.print(frame_table(actions, title=title, max_rows=0))
    symbol, start, end = EARLY_CLOSE
    early = sample.fetch_sync(symbol, start, end, "1d").with_columns(
        hours=((pl.col("ts_end") - pl.col("ts")).dt.total_minutes() / 60).round(2)
    )
    title = f"{symbol} around Thanksgiving 2013: the early close ends the session at 18:00 UTC"
    shown = early.select("symbol", "ts", "ts_end", "open", "close", "volume", "hours")
    out.print(frame_table(shown, title=title, max_rows=0))


def _quality(out: Console, sample: SampleDataSource, inventory: pl.DataFrame) -> None:
    reports = {}
    for row in inventory.iter_rows(named=True):
        first = to_ns(row["first"])
        last = to_ns(row["last"]) + NS_PER_MINUTE  # half-open range: include the last row
        frequency = row["frequency"] or "1d"
        frame = sample.fetch_kind_sync(row["kind"], row["symbol"], first, last, frequency)
        label = f"{row['symbol']} {frequency if row['kind'] == 'bars' else row['kind']}"
        reports[label] = quality(frame, row["kind"])
    _section(out, "4. Quality report",
             "Every sample file, validated: OHLC consistency, positive prices, volumes, NaN, duplicates, "
             "order, UTC timestamps, crossed quotes.")
    out.print(report_table(reports))
    bad = _corrupted(sample)
    report = quality(bad, "bars")
    out.print("\nWhat a problem looks like: five AAPL bars with a high below the close, a negative volume "
              "and a repeated row.")
    out.print(violations_table(report, title=f"score {report.score:.2f}: each violation names its rule, "
                               "symbol, timestamp and row", limit=10))


def _corrupted(sample: SampleDataSource) -> pl.DataFrame:
    bars = sample.fetch_sync("AAPL", "2014-06-02", "2014-06-07", "1d")
    broken = bars.with_row_index("i").with_columns(
        high=pl.when(pl.col("i") == 1).then(pl.col("close") - 1.0).otherwise(pl.col("high")),
        volume=pl.when(pl.col("i") == 3).then(-pl.col("volume")).otherwise(pl.col("volume")),
    ).drop("i")
    return pl.concat([broken, broken.slice(2, 1)]).sort("symbol", "ts", maintain_order=True)


def _backtest(out: Console) -> None:
    from ..engine import run_backtest
    from ._tables import metrics_table, trades_table
    from .backtest import open_notice

    symbols = ["AAPL", "MSFT", "IBM", "KO"]
    result = run_backtest("sma_crossover", symbols, "2012-01-01", "2015-01-01", "1d", source="sample",
                          cash=100_000.0, commission=0.001, params={"fast": 10, "slow": 50})
    _section(out, "5. A backtest on the sample",
             f"SMA(10, 50) crossover on {', '.join(symbols)}, daily 2012-2014, 100,000 cash split equally, "
             "0.1% commission, fills at the next open, whole shares; the AAPL split is applied to the "
             "position on its ex-date. Loaded once through the DataPortal; ran in "
             f"{result.duration_s:.2f} s.")
    out.print(metrics_table(result.metrics, "metrics (backtape.analytics)"))
    out.print(trades_table(result.trades, f"{result.trades.height} closed round trips", limit=8, dates=True))
    if result.open_trades.height:
        out.print(open_notice(result.open_trades))


def demo() -> None:
    """A tour of the sample data: what is there, a 5-minute and a daily view, a quality report."""
    started = time.perf_counter()
    out = console()
    out.rule("[bold]backtape demo: real market data, loaded, validated and aggregated")
    from ..sources import SampleDataSource

    sample = SampleDataSource()
    inventory = _inventory(out, sample)
    _five_minute_view(out, sample)
    _daily_views(out, sample)
    _quality(out, sample, inventory)
    _backtest(out)
    out.print()
    out.rule(f"done in {time.perf_counter() - started:.1f} s", align="left")
    out.print("Next: backtape data show AAPL --source sample --start 2014-06-01 --end 2014-07-01 · "
              "backtape backtest sma_crossover --symbols AAPL --start 2012-01-01 --end 2015-01-01 · "
              "backtape validate FILE · backtape sources · backtape config show")
