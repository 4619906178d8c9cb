"""One way to show numbers: percentages, counts, money, ratios, durations and sides, as text.

Every command (``backtest``, ``runs show/list/compare``, ``optimize``, ``walkforward``,
``montecarlo``), ``BacktestResult``'s summary, the reports and the dashboard (``backtape serve``)
format values through here, so a figure looks the same wherever it appears: returns as ``+48.01%``,
counts as ``7``, money as ``14,709.00``, ratios as ``1.14``, durations as ``63d 21h``, sides as
``long``/``short``; a missing or undefined value (``None``, NaN) is ``–``, never ``nan``. Light: no
polars, numpy or rich.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

#: shown for a value that is missing or undefined (no trades, no losses, ...)
DASH = "–"

#: how each metric is shown (unknown names are shown as plain numbers)
KINDS: dict[str, str] = {
    **dict.fromkeys(("total_return", "cagr", "avg_trade", "best_trade", "worst_trade", "buy_hold_return",
                     "oos_return", "is_cagr", "oos_cagr"), "signed_percent"),
    **dict.fromkeys(("volatility", "max_drawdown", "win_rate", "exposure", "drawdown"), "percent"),
    **dict.fromkeys(("sharpe", "sortino", "calmar", "profit_factor", "sqn", "turnover", "deflated_sharpe",
                     "pbo", "efficiency", "sharpe_ratio"), "ratio"),
    **dict.fromkeys(("final_equity", "expectancy", "open_pnl", "commission", "slippage", "cash", "pnl",
                     "equity"), "money"),
    **dict.fromkeys(("trades", "closed_trades", "open_trades", "rejections", "trades_count", "n_sets",
                     "orders_refused"),
                    "count"),
    **dict.fromkeys(("price", "entry_price", "exit_price", "limit_price", "stop_price", "reference_price"),
                    "price"),
    "max_drawdown_duration": "bars",
    **dict.fromkeys(("avg_trade_duration", "max_trade_duration", "max_drawdown_time", "duration_s"),
                    "duration"),
}

#: readable labels of the metrics, in the order summaries list them
LABELS: dict[str, str] = {
    "final_equity": "final equity", "total_return": "total return", "buy_hold_return": "buy & hold return",
    "cagr": "CAGR", "volatility": "volatility", "sharpe": "Sharpe", "sortino": "Sortino",
    "calmar": "Calmar", "max_drawdown": "max drawdown", "max_drawdown_duration": "max drawdown length",
    "max_drawdown_time": "max drawdown time", "exposure": "exposure", "turnover": "turnover (per year)",
    "trades": "trades", "closed_trades": "closed trades", "open_trades": "open trades",
    "open_pnl": "open P&L", "win_rate": "win rate", "profit_factor": "profit factor",
    "expectancy": "expectancy (per trade)", "sqn": "SQN", "avg_trade": "average trade",
    "best_trade": "best trade", "worst_trade": "worst trade", "avg_trade_duration": "average trade duration",
    "max_trade_duration": "max trade duration", "commission": "commission", "slippage": "slippage and spread",
    "orders_refused": "orders refused",
}  # fmt: skip


def missing(value: Any) -> bool:
    """True for ``None`` and NaN (the values shown as ``–``)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def percent(value: Any, *, signed: bool = False) -> str:
    """A fraction as a percentage with two decimals: ``0.4801`` -> ``48.01%`` (``+48.01%`` signed)."""
    if missing(value):
        return DASH
    return f"{float(value):+.2%}" if signed else f"{float(value):.2%}"


def count(value: Any) -> str:
    """A whole number with thousands separators: ``7.0`` -> ``7``."""
    if missing(value):
        return DASH
    return f"{round(float(value)):,}"


def money(value: Any) -> str:
    """Cash with two decimals and thousands separators: ``14709.0003`` -> ``14,709.00``."""
    if missing(value):
        return DASH
    return f"{float(value):,.2f}"


def ratio(value: Any) -> str:
    """A ratio with two decimals; infinite (no losses) as ``∞``."""
    if missing(value):
        return DASH
    v = float(value)
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    return f"{v:,.2f}"


def price(value: Any) -> str:
    """A price: two decimals from 1 up (``81.8286`` -> ``81.83``), four significant digits below."""
    if missing(value):
        return DASH
    v = float(value)
    return f"{v:,.2f}" if abs(v) >= 1 else f"{v:.4g}"


