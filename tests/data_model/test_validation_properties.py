"""Property tests: generated valid bars pass; one injected violation is found at its row and symbol."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from backtape.schema import TS
from backtape.validation import validate_bars

NS_MIN = 60_000_000_000
T0 = 1_704_205_800_000_000_000  # 2024-01-02T14:30Z


@st.composite
def valid_bars(draw: st.DrawFn) -> pl.DataFrame:
    """Sorted, unique, internally consistent bars for 1-3 symbols with gaps between minutes."""
    frames = []
    for k in range(draw(st.integers(1, 3))):
        n = draw(st.integers(1, 25))
        steps = np.array(draw(st.lists(st.integers(1, 5), min_size=n, max_size=n)), dtype=np.int64)
        ts = T0 + np.cumsum(steps) * NS_MIN
        price = st.floats(1.0, 1000.0, allow_nan=False)
        o = np.array(draw(st.lists(price, min_size=n, max_size=n)))
        c = np.array(draw(st.lists(price, min_size=n, max_size=n)))
        up = np.array(draw(st.lists(st.floats(0, 5), min_size=n, max_size=n)))
        vol = np.array(draw(st.lists(st.floats(0, 1e6), min_size=n, max_size=n)))
        frames.append(pl.DataFrame({
            "symbol": f"S{k}", "ts": ts, "ts_end": ts + NS_MIN, "open": o,
            "high": np.maximum(o, c) + up, "low": np.minimum(o, c) * 0.99, "close": c, "volume": vol,
        }))
    return pl.concat(frames).with_columns(pl.col("ts", "ts_end").cast(TS))


@settings(max_examples=60, deadline=None)
@given(valid_bars())
def test_valid_bars_pass(df: pl.DataFrame) -> None:
    report = validate_bars(df)
    assert report.ok and report.score == 1.0 and report.data is df


def _inject(df: pl.DataFrame, rule: str, row: int) -> pl.DataFrame:
    """``df`` with row ``row`` changed so that it breaks ``rule``."""
    at = pl.int_range(pl.len()) == row
    changes = {
        "high_below_low": {"high": pl.col("low") * 0.5},
        "high_below_open_close": {"high": pl.min_horizontal("open", "close") * 0.999,
                                  "low": pl.min_horizontal("open", "close") * 0.9},
        "low_above_open_close": {"low": pl.max_horizontal("open", "close") * 1.001,
                                 "high": pl.max_horizontal("open", "close") * 1.1},
        "non_positive_price": {"low": pl.lit(0.0)},
        "negative_volume": {"volume": -pl.col("volume") - 1.0},
        "missing_value": {"close": pl.lit(float("nan"))},
        "ts_end_not_after_ts": {"ts_end": pl.col("ts")},
        "duplicate": {"ts": pl.col("ts").shift(1), "ts_end": pl.col("ts_end").shift(1)},
    }[rule]
    return df.with_columns(
        **{name: pl.when(at).then(expr).otherwise(pl.col(name)) for name, expr in changes.items()}
    )


RULES = ["high_below_low", "high_below_open_close", "low_above_open_close", "non_positive_price",
         "negative_volume", "missing_value", "ts_end_not_after_ts", "duplicate"]


@settings(max_examples=120, deadline=None)
@given(valid_bars(), st.sampled_from(RULES), st.data())
def test_one_injected_violation_is_found(df: pl.DataFrame, rule: str, data: st.DataObject) -> None:
    symbols = df.get_column("symbol")
    if rule == "duplicate":  # needs a previous row of the same symbol
        candidates = [i for i in range(1, df.height) if symbols[i] == symbols[i - 1]]
    else:
        candidates = list(range(df.height))
    if not candidates:
        return
    row = data.draw(st.sampled_from(candidates))
    report = validate_bars(_inject(df, rule, row), on_invalid="drop")
    found = report.violations.filter(pl.col("rule") == rule)
    assert found.get_column("row").to_list() == [row]
    assert found.get_column("symbol").to_list() == [symbols[row]]
    assert set(report.violations.get_column("row")) == {row}  # nothing else is blamed
    assert report.data.height == df.height - 1
    assert validate_bars(report.data).ok
