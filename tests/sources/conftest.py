"""Shared fixtures for the source tests: paths to data files and a canonical-frame checker."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from backtape.schema import SCHEMAS

DATA = Path(__file__).parents[1] / "data"


def _check(df: pl.DataFrame, kind: str) -> None:
    """Canonical schema first, sorted by (symbol, ts), sane values; uses backtape.validation if present."""
    schema = SCHEMAS[kind]
    assert list(df.schema.items())[: len(schema)] == list(schema.items())
    assert df.height > 0
    assert df["ts"].null_count() == 0
    assert df.select((pl.col("symbol").cast(pl.String) + "").is_sorted()).item() or \
        df["symbol"].n_unique() == 1 or df["symbol"].is_sorted()
    assert df.group_by("symbol").agg(pl.col("ts").is_sorted().alias("ok"))["ok"].all()
    if importlib.util.find_spec("backtape.validation") is not None:
        from backtape import validation

        fn = {"bars": validation.validate_bars, "trades": validation.validate_trades,
              "quotes": validation.validate_quotes}[kind]
        fn(df.select(schema.names()), on_invalid="raise")
        return
    if kind == "bars":
        assert df.select(
            (pl.col("high") >= pl.max_horizontal("open", "close")).all()
            & (pl.col("low") <= pl.min_horizontal("open", "close")).all()
            & (pl.col("low") > 0).all()
            & (pl.col("volume") >= 0).all()
            & (pl.col("ts_end") > pl.col("ts")).all()
        ).item()
        assert df.select(pl.struct("symbol", "ts").is_unique().all()).item()
    elif kind == "trades":
        assert df.select(((pl.col("price") > 0) & (pl.col("size") > 0)).all()).item()
    else:
        assert df.select(((pl.col("bid") > 0) & (pl.col("bid") <= pl.col("ask"))).all()).item()


@pytest.fixture
def check_frame() -> Callable[[pl.DataFrame, str], None]:
    return _check


@pytest.fixture
def data_dir() -> Path:
    return DATA
