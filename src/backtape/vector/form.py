"""The vector form of a strategy: how the vector engine (and the optimizer) runs it without ``on_bar``.

A strategy class has a vector form when it defines one of these methods, each reading a
``VectorData`` (``data.close``, ``data["high"]``: steps x symbols, adjusted as of the end, NaN where a
symbol has no bar; ``data.symbols``; ``data.ts``; ``data.rebalance("1mo")``):

* ``target_weights(data)`` -> steps x symbols: the weight of equity each symbol should hold, applied
  as ``ctx.order_target_percent`` at that step (NaN: no order);
* ``generate_signals(data)`` -> ``{"entries", "exits", "short_entries", "short_exits"}`` (steps x
  symbols, booleans) and optionally ``"size"`` (a weight, scalar or steps x symbols; default
  ``1 / len(symbols)``): an entry targets ``size`` when not already on that side, an exit goes flat;
* ``vector_signals(bars)`` (the single-symbol built-ins): the same signals for one symbol's own bars.

It reads ``warmup`` (or ``required_history``) bars before the start like the event form and declares
``params``. Decisions at steps before ``data.ready_row`` (every symbol has its warm-up there; the
event engine first calls ``on_bar`` then) are ignored. ``check_vector_form`` runs both forms and
says where they differ; call it in your tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._time import format_ns, to_ns
from ..errors import BacktapeError, ConfigError
from . import _portfolio_kernel as pk
from .portfolio import Decisions, VectorData

_SIGNALS = ("entries", "exits", "short_entries", "short_exits")
_METHODS = ("target_weights", "generate_signals", "vector_signals")


class VectorFormMismatch(BacktapeError):
    """A strategy's vector form trades differently from its event form (``check_vector_form``)."""


def has_vector_form(strategy: Any) -> bool:
    """Whether a strategy (class or instance) defines one of the vector-form methods."""
    return any(callable(getattr(strategy, m, None)) for m in _METHODS)


def warmup_of(strategy: Any) -> int:
    """Bars of history the strategy reads before its first decision (``warmup`` or ``required_history``)."""
    return int(max(getattr(strategy, "warmup", 0) or 0, getattr(strategy, "required_history", 0) or 0))


def decisions(strategy: Any, data: VectorData) -> Decisions:
    """The ``Decisions`` of ``strategy``'s vector form over ``data`` (see the module doc)."""
    shape = (data.n_steps, len(data.symbols))
    name = type(strategy).__name__
    if callable(getattr(strategy, "target_weights", None)):
        w = _array(_call(strategy, "target_weights", data), np.float64, f"{name}.target_weights")
        if w.shape != shape:
            raise ConfigError(f"{name}.target_weights returned shape {w.shape}, expected {shape} "
                              "(steps x symbols)")
        bad = np.argwhere(np.isinf(w))
        if bad.size:
            k, j = (int(x) for x in bad[0])
            raise ConfigError(f"{name}.target_weights: weight {w[k, j]} for {data.symbols[j]} at step {k} "
                              f"({format_ns(int(data.ts[k]))}); weights must be finite or NaN (no order)")
        return Decisions(pk.MODE_TARGETS, targets=w)
    if callable(getattr(strategy, "generate_signals", None)):
        returned = _call(strategy, "generate_signals", data)
        if not isinstance(returned, Mapping):
            raise ConfigError(f"{name}.generate_signals must return a dict of steps x symbols arrays "
                              f"({', '.join(_SIGNALS)}, optionally size), got {type(returned).__name__}")
        out = dict(returned)
        size = out.pop("size", None)
        signals = {}
        for key, arr in out.items():
            if key not in _SIGNALS:
                raise ConfigError(f"{name}.generate_signals returned {key!r}; expected {', '.join(_SIGNALS)}"
                                  " or size")
            a = _signal(arr, f"{name}.generate_signals: {key}")
            if a.shape != shape:
                raise ConfigError(f"{name}.generate_signals: {key} has shape {a.shape}, expected {shape}")
            signals[key] = a
        sz = None if size is None else _array(size, np.float64, f"{name}.generate_signals: size")
        if sz is not None and not (np.isfinite(sz).all() and (sz >= 0).all()):
            raise ConfigError(f"{name}.generate_signals: size must be finite weights >= 0 (a fraction of "
                              "equity; the signal gives the side)")
        if sz is not None and sz.shape not in ((), shape):
            raise ConfigError(f"{name}.generate_signals: size has shape {sz.shape}, expected one number "
                              f"or {shape} (steps x symbols)")
        return Decisions(pk.MODE_SIGNALS, signals=signals, size=sz)
    if callable(getattr(strategy, "vector_signals", None)):
        per: dict[str, dict[str, np.ndarray]] = {k: {} for k in _SIGNALS}
        for sym in data.symbols:
            bars = data.series[sym]
            out = _call(strategy, "vector_signals", bars)
            for key in _SIGNALS:
                per[key][sym] = np.asarray(out[key], dtype=np.bool_) if key in out else \
                    np.zeros(len(bars["ts"]), dtype=np.bool_)  # fmt: skip
        signals = {k: data.per_symbol(v, False) for k, v in per.items()}
        return Decisions(pk.MODE_SIGNALS, signals=signals)
    raise ConfigError(f"{name} has no vector form: define target_weights(data) or generate_signals(data) "
                      "(see backtape.vector.form), or use engine='event'")


def _array(value: Any, dtype: Any, what: str) -> np.ndarray:
    """``value`` as a numpy array of ``dtype``, or a ``ConfigError`` naming ``what`` returned it."""
    try:
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} must be numbers (a numpy array of steps x symbols), got "
                          f"{type(value).__name__}: {exc}") from None


