"""``BacktestResult``: everything a run produced, as Polars frames, with a readable summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from .._time import format_ns

_HEADLINE = ("final_equity", "total_return", "buy_hold_return", "cagr", "sharpe", "sortino", "calmar",
             "max_drawdown", "max_drawdown_duration", "win_rate", "profit_factor", "sqn", "expectancy",
             "trades", "open_trades", "open_pnl", "exposure", "commission")


def _number(value: Any) -> float | None:
    """A metric as a float for the summary table (``None`` for what is not a number)."""
    return float(value) if isinstance(value, int | float) else None


@dataclass
class BacktestResult:
    """The outcome of one backtest.

    ``metrics`` is a dict (``final_equity``, ``total_return``, ``sharpe``, ``max_drawdown``,
    ``trades`` and more, defined in docs/metrics.md); ``trades`` has one row per closed round trip
    and ``open_trades`` one per position still open at the end (marked at the last close, counted
    in equity and in ``metrics["trades"]``); ``records`` has one row per bar and one column per
    name given to ``ctx.record``; every time column is ``Datetime("ns", "UTC")``;
    ``equity`` has ``ts``, ``equity`` and ``drawdown``; ``orders`` and ``fills`` log every order
    and execution; ``rejections`` says why orders were resized or refused; ``extra`` holds
    further named frames (prices for reports, ...) stored with the run.
    """

    strategy: str
    parameters: dict[str, Any]
    symbols: list[str]
    start: int
    end: int
    frequency: str
    source: str
    cash: float
    metrics: dict[str, Any]
    trades: pl.DataFrame
    orders: pl.DataFrame
    fills: pl.DataFrame
    equity: pl.DataFrame
    open_trades: pl.DataFrame
    rejections: pl.DataFrame
    records: pl.DataFrame
    duration_s: float
    fingerprint: dict[str, Any] = field(default_factory=dict)
    run_id: int | None = None
    extra: dict[str, pl.DataFrame] = field(default_factory=dict)

    @property
    def drawdown(self) -> pl.DataFrame:
        return self.equity.select("ts", "drawdown")

    def to_pandas(self) -> dict[str, Any]:
        """The frames as pandas DataFrames (for plotting libraries and older code)."""
        return {"equity": self.equity.to_pandas(), "trades": self.trades.to_pandas(),
                "orders": self.orders.to_pandas(), "fills": self.fills.to_pandas()}

    def all_trades(self) -> pl.DataFrame:
        """Closed trades, then those open at the end, in one table with an ``is_open`` column."""
        closed = self.trades.with_columns(is_open=pl.lit(False))
        if not self.open_trades.height:
            return closed
        still_open = self.open_trades.with_columns(is_open=pl.lit(True))
        return pl.concat([closed, still_open], how="diagonal_relaxed")

    def summary(self) -> pl.DataFrame:
        """Headline metrics: ``metric`` (name), ``value`` (a number) and ``text`` (as shown everywhere)."""
        from ..formatting import metric

        m = self.metrics
        rows = [(k, _number(m[k]), metric(k, m[k])) for k in _HEADLINE if k in m]
        return pl.DataFrame(rows, schema={"metric": pl.String, "value": pl.Float64, "text": pl.String},
                            orient="row")

    def save(self, store: Any, key: str | None = None) -> int:
        """Store this run in a ``ResultsStore`` (once per idempotency ``key``); returns its id."""
        self.run_id = store.save_run(
            strategy=self.strategy, parameters=self.parameters, symbols=self.symbols, start=self.start,
            end=self.end, frequency=self.frequency, metrics=self.metrics, trades=self.trades,
            equity=self.equity, source=self.source, cash=self.cash, duration_s=self.duration_s,
            fingerprint=self.fingerprint, frames=self.frames(), key=key,
        )
        return self.run_id

    def frames(self) -> dict[str, pl.DataFrame]:
        """Every result frame by name (the ones stored whole with a run), ``extra`` included."""
        named = {"trades": self.trades, "orders": self.orders, "fills": self.fills, "equity": self.equity,
                 "open_trades": self.open_trades, "rejections": self.rejections, "records": self.records}
        return {**named, **self.extra}

    def __repr__(self) -> str:
        from ..formatting import metric

        m = self.metrics
        params = ", ".join(f"{k}={v}" for k, v in self.parameters.items())

        def show(name: str) -> str:
            return metric(name, m.get(name))

        lines = [
            f"BacktestResult({self.strategy}({params}) on {','.join(self.symbols)} {self.frequency} "
            f"{format_ns(self.start)} .. {format_ns(self.end)})",
            f"  final equity  {show('final_equity')}  (start {metric('cash', self.cash)})",
            f"  total return  {show('total_return')}   buy & hold {show('buy_hold_return')}   "
            f"CAGR {show('cagr')}",
            f"  sharpe        {show('sharpe')}   sortino {show('sortino')}   calmar {show('calmar')}",
            f"  max drawdown  {show('max_drawdown')}   lasting {show('max_drawdown_duration')}",
            f"  trades        {show('trades')} ({show('open_trades')} open, P&L {show('open_pnl')})   "
            f"win rate {show('win_rate')}",
        ]
        refused = int(m.get("orders_refused") or 0)
        if refused:
            lines.append(f"  refused       {refused:,} order(s) (result.rejections)")
        return "\n".join(lines)

    def report(self, path: Any) -> Any:
        """Write a self-contained interactive HTML report (``backtape.reports``); returns the path."""
        from ..reports import write_report

        return write_report(self, path)

    def plot(self) -> Any:
        """Prices with trades, equity, drawdown and exposure as a plotly ``Figure`` (for further styling)."""
        from ..reports.backtest import main_figure

        return main_figure(self)

    def _repr_html_(self) -> str:
        from ..reports.notebook import backtest_html

        return backtest_html(self)
