"""Local files as a data source: CSV (plain or gzip) and Parquet, one file or a folder of files.

A file is read once, normalised at the edge into the canonical schemas of ``backtape.schema`` and
kept in memory. Layouts are detected from the header (Yahoo ``Date,Open,...,Adj Close,Volume``,
backtrader ``Date,Time?,Open,...,OpenInterest``, generic lower case, vendor tick files, headerless
HistData quotes); options override every guess.

==================  ==================================================================================
option              meaning
==================  ==================================================================================
``symbol``          symbol of every row (else a ``symbol``/``ticker`` column, else the file name)
``symbol_pattern``  regex applied to the file name; group ``symbol`` (or group 1) is the symbol
``columns``         mapping vendor column -> canonical name (``ts``, ``date``, ``time``, ``open``...)
``kind``            ``bars`` | ``trades`` | ``quotes`` (default: guessed from the columns)
``timezone``        zone of naive timestamps (``America/New_York``, ``Etc/GMT+5``...; default UTC)
``ts_format``       strptime format of the timestamp (of ``date + " " + time`` for split columns)
``date_column``     column holding the date; ``time_column`` the time of day, when split
``ts_column``       column holding the timestamp, when the guess is wrong
``timestamp_unit``  unit of integer epochs: ``s`` ``ms`` ``us`` ``ns`` (default: by magnitude)
``frequency``       bar size of the file (default: median spacing; date-only rows are ``1d``)
``calendar``        exchange calendar for daily sessions (default ``XNYS``; ``24/7`` for crypto)
``stamp``           ``start`` | ``end``: whether intraday bars are stamped at their start or end
``has_header``      ``True``/``False``; default: detected from the first line
``names``           column names for a headerless file
``separator``       field separator (default: sniffed among ``, ; tab``)
``adjusted``        ``False`` raw prices; ``"splits"`` split-adjusted: raw prices are restored from
                    the file's split column; ``True`` fully adjusted (served as is, flagged)
``on_non_session``  ``raise`` | ``drop``: daily rows whose date is not a session of the calendar
``keep_extra``      keep unmapped vendor columns (e.g. ``aggressor_side``) after the canonical ones
``glob``            file pattern inside a folder (default ``*.csv``, ``*.csv.gz``, ``*.txt`` or
                    ``*.parquet``)
``on_invalid``      ``raise`` (default) | ``drop`` | ``warn``: what to do with rows that break a
                    validation rule (see "Validation on load" below)
==================  ==================================================================================

Daily rows become bars of their calendar session (``ts`` = session open, ``ts_end`` = close); a
date that is not a session raises ``DataFormatError`` (or is dropped with a warning when
``on_non_session="drop"``). Intraday bars get ``ts_end = ts + frequency``. Dividend and split
columns (``dividend``, ``split``, ``ex-dividend``, ``split_ratio``, ``Stock Splits``) become
corporate actions, a split value of 0 or 1 meaning none.

Validation on load
------------------
Every file is checked by ``backtape.validation`` on its rows **in file order, before any sorting**,
so each problem is named by file and place: the file line for CSV (header counted, as an editor
shows it) or the 0-based row index for Parquet, with the symbol, timestamp and rule. Impossible
bars (high < low, high below open/close, low above them), non-positive prices, negative volumes or
sizes, NaN or missing values, crossed quotes and duplicate bars with different values are problems:

* ``on_invalid="raise"`` (default): ``DataValidationError`` listing the first ten problems and the
  total (``.violations`` holds them as dicts, ``.report`` the file's full report);
* ``"drop"``: the offending rows are removed with a ``DataQualityWarning`` naming how many and
  which lines; of duplicates the first valid row is kept;
* ``"warn"``: a ``DataQualityWarning`` with the same text as the error, and every row is kept.

Two things are repaired without loss and are therefore never an error: rows that are merely out of
order (e.g. newest-first vendor exports) are sorted, and a bar row that repeats an earlier row
exactly (every column equal) is removed. Both are logged at INFO and kept, with their lines, as
``unsorted``/``duplicate`` entries of the file's quality report (``source.file_reports()``), which
``backtape validate FILE`` prints.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from .. import validation
from .._time import NS_PER_DAY, NS_PER_MINUTE, TimeLike, check_range, format_ns
from ..calendars import get_calendar
from ..errors import (
    ConfigError,
    DataFormatError,
    DataValidationError,
    SymbolNotFoundError,
    UnsupportedDataError,
)
from ..schema import SCHEMAS, TS, conform, empty
from ..timeframes import Timeframe
from ..validation import DataQualityWarning, QualityReport, sort_by_symbol_ts
from .base import DataSource, DataSourceMetadata, SourceCapabilities

DataKind = Literal["bars", "trades", "quotes"]
OnInvalid = Literal["raise", "drop", "warn"]
log = logging.getLogger(__name__)

# canonical role -> normalised vendor names, in order of preference
_ALIASES: dict[str, tuple[str, ...]] = {
    "symbol": ("symbol", "ticker", "sym", "instrument", "asset"),
    "ts": ("ts", "timestamp", "timestamp_utc", "datetime", "datetime_utc", "date_time", "time_utc",
           "ts_event_utc", "ts_event", "trade_time_utc", "trade_time", "local_recv_ts_ns",
           "local_recv_time_utc", "gmt_time", "unnamed_0", "index", ""),
    "date": ("date", "day", "trade_date"),
    "time": ("time", "time_of_day"),
    "open": ("open", "o", "open_price"),
    "high": ("high", "h", "high_price"),
    "low": ("low", "l", "low_price"),
    "close": ("close", "c", "close_price", "last"),
    "volume": ("volume", "vol", "v"),
    "vwap": ("vwap", "vw"),
    "transactions": ("transactions", "trade_count", "number_of_trades", "n"),
    "price": ("price", "px", "trade_price", "last_price"),
    "size": ("size", "qty", "quantity", "amount", "volume"),
    "exchange": ("exchange", "venue"),
    "conditions": ("conditions", "condition"),
    "id": ("id", "trade_id"),
    "bid": ("bid", "bid_px", "bid_price", "best_bid", "bid_px_00"),
    "ask": ("ask", "ask_px", "ask_price", "best_ask", "ask_px_00"),
    "bid_size": ("bid_size", "bid_qty", "bid_sz", "bid_volume", "bid_sz_00"),
    "ask_size": ("ask_size", "ask_qty", "ask_sz", "ask_volume", "ask_sz_00"),
    "bid_exchange": ("bid_exchange",),
    "ask_exchange": ("ask_exchange",),
    "dividend": ("dividend", "dividends", "ex_dividend", "cash_dividend"),
    "split": ("split", "splits", "split_ratio", "stock_splits", "split_factor"),
}
_NUMERIC = {"open", "high", "low", "close", "volume", "vwap", "price", "size", "bid", "ask",
            "bid_size", "ask_size", "dividend", "split"}
_ROLES_BY_KIND: dict[str, tuple[str, ...]] = {
    "bars": ("open", "high", "low", "close", "volume", "vwap", "transactions", "dividend", "split"),
    "trades": ("price", "size", "exchange", "conditions", "id"),
    "quotes": ("bid", "ask", "bid_size", "ask_size", "bid_exchange", "ask_exchange"),
}
_CSV_SUFFIXES = (".csv", ".csv.gz", ".txt", ".txt.gz", ".gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_DATETIME_TEXT = re.compile(r"^[\d\-/:.TZ+ ]+$")
_TIME_OF_DAY = re.compile(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$")
_HISTDATA_TS = re.compile(r"^\d{8} \d{9}$")
_EPOCH_UNITS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


@dataclass(frozen=True)
class LocalOptions:
    """Reading options shared by CSV and Parquet sources (see the module docstring)."""

    symbol: str | None = None
    symbol_pattern: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    kind: DataKind | None = None
    timezone: str | None = None
    ts_format: str | None = None
    date_column: str | None = None
    time_column: str | None = None
    ts_column: str | None = None
    timestamp_unit: str | None = None
    frequency: str | None = None
    calendar: str = "XNYS"
    stamp: Literal["start", "end"] = "start"
    has_header: bool | None = None
    names: tuple[str, ...] | None = None
    separator: str | None = None
    adjusted: bool | Literal["splits"] = False
    on_non_session: Literal["raise", "drop"] = "raise"
    keep_extra: bool = False
    glob: str | None = None
    on_invalid: OnInvalid = "raise"

    @classmethod
    def from_kwargs(cls, options: Mapping[str, Any]) -> LocalOptions:
        """Build options, rejecting unknown names and impossible values with a clear message."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        opts = dict(options)
        if opts.get("names") is not None:
            opts["names"] = tuple(opts["names"])
        out = cls(**opts)
        _check_choice("kind", out.kind, (None, "bars", "trades", "quotes"))
        _check_choice("stamp", out.stamp, ("start", "end"))
        _check_choice("on_non_session", out.on_non_session, ("raise", "drop"))
        _check_choice("on_invalid", out.on_invalid, ("raise", "drop", "warn"))
        _check_choice("adjusted", out.adjusted, (False, True, "splits"))
        _check_choice("timestamp_unit", out.timestamp_unit, (None, *_EPOCH_UNITS))
        if out.frequency is not None:
            Timeframe.parse(out.frequency)
        return out

    def identity(self) -> str:
        """Stable text of the options, for cache identities."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["columns"] = dict(sorted(dict(self.columns).items()))
        return json.dumps(values, sort_keys=True, default=str)


def _check_choice(name: str, value: object, allowed: tuple[object, ...]) -> None:
    if not any(value is a or (value == a and type(value) is type(a)) for a in allowed):
        raise ConfigError(f"option {name}={value!r} is invalid; use one of {', '.join(map(repr, allowed))}")


@dataclass
class ParsedFile:
    """One file normalised: its kind, canonical rows (plus extras), actions, bar size and quality."""

    path: Path
    kind: DataKind
    data: pl.DataFrame
    actions: pl.DataFrame
    frequency: Timeframe | None
    report: QualityReport


def _norm(name: str) -> str:
    """Normalised column name: lower snake case (``"Adj Close"`` -> ``"adj_close"``)."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


