"""``BacktestResult``: everything a run produced, as Polars frames, with a readable summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from .._time import format_ns

_HEADLINE = ("final_equity", "total_return", "cagr", "sharpe", "sortino", "max_drawdown", "win_rate",
             "profit_factor", "trades", "exposure", "commission")


@dataclass
class BacktestResult:
    """The outcome of one backtest.

    ``metrics`` is a dict (``final_equity``, ``total_return``, ``sharpe``, ``max_drawdown``,
    ``trades`` and more, see ``backtape.analytics``); ``trades`` has one row per round trip;
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

    def summary(self) -> pl.DataFrame:
        """Headline metrics as a two-column table."""
        rows = [(k, float(self.metrics[k])) for k in _HEADLINE if k in self.metrics]
        return pl.DataFrame(rows, schema={"metric": pl.String, "value": pl.Float64}, orient="row")

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
        m, nan = self.metrics, float("nan")
        params = ", ".join(f"{k}={v}" for k, v in self.parameters.items())
        lines = [
            f"BacktestResult({self.strategy}({params}) on {','.join(self.symbols)} {self.frequency} "
            f"{format_ns(self.start)} .. {format_ns(self.end)})",
            f"  final equity  {m.get('final_equity', float('nan')):,.2f}  (start {self.cash:,.2f})",
            f"  total return  {m.get('total_return', nan):+.2%}   CAGR {m.get('cagr', nan):+.2%}",
            f"  sharpe        {m.get('sharpe', nan):.3f}   sortino {m.get('sortino', nan):.3f}",
            f"  max drawdown  {m.get('max_drawdown', float('nan')):.2%}",
            f"  trades        {m.get('trades', 0)}   win rate {m.get('win_rate', float('nan')):.1%}",
        ]
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
