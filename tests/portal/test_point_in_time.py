"""Future-perturbation invariance: rewriting anything after the clock changes nothing read at it."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtape._time import NS_PER_MINUTE, to_ns
from backtape.portal import DataPortal, DataRequirement
from backtape.schema import conform

SYMBOLS = ["A", "B"]
START, END = "2024-03-07", "2024-03-13"  # spans the 2024-03-10 US DST change
LOAD_FROM = to_ns("2024-03-08")


@pytest.fixture(scope="module")
def base_data(make_minute_bars):
    bars = make_minute_bars(SYMBOLS, START, END, seed=3, drop=0.05)
    actions = conform(pl.DataFrame({
        "symbol": ["A", "A", "B"],
        "ts": [to_ns("2024-03-11T13:30Z"), to_ns("2024-03-12T13:30Z"), to_ns("2024-03-11T13:30Z")],
        "action": ["split", "dividend", "dividend"],
        "value": [2.0, 0.5, 1.0],
    }).with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC"))), "actions")
    return bars, actions


def _perturb(bars: pl.DataFrame, actions: pl.DataFrame, t: int, seed: int):
    """Rewrite every bar not complete at ``t`` and every action after ``t``; drop some, add a split."""
    rng = np.random.default_rng(seed)
    future = bars["ts_end"].cast(pl.Int64).to_numpy() > t
    noise = rng.uniform(0.5, 2.0, bars.height)
    scale = np.where(future, noise, 1.0)
    changed = bars.with_columns(
        *(pl.col(c) * pl.Series(scale) for c in ("open", "high", "low", "close", "volume")))
    keep = ~future | (rng.random(bars.height) > 0.3)
    changed = changed.filter(pl.Series(keep))
    late = actions.filter(pl.col("ts").cast(pl.Int64) <= t)
    extra = pl.DataFrame({"symbol": ["B"], "ts": [t + NS_PER_MINUTE], "action": ["split"], "value": [3.0]})
    extra = extra.with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))
    return changed, conform(pl.concat([late, extra]), "actions")


def _observe(portal: DataPortal, t: int) -> list[object]:
    """Everything the portal answers at clock ``t`` (and at one earlier time), errors as their type."""
    out: list[object] = []

    def record(fn, *args, **kw):
        try:
            value = fn(*args, **kw)
        except Exception as exc:  # the type is part of the answer; the message may name future ends
            out.append(type(exc).__name__)
            return
        out.append(value.to_dicts() if isinstance(value, pl.DataFrame) else value)

    for dt in (t, t - 37 * NS_PER_MINUTE):
        for sym in SYMBOLS:
            for field in ("open", "high", "low", "close", "volume"):
                record(portal.get_spot_value, sym, field, dt)
            record(portal.get_last_traded_dt, sym, dt)
        record(portal.get_slice, dt)
        for freq, n in (("1min", 30), ("5min", 12), ("1h", 6), ("1d", 2), ("1w", 1)):
            for partial in (False, True):
                record(lambda *a, **k: portal.get_history_window(*a, **k).tolist(),
                       SYMBOLS, dt, n, freq, "close", partial=partial)
                record(lambda *a, **k: portal.get_history_window(*a, **k).tolist(),
                       "A", dt, n, freq, "volume", partial=partial)
    record(portal.get_corporate_actions)
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(minute=st.integers(0, 4 * 24 * 60), seed=st.integers(0, 2**31),
       mode=st.sampled_from(["raw", "split", "total_return"]))
def test_future_rewrites_change_nothing_at_the_clock(base_data, memory_source, minute, seed, mode) -> None:
    bars, actions = base_data
    t = LOAD_FROM + minute * NS_PER_MINUTE
    changed, changed_actions = _perturb(bars, actions, t, seed)
    answers = []
    for b, a in ((bars, actions), (changed, changed_actions)):
        portal = DataPortal(memory_source(b, actions=a), adjustment=mode)
        portal.load_data("2024-03-08", END, SYMBOLS, requirements=[DataRequirement("bars", "1d", 1)])
        portal.set_clock(t)
        answers.append(_observe(portal, t))
    assert _nan_safe(answers[0]) == _nan_safe(answers[1])


def _nan_safe(values: list[object]) -> str:
    return repr(values).replace("nan", "NaN")
