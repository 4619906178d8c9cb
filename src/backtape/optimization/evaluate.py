"""Evaluate parameter sets on shared ``MarketData`` with either engine: metrics and return-block sums.

Per parameter set the result is one row of ``METRIC_NAMES`` and the sums of its per-bar returns
and squared returns over ``n_blocks`` equal blocks (all that CSCV/PBO needs; see ``stats``).

* ``engine="vector"``, several symbols, corporate actions, or only a portfolio vector form
  (``target_weights``/``generate_signals``, no ``vector_signals``): each set through the one-account
  portfolio kernel on raw prices with splits and dividends (``backtape.vector.portfolio``), exactly
  the event engine's account.
* ``engine="vector"``, one symbol otherwise: ``sma_crossover`` is swept by the streaming crossover kernel
  (each moving average computed once, from the first loaded bar: an SMA does not depend on where
  it starts, up to the last bit of its running sum); any other strategy with
  ``vector_signals(bars)`` (the built-ins) or a signal function ``f(bars, **params) ->
  {"entries": ..., "exits": ...}`` is simulated in chunks of columns, each set's indicators
  computed from the first bar the event engine would load for it (its own warm-up), so that
  recursive indicators (RSI, EMA) see exactly the event engine's values.
* ``engine="event"``: ``run_backtest`` per set on an in-memory source holding the loaded bars.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..analytics import METRIC_NAMES, N_METRICS
from ..errors import ConfigError
from ..options import TradingOptions
from .data import MarketData

ParamSet = dict[str, Any]
SignalFn = Callable[..., Mapping[str, np.ndarray]]
ENGINES = ("vector", "event")


def strategy_class(strategy: Any) -> type | None:
    """The ``Strategy`` class of a registered name, a ``file.py:Class`` reference or a class (else None)."""
    from ..engine import Strategy, StrategyFactory

    if isinstance(strategy, str):
        return StrategyFactory.get(strategy)
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        return strategy
    if callable(strategy):
        return None
    raise ConfigError(f"strategy must be a name, a Strategy class or a signal function, got {strategy!r}")


def strategy_label(strategy: Any) -> str:
    """A readable name for storage and reports."""
    if isinstance(strategy, str):
        return strategy
    return getattr(strategy, "__name__", type(strategy).__name__)


@dataclass(frozen=True)
class EvalSpec:
    """What to evaluate: the strategy reference (picklable), the engine and its trading options."""

    strategy: Any
    engine: str = "vector"
    options: TradingOptions = field(default_factory=TradingOptions)
    n_blocks: int = 16

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")

    def build(self, params: ParamSet) -> Any:
        """A strategy instance for ``params`` (its constructor validates them), or None for a function."""
        cls = strategy_class(self.strategy)
        return None if cls is None else cls(**params)

    def warmup(self, params: ParamSet) -> int:
        strat = self.build(params)
        return int(getattr(strat, "warmup", 0) or 0)


def choose_engine(strategy: Any, engine: str, options: TradingOptions, n_symbols: int) -> tuple[str, str]:
    """The engine that can run ``strategy`` as asked, and (when it is not ``engine``) the reason.

    ``"vector"`` becomes ``"event"`` for a strategy without a vector form (``backtape.vector.form``)
    or trading options only the event engine models; any number of symbols runs on either.
    """
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine != "vector":
        return engine, ""
    from ..vector.form import has_vector_form
    from ..vector.options import unsupported

    reasons = []
    cls = strategy_class(strategy)
    if cls is not None and not has_vector_form(cls):
        reasons.append(f"{cls.__name__} has no vector form (target_weights or generate_signals)")
    missing = unsupported(options)
    if missing:
        reasons.append(f"the options set {', '.join(missing)}")
    if reasons and cls is None:
        raise ConfigError(f"a signal function runs on the vector engine only, but {'; '.join(reasons)}")
    return ("event", "; ".join(reasons)) if reasons else ("vector", "")


class _Tally:
    """Reports ``progress(done, total)`` as sets finish (a no-op without a callback)."""

    def __init__(self, progress: Callable[[int, int], None] | None, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def step(self, n_sets: int, chunks: int = 10) -> int:
        """Sets per chunk: everything at once unless progress is reported."""
        return n_sets if self.progress is None else max(1, -(-n_sets // chunks))

    def __call__(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.done, self.total)


def evaluate(
    data: MarketData, spec: EvalSpec, sets: list[ParamSet], progress: Callable[[int, int], None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Metrics (sets x ``METRIC_NAMES``) and block sums (sets x 2 x ``n_blocks``) of ``sets``.

    ``progress(done, total)`` is called as chunks of sets finish.
    """
    if not sets:
        return np.empty((0, N_METRICS)), np.empty((0, 2, spec.n_blocks))
    return _EVALUATORS[spec.engine](data, spec, sets, _Tally(progress, len(sets)))