# ---------------------------------------------------------------------------------------------
# raw reading


def _file_symbol(path: Path, opts: LocalOptions) -> str:
    """Symbol named by the file: ``symbol_pattern`` match, else the stem before the first ``_``."""
    name = path.name
    if opts.symbol_pattern:
        m = re.search(opts.symbol_pattern, name)
        if not m:
            raise DataFormatError(f"{path}: file name does not match symbol_pattern {opts.symbol_pattern!r}")
        return m.group("symbol") if "symbol" in m.re.groupindex else m.group(1 if m.re.groups else 0)
    stem = name
    for suffix in (".gz", ".csv", ".txt", ".parquet", ".pq"):
        stem = stem.removesuffix(suffix)
    return stem.split("_")[0]


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataFormatError(f"{path}: cannot read file ({exc}); is it truncated or corrupt?") from exc
    if not data.strip():
        raise DataFormatError(f"{path}: file is empty")
    return data


def _split(line: str, sep: str) -> list[str]:
    return [f.strip().strip('"') for f in line.split(sep)]


def _looks_like_header(fields_: list[str]) -> bool:
    """A first line is a header when some field is neither a number nor a date/time."""
    for f in fields_:
        if not f:
            continue
        try:
            float(f)
        except ValueError:
            if not _DATETIME_TEXT.match(f):
                return True
    return False


def _read_csv_raw(path: Path, opts: LocalOptions) -> tuple[pl.DataFrame, int, dict[str, Any]]:
    """Read a CSV as strings. Returns the frame, the file line of its first row, layout defaults."""
    data = _read_bytes(path)
    lines = data.splitlines()
    first = lines[0].decode("utf-8-sig", errors="replace")
    sep = opts.separator or max((",", ";", "\t"), key=first.count)
    head = _split(first, sep)
    has_header = _looks_like_header(head) if opts.has_header is None else opts.has_header
    defaults: dict[str, Any] = {}
    names: list[str] | None = list(opts.names) if opts.names else None
    skip = 0
    if has_header:
        skip = 1
        names = names or head
        if len(lines) > 1:
            row = _split(lines[1].decode("utf-8", errors="replace"), sep)
            if len(row) == len(names) + 1 and len(row) > 1 and _TIME_OF_DAY.match(row[1]) \
                    and not any(_norm(n) in _ALIASES["time"] for n in names):
                names = [names[0], "time", *names[1:]]  # backtrader files: Date,Time under "Date"
    elif names is None:
        if _HISTDATA_TS.match(head[0]) and len(head) in (3, 4):
            names = ["timestamp", "bid", "ask", "volume"][: len(head)]
            defaults = {"ts_format": "%Y%m%d %H%M%S%3f", "timezone": "Etc/GMT+5", "kind": "quotes"}
        elif len(head) in (6, 7):
            names = ["datetime", "open", "high", "low", "close", "volume", "open_interest"][: len(head)]
        else:
            raise DataFormatError(
                f"{path}: no header line and an unknown layout of {len(head)} fields; pass names=[...]"
            )
    assert names is not None
    names = [n if n else "unnamed_0" for n in names]
    if len(lines) <= skip or not any(line.strip() for line in lines[skip:]):
        raise DataFormatError(f"{path}: no data rows")
    try:
        df = pl.read_csv(
            io.BytesIO(data), has_header=False, skip_rows=skip, new_columns=names, separator=sep,
            infer_schema=False, truncate_ragged_lines=False, quote_char='"',
        )
    except (pl.exceptions.ComputeError, pl.exceptions.ShapeError, pl.exceptions.NoDataError) as exc:
        raise DataFormatError(f"{path}: malformed CSV ({str(exc).splitlines()[0]})") from exc
    if df.width != len(names):
        raise DataFormatError(f"{path}: expected {len(names)} columns ({', '.join(names)}), found {df.width}")
    if df.height == 0:
        raise DataFormatError(f"{path}: no data rows")
    return df, skip + 1, defaults