def duration(seconds: Any) -> str:
    """Seconds as the two largest units: ``5_520_000`` -> ``63d 21h``, ``5400`` -> ``1h 30m``."""
    if missing(seconds):
        return DASH
    total = round(float(seconds))
    if total == 0 and 0 < float(seconds) < 1:
        return f"{float(seconds) * 1000:.0f}ms"
    parts: list[str] = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        n, total = divmod(total, size)
        if n or (parts and len(parts) < 2):
            parts.append(f"{n}{unit}")
        if len(parts) == 2:
            break
    return " ".join(p for p in parts if not p.startswith("0")) or "0s"


def data_size(n: Any) -> str:
    """Bytes in a readable unit: ``1536`` -> ``1.5 KiB``."""
    if missing(n):
        return DASH
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def bars(value: Any) -> str:
    """A length in bars: ``145`` -> ``145 bars``."""
    if missing(value):
        return DASH
    n = round(float(value))
    return f"{n:,} bar" if n == 1 else f"{n:,} bars"


def side(value: Any) -> str:
    """A trade side as a word: ``1`` -> ``long``, ``-1`` -> ``short`` (text is kept)."""
    if missing(value):
        return DASH
    if isinstance(value, str):
        return value
    return "long" if value > 0 else "short" if value < 0 else "flat"


def order_side(quantity: Any) -> str:
    """An order or fill quantity's direction: positive -> ``buy``, negative -> ``sell``."""
    if missing(quantity):
        return DASH
    return "buy" if quantity > 0 else "sell" if quantity < 0 else DASH


def number(value: Any) -> str:
    """Any other value: whole numbers without decimals, others with up to four significant places."""
    if missing(value):
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if value.is_integer() and abs(value) < 1e15:
            return f"{value:,.0f}"
        return f"{value:,.4f}".rstrip("0").rstrip(".") if abs(value) >= 1 else f"{value:.4g}"
    return str(value)


_BY_KIND = {"signed_percent": lambda v: percent(v, signed=True), "percent": percent, "ratio": ratio,
            "money": money, "count": count, "price": price, "bars": bars, "duration": duration}


def metric(name: str, value: Any) -> str:
    """``value`` formatted as the metric (or column) ``name`` is shown everywhere."""
    if name in ("side",):
        return side(value)
    if name.startswith(("is_", "oos_")) and name not in KINDS:
        name = name.partition("_")[2]
    fmt = _BY_KIND.get(KINDS.get(name, ""))
    return fmt(value) if fmt is not None and not isinstance(value, str) else number(value)


def when(value: Any, dates: bool = False) -> str:
    """A time as ``2014-03-07 15:30`` (UTC, as stored), or only its date when ``dates`` (daily bars)."""
    if missing(value):
        return DASH
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d") if dates else value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def cell(column: str, value: Any, *, dates: bool = False) -> str:
    """A value of a result frame's ``column`` as every table shows it: times (``when``), sides as
    words, a trade's return as a signed percentage, sizes as plain numbers, the rest as the metric
    the column names (``metric``)."""
    if isinstance(value, dt.date):
        return when(value, dates)
    if column == "return":
        return metric("avg_trade", value)
    if column in ("size", "quantity"):
        return number(value)
    return metric(column, value)


def parameters(params: dict[str, Any] | None) -> str:
    """A parameter set as ``fast=10, slow=50`` (empty for none)."""
    return ", ".join(f"{k}={v}" for k, v in (params or {}).items())


def label(name: str) -> str:
    """The readable label of a metric (its name when it has none)."""
    return LABELS.get(name, name.replace("_", " "))


def ordered(*metrics: dict[str, Any]) -> list[str]:
    """The names of every metric of ``metrics``, the known ones in ``LABELS`` order, then the others
    in the order first seen."""
    seen = list(dict.fromkeys(n for m in metrics for n in m))
    return [n for n in LABELS if n in seen] + [n for n in seen if n not in LABELS]


def metric_rows(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """``(label, text)`` of every metric, the known ones in ``LABELS`` order, then the others."""
    return [(label(n), metric(n, metrics[n])) for n in ordered(metrics)]


def daily(frequency: str) -> bool:
    """True for bar sizes of a day or more (their times are shown as dates)."""
    from .timeframes import Timeframe

    return Timeframe.parse(frequency).unit in ("d", "w")