# vector engine -------------------------------------------------------------------------------------
def _single_column(data: MarketData, spec: EvalSpec) -> str | None:
    """The symbol when the single-column kernel reproduces the event engine: one symbol without
    corporate actions and a per-symbol signal form, ``vector_signals`` (else None: the portfolio
    kernel runs it)."""
    if len(data.symbols) != 1 or data.symbols[0] in data.adjusted:
        return None
    cls = strategy_class(spec.strategy)
    if cls is not None and not hasattr(cls, "vector_signals"):
        return None
    return data.symbols[0]


class _SignalFunction:
    """A signal function ``f(bars, **params)`` as a per-symbol vector form (``vector_signals``)."""

    def __init__(self, fn: SignalFn, params: ParamSet) -> None:
        self.fn, self.parameters, self.warmup = fn, params, 0

    def vector_signals(self, bars: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
        return self.fn(bars, **self.parameters)


def _portfolio_set(data: MarketData, spec: EvalSpec, params: ParamSet, cache: dict[int, Any],
                   full: bool = True) -> Any:
    """The portfolio kernel's run of one set (raw prices, splits, dividends): its ``BacktestResult``,
    or with ``full=False`` just (metrics, equity) without building frames."""
    from ..vector.backtest import build_result, check_options, say_warmup
    from ..vector.form import decisions, warmup_of
    from ..vector.portfolio import run, run_metrics, vector_data

    options = spec.options.for_symbols({sym: data.calendar for sym in data.symbols}, data.instruments)
    check_options(options)
    strat = spec.build(params)
    if strat is None:
        strat = _SignalFunction(spec.strategy, params)
    warmup = warmup_of(strat)
    if warmup not in cache:
        cache[warmup] = vector_data(data, warmup)
    vd = cache[warmup]
    say_warmup(strat, vd, warmup)
    out = run(vd, decisions(strat, vd), options)
    if not full:
        return run_metrics(vd, out), out.equity
    return build_result(strat, vd, out, options, data.source_name, 0.0)


def _portfolio(
    data: MarketData, spec: EvalSpec, sets: list[ParamSet], tick: _Tally
) -> tuple[np.ndarray, np.ndarray]:
    cache: dict[int, Any] = {}
    metrics = np.empty((len(sets), N_METRICS))
    blocks = np.empty((len(sets), 2, spec.n_blocks))
    for i, params in enumerate(sets):
        values, equity = _portfolio_set(data, spec, params, cache, full=False)
        metrics[i] = [values[name] for name in METRIC_NAMES]
        blocks[i] = equity_block_sums(equity, spec.n_blocks)
        tick(1)
    return metrics, blocks


def _vector_options(data: MarketData, spec: EvalSpec) -> dict[str, Any]:
    from ..vector.options import kernel_arguments, unsupported

    options = spec.options.for_symbols({sym: data.calendar for sym in data.symbols}, data.instruments)
    missing = unsupported(options)
    if missing:
        raise ConfigError(f"the vector engine cannot model {', '.join(missing)}; use engine='event'")
    return {"periods_per_year": data.periods_per_year, **kernel_arguments(options)}


def _vector(
    data: MarketData, spec: EvalSpec, sets: list[ParamSet], tick: _Tally
) -> tuple[np.ndarray, np.ndarray]:
    from ..engine.builtins import SmaCrossover

    sym = _single_column(data, spec)
    if sym is None:
        return _portfolio(data, spec, sets, tick)
    if strategy_class(spec.strategy) is SmaCrossover:
        return _sma_sweep(data, spec, sets, tick)
    first, last = data.span(sym)
    px = data.prices(sym)
    opts = _vector_options(data, spec)
    names = ("entries", "exits", "short_entries", "short_exits")
    metrics, blocks = [], []
    chunk = 64
    for lo in range(0, len(sets), chunk):
        part = sets[lo : lo + chunk]
        signals = [_set_signals(data, spec, sym, p, first, last, px) for p in part]
        present = [n for n in names if any(n in s for s in signals)]
        zeros = np.zeros(last - first, dtype=np.bool_)
        kwargs = {n: np.stack([s.get(n, zeros) for s in signals], axis=1) for n in present}
        res = _simulate(px, first, last, kwargs, spec.n_blocks, opts)
        metrics.append(res.metric_values)
        blocks.append(res.blocks)
        tick(len(part))
    return np.concatenate(metrics), np.concatenate(blocks)


def _simulate(
    px: Mapping[str, np.ndarray],
    first: int,
    last: int,
    signals: dict[str, np.ndarray],
    n_blocks: int,
    options: dict[str, Any],
    **extra: Any,
) -> Any:
    from ..vector import simulate

    return simulate(px["close"][first:last], open=px["open"][first:last], high=px["high"][first:last],
                    low=px["low"][first:last], **signals, blocks=n_blocks, **extra,
                    **{"trades": False, **options})  # fmt: skip


def _set_signals(
    data: MarketData,
    spec: EvalSpec,
    sym: str,
    params: ParamSet,
    first: int,
    last: int,
    px: Mapping[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """One set's signals over ``[first, last)``, its indicators started at its own warm-up row."""
    strat = spec.build(params)
    if strat is None:
        begin = 0
        out = spec.strategy({k: v[:last] for k, v in px.items()}, **params)
    else:
        if not hasattr(strat, "vector_signals"):
            raise ConfigError(f"{type(strat).__name__} has no vectorized form (vector_signals); "
                              "use engine='event'")  # fmt: skip
        begin = min(data.warmup_offset(sym, strat.warmup), first)
        out = strat.vector_signals({k: np.asarray(v[begin:last]) for k, v in px.items()})
    result = {}
    for name, arr in dict(out).items():
        a = np.asarray(arr, dtype=np.bool_)
        if a.shape != (last - begin,):
            raise ConfigError(f"signal {name!r} of {params} has shape {a.shape}, expected ({last - begin},)")
        result[name] = a[first - begin :]
    return result


def _sma_sweep(
    data: MarketData, spec: EvalSpec, sets: list[ParamSet], tick: _Tally
) -> tuple[np.ndarray, np.ndarray]:
    """sma_crossover sets through the streaming crossover kernel: each SMA line computed once."""
    from ..vector.sweep import _sma_rows, crossover_sweep

    sym = data.symbols[0]
    first, last = data.span(sym)
    px = data.prices(sym)
    opts = _vector_options(data, spec)
    built = [spec.build(p) for p in sets]
    grid = np.array([(s.fast, s.slow) for s in built], dtype=np.int64)
    windows, inverse = np.unique(grid, return_inverse=True)
    inverse = inverse.reshape(grid.shape)
    close = np.ascontiguousarray(px["close"][:last], dtype=np.float64)
    lines = np.ascontiguousarray(_sma_rows(close, windows)[:, first:])
    prices = {k: np.asarray(px[k][first:last]) for k in ("open", "high", "low")}
    shorts = np.array([bool(s.allow_short) for s in built])
    metrics = np.empty((len(sets), N_METRICS))
    blocks = np.empty((len(sets), 2, spec.n_blocks))
    step = tick.step(len(sets))
    for short in (False, True):
        idx = np.flatnonzero(shorts == short)
        for lo in range(0, len(idx), step):
            part = idx[lo : lo + step]
            metrics[part], blocks[part] = crossover_sweep(
                close[first:], lines, inverse[part], allow_short=short, blocks=spec.n_blocks, **prices, **opts
            )
            tick(len(part))
    return metrics, blocks


def best_vector_run(data: MarketData, spec: EvalSpec, params: ParamSet) -> Any:
    """The full run of one set, for the winner's statistics: a ``VectorResult`` (equity, trades)
    from the single-column kernel, or the portfolio kernel's ``BacktestResult``."""
    sym = _single_column(data, spec)
    if sym is None:
        return _portfolio_set(data, spec, params, {})
    first, last = data.span(sym)
    px = data.prices(sym)
    signals = _set_signals(data, spec, sym, params, first, last, px)
    return _simulate(px, first, last, signals, 0, {**_vector_options(data, spec), "trades": True})


# event engine --------------------------------------------------------------------------------------
def event_run(data: MarketData, spec: EvalSpec, params: ParamSet, source: Any = None) -> Any:
    """One event-engine ``BacktestResult`` of ``params`` on the loaded bars."""
    from ..engine import run_backtest

    src = source if source is not None else data.frame_source()
    return run_backtest(spec.build(params), data.symbols, data.start, data.end, data.frequency, source=src,
                        options=spec.options)  # fmt: skip


def _event(
    data: MarketData, spec: EvalSpec, sets: list[ParamSet], tick: _Tally
) -> tuple[np.ndarray, np.ndarray]:
    if strategy_class(spec.strategy) is None:
        raise ConfigError("the event engine needs a Strategy (name or class), not a signal function")
    src = data.frame_source()
    metrics = np.empty((len(sets), N_METRICS))
    blocks = np.empty((len(sets), 2, spec.n_blocks))
    for i, params in enumerate(sets):
        res = event_run(data, spec, params, src)
        metrics[i] = [res.metrics[name] for name in METRIC_NAMES]
        blocks[i] = equity_block_sums(res.equity["equity"].to_numpy(), spec.n_blocks)
        tick(1)
    return metrics, blocks


def equity_block_sums(equity: np.ndarray, n_blocks: int) -> np.ndarray:
    """(2 x n_blocks) sums of the returns ``E_i / E_{i-1} - 1`` (0 after a zero) and their squares."""
    from ..vector.engine import block_bounds

    eq = np.asarray(equity, dtype=np.float64)
    prev = eq[:-1]
    safe = np.where(prev > 0, prev, 1.0)
    r = np.where(prev > 0, eq[1:] / safe - 1.0, 0.0)
    starts = block_bounds(eq.shape[0], n_blocks)[:-1]
    return np.stack([np.add.reduceat(r, starts), np.add.reduceat(r * r, starts)])


_EVALUATORS = {"vector": _vector, "event": _event}