def _read_parquet_raw(path: Path) -> pl.DataFrame:
    try:
        df = pl.scan_parquet(path).collect()
    except (OSError, pl.exceptions.ComputeError) as exc:
        raise DataFormatError(f"{path}: cannot read Parquet ({str(exc).splitlines()[0]})") from exc
    if df.height == 0:
        raise DataFormatError(f"{path}: no data rows")
    return df


# ---------------------------------------------------------------------------------------------
# column roles and parsing


def _resolve_roles(columns: list[str], opts: LocalOptions) -> dict[str, str]:
    """Map canonical roles (``ts``, ``open``, ``bid``...) to the file's columns."""
    roles: dict[str, str] = {}
    by_norm = {_norm(c): c for c in columns}
    for vendor, canonical in opts.columns.items():
        src = vendor if vendor in columns else by_norm.get(_norm(vendor))
        if src is None:
            raise DataFormatError(f"option columns: column {vendor!r} not in file; got {', '.join(columns)}")
        roles[canonical] = src
    for role, col in (("ts", opts.ts_column), ("date", opts.date_column), ("time", opts.time_column)):
        if col is not None:
            src = col if col in columns else by_norm.get(_norm(col))
            if src is None:
                raise DataFormatError(f"option {role}_column: column {col!r} not in file; "
                                      f"got {', '.join(columns)}")
            roles[role] = src
    used = set(roles.values())
    for role, aliases in _ALIASES.items():
        if role in roles:
            continue
        for alias in aliases:
            src = by_norm.get(alias)
            if src is not None and src not in used:
                roles[role] = src
                used.add(src)
                break
    if "date" in roles and "time" not in roles and "ts" not in roles:
        roles["ts"] = roles.pop("date")
    if "ts" in roles and "date" in roles and "time" in roles:
        roles.pop("ts")  # an explicit date + time pair wins over a stray timestamp-like column
    return roles


def _guess_kind(roles: dict[str, str], path: Path) -> DataKind:
    if all(r in roles for r in ("open", "high", "low", "close")):
        return "bars"
    if "bid" in roles and "ask" in roles:
        return "quotes"
    if "price" in roles:
        return "trades"
    raise DataFormatError(
        f"{path}: cannot tell bars, trades or quotes from columns; expected open/high/low/close, "
        "bid/ask or price/size (pass columns={...} and kind=...)"
    )


def _first_bad(mask: pl.Series) -> int | None:
    idx = mask.arg_true()
    return int(idx[0]) if idx.len() else None


def _where(path: Path, column: str, row: int, first_line: int) -> str:
    what = f"line {row + first_line}" if first_line else f"row {row}"
    return f"{path}, column {column!r}, {what}"


def _to_float(df: pl.DataFrame, col: str, path: Path, first_line: int, required: bool) -> pl.Series:
    s = df.get_column(col)
    if s.dtype.is_numeric():
        out = s.cast(pl.Float64)
    elif s.dtype == pl.Boolean:
        raise DataFormatError(f"{path}, column {col!r}: boolean values where numbers are expected")
    else:
        out = s.str.strip_chars().cast(pl.Float64, strict=False)
        bad = _first_bad(out.is_null() & s.is_not_null() & (s.str.strip_chars() != ""))
        if bad is not None:
            raise DataFormatError(f"{_where(path, col, bad, first_line)}: {s[bad]!r} is not a number")
    if required:
        bad = _first_bad(out.is_null())
        if bad is not None:
            raise DataFormatError(f"{_where(path, col, bad, first_line)}: missing value "
                                  "(truncated or short row?)")
    return out


def _epoch_unit(values: pl.Series, opts: LocalOptions) -> int:
    if opts.timestamp_unit:
        return _EPOCH_UNITS[opts.timestamp_unit]
    top = abs(int(values.abs().max() or 0))
    if top >= 10**17:
        return 1
    if top >= 10**14:
        return 1_000
    if top >= 10**11:
        return 1_000_000
    return 1_000_000_000


def _parse_ts(raw: pl.Series, col: str, path: Path, first_line: int, opts: LocalOptions,
              ts_format: str | None) -> pl.Series:
    """Parse a timestamp column into ``Datetime('ns')``: naive (local wall time) or UTC-aware."""
    missing = _first_bad(raw.is_null())
    if missing is not None:
        raise DataFormatError(f"{_where(path, col, missing, first_line)}: missing timestamp")
    if isinstance(raw.dtype, pl.Datetime):
        return raw.dt.cast_time_unit("ns")
    if raw.dtype == pl.Date:
        return raw.cast(pl.Datetime("ns"))
    text = raw.cast(pl.String).str.strip_chars() if not raw.dtype.is_integer() else None
    if ts_format is None and (text is None or text.str.contains(r"^-?\d+$").all()):
        ints = raw.cast(pl.Int64, strict=False) if text is None else text.cast(pl.Int64, strict=False)
        if opts.timestamp_unit is None and text is not None and text.str.len_chars().max() == 8:
            ts_format = "%Y%m%d"
        else:
            return (ints * _epoch_unit(ints, opts)).cast(pl.Datetime("ns"))
    assert text is not None
    try:
        if ts_format:
            parsed = text.str.to_datetime(ts_format, time_unit="ns", strict=False)
        else:
            parsed = text.str.to_datetime(time_unit="ns", strict=False)
    except pl.exceptions.PolarsError as exc:
        raise DataFormatError(f"{path}, column {col!r}: cannot parse timestamps like {text[0]!r} "
                              f"({str(exc).splitlines()[0]}); pass ts_format=...") from exc
    bad = _first_bad(parsed.is_null())
    if bad is not None:
        hint = f" with format {ts_format!r}" if ts_format else "; pass ts_format=..."
        raise DataFormatError(f"{_where(path, col, bad, first_line)}: cannot parse timestamp "
                              f"{text[bad]!r}{hint}")
    return parsed


