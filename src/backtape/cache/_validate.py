"""Checks an upstream answer before it may enter the cache: schema, symbols, invariants, range.

Uses ``backtape.validation`` when it is installed; otherwise a compact set of the same rules
(nulls, NaN, impossible OHLC, duplicate bars, negative sizes, crossed quotes).
"""

from __future__ import annotations

import importlib

import polars as pl

from .._time import format_ns
from ..errors import DataValidationError
from ..schema import conform


def check_upstream(kind: str, df: pl.DataFrame, symbols: list[str], gap: tuple[int, int],
                   source: str) -> pl.DataFrame:
    """Canonical, validated rows of ``df`` inside ``gap``; raises ``DataValidationError`` otherwise.

    Rows outside ``gap`` are dropped (an upstream may answer more than asked; only the asked range
    is recorded as covered, so only its rows are kept).
    """
    df = conform(df, kind)  # type: ignore[arg-type]
    where = f"{source} {kind} [{format_ns(gap[0])}, {format_ns(gap[1])})"
    unknown = sorted(set(df.get_column("symbol").unique().to_list()) - set(symbols))
    if unknown:
        raise DataValidationError(f"{where}: upstream returned symbols that were not asked: {unknown[:5]}")
    _invariants(kind, df, where)
    ts = pl.col("ts").dt.epoch("ns")
    return df.filter((ts >= gap[0]) & (ts < gap[1]))


def _invariants(kind: str, df: pl.DataFrame, where: str) -> None:
    if df.height == 0:
        return
    try:
        validation = importlib.import_module("backtape.validation")
    except ImportError:
        validation = None
    validator = getattr(validation, f"validate_{kind}", None) if validation else None
    if validator is not None:
        try:
            validator(df, on_invalid="raise")
        except DataValidationError as exc:
            raise DataValidationError(f"{where}: {exc}", exc.violations) from exc
        return
    violations = df.with_row_index("row").filter(_bad_row(kind, df))
    if kind == "bars":
        dup = df.with_row_index("row").filter(pl.struct("symbol", "ts").is_duplicated())
        violations = pl.concat([violations, dup]).unique("row").sort("row")
    if violations.height:
        first = violations.row(0, named=True)
        records = [{"rule": "invariant", "symbol": r["symbol"], "ts": r["ts"], "row": r["row"]}
                   for r in violations.head(100).iter_rows(named=True)]
        raise DataValidationError(
            f"{where}: {violations.height} invalid row(s); first at row {first['row']} "
            f"symbol {first['symbol']} ts {first['ts']}", records)


def _bad_row(kind: str, df: pl.DataFrame) -> pl.Expr:
    bad = pl.col("symbol").is_null() | pl.col("ts").is_null()
    if kind == "bars":
        o, h, low, c = (pl.col(x) for x in ("open", "high", "low", "close"))
        prices = [o, h, low, c]
        bad = bad | pl.any_horizontal(*(p.is_null() | p.is_nan() for p in prices))
        bad = bad | (h < pl.max_horizontal(o, c, low)) | (low > pl.min_horizontal(o, c))
        bad = bad | (pl.col("volume") < 0) | pl.col("ts_end").is_null() | (pl.col("ts_end") <= pl.col("ts"))
    elif kind == "trades":
        bad = bad | pl.col("price").is_nan() | (pl.col("price") <= 0) | (pl.col("size") < 0)
    elif kind == "quotes":
        bad = bad | pl.col("bid").is_nan() | pl.col("ask").is_nan() | (pl.col("bid") > pl.col("ask")) \
            | (pl.col("bid_size") < 0) | (pl.col("ask_size") < 0)
    return bad.fill_null(True)