def _signal(value: Any, what: str) -> np.ndarray:
    """A boolean signal array; NaN (which numpy would read as True) or other non-0/1 numbers are a
    ``ConfigError`` (fill the gaps: ``np.nan_to_num(x) > 0``)."""
    raw = np.asarray(value)
    if raw.dtype != np.bool_:
        numbers = _array(raw, np.float64, what)
        if not np.isin(numbers, (0.0, 1.0)).all():
            raise ConfigError(f"{what} must be True/False (or 0/1), got values such as "
                              f"{float(numbers[~np.isin(numbers, (0.0, 1.0))].flat[0])}; NaN is not False: "
                              "fill it first, e.g. np.nan_to_num(x) > 0")
    return raw.astype(np.bool_)


def _call(strategy: Any, method: str, data: Any) -> Any:
    """``strategy.method(data)``; an exception raised in the strategy's own code becomes a
    ``StrategyError`` naming its file and line, as one raised in ``on_bar`` does."""
    from ..engine._user_code import strategy_error

    try:
        return getattr(strategy, method)(data)
    except Exception as exc:
        error = strategy_error(exc, strategy, None)
        if error is None:
            raise
        raise error from exc


def check_vector_form(strategy: Any, symbols: Sequence[str] | str, start: Any, end: Any,
                      frequency: str = "1d", *, source: Any = "sample", rtol: float = 1e-9,
                      **options: Any) -> tuple[Any, Any]:
    """Run ``strategy`` on both engines and raise ``VectorFormMismatch`` at the first difference.

    Compares every fill (symbol, time, quantity, price, commission), every refused order (symbol,
    time, requested quantity) and the equity at every step to ``rtol`` relative. Returns the (event,
    vector) results. Use it in your strategy's tests::

        from backtape import check_vector_form
        check_vector_form(MyStrategy(lookback=20), ["KO", "IBM"], "2015-01-01", "2020-01-01")
    """
    from ..engine.run import build_strategy, run_backtest

    results = []
    for engine in ("event", "vector"):
        strat = build_strategy(strategy, None) if not isinstance(strategy, str) else strategy
        if not isinstance(strat, str):
            strat = type(strat)(**strat.parameters)
        results.append(run_backtest(strat, symbols, start, end, frequency, source=source, engine=engine,
                                    **options))
    event, vector = results
    ef, vf = event.fills, vector.fills
    if ef.height != vf.height:
        raise VectorFormMismatch(f"the event form made {ef.height} fills, the vector form {vf.height}; "
                                 f"first difference: {_first_fill_difference(ef, vf, rtol)}")
    diff = _first_fill_difference(ef, vf, rtol)
    if diff:
        raise VectorFormMismatch(f"fills differ: {diff}")
    diff = _first_refusal_difference(event.rejections, vector.rejections, rtol)
    if diff:
        raise VectorFormMismatch(f"refused orders differ: {diff}")
    ee, ve = event.equity["equity"].to_numpy(), vector.equity["equity"].to_numpy()
    if ee.shape != ve.shape:
        raise VectorFormMismatch(f"the event run has {len(ee)} steps, the vector run {len(ve)}")
    bad = np.flatnonzero(~np.isclose(ee, ve, rtol=rtol, atol=0.0))
    if bad.size:
        i = int(bad[0])
        raise VectorFormMismatch(f"equity differs first at step {i} ({_time(event.equity['ts'][i])}): "
                                 f"event {ee[i]!r}, vector {ve[i]!r}")
    return event, vector


def _time(value: Any) -> str:
    return format_ns(to_ns(value))


def _shown(row: dict[str, Any], keys: tuple[str, ...]) -> str:
    """``row``'s ``keys`` as ``(symbol, ISO time, numbers...)``, not datetime reprs."""
    return "(" + ", ".join(_time(row[c]) if c == "ts" else f"{row[c]:.10g}" if isinstance(row[c], float)
                           else str(row[c]) for c in keys) + ")"


def _first_fill_difference(ef: Any, vf: Any, rtol: float) -> str:
    """The first fill that differs between two fills tables, described, or ''."""
    for k in range(min(ef.height, vf.height)):
        a, b = ef.row(k, named=True), vf.row(k, named=True)
        same = a["symbol"] == b["symbol"] and a["ts"] == b["ts"] and all(
            np.isclose(a[c], b[c], rtol=rtol, atol=1e-12) for c in ("quantity", "price", "commission"))
        if not same:
            keys = ("symbol", "ts", "quantity", "price", "commission")
            return f"fill {k}: event {_shown(a, keys)}, vector {_shown(b, keys)}"
    return "" if ef.height == vf.height else f"fill {min(ef.height, vf.height)} exists in one engine only"


def _first_refusal_difference(er: Any, vr: Any, rtol: float) -> str:
    """The first refused order that differs between two ``rejections`` tables, described, or ''."""
    keys = ("symbol", "ts", "requested")
    for k in range(max(er.height, vr.height)):
        if k >= min(er.height, vr.height):
            side, row = ("event", er) if er.height > vr.height else ("vector", vr)
            only = row.row(k, named=True)
            return f"only the {side} engine refused {_shown(only, keys)} ({only['reason']})"
        a, b = er.row(k, named=True), vr.row(k, named=True)
        if a["symbol"] != b["symbol"] or a["ts"] != b["ts"] or not np.isclose(a["requested"], b["requested"],
                                                                              rtol=rtol, atol=1e-12):
            return f"refusal {k}: event {_shown(a, keys)}, vector {_shown(b, keys)}"
    return ""