def _to_utc(ts: pl.Series, path: Path, timezone: str | None) -> pl.Series:
    """Naive wall-clock times in ``timezone`` (default UTC) -> UTC; aware ones are converted."""
    if ts.dtype.time_zone is not None:  # type: ignore[union-attr]
        return ts.dt.convert_time_zone("UTC")
    try:
        return ts.dt.replace_time_zone(timezone or "UTC", ambiguous="raise", non_existent="raise") \
            .dt.convert_time_zone("UTC")
    except pl.exceptions.PolarsError as exc:
        raise DataFormatError(f"{path}: timestamps are not valid in time zone {timezone!r} "
                              f"({str(exc).splitlines()[0]})") from exc


def _infer_frequency(ts_ns: np.ndarray, symbols: pl.Series, path: Path) -> Timeframe:
    """Bar size from the median spacing of consecutive bars of each symbol."""
    frame = pl.DataFrame({"symbol": symbols, "t": ts_ns}).sort("symbol", "t")
    diffs = frame.select(pl.col("t").diff().over("symbol").alias("d")).get_column("d")
    diffs = diffs.filter(diffs > 0)
    if diffs.len() == 0:
        raise DataFormatError(f"{path}: cannot infer the bar frequency from one bar; pass frequency=...")
    median = int(diffs.median())  # type: ignore[arg-type]
    if median >= 20 * 3_600_000_000_000 and median <= 4 * NS_PER_DAY:
        return Timeframe.parse("1d")
    if median % NS_PER_MINUTE or median > 4 * NS_PER_DAY:
        raise DataFormatError(f"{path}: bars are {median / 1e9:g} s apart, not a supported bar size; "
                              "pass frequency=...")
    return Timeframe.parse(f"{median // NS_PER_MINUTE}min")


def _extras(df: pl.DataFrame, used: set[str], taken: set[str]) -> list[pl.Series]:
    """Unmapped vendor columns with normalised names and light type inference."""
    out = []
    for col in df.columns:
        if col in used or _norm(col) in taken:
            continue
        s = df.get_column(col)
        if s.dtype == pl.String:
            lowered = s.str.to_lowercase()
            if lowered.is_in(["true", "false"]).all():
                s = lowered == "true"
            else:
                for dtype in (pl.Int64, pl.Float64):
                    cast = s.cast(dtype, strict=False)
                    if cast.null_count() == s.null_count():
                        s = cast
                        break
        out.append(s.alias(_norm(col) or "unnamed_0"))
    return out


def parse_frame(df: pl.DataFrame, path: Path, opts: LocalOptions, *, first_line: int = 0,
                defaults: Mapping[str, Any] | None = None) -> ParsedFile:
    """Normalise one raw table (strings or typed) into canonical rows, actions and bar size."""
    defaults = defaults or {}
    roles = _resolve_roles(df.columns, opts)
    kind: DataKind = opts.kind or defaults.get("kind") or _guess_kind(roles, path)
    ts_format = opts.ts_format or defaults.get("ts_format")
    timezone = opts.timezone or defaults.get("timezone")
    if "ts" in roles:
        ts_col = roles["ts"]
        raw_ts = df.get_column(ts_col)
    elif "date" in roles and "time" in roles:
        ts_col = f"{roles['date']}+{roles['time']}"
        raw_ts = df.select(pl.concat_str([pl.col(roles["date"]).cast(pl.String),
                                          pl.col(roles["time"]).cast(pl.String)], separator=" ")).to_series()
    else:
        raise DataFormatError(f"{path}: no timestamp column; expected one of date, datetime, timestamp "
                              f"(got {', '.join(df.columns)}); pass ts_column=...")
    parsed_ts = _parse_ts(raw_ts, ts_col, path, first_line, opts, ts_format)
    required = {"bars": ("open", "high", "low", "close"), "trades": ("price",),
                "quotes": ("bid", "ask")}[kind]
    absent = [r for r in required if r not in roles]
    if kind == "trades" and "size" not in roles:
        absent.append("size")
    if absent:
        raise DataFormatError(f"{path}: missing column(s) {', '.join(absent)} for {kind}; "
                              f"got {', '.join(df.columns)}")

    if opts.symbol is not None:
        symbol = pl.Series("symbol", [opts.symbol] * df.height, pl.String)
    elif "symbol" in roles:
        symbol = df.get_column(roles["symbol"]).cast(pl.String).alias("symbol")
        bad = _first_bad(symbol.is_null() | (symbol == ""))
        if bad is not None:
            raise DataFormatError(f"{_where(path, roles['symbol'], bad, first_line)}: missing symbol")
    else:
        symbol = pl.Series("symbol", [_file_symbol(path, opts)] * df.height, pl.String)

    cols: dict[str, pl.Series] = {"symbol": symbol}
    for role in _ROLES_BY_KIND[kind]:
        if role not in roles:
            continue
        src = roles[role]
        if role in _NUMERIC:
            cols[role] = _to_float(df, src, path, first_line, required=role in required or role == "size")
        elif role == "transactions":
            cols[role] = _to_float(df, src, path, first_line, required=False).cast(pl.Int64)
        else:
            cols[role] = df.get_column(src).cast(pl.String)
    if kind == "bars" and "volume" not in cols:
        raise DataFormatError(f"{path}: missing column volume for bars; got {', '.join(df.columns)}")
    if kind == "quotes":
        for side in ("bid_size", "ask_size"):
            cols.setdefault(side, pl.Series(side, [None] * df.height, pl.Float64))

    frequency: Timeframe | None = None
    if kind == "bars":
        cols, frequency = _bar_times(cols, parsed_ts, path, opts, timezone, first_line, ts_col)
    else:
        cols["ts"] = _to_utc(parsed_ts, path, timezone)
    out = pl.DataFrame(cols)
    actions = _actions(out)
    if kind == "bars" and opts.adjusted == "splits":
        out, actions = _restore_raw(out, actions)
    extra = _extras(df, set(roles.values()), set(SCHEMAS[kind])) if opts.keep_extra else []
    if "_row" in out.columns:
        extra = [s.gather(out.get_column("_row")) for s in extra]
    data = conform(out, kind, sort=False)
    if extra:
        data = data.with_columns(extra)
    file_rows = out.get_column("_row") if "_row" in out.columns else None
    data, report = _screen(data, kind, _Origin(path, first_line, file_rows), opts.on_invalid)
    return ParsedFile(path, kind, data, actions, frequency, report)


