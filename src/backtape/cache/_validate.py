"""Checks an upstream answer before it may enter the cache: schema, symbols, invariants, range."""

from __future__ import annotations

import polars as pl

from .._time import format_ns
from ..errors import DataValidationError
from ..schema import Kind, conform
from ..validation import VIOLATION_SCHEMA, OnInvalid, validate_bars, validate_quotes, validate_trades

_VALIDATORS = {"bars": validate_bars, "trades": validate_trades, "quotes": validate_quotes}


def check_upstream(kind: Kind, df: pl.DataFrame, symbols: list[str], gap: tuple[int, int],
                   source: str, on_invalid: OnInvalid = "raise") -> tuple[pl.DataFrame, pl.DataFrame]:
    """Canonical, validated rows of ``df`` inside ``gap``, and the violations that were dropped.

    ``on_invalid="raise"`` raises ``DataValidationError`` on any broken rule; ``"drop"`` removes the
    offending rows and returns them described in the second frame (rule, symbol, ts, row, detail).
    Rows outside ``gap`` are dropped (an upstream may answer more than asked; only the asked range
    is recorded as covered, so only its rows are kept).
    """
    where = f"{source} {kind} [{format_ns(gap[0])}, {format_ns(gap[1])})"
    df = conform(df, kind)
    unknown = sorted(set(df.get_column("symbol").unique().to_list()) - set(symbols))
    if unknown:
        raise DataValidationError(f"{where}: upstream returned symbols that were not asked: {unknown[:5]}")
    validator = _VALIDATORS.get(kind)
    violations = pl.DataFrame(schema=VIOLATION_SCHEMA)
    if validator is not None and df.height:
        try:
            report = validator(df, on_invalid=on_invalid)
        except DataValidationError as exc:
            raise DataValidationError(f"{where}: {exc}", exc.violations) from exc
        df, violations = report.data, report.violations
    ts = pl.col("ts").dt.epoch("ns")
    return df.filter((ts >= gap[0]) & (ts < gap[1])), violations
