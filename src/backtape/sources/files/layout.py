"""Column layout of a file: vendor names mapped to canonical roles, the kind guessed, numbers read.

Layouts are recognised by normalised header names (Yahoo ``Date,Open,...,Adj Close,Volume``,
backtrader ``Date,Time?,Open,...,OpenInterest``, generic lower case, vendor tick files); the
``columns``/``ts_column``/``date_column``/``time_column`` options override every guess.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from ...errors import DataFormatError
from .options import DataKind, FileOptions

#: canonical role -> normalised vendor names, in order of preference
ALIASES: dict[str, tuple[str, ...]] = {
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
NUMERIC = {"open", "high", "low", "close", "volume", "vwap", "price", "size", "bid", "ask",
           "bid_size", "ask_size", "dividend", "split"}
ROLES_BY_KIND: dict[str, tuple[str, ...]] = {
    "bars": ("open", "high", "low", "close", "volume", "vwap", "transactions", "dividend", "split"),
    "trades": ("price", "size", "exchange", "conditions", "id"),
    "quotes": ("bid", "ask", "bid_size", "ask_size", "bid_exchange", "ask_exchange"),
}
#: roles each kind cannot do without
REQUIRED: dict[str, tuple[str, ...]] = {"bars": ("open", "high", "low", "close"), "trades": ("price",),
                                        "quotes": ("bid", "ask")}


def norm(name: str) -> str:
    """Normalised column name: lower snake case (``"Adj Close"`` -> ``"adj_close"``)."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def file_symbol(path: Path, opts: FileOptions) -> str:
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


def resolve_roles(columns: list[str], opts: FileOptions) -> dict[str, str]:
    """Map canonical roles (``ts``, ``open``, ``bid``...) to the file's columns."""
    roles: dict[str, str] = {}
    by_norm = {norm(c): c for c in columns}
    for vendor, canonical in opts.columns.items():
        src = vendor if vendor in columns else by_norm.get(norm(vendor))
        if src is None:
            raise DataFormatError(f"option columns: column {vendor!r} not in file; got {', '.join(columns)}")
        roles[canonical] = src
    for role, col in (("ts", opts.ts_column), ("date", opts.date_column), ("time", opts.time_column)):
        if col is not None:
            src = col if col in columns else by_norm.get(norm(col))
            if src is None:
                raise DataFormatError(f"option {role}_column: column {col!r} not in file; "
                                      f"got {', '.join(columns)}")
            roles[role] = src
    used = set(roles.values())
    for role, aliases in ALIASES.items():
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


def guess_kind(roles: dict[str, str], path: Path) -> DataKind:
    """Bars, quotes or trades, from the roles the columns fill."""
    if all(r in roles for r in REQUIRED["bars"]):
        return "bars"
    if "bid" in roles and "ask" in roles:
        return "quotes"
    if "price" in roles:
        return "trades"
    raise DataFormatError(
        f"{path}: cannot tell bars, trades or quotes from columns; expected open/high/low/close, "
        "bid/ask or price/size (pass columns={...} and kind=...)"
    )


def first_bad(mask: pl.Series) -> int | None:
    """Index of the first True of ``mask``, if any."""
    idx = mask.arg_true()
    return int(idx[0]) if idx.len() else None


def where(path: Path, column: str, row: int, first_line: int) -> str:
    """``path, column 'c', line N`` (CSV: ``first_line`` is the file line of row 0) or ``row N``."""
    what = f"line {row + first_line}" if first_line else f"row {row}"
    return f"{path}, column {column!r}, {what}"


def to_float(df: pl.DataFrame, col: str, path: Path, first_line: int, required: bool) -> pl.Series:
    """Column ``col`` as Float64; text that is not a number (or a missing required value) raises."""
    s = df.get_column(col)
    if s.dtype.is_numeric():
        out = s.cast(pl.Float64)
    elif s.dtype == pl.Boolean:
        raise DataFormatError(f"{path}, column {col!r}: boolean values where numbers are expected")
    else:
        try:  # clean numbers (nearly every file): one strict cast, no copies of the text
            out = s.cast(pl.Float64)
        except pl.exceptions.InvalidOperationError:
            stripped = s.str.strip_chars()
            out = stripped.cast(pl.Float64, strict=False)
            bad = first_bad(out.is_null() & s.is_not_null() & (stripped != ""))
            if bad is not None:
                raise DataFormatError(f"{where(path, col, bad, first_line)}: {s[bad]!r} is not a number") \
                    from None
    if required:
        bad = first_bad(out.is_null())
        if bad is not None:
            raise DataFormatError(f"{where(path, col, bad, first_line)}: missing value "
                                  "(truncated or short row?)")
    return out


def extras(df: pl.DataFrame, used: set[str], taken: set[str]) -> list[pl.Series]:
    """Unmapped vendor columns with normalised names and light type inference."""
    out = []
    for col in df.columns:
        if col in used or norm(col) in taken:
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
        out.append(s.alias(norm(col) or "unnamed_0"))
    return out