def _bar_times(cols: dict[str, pl.Series], parsed_ts: pl.Series, path: Path, opts: LocalOptions,
               timezone: str | None, first_line: int, ts_col: str
               ) -> tuple[dict[str, pl.Series], Timeframe]:
    """Set ``ts``/``ts_end`` of bars: calendar sessions for daily rows, ``ts + frequency`` intraday."""
    naive_midnight = parsed_ts.dtype.time_zone is None and bool(  # type: ignore[union-attr]
        (parsed_ts.dt.truncate("1d") == parsed_ts).all())
    if opts.frequency is not None:
        frequency = Timeframe.parse(opts.frequency)
    elif naive_midnight:
        as_utc = parsed_ts.dt.replace_time_zone("UTC").dt.epoch("ns").to_numpy()
        frequency = _infer_frequency(as_utc, cols["symbol"], path) if parsed_ts.len() > 1 \
            else Timeframe.parse("1d")
    else:
        frequency = _infer_frequency(_to_utc(parsed_ts, path, timezone).dt.epoch("ns").to_numpy(),
                                     cols["symbol"], path)
    if frequency.unit == "w":
        raise UnsupportedDataError(f"{path}: weekly bar files are not supported; load daily bars")
    if frequency.unit == "d":
        local = parsed_ts if parsed_ts.dtype.time_zone is None \
            else parsed_ts.dt.convert_time_zone(timezone or "UTC")  # type: ignore[union-attr]
        labels = local.dt.date().cast(pl.Datetime("ns")).dt.epoch("ns").to_numpy()
        cal = get_calendar(opts.calendar)
        idx = np.searchsorted(cal.labels, labels)
        found = (idx < len(cal.labels)) & (cal.labels[np.clip(idx, 0, len(cal.labels) - 1)] == labels)
        keep = np.arange(len(labels))
        if not found.all():
            bad = np.flatnonzero(~found)
            dates = local.dt.date().gather(bad[:3]).cast(pl.String).to_list()
            msg = (f"{_where(path, ts_col, int(bad[0]), first_line)}: {len(bad)} date(s) are not "
                   f"sessions of calendar {cal.name!r} (first: {', '.join(dates)})")
            if opts.on_non_session == "raise":
                raise DataFormatError(msg + "; pass calendar='24/7' or another calendar, "
                                      "or on_non_session='drop'")
            warnings.warn(msg + "; dropped", stacklevel=4)
            keep = np.flatnonzero(found)
            cols = {k: v.gather(keep) for k, v in cols.items()}
            cols["_row"] = pl.Series("_row", keep, pl.UInt32)
            idx = idx[keep]
        cols["ts"] = pl.Series("ts", cal.opens[idx]).cast(TS)
        cols["ts_end"] = pl.Series("ts_end", cal.closes[idx]).cast(TS)
        return cols, frequency
    stamped = _to_utc(parsed_ts, path, timezone)
    step = pl.duration(nanoseconds=frequency.nanos)
    frame = pl.DataFrame({"t": stamped})
    if opts.stamp == "end":
        frame = frame.select((pl.col("t") - step).alias("ts"), pl.col("t").alias("ts_end"))
    else:
        frame = frame.select(pl.col("t").alias("ts"), (pl.col("t") + step).alias("ts_end"))
    cols["ts"], cols["ts_end"] = frame.get_column("ts"), frame.get_column("ts_end")
    return cols, frequency


def _actions(bars: pl.DataFrame) -> pl.DataFrame:
    """Dividend and split rows of a frame with optional ``dividend``/``split`` columns."""
    parts = []
    if "dividend" in bars.columns:
        parts.append(bars.filter(pl.col("dividend").fill_nan(0).fill_null(0) != 0)
                     .select("symbol", "ts", pl.lit("dividend").alias("action"),
                             pl.col("dividend").alias("value")))
    if "split" in bars.columns:
        parts.append(bars.filter(~pl.col("split").fill_nan(1).fill_null(1).is_in([0.0, 1.0]))
                     .select("symbol", "ts", pl.lit("split").alias("action"),
                             pl.col("split").alias("value")))
    if not parts:
        return empty("actions")
    return conform(pl.concat(parts), "actions")


