"""Fuzzed frames: any values, dtypes, missing or extra columns, junk timeframes.

``validate_bars`` must answer with a report or a ``BacktapeError``, ``aggregate`` with bars or a
``BacktapeError``; never a Polars, numpy or Python error from inside.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtape.aggregation import aggregate
from backtape.errors import BacktapeError
from backtape.validation import validate_bars

T0 = 1_704_205_800_000_000_000  # 2024-01-02T14:30Z
COLUMNS = ["symbol", "ts", "ts_end", "open", "high", "low", "close", "volume"]
PRICE = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none(), st.floats(-10, 1e4),
                  st.sampled_from([0.0, -1.0, 1e308, 5e-324]))
TIMEFRAMES = ["5min", "1h", "1d", "1w", "0min", "-5min", "abc", "", "1000000000min", "1mo", "3d", "1s"]
TIME = st.one_of(st.integers(-(2**63) + 1, 2**63 - 1), st.integers(T0 - 10**12, T0 + 10**14), st.none())


@st.composite
def hostile_frames(draw: st.DrawFn) -> pl.DataFrame:
    """Bars-shaped frames whose values, order, dtypes and columns are arbitrary."""
    n = draw(st.integers(0, 25))
    ts = draw(st.lists(TIME, min_size=n, max_size=n))
    data: dict[str, pl.Series] = {
        "symbol": pl.Series(draw(st.lists(st.sampled_from(["A", "B", "", None]), min_size=n, max_size=n)),
                            dtype=pl.String),
        "ts": pl.Series(ts, dtype=pl.Int64),
        "ts_end": pl.Series([None if t is None or abs(t) > 2**62 else t + draw(st.integers(-10**11, 10**12))
                             for t in ts], dtype=pl.Int64),
    }
    for name in COLUMNS[3:]:
        data[name] = pl.Series(draw(st.lists(PRICE, min_size=n, max_size=n)), dtype=pl.Float64)
    frame = pl.DataFrame(data)
    zone = draw(st.sampled_from(["UTC", "America/New_York", None, "int", "string"]))
    for col in ("ts", "ts_end"):
        if zone in ("UTC", "America/New_York", None):
            frame = frame.with_columns(pl.col(col).cast(pl.Datetime("ns", zone)))
        elif zone == "string":
            frame = frame.with_columns(pl.col(col).cast(pl.String))
    if draw(st.booleans()):
        frame = frame.drop(draw(st.lists(st.sampled_from(COLUMNS), max_size=3, unique=True)))
    if draw(st.integers(0, 4)) == 0:
        frame = frame.with_columns(pl.lit("x").alias(draw(st.sampled_from(["open", "extra", "volume"]))))
    return frame


def _quietly(call: Callable[..., object], *args: object, **kwargs: object) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return call(*args, **kwargs)
        except BacktapeError:
            return None


@settings(max_examples=120, deadline=None)
@given(hostile_frames(), st.sampled_from(["raise", "drop", "warn"]))
def test_validate_bars_reports_or_raises_a_backtape_error(frame: pl.DataFrame, on_invalid: str) -> None:
    _quietly(validate_bars, frame, on_invalid=on_invalid)


@settings(max_examples=80, deadline=None)
@given(hostile_frames(), st.one_of(st.sampled_from(TIMEFRAMES), st.text(max_size=8)),
       st.sampled_from([None, "24/7", "XNYS"]))
def test_aggregate_gives_bars_or_a_backtape_error(frame: pl.DataFrame, timeframe: str,
                                                  calendar: str | None) -> None:
    _quietly(aggregate, frame, timeframe, calendar)


def test_the_generator_reaches_valid_frames() -> None:
    """Not every fuzzed frame is refused: valid bars still aggregate (the checks above are not vacuous)."""
    ts = pl.Series([T0 + i * 60_000_000_000 for i in range(3)]).cast(pl.Datetime("ns", "UTC"))
    frame = pl.DataFrame({"symbol": ["A"] * 3, "ts": ts, "ts_end": ts + dt.timedelta(minutes=1),
                          "open": [1.0, 2.0, 3.0], "high": [2.0, 3.0, 4.0], "low": [0.5, 1.5, 2.5],
                          "close": [1.5, 2.5, 3.5], "volume": [1.0, 1.0, 1.0]})
    assert validate_bars(frame).ok
    out = aggregate(frame, "5min", "24/7")
    assert out.height == 1 and out["high"][0] == pytest.approx(4.0)
