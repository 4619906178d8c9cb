"""One file normalised: raw table -> canonical rows, corporate actions, bar size and quality report.

This is the one pipeline every file goes through: read (``reading``), map columns (``layout``) and
times (``timestamps``), take out corporate actions (``actions``), then screen (``screen``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from ..._paths import expand_path
from ...errors import DataFormatError
from ...schema import SCHEMAS, conform
from ...timeframes import Timeframe
from ...validation import QualityReport
from .actions import actions_of, restore_raw
from .layout import (
    NUMERIC,
    REQUIRED,
    ROLES_BY_KIND,
    extras,
    file_symbol,
    first_bad,
    guess_kind,
    resolve_roles,
    to_float,
    where,
)
from .options import DataKind, FileOptions
from .reading import is_parquet, read_csv_raw, read_parquet_raw
from .screen import Origin, screen
from .timestamps import KEPT_ROW, bar_times, naive_zone, parse_ts, to_utc


@dataclass
class ParsedFile:
    """One file normalised: its kind, canonical rows (plus extras), actions, bar size and quality."""

    path: Path
    kind: DataKind
    data: pl.DataFrame
    actions: pl.DataFrame
    frequency: Timeframe | None
    report: QualityReport


def parse_file(path: str | Path, opts: FileOptions | None = None) -> ParsedFile:
    """Read and normalise one CSV/gzip-CSV/Parquet file (``~`` and ``$VARS`` in ``path`` expanded)."""
    path = expand_path(path)
    opts = opts or FileOptions()
    if is_parquet(path):
        return parse_frame(read_parquet_raw(path), path, opts)
    raw, first_line, defaults = read_csv_raw(path, opts)
    return parse_frame(raw, path, opts, first_line=first_line, defaults=defaults)


def _timestamps(df: pl.DataFrame, roles: dict[str, str], path: Path) -> tuple[str, pl.Series]:
    """Name and raw values of the timestamp: one column, or a date and a time column joined."""
    if "ts" in roles:
        return roles["ts"], df.get_column(roles["ts"])
    if "date" in roles and "time" in roles:
        joined = pl.concat_str([pl.col(roles["date"]).cast(pl.String), pl.col(roles["time"]).cast(pl.String)],
                               separator=" ")
        return f"{roles['date']}+{roles['time']}", df.select(joined).to_series()
    raise DataFormatError(f"{path}: no timestamp column; expected one of date, datetime, timestamp "
                          f"(got {', '.join(df.columns)}); pass ts_column=...")


def _symbols(df: pl.DataFrame, roles: dict[str, str], path: Path, opts: FileOptions,
             first_line: int) -> pl.Series:
    """Symbol of each row: the option, else the symbol column, else the file name."""
    if opts.symbol is not None:
        return pl.Series("symbol", [opts.symbol] * df.height, pl.String)
    if "symbol" in roles:
        symbol = df.get_column(roles["symbol"]).cast(pl.String).alias("symbol")
        bad = first_bad(symbol.is_null() | (symbol == ""))
        if bad is not None:
            raise DataFormatError(f"{where(path, roles['symbol'], bad, first_line)}: missing symbol")
        return symbol
    return pl.Series("symbol", [file_symbol(path, opts)] * df.height, pl.String)


def _check_required(df: pl.DataFrame, roles: dict[str, str], kind: DataKind, path: Path) -> None:
    absent = [r for r in REQUIRED[kind] if r not in roles]
    if kind == "trades" and "size" not in roles:
        absent.append("size")
    if absent:
        raise DataFormatError(f"{path}: missing column(s) {', '.join(absent)} for {kind}; "
                              f"got {', '.join(df.columns)}")


def _values(df: pl.DataFrame, roles: dict[str, str], kind: DataKind, path: Path,
            first_line: int, opts: FileOptions) -> dict[str, pl.Series]:
    """The canonical value columns of ``kind`` that the file has, typed (a bar file without volume
    gets a null volume; a quote file without sizes null sizes).

    A missing required value (a truncated row) stops ``on_invalid="raise"`` here, naming its line;
    with ``"drop"``/``"warn"`` it goes on as null so that screening reports (or drops) every one.
    """
    required = REQUIRED[kind] if opts.on_invalid == "raise" else ()
    cols: dict[str, pl.Series] = {}
    for role in ROLES_BY_KIND[kind]:
        if role not in roles:
            continue
        src = roles[role]
        if role in NUMERIC:
            cols[role] = to_float(df, src, path, first_line,
                                  required=role in required or (role == "size" and bool(required)))
        elif role == "transactions":
            cols[role] = to_float(df, src, path, first_line, required=False).cast(pl.Int64)
        else:
            cols[role] = df.get_column(src).cast(pl.String)
    if kind == "bars":  # FX and index files often have no volume: null, not zero
        cols.setdefault("volume", pl.Series("volume", [None] * df.height, pl.Float64))
    if kind == "quotes":
        for side in ("bid_size", "ask_size"):
            cols.setdefault(side, pl.Series(side, [None] * df.height, pl.Float64))
    return cols


def parse_frame(df: pl.DataFrame, path: Path, opts: FileOptions, *, first_line: int = 0,
                defaults: Mapping[str, Any] | None = None) -> ParsedFile:
    """Normalise one raw table (strings or typed) into canonical rows, actions and bar size."""
    defaults = defaults or {}
    roles = resolve_roles(df.columns, opts)
    kind: DataKind = opts.kind or defaults.get("kind") or guess_kind(roles, path)
    timezone = opts.timezone or defaults.get("timezone")
    ts_col, raw_ts = _timestamps(df, roles, path)
    parsed_ts = parse_ts(raw_ts, ts_col, path, first_line, opts, opts.ts_format or defaults.get("ts_format"))
    _check_required(df, roles, kind, path)
    cols = {"symbol": _symbols(df, roles, path, opts, first_line)}
    cols.update(_values(df, roles, kind, path, first_line, opts))
    frequency: Timeframe | None = None
    if kind == "bars":
        cols, frequency = bar_times(cols, parsed_ts, path, opts, timezone, first_line, ts_col)
    else:
        cols["ts"] = to_utc(parsed_ts, path, naive_zone(timezone, opts.calendar, ts_col))
    out = pl.DataFrame(cols)
    actions = actions_of(out)
    if kind == "bars" and opts.adjusted == "splits":
        out, actions = restore_raw(out, actions)
    kept_rows = out.get_column(KEPT_ROW) if KEPT_ROW in out.columns else None
    extra = extras(df, set(roles.values()), set(SCHEMAS[kind])) if opts.keep_extra else []
    if kept_rows is not None:
        extra = [s.gather(kept_rows) for s in extra]
    data = conform(out, kind, sort=False)
    if extra:
        data = data.with_columns(extra)
    data, report = screen(data, kind, Origin(path, first_line, kept_rows), opts.on_invalid, opts.calendar)
    return ParsedFile(path, kind, data, actions, frequency, report)