def _restore_raw(bars: pl.DataFrame, actions: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Undo split adjustment: prices before a split times its ratio, volumes divided by it.

    Worked example: AAPL split 7:1 on 2014-06-09; the adjusted close of 2012-01-03 (58.747143)
    becomes the raw 411.23, and the 2012 dividend of 0.378570 becomes the raw 2.65 per share.
    Restored prices and dividends are rounded to 4 decimals (the adjusted file kept 6 digits, so
    more would be noise); rows without a later split are left exactly as read.
    """
    splits = actions.filter(pl.col("action") == "split").select("symbol", "ts", pl.col("value").alias("r"))
    if splits.height == 0:
        return bars, actions

    def factor(frame: pl.DataFrame) -> pl.Series:
        # product of the ratios of every split strictly after each row's ts, per symbol
        ratios = frame.select("symbol", "ts").join(splits, on=["symbol", "ts"], how="left") \
            .with_columns(pl.col("r").fill_null(1.0))
        idx = ratios.with_row_index("_i").sort("symbol", "ts", maintain_order=True)
        after = pl.col("r").reverse().cum_prod().reverse().over("symbol") / pl.col("r")
        return idx.with_columns(after.alias("f")).sort("_i").get_column("f")

    bars_factor = factor(bars)
    prices = [c for c in ("open", "high", "low", "close", "vwap") if c in bars.columns]
    bars = bars.with_columns(
        *[_unadjust(pl.col(c), bars_factor).alias(c) for c in prices],
        (pl.col("volume") / bars_factor).alias("volume"),
    )
    act_factor = factor(actions)
    actions = actions.with_columns(
        pl.when(pl.col("action") == "dividend").then(_unadjust(pl.col("value"), act_factor))
        .otherwise(pl.col("value")).alias("value")
    )
    return bars, actions


def _unadjust(value: pl.Expr, factor: pl.Series) -> pl.Expr:
    return pl.when(pl.lit(factor) != 1.0).then((value * pl.lit(factor)).round(4)).otherwise(value)


# ---------------------------------------------------------------------------------------------
# validation on load

#: How many problems an error or warning lists before giving the total.
PROBLEM_LIMIT = 10
_FILE_ROW = "__backtape_file_row"
_REFERENCE = r"row (\d+)$"  # validation details end with the row they refer to


@dataclass(frozen=True)
class _Origin:
    """Where a file's rows came from: CSV rows are named by file line, Parquet rows by index."""

    path: Path
    first_line: int  # file line of the first data row (header counted); 0 for Parquet
    rows: pl.Series | None = None  # file row of each parsed row when some rows were left out

    def file_rows(self, height: int) -> pl.Series:
        """The 0-based file row of each of ``height`` parsed rows."""
        if self.rows is None:
            return pl.Series(_FILE_ROW, np.arange(height, dtype=np.int64))
        return self.rows.cast(pl.Int64).alias(_FILE_ROW)

    def place(self, file_row: pl.Expr) -> pl.Expr:
        """Text naming a file row: ``"line 7"`` for CSV, ``"row 5"`` for Parquet."""
        if self.first_line:
            return pl.format("line {}", file_row + self.first_line)
        return pl.format("row {}", file_row)

    def places(self, file_rows: pl.Series) -> str:
        """Comma-separated places of at most ``PROBLEM_LIMIT`` file rows, then the count of the rest."""
        word = ("line" if self.first_line else "row") + ("s" if file_rows.len() > 1 else "")
        shown = ", ".join(str(r + self.first_line) for r in file_rows.head(PROBLEM_LIMIT).to_list())
        more = file_rows.len() - PROBLEM_LIMIT
        return f"{word} {shown}" + (f" and {more:,} more" if more > 0 else "")


def _quality(frame: pl.DataFrame, kind: str, on_invalid: str = "warn") -> QualityReport:
    """Validation report of ``frame`` without raising or warning (the caller decides)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        return getattr(validation, f"validate_{kind}")(frame, on_invalid=on_invalid)


def _file_quality(frame: pl.DataFrame, kind: str) -> tuple[pl.DataFrame, dict[str, int]]:
    """Violations of ``frame`` (rows in file order) and counts per rule, ``unsorted`` judged per symbol.

    A file may interleave symbols by time (one row per instrument and minute); that order loses
    nothing, so a row is ``unsorted`` only when it is earlier than the previous row of its symbol.
    Violations get a ``ref`` column: the frame row a ``duplicate`` or ``unsorted`` detail refers to.
    """
    found = _quality(frame, kind)
    counts = {rule: n for rule, n in found.counts.items() if rule != "unsorted"}
    duplicate = pl.col("rule") == "duplicate"
    others = found.violations.filter(pl.col("rule") != "unsorted").with_columns(
        ref=pl.when(duplicate).then(pl.col("detail").str.extract(_REFERENCE, 1).cast(pl.Int64)),
        detail=pl.when(duplicate).then(pl.col("detail").str.replace(_REFERENCE, ""))
        .otherwise(pl.col("detail")),
    )
    if found.counts.get("unsorted", 0) == 0:
        return others, counts
    late = (
        frame.lazy().with_row_index("__i")
        .with_columns(__prev=pl.col("__i").shift(1).over("symbol"),
                      __late=(pl.col("ts") < pl.col("ts").shift(1).over("symbol")).fill_null(False))
        .filter(pl.col("__late"))
        .select(pl.lit("unsorted").alias("rule"), pl.col("symbol").cast(pl.String), "ts",
                pl.col("__i").cast(pl.Int64).alias("row"),
                pl.lit("ts earlier than the symbol's previous row at ").alias("detail"),
                pl.col("__prev").cast(pl.Int64).alias("ref"))
        .collect()
        .cast(others.schema)  # type: ignore[arg-type]
    )
    if late.height:
        counts["unsorted"] = late.height
    return pl.concat([others, late]).sort("row", nulls_last=False, maintain_order=True), counts


def _locate(violations: pl.DataFrame, file_rows: pl.Series, origin: _Origin) -> pl.DataFrame:
    """Violations with ``row`` as the file row, a ``line`` (CSV) and details naming file places."""
    ref_file = pl.lit(file_rows).gather(pl.col("ref"))
    line = pl.col("row") + origin.first_line if origin.first_line else pl.lit(None, pl.Int64)
    return violations.with_columns(
        row=pl.lit(file_rows).gather(pl.col("row")),
        detail=pl.when(pl.col("ref").is_not_null())
        .then(pl.concat_str(pl.col("detail"), origin.place(ref_file)))
        .otherwise(pl.col("detail")),
    ).with_columns(line=line).select("rule", "symbol", "ts", "row", "line", "detail")


def _exact_repeats(frame: pl.DataFrame, kind: str, counts: dict[str, int]) -> pl.Series:
    """File rows of bars repeating an earlier row in every canonical column (removable without loss)."""
    if kind != "bars" or not counts.get("duplicate"):
        return pl.Series(_FILE_ROW, [], pl.Int64)
    again = pl.struct(SCHEMAS[kind].names()).is_first_distinct().not_()
    return frame.filter(again).get_column(_FILE_ROW)


def _problem_text(head: str, problems: pl.DataFrame, origin: _Origin) -> str:
    """``head``, then the first ``PROBLEM_LIMIT`` problems one per line, then how many more."""
    lines = [head]
    shown = problems.head(PROBLEM_LIMIT).with_columns(
        place=origin.place(pl.col("row")), ns=pl.col("ts").dt.epoch("ns"))
    for rec in shown.iter_rows(named=True):
        when = "null ts" if rec["ns"] is None else format_ns(rec["ns"])
        lines.append(f"  {rec['place']} {rec['symbol']} {when}: {rec['rule']} ({rec['detail']})")
    if problems.height > PROBLEM_LIMIT:
        lines.append(f"  ... and {problems.height - PROBLEM_LIMIT:,} more")
    return "\n".join(lines)


def _rule_counts(problems: pl.DataFrame) -> str:
    counts = problems.group_by("rule", maintain_order=True).len()
    return ", ".join(f"{rule}: {n:,}" for rule, n in counts.iter_rows())


def _screen(data: pl.DataFrame, kind: DataKind, origin: _Origin,
            on_invalid: OnInvalid) -> tuple[pl.DataFrame, QualityReport]:
    """Validate ``data`` in file order, act as ``on_invalid`` says, return it sorted with its report.

    Out-of-order rows and exact repeats of bar rows are repaired without loss (and only logged);
    every other violation is a problem that raises, is dropped or is warned about.
    """
    file_rows = origin.file_rows(data.height)
    frame = data.with_columns(file_rows)
    found, counts = _file_quality(frame, kind)
    violations = _locate(found, file_rows, origin)
    if not counts:
        served = sort_by_symbol_ts(data)  # symbols may be interleaved by time
        return served, QualityReport(kind, data.height, served, violations)
    repeats = _exact_repeats(frame, kind, counts)
    benign = (pl.col("rule") == "unsorted") | (
        (pl.col("rule") == "duplicate") & pl.col("row").is_in(repeats.implode()))
    problems = violations.filter(benign.not_())
    if problems.height and on_invalid != "drop":
        what = (f"{origin.path}: {problems.get_column('row').n_unique():,} invalid {kind} row(s) of "
                f"{data.height:,} ({_rule_counts(problems)})")
        if on_invalid == "raise":
            hint = "; pass on_invalid='drop' to skip them or 'warn' to keep them"
            err = DataValidationError(_problem_text(what + hint, problems, origin),
                                      problems.head(validation.ERROR_RECORD_LIMIT).to_dicts())
            err.report = QualityReport(kind, data.height, data, violations, counts)  # type: ignore[attr-defined]
            raise err
        warnings.warn(_problem_text(what, problems, origin), DataQualityWarning, stacklevel=2)
    kept = _keep(frame, kind, problems, repeats, on_invalid)
    dropped = file_rows.filter(file_rows.is_in(kept.get_column(_FILE_ROW).implode()).not_()
                               & file_rows.is_in(repeats.implode()).not_())
    if dropped.len():
        gone = problems.filter(pl.col("row").is_in(dropped.implode()))
        warnings.warn(_problem_text(
            f"{origin.path}: dropped {dropped.len():,} invalid {kind} row(s) of {data.height:,} at "
            f"{origin.places(dropped)} ({_rule_counts(gone)})", gone, origin),
            DataQualityWarning, stacklevel=2)
    _log_repairs(violations, repeats, kind, origin)
    served = sort_by_symbol_ts(kept).drop(_FILE_ROW)
    return served, QualityReport(kind, data.height, served, violations, counts)


def _keep(frame: pl.DataFrame, kind: str, problems: pl.DataFrame, repeats: pl.Series,
          on_invalid: OnInvalid) -> pl.DataFrame:
    """Rows to serve: without exact repeats, and for ``"drop"`` without problem rows.

    Rows breaking a per-row rule go first, so of duplicates the first *valid* row is kept.
    """
    removed = repeats
    if on_invalid == "drop":
        removed = pl.concat([repeats, problems.filter(pl.col("rule") != "duplicate").get_column("row")])
    kept = frame.filter(pl.col(_FILE_ROW).is_in(removed.implode()).not_())
    if on_invalid == "drop" and (problems.get_column("rule") == "duplicate").any():
        kept = _quality(kept, kind, "drop").data
    return kept


def _log_repairs(violations: pl.DataFrame, repeats: pl.Series, kind: str, origin: _Origin) -> None:
    """INFO notes for what was repaired without loss: out-of-order rows and exact repeats."""
    unsorted = violations.filter(pl.col("rule") == "unsorted").get_column("row")
    if unsorted.len():
        log.info("%s: %d %s row(s) earlier than their symbol's previous row at %s; sorted on load",
                 origin.path, unsorted.len(), kind, origin.places(unsorted))
    if repeats.len():
        log.info("%s: %d %s row(s) repeat an earlier row exactly at %s; removed (nothing lost)",
                 origin.path, repeats.len(), kind, origin.places(repeats))


def parse_file(path: str | Path, opts: LocalOptions | None = None) -> ParsedFile:
    """Read and normalise one CSV/gzip-CSV/Parquet file."""
    path = Path(path)
    opts = opts or LocalOptions()
    if path.name.lower().endswith(_PARQUET_SUFFIXES):
        return parse_frame(_read_parquet_raw(path), path, opts)
    raw, first_line, defaults = _read_csv_raw(path, opts)
    return parse_frame(raw, path, opts, first_line=first_line, defaults=defaults)


# ---------------------------------------------------------------------------------------------
# sources


class _LocalDataSource(DataSource):
    """Files or a folder of files, read once on first use and served from memory."""

    _suffixes: tuple[str, ...] = ()
    _default_globs: tuple[str, ...] = ()

    def __init__(self, path: str | Path, **options: Any) -> None:
        self.path = Path(path).expanduser()
        self.options = LocalOptions.from_kwargs(options)
        if not self.path.exists():
            raise DataFormatError(f"{self.path}: no such file or folder")
        self._loaded: dict[str, pl.DataFrame] | None = None
        self._actions = empty("actions")
        self._frequencies: dict[str, Timeframe] = {}
        self._aggregated: dict[tuple[str, str], pl.DataFrame] = {}
        self._reports: dict[Path, QualityReport] = {}

    # -- loading ------------------------------------------------------------------------------
    def files(self) -> list[Path]:
        """The files this source reads, sorted by name."""
        if self.path.is_file():
            return [self.path]
        globs = (self.options.glob,) if self.options.glob else self._default_globs
        found = sorted({p for g in globs for p in self.path.glob(g) if p.is_file()})
        if not found:
            raise DataFormatError(f"{self.path}: no files matching {', '.join(globs)}")
        return found

    def _load(self) -> dict[str, pl.DataFrame]:
        if self._loaded is not None:
            return self._loaded
        by_kind: dict[str, list[pl.DataFrame]] = {}
        actions = []
        spans: dict[tuple[str, str], tuple[Path, Any, Any]] = {}
        for path in self.files():
            parsed = parse_file(path, self.options)
            self._reports[path] = parsed.report
            _check_overlap(spans, parsed)
            by_kind.setdefault(parsed.kind, []).append(parsed.data)
            actions.append(parsed.actions)
            if parsed.frequency is not None:
                for sym in parsed.data.get_column("symbol").unique().to_list():
                    known = self._frequencies.setdefault(sym, parsed.frequency)
                    if known != parsed.frequency:
                        raise DataFormatError(f"{path}: symbol {sym!r} has {parsed.frequency} bars here "
                                              f"but {known} bars in another file")
        self._loaded = {
            kind: sort_by_symbol_ts(pl.concat(frames, how="diagonal_relaxed"))
            for kind, frames in by_kind.items()
        }
        self._actions = conform(pl.concat(actions), "actions").unique(maintain_order=True)
        return self._loaded

    def file_reports(self) -> dict[Path, QualityReport]:
        """Quality report of each file as written: violations in file order, ``row`` the 0-based
        file row, ``line`` the CSV file line (header counted; null for Parquet), ``unsorted`` and
        exact-repeat ``duplicate`` entries included although loading repaired them."""
        self._load()
        return dict(self._reports)

    def symbols(self, kind: str = "bars") -> list[str]:
        """Symbols with data of ``kind`` in the files."""
        frame = self._load().get(kind)
        return [] if frame is None else frame.get_column("symbol").unique().sort().to_list()

    def frequency_of(self, symbol: str) -> Timeframe:
        """Native bar size of ``symbol`` in the files."""
        self._load()
        if symbol not in self._frequencies:
            raise SymbolNotFoundError(self._unknown([symbol], "bars"))
        return self._frequencies[symbol]

    def frame(self, kind: str) -> pl.DataFrame:
        """Every row of ``kind`` (canonical columns, then extras when ``keep_extra``)."""
        frame = self._load().get(kind)
        if frame is None:
            raise UnsupportedDataError(f"{self.path}: no {kind} in these files "
                                       f"(found: {', '.join(sorted(self._load())) or 'nothing'})")
        return frame

    # -- requests -----------------------------------------------------------------------------
    def _unknown(self, missing: list[str], kind: str) -> str:
        known = ", ".join(self.symbols(kind)) or "none"
        return f"symbol(s) {', '.join(missing)} not found in {self.path} ({kind}); known: {known}"

    def _select(self, kind: str, symbols: list[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        s, e = check_range(start, end)
        frame = self.frame(kind)
        missing = [sym for sym in symbols if sym not in set(self.symbols(kind))]
        if missing:
            raise SymbolNotFoundError(self._unknown(missing, kind))
        return _slice(frame, symbols, s, e)

    async def fetch(self, symbols: list[str], start: TimeLike, end: TimeLike,
                    frequency: str | Timeframe = "1d") -> pl.DataFrame:
        tf = Timeframe.parse(frequency)
        s, e = check_range(start, end)
        bars = self._select("bars", symbols, s, e)  # checks symbols
        parts = []
        for sym in symbols:
            native = self._frequencies[sym]
            if native == tf:
                parts.append(bars.filter(pl.col("symbol") == sym))
            else:
                parts.append(_slice(self._coarser(sym, native, tf), [sym], s, e))
        if not parts:
            return empty("bars")
        return pl.concat(parts, how="diagonal_relaxed").sort(["symbol", "ts"], maintain_order=True)

    def _coarser(self, symbol: str, native: Timeframe, tf: Timeframe) -> pl.DataFrame:
        key = (symbol, str(tf))
        if key not in self._aggregated:
            self._aggregated[key] = aggregate_to(
                self.frame("bars").filter(pl.col("symbol") == symbol), native, tf,
                self.options.calendar, f"{self.path} symbol {symbol!r}")
        return self._aggregated[key]

    async def fetch_trades(self, symbols: list[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        return self._select("trades", symbols, start, end)

    async def fetch_quotes(self, symbols: list[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        return self._select("quotes", symbols, start, end)

    async def fetch_corporate_actions(self, symbols: list[str], start: TimeLike,
                                      end: TimeLike) -> pl.DataFrame:
        s, e = check_range(start, end)
        self._load()
        known = {sym for kind in self._load() for sym in self.symbols(kind)}
        missing = [sym for sym in symbols if sym not in known]
        if missing:
            raise SymbolNotFoundError(self._unknown(missing, "bars"))
        return _slice(self._actions, symbols, s, e)

    # -- description ----------------------------------------------------------------------------
    def get_metadata(self) -> DataSourceMetadata:
        loaded = self._load()
        freqs = sorted({str(f) for f in self._frequencies.values()})
        return DataSourceMetadata(
            name=self.name,
            source_type="local",
            description=f"{type(self).__name__} reading {self.path}",
            calendar=self.options.calendar,
            capabilities=SourceCapabilities(
                kinds=frozenset(loaded),
                frequencies=tuple(freqs),
                corporate_actions=self._actions.height > 0,
                adjusted=self.options.adjusted is True,
            ),
            details={"path": str(self.path), "files": len(self.files()),
                     "symbols": {k: self.symbols(k) for k in loaded},
                     "adjusted": self.options.adjusted},
        )

    def cache_identity(self) -> str:
        """Name, path, options and each file's size and modification time."""
        stamp = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in self.files()]
        digest = hashlib.sha256(f"{self.options.identity()}|{stamp}".encode()).hexdigest()[:16]
        return f"{self.name}:{self.path.resolve()}:{digest}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


