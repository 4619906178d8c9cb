"""Canonical market-data schemas: the one shape every source produces and every consumer reads.

Conventions
-----------
* Every timestamp is ``Datetime("ns", "UTC")``: nanoseconds, UTC, never naive.
* A bar covers the half-open interval ``[ts, ts_end)``. ``ts`` is the interval start; ``ts_end`` is
  the instant the bar is complete and may be seen. A consumer whose clock is ``t`` sees a bar only
  if ``ts_end <= t``. Intraday bars start at the minute (or session-anchored multiple); daily bars
  start at their session's open and end at its close, so a daily bar belongs to its exchange
  session, not to a UTC date. A 24/7 market's daily session runs midnight to midnight UTC.
* Prices and volumes are ``Float64`` (volumes may be fractional: crypto, flat files). ``vwap`` and
  ``transactions`` are nullable because many vendors omit them.
* Rows are sorted by ``(symbol, ts)`` and ``(symbol, ts)`` is unique for bars.
* Ranges are half-open everywhere: a request ``[start, end)`` returns rows with
  ``start <= ts < end``.
* Trades and quotes carry the event time ``ts``; several events may share one timestamp, and their
  order in the file (the exchange sequence) is kept.
* Prices are stored raw; splits and dividends live beside them (``CORPORATE_ACTIONS``) and are
  applied on read, as of the reader's clock.

==========  =====================================================================================
kind        columns
==========  =====================================================================================
bars        symbol, ts, ts_end, open, high, low, close, volume, vwap?, transactions?
trades      symbol, ts, price, size, exchange?, conditions?, id?
quotes      symbol, ts, bid, ask, bid_size, ask_size, bid_exchange?, ask_exchange?
actions     symbol, ts (ex-date session open), action ("split" | "dividend"), value
==========  =====================================================================================

``?`` marks nullable columns. A split's ``value`` is the share ratio (7.0 for a 7-for-1 split); a
dividend's is the cash amount per share, in the same (raw) price terms as the bars around it.
"""

from __future__ import annotations

from typing import Literal

import polars as pl

TS = pl.Datetime("ns", "UTC")

BAR_SCHEMA = pl.Schema(
    {
        "symbol": pl.String(),
        "ts": TS,
        "ts_end": TS,
        "open": pl.Float64(),
        "high": pl.Float64(),
        "low": pl.Float64(),
        "close": pl.Float64(),
        "volume": pl.Float64(),
        "vwap": pl.Float64(),
        "transactions": pl.Int64(),
    }
)

TRADE_SCHEMA = pl.Schema(
    {
        "symbol": pl.String(),
        "ts": TS,
        "price": pl.Float64(),
        "size": pl.Float64(),
        "exchange": pl.String(),
        "conditions": pl.String(),
        "id": pl.String(),
    }
)

QUOTE_SCHEMA = pl.Schema(
    {
        "symbol": pl.String(),
        "ts": TS,
        "bid": pl.Float64(),
        "ask": pl.Float64(),
        "bid_size": pl.Float64(),
        "ask_size": pl.Float64(),
        "bid_exchange": pl.String(),
        "ask_exchange": pl.String(),
    }
)

CORPORATE_ACTION_SCHEMA = pl.Schema(
    {
        "symbol": pl.String(),
        "ts": TS,
        "action": pl.String(),
        "value": pl.Float64(),
    }
)

Kind = Literal["bars", "trades", "quotes", "actions"]
#: The tick kinds: events rather than bars.
TickKind = Literal["trades", "quotes"]

SCHEMAS: dict[str, pl.Schema] = {
    "bars": BAR_SCHEMA,
    "trades": TRADE_SCHEMA,
    "quotes": QUOTE_SCHEMA,
    "actions": CORPORATE_ACTION_SCHEMA,
}

#: Columns that may be absent from an input and are then filled with nulls.
OPTIONAL_COLUMNS: dict[str, frozenset[str]] = {
    "bars": frozenset({"vwap", "transactions"}),
    "trades": frozenset({"exchange", "conditions", "id"}),
    "quotes": frozenset({"bid_exchange", "ask_exchange"}),
    "actions": frozenset(),
}


KINDS: tuple[Kind, ...] = ("bars", "trades", "quotes", "actions")


def parse_kind(text: str) -> Kind:
    """``text`` as a data kind; a ``ConfigError`` naming the choices otherwise."""
    for kind in KINDS:
        if kind == text:
            return kind
    from .errors import ConfigError

    raise ConfigError(f"unknown data kind {text!r}; use one of {', '.join(KINDS)}")


def empty(kind: Kind) -> pl.DataFrame:
    """An empty frame of the canonical schema for ``kind``."""
    return pl.DataFrame(schema=SCHEMAS[kind])


def conform(df: pl.DataFrame, kind: Kind, *, sort: bool = True) -> pl.DataFrame:
    """Cast ``df`` to the canonical schema of ``kind``: column order, dtypes, missing optionals.

    Raises ``DataFormatError`` naming the missing required columns. Timestamps must already be
    UTC-aware (or UTC nanosecond integers); naive timestamps are rejected by validation, not guessed.
    """
    from .errors import DataFormatError

    schema = SCHEMAS[kind]
    missing = [c for c in schema if c not in df.columns and c not in OPTIONAL_COLUMNS[kind]]
    if missing:
        raise DataFormatError(
            f"{kind}: missing required column(s) {', '.join(missing)}; got {', '.join(df.columns)}"
        )
    exprs = []
    for name, dtype in schema.items():
        if name not in df.columns:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
        elif df.schema[name] == dtype:
            exprs.append(pl.col(name))
        elif dtype == TS and df.schema[name].is_integer():
            exprs.append(pl.col(name).cast(pl.Int64).cast(TS).alias(name))
        elif dtype == TS and isinstance(src := df.schema[name], pl.Datetime):
            col = pl.col(name)
            if src.time_zone is None:
                raise DataFormatError(f"{kind}: column {name!r} is naive; timestamps must be UTC-aware")
            exprs.append(col.dt.convert_time_zone("UTC").dt.cast_time_unit("ns").alias(name))
        else:
            exprs.append(pl.col(name).cast(dtype, strict=True).alias(name))
    try:
        out = df.select(exprs)
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
        wrong = ", ".join(f"{c} ({df.schema[c]})" for c in schema
                          if c in df.columns and df.schema[c] != schema[c])
        raise DataFormatError(f"{kind}: column(s) {wrong} cannot be read as {kind} values "
                              f"({str(exc).splitlines()[0][:120]})") from exc
    if sort and out.height > 1:
        out = _sorted(out)
    return out


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` stably sorted by (symbol, ts), nulls first, as ``df.sort(["symbol", "ts"],
    maintain_order=True)`` would, but without that multi-column sort when the keys have no nulls.

    ``validation.sort_by_symbol_ts`` (two stable single-key sorts and a gather, and no sort at all
    when the rows are in order) is several times faster on real data; its in-order check cannot see
    nulls, so keys with nulls take the multi-column sort.
    """
    from .validation import sort_by_symbol_ts  # validation imports this module

    if df.get_column("symbol").null_count() or df.get_column("ts").null_count():
        return df.sort(["symbol", "ts"], maintain_order=True)
    return sort_by_symbol_ts(df)
