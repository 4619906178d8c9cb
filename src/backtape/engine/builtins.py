"""Built-in strategies and the ``StrategyFactory`` that names them (and loads user files).

=====================  ========================================================================
name                   rule
=====================  ========================================================================
sma_crossover          long all-in when SMA(fast) crosses above SMA(slow) and not already long;
                       flat when it crosses below (short all-in instead with ``allow_short``)
rsi_mean_reversion     long all-in when RSI(period) < lower; flat when RSI > exit
donchian_breakout      long when the close breaks the highest high of the previous ``entry``
                       bars; flat when it breaks the lowest low of the previous ``exit`` bars
momentum               each bar, hold (equal weight) the symbols whose return over the last
                       ``lookback`` bars exceeds ``threshold``; read through ``ctx.history``
equal_weight           on each ``rebalance`` step ("1mo", "2w", "1q", "1y"... or every N bars), target
                       ``1 / len(symbols)`` of equity in every symbol
momentum_rotation      on each ``rebalance`` step, hold the ``top_n`` symbols with the highest
                       return over ``lookback`` bars, ``1 / top_n`` of equity each (ties: symbol order)
=====================  ========================================================================

A cross is strict: ``a[-2] < b[-2]`` and ``a[-1] > b[-1]``. Entries go through ``ctx.enter``: a
signal in the direction already held is ignored, or closes and re-opens the position under
``repeat_signals="reenter"`` (the vector forms' kernel does the same).

Vector forms (``backtape.vector.form``): every built-in also has one, which reproduces ``on_bar``
exactly (same indicators over the same bars): ``vector_signals(bars)`` per symbol for the signal
rules, ``generate_signals(data)`` for ``momentum``, ``target_weights(data)`` for the portfolio rules,
so both engines give the same fills, trades and equity (tests/vector/test_portfolio_parity.py).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .. import indicators as ind
from ..errors import BacktapeError
from ..vector.portfolio import RebalanceSchedule
from .strategy import Context, Strategy


def _cross_signals(close: np.ndarray, fast: int, slow: int) -> np.ndarray:
    """+1 where SMA(fast) crosses above SMA(slow), -1 where below, 0 elsewhere (causal)."""
    f, s = ind.sma(close, fast), ind.sma(close, slow)
    return ind.crossed_above(f, s).astype(np.float64) - ind.crossed_below(f, s).astype(np.float64)


class SmaCrossover(Strategy):
    """Moving-average crossover, the field's reference strategy."""

    params: ClassVar[dict[str, Any]] = {"fast": 10, "slow": 50, "allow_short": False}
    fast: int
    slow: int
    allow_short: bool

    def __init__(self, portal: Any = None, **params: Any) -> None:
        super().__init__(portal, **params)
        if not 0 < self.fast < self.slow:
            raise ValueError(f"sma_crossover needs 0 < fast < slow, got fast={self.fast}, slow={self.slow}")
        self.warmup = int(self.slow)

    def initialize(self, ctx: Context) -> None:
        self.signals = [(s, ctx.indicator(_cross_signals, self.fast, self.slow, symbol=s,
                                          name=f"sma_cross({self.fast},{self.slow})")) for s in ctx.symbols]
        self.weight = 1.0 / len(self.signals)

    def on_bar(self, ctx: Context) -> None:
        weight = self.weight
        for symbol, sig in self.signals:
            v = sig[-1]
            if v == 0.0:
                continue
            if v > 0:
                ctx.enter(symbol, weight)
            elif self.allow_short:
                ctx.enter(symbol, -weight)
            elif ctx.position(symbol) > 0:
                ctx.close(symbol)

    def vector_signals(self, bars: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``simulate`` signals of this rule over one symbol's ``bars`` (arrays close, ...)."""
        f, s = ind.sma(bars["close"], self.fast), ind.sma(bars["close"], self.slow)
        up, down = ind.crossed_above(f, s), ind.crossed_below(f, s)
        shorts = {"short_entries": down, "short_exits": up} if self.allow_short else {}
        return {"entries": up, "exits": down, **shorts}


class RsiMeanReversion(Strategy):
    """Buy oversold, sell on recovery."""

    params: ClassVar[dict[str, Any]] = {"period": 14, "lower": 30.0, "exit": 50.0}
    period: int
    lower: float
    exit: float

    def __init__(self, portal: Any = None, **params: Any) -> None:
        super().__init__(portal, **params)
        self.warmup = int(self.period) + 1

    def initialize(self, ctx: Context) -> None:
        self.rsi = {s: ctx.indicator(ind.rsi, self.period, symbol=s, name=f"rsi({self.period})")
                    for s in ctx.symbols}

    def on_bar(self, ctx: Context) -> None:
        for symbol, rsi in self.rsi.items():
            value, held = rsi[-1], ctx.position(symbol)
            if value < self.lower:
                ctx.enter(symbol, 1.0 / len(self.rsi))
            elif held and value > self.exit:
                ctx.close(symbol)

    def vector_signals(self, bars: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``simulate`` signals of this rule over one symbol's ``bars`` (entries win when flat)."""
        value = ind.rsi(bars["close"], self.period)
        return {"entries": value < self.lower, "exits": value > self.exit}


def _prior_max(high: np.ndarray, n: int) -> np.ndarray:
    out = np.full_like(high, np.nan)
    out[1:] = ind.rolling_max(high, n)[:-1]
    return out


def _prior_min(low: np.ndarray, n: int) -> np.ndarray:
    out = np.full_like(low, np.nan)
    out[1:] = ind.rolling_min(low, n)[:-1]
    return out


class DonchianBreakout(Strategy):
    """Channel breakout: enter on a new ``entry``-bar high, leave on a new ``exit``-bar low."""

    params: ClassVar[dict[str, Any]] = {"entry": 20, "exit": 10}
    entry: int
    exit: int

    def __init__(self, portal: Any = None, **params: Any) -> None:
        super().__init__(portal, **params)
        self.warmup = int(max(self.entry, self.exit)) + 1

    def initialize(self, ctx: Context) -> None:
        self.upper = {s: ctx.indicator(_prior_max, self.entry, symbol=s, field="high", name="donchian_high")
                      for s in ctx.symbols}
        self.lower = {s: ctx.indicator(_prior_min, self.exit, symbol=s, field="low", name="donchian_low")
                      for s in ctx.symbols}

    def on_bar(self, ctx: Context) -> None:
        for symbol in ctx.symbols:
            close, held = ctx.spot(symbol), ctx.position(symbol)
            if close > self.upper[symbol][-1]:
                ctx.enter(symbol, 1.0 / len(ctx.symbols))
            elif held and close < self.lower[symbol][-1]:
                ctx.close(symbol)

    def vector_signals(self, bars: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``simulate`` signals of this rule over one symbol's ``bars`` (close, high, low)."""
        close = bars["close"]
        return {"entries": close > _prior_max(bars["high"], self.entry),
                "exits": close < _prior_min(bars["low"], self.exit)}


class Momentum(Strategy):
    """Time-series momentum over a sliding window read from the portal each bar (seed 004)."""

    params: ClassVar[dict[str, Any]] = {"lookback": 30, "threshold": 0.0}
    lookback: int
    threshold: float

    def __init__(self, portal: Any = None, **params: Any) -> None:
        super().__init__(portal, **params)
        self.warmup = int(self.lookback) + 1

    def on_bar(self, ctx: Context) -> None:
        window = ctx.history(ctx.symbols, self.lookback + 1, "close")
        ret = window[-1] / window[0] - 1.0
        winners = [s for s, r in zip(ctx.symbols, ret, strict=True) if r > self.threshold]
        weight = 1.0 / len(winners) if winners else 0.0
        for symbol in ctx.symbols:
            if symbol in winners:
                ctx.enter(symbol, weight)
            elif ctx.position(symbol):
                ctx.close(symbol)

    def vector_signals(self, bars: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``simulate`` signals of this rule for a single symbol: hold while it is a winner."""
        close, n = bars["close"], int(self.lookback)
        ret = np.full_like(close, np.nan)
        ret[n:] = close[n:] / close[:-n] - 1.0
        winner = ret > self.threshold
        return {"entries": winner, "exits": ~winner}

    def generate_signals(self, data: Any) -> dict[str, np.ndarray]:
        """Signals of this rule over every symbol: hold the winners, each at ``1 / winners``."""
        close, n = data.close, int(self.lookback)
        ret = np.full_like(close, np.nan)
        ret[n:] = close[n:] / close[:-n] - 1.0
        winner = ret > self.threshold
        count = winner.sum(axis=1, keepdims=True)
        size = np.where(count > 0, 1.0 / np.maximum(count, 1), 0.0) * np.ones_like(close)
        return {"entries": winner, "exits": ~winner, "size": size}


def _rate_of_change(close: np.ndarray, n: int) -> np.ndarray:
    """``close[i] / close[i - n] - 1`` (NaN for the first ``n`` bars)."""
    out = np.full_like(close, np.nan)
    out[n:] = close[n:] / close[:-n] - 1.0
    return out


def _top(values: np.ndarray, n: int) -> np.ndarray:
    """Mask of the ``n`` largest finite values along the last axis (ties: the earlier column)."""
    keyed = np.where(np.isfinite(values), -values, np.inf)
    order = np.argsort(keyed, axis=-1, kind="stable")[..., :n]
    mask = np.zeros(values.shape, dtype=np.bool_)
    np.put_along_axis(mask, order, True, axis=-1)
    return mask & np.isfinite(values)


class EqualWeight(Strategy):
    """Equal weights in every symbol, restored on each ``rebalance`` step."""

    params: ClassVar[dict[str, Any]] = {"rebalance": "1mo"}
    rebalance: str | int

    def __init__(self, portal: Any = None, **params: Any) -> None:
        super().__init__(portal, **params)
        RebalanceSchedule(self.rebalance)  # validates the schedule

    def initialize(self, ctx: Context) -> None:
        self.due = RebalanceSchedule(self.rebalance)

    def on_bar(self, ctx: Context) -> None:
        if self.due(ctx.now):
            weight = 1.0 / len(ctx.symbols)
            for symbol in ctx.symbols:
                ctx.order_target_percent(symbol, weight)

    def target_weights(self, data: Any) -> np.ndarray:
        """``1 / len(symbols)`` for every symbol on rebalancing steps, NaN (no order) elsewhere."""
        weights = np.full((data.n_steps, len(data.symbols)), np.nan)
        weights[data.rebalance(self.rebalance)] = 1.0 / len(data.symbols)
        return weights


class MomentumRotation(Strategy):
    """Cross-sectional momentum: the ``top_n`` best performers over ``lookback`` bars, equal weight
    (``1 / top_n`` each, or ``1 / len(symbols)`` when there are fewer symbols than ``top_n``)."""

    params: ClassVar[dict[str, Any]] = {"lookback": 126, "top_n": 10, "rebalance": "1mo"}
    lookback: int
    top_n: int
    rebalance: str | int

    def __init__(self, portal: Any = None, **params: Any) -> None:
        super().__init__(portal, **params)
        if int(self.lookback) < 1 or int(self.top_n) < 1:
            raise ValueError(f"momentum_rotation needs lookback >= 1 and top_n >= 1, got "
                             f"lookback={self.lookback}, top_n={self.top_n}")
        RebalanceSchedule(self.rebalance)
        self.warmup = int(self.lookback) + 1

    def initialize(self, ctx: Context) -> None:
        self.due = RebalanceSchedule(self.rebalance)
        self.roc = [ctx.indicator(_rate_of_change, int(self.lookback), symbol=s, name=f"roc({self.lookback})")
                    for s in ctx.symbols]

    def on_bar(self, ctx: Context) -> None:
        if not self.due(ctx.now):
            return
        chosen = _top(np.array([r[-1] for r in self.roc]), int(self.top_n))
        weight = 1.0 / min(int(self.top_n), len(ctx.symbols))
        for symbol, keep in zip(ctx.symbols, chosen, strict=True):
            if keep:
                ctx.order_target_percent(symbol, weight)
            elif ctx.position(symbol):
                ctx.order_target_percent(symbol, 0.0)

    def target_weights(self, data: Any) -> np.ndarray:
        """``1 / top_n`` for the chosen symbols and 0 for the others on rebalancing steps, else NaN."""
        n = int(self.lookback)
        roc = data.per_symbol({s: _rate_of_change(data.series[s]["close"], n) for s in data.symbols}, np.nan)
        due = data.rebalance(self.rebalance)
        weights = np.full(roc.shape, np.nan)
        weight = 1.0 / min(int(self.top_n), len(data.symbols))
        weights[due] = np.where(_top(roc[due], int(self.top_n)), weight, 0.0)
        return weights


class StrategyFactory:
    """Names to strategy classes: ``create(name, **params)``, ``list_available()``, ``register``.

    A name may also be ``path/to/file.py:ClassName`` to load a user strategy from a file.
    """

    _registry: ClassVar[dict[str, type[Strategy]]] = {
        "sma_crossover": SmaCrossover,
        "rsi_mean_reversion": RsiMeanReversion,
        "donchian_breakout": DonchianBreakout,
        "momentum": Momentum,
        "equal_weight": EqualWeight,
        "momentum_rotation": MomentumRotation,
    }

    @classmethod
    def register(cls, name: str, strategy: type[Strategy]) -> None:
        cls._registry[name] = strategy

    @classmethod
    def list_available(cls) -> list[str]:
        return sorted(cls._registry)

    @classmethod
    def get(cls, name: str) -> type[Strategy]:
        """The class for a registered name or a ``file.py:ClassName`` reference."""
        if ":" in name and name.split(":", 1)[0].endswith(".py"):
            return load_strategy_file(name)
        try:
            return cls._registry[name]
        except KeyError:
            raise BacktapeError(f"unknown strategy {name!r}; available: {', '.join(cls.list_available())} "
                                "or path/to/file.py:ClassName") from None

    @classmethod
    def create(cls, name: str, **params: Any) -> Strategy:
        return cls.get(name)(**params)


def load_strategy_file(reference: str) -> type[Strategy]:
    """Import ``ClassName`` from ``path/to/file.py`` (a ``Strategy`` subclass)."""
    cls = load_from_file(reference)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise BacktapeError(f"{reference.rpartition(':')[0]} has no Strategy subclass named "
                            f"{reference.rpartition(':')[2]!r}")
    return cls


def load_from_file(reference: str) -> Any:
    """The object ``Name`` of ``path/to/file.py:Name`` (the file imported as a fresh module)."""
    path_text, _, name = reference.rpartition(":")
    path = Path(path_text)
    if not path.is_file():
        raise BacktapeError(f"strategy file {path} does not exist")
    module_name = f"backtape_user_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise BacktapeError(f"cannot import strategy file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise BacktapeError(f"error importing {path}: {type(exc).__name__}: {exc}") from exc
    if not hasattr(module, name):
        raise BacktapeError(f"{path} has nothing named {name!r}")
    return getattr(module, name)


def sma_crossover(fast: int = 10, slow: int = 50, allow_short: bool = False) -> SmaCrossover:
    """The SMA crossover strategy (see the module table)."""
    return SmaCrossover(fast=fast, slow=slow, allow_short=allow_short)