def _check_overlap(spans: dict[tuple[str, str], tuple[Path, Any, Any]], parsed: ParsedFile) -> None:
    """Refuse two files giving the same symbol over overlapping times (ambiguous rows)."""
    ranges = parsed.data.group_by("symbol").agg(lo=pl.col("ts").min(), hi=pl.col("ts").max())
    for sym, lo, hi in ranges.iter_rows():
        key = (parsed.kind, sym)
        if key in spans:
            other, olo, ohi = spans[key]
            if lo <= ohi and olo <= hi:
                raise DataFormatError(f"{parsed.path}: {parsed.kind} of symbol {sym!r} overlap those in "
                                      f"{other} ({lo} .. {hi}); pass glob=... or symbol_pattern=...")
            spans[key] = (parsed.path, min(lo, olo), max(hi, ohi))
        else:
            spans[key] = (parsed.path, lo, hi)


def _slice(frame: pl.DataFrame, symbols: list[str], s: int, e: int) -> pl.DataFrame:
    start, end = pl.lit(s).cast(TS), pl.lit(e).cast(TS)
    return frame.filter(pl.col("symbol").is_in(symbols) & (pl.col("ts") >= start) & (pl.col("ts") < end))


def aggregate_to(bars: pl.DataFrame, native: Timeframe, tf: Timeframe, calendar: str,
                 what: str) -> pl.DataFrame:
    """Aggregate ``bars`` of size ``native`` to the coarser ``tf`` with ``backtape.aggregate``."""
    if tf.nanos < native.nanos:
        raise UnsupportedDataError(f"{what}: has {native} bars; cannot serve finer {tf} bars")
    try:
        from ..aggregation import aggregate
    except ImportError as exc:
        raise UnsupportedDataError(f"{what}: has {native} bars; {tf} needs backtape.aggregate, "
                                   "which is not available") from exc
    return aggregate(bars.select(SCHEMAS["bars"].names()), tf, calendar=calendar)


