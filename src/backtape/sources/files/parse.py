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
from .reading import is_parquet, read_csv_chunks, read_parquet_raw
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
    """Read and normalise one CSV/gzip-CSV/Parquet file (``~`` and ``$VARS`` in ``path`` expanded).

    A CSV is typed block by block as it is read (``reading.read_csv_chunks``), so its text and
    string table never exist whole: memory is the typed rows plus a few blocks.
    """
    path = expand_path(path)
    opts = opts or FileOptions()
    if is_parquet(path):
        return parse_frame(read_parquet_raw(path), path, opts)
    csv = read_csv_chunks(path, opts)
    layout = _Layout.of(csv.names, path, opts, csv.defaults)
    typed, rows = [], 0
    for table in csv.tables:
        typed.append(layout.typed(table, csv.first_line + rows))
        rows += table.height
    return layout.finish(typed, csv.first_line)


def parse_frame(df: pl.DataFrame, path: Path, opts: FileOptions, *, first_line: int = 0,
                defaults: Mapping[str, Any] | None = None) -> ParsedFile:
    """Normalise one raw table (strings or typed) into canonical rows, actions and bar size."""
    layout = _Layout.of(df.columns, path, opts, defaults or {})
    return layout.finish([layout.typed(df, first_line)], first_line)


#: column of typed rows holding the parsed (naive or aware) timestamp
_PARSED_TS = "__backtape_ts"


@dataclass(frozen=True)
class _Layout:
    """How a file's columns map to canonical rows: decided once from the header, applied per block."""

    path: Path
    opts: FileOptions
    roles: dict[str, str]
    kind: DataKind
    timezone: str | None
    ts_format: str | None
    ts_col: str

    @classmethod
    def of(cls, columns: list[str], path: Path, opts: FileOptions, defaults: Mapping[str, Any]) -> _Layout:
        roles = resolve_roles(columns, opts)
        kind: DataKind = opts.kind or defaults.get("kind") or guess_kind(roles, path)
        ts_col = _ts_name(roles, columns, path)
        _check_required(columns, roles, kind, path)
        return cls(path, opts, roles, kind, opts.timezone or defaults.get("timezone"),
                   opts.ts_format or defaults.get("ts_format"), ts_col)

    def typed(self, df: pl.DataFrame, first_line: int) -> pl.DataFrame:
        """One raw table as typed columns: symbol, values, the parsed timestamp, then extras.

        ``first_line`` is the file line of the table's first row (0 for Parquet: rows by index).
        """
        path, opts = self.path, self.opts
        parsed_ts = parse_ts(_timestamps(df, self.roles), self.ts_col, path, first_line, opts, self.ts_format)
        cols = {"symbol": _symbols(df, self.roles, path, opts, first_line)}
        cols.update(_values(df, self.roles, self.kind, path, first_line, opts))
        cols[_PARSED_TS] = parsed_ts
        extra = extras(df, set(self.roles.values()), set(SCHEMAS[self.kind])) if opts.keep_extra else []
        # one chunk per block, the same for every column: later steps then never rechunk the whole file
        return pl.DataFrame(cols).with_columns(extra).rechunk()

    def finish(self, blocks: list[pl.DataFrame], first_line: int) -> ParsedFile:
        """Typed blocks of the whole file -> canonical rows, corporate actions, bar size and quality.

        ``blocks`` is emptied, so that columns replaced on the way (the parsed timestamp) are freed.
        """
        path, opts, kind = self.path, self.opts, self.kind
        typed = pl.concat(blocks, how="vertical_relaxed")
        blocks.clear()
        parsed_ts = typed.get_column(_PARSED_TS)
        value_names = typed.columns[:typed.columns.index(_PARSED_TS)]
        cols = {name: typed.get_column(name) for name in value_names}
        extra = typed.drop(*value_names, _PARSED_TS)
        del typed
        frequency: Timeframe | None = None
        if kind == "bars":
            cols, frequency = bar_times(cols, parsed_ts, path, opts, self.timezone, first_line, self.ts_col)
        else:
            cols["ts"] = to_utc(parsed_ts, path, naive_zone(self.timezone, opts.calendar, self.ts_col))
        del parsed_ts
        out = pl.DataFrame(cols)
        del cols
        actions = actions_of(out)
        if kind == "bars" and opts.adjusted == "splits":
            out, actions = restore_raw(out, actions)
        kept_rows = out.get_column(KEPT_ROW) if KEPT_ROW in out.columns else None
        if kept_rows is not None:
            extra = extra[kept_rows]
        data = conform(out, kind, sort=False)
        if extra.width:
            data = data.with_columns(extra)
        del out, extra
        data, report = screen(data, kind, Origin(path, first_line, kept_rows), opts.on_invalid, opts.calendar)
        return ParsedFile(path, kind, data, actions, frequency, report)


def _ts_name(roles: dict[str, str], columns: list[str], path: Path) -> str:
    """Name of the timestamp: one column, or a date and a time column joined (``Date+Time``)."""
    if "ts" in roles:
        return roles["ts"]
    if "date" in roles and "time" in roles:
        return f"{roles['date']}+{roles['time']}"
    raise DataFormatError(f"{path}: no timestamp column; expected one of date, datetime, timestamp "
                          f"(got {', '.join(columns)}); pass ts_column=...")


def _timestamps(df: pl.DataFrame, roles: dict[str, str]) -> pl.Series:
    """Raw values of the timestamp: one column, or a date and a time column joined."""
    if "ts" in roles:
        return df.get_column(roles["ts"])
    joined = pl.concat_str([pl.col(roles["date"]).cast(pl.String), pl.col(roles["time"]).cast(pl.String)],
                           separator=" ")
    return df.select(joined).to_series()


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


def _check_required(columns: list[str], roles: dict[str, str], kind: DataKind, path: Path) -> None:
    absent = [r for r in REQUIRED[kind] if r not in roles]
    if kind == "trades" and "size" not in roles:
        absent.append("size")
    if absent:
        raise DataFormatError(f"{path}: missing column(s) {', '.join(absent)} for {kind}; "
                              f"got {', '.join(columns)}")


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