class CSVDataSource(_LocalDataSource):
    """CSV files (optionally gzip): ``CSVDataSource("data/daily", calendar="XNYS")``."""

    name = "csv"
    _default_globs = ("*.csv", "*.csv.gz", "*.txt", "*.txt.gz")


class ParquetDataSource(_LocalDataSource):
    """Parquet files: ``ParquetDataSource("bars.parquet")``; same options as CSV."""

    name = "parquet"
    _default_globs = ("*.parquet", "*.pq")


def _source_for(path: str | Path, options: Mapping[str, Any]) -> _LocalDataSource:
    p = Path(path)
    if p.is_file() and p.name.lower().endswith(_PARQUET_SUFFIXES):
        return ParquetDataSource(p, **options)
    return CSVDataSource(p, **options)


def read_bars(path: str | Path, **options: Any) -> pl.DataFrame:
    """Every bar of a CSV/Parquet file or folder as canonical bars, validated in file order.

    Invalid rows raise ``DataValidationError`` naming file, line, symbol, timestamp and rule;
    ``on_invalid="drop"`` skips them and ``"warn"`` keeps them, each with a ``DataQualityWarning``.

    >>> read_bars("AAPL_1d.csv", calendar="XNYS")  # doctest: +SKIP
    """
    return _source_for(path, {**options, "kind": options.get("kind", "bars")}).frame("bars")


def read_ticks(path: str | Path, kind: Literal["trades", "quotes"], **options: Any) -> pl.DataFrame:
    """Every trade or quote of a file or folder as canonical rows (``keep_extra`` keeps vendor columns).

    Rows are validated in file order like ``read_bars`` (``on_invalid="raise"|"drop"|"warn"``).
    """
    if kind not in ("trades", "quotes"):
        raise ConfigError(f"read_ticks: kind must be 'trades' or 'quotes', got {kind!r}")
    return _source_for(path, {**options, "kind": kind}).frame(kind)
