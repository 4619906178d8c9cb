"""Validation of market data: catch impossible bars, bad ticks and broken order before a backtest.

``validate_bars``, ``validate_trades`` and ``validate_quotes`` check a frame against the invariants of
the canonical schema and return a ``QualityReport``. Every check is a vectorized Polars expression
(no Python loop over rows), so ten million rows validate in a few seconds.

=========================  =========================================================  ===============
rule                       meaning                                                    kinds
=========================  =========================================================  ===============
``missing_value``          null in a required column, NaN or infinity in a number     all
                           (quote sizes may be null: many venues, e.g. FX, omit them;
                           so may a bar volume when the symbol has no volume at all)
``non_positive_price``     a price (open/high/low/close, price, bid/ask) <= 0         all
``negative_volume``        volume < 0                                                 bars
``negative_size``          size, bid_size or ask_size < 0                             trades, quotes
``high_below_low``         high < low                                                 bars
``high_below_open_close``  high < max(open, close)                                    bars
``low_above_open_close``   low > min(open, close)                                     bars
``ts_end_not_after_ts``    ts_end <= ts (a bar must end after it starts)              bars
``duplicate``              a later row repeats an earlier row's (symbol, ts)          bars
``unsorted``               the row sorts before the previous one by (symbol, ts)      all
``crossed_quote``          bid > ask (a locked quote, bid == ask, is allowed)         quotes
``timestamp_not_utc``      a timestamp column is naive or in another time zone        all
``outside_session``        an intraday bar overlapping no session of ``calendar``     bars, with
                           (checked only when a calendar is given)                    ``calendar``
=========================  =========================================================  ===============

Trades and quotes may share a timestamp (several events in one nanosecond), so ``duplicate`` applies
to bars only. ``timestamp_not_utc`` is a property of the column's dtype: it is reported once per
column with ``row`` and ``symbol`` null, it makes the report not ``ok`` but does not lower ``score``
(which counts rows), and ``"drop"`` cannot repair it (convert the column, e.g. with
``backtape.schema.conform``).

``on_invalid`` chooses what happens when a rule is broken:

* ``"raise"`` (default): raise ``DataValidationError`` naming the first violations (rule, symbol,
  timestamp, row) and the total; ``.violations`` holds them as ``Violation`` records and ``.report``
  the full report.
* ``"warn"``: emit a ``DataQualityWarning`` with the same text and return the report.
* ``"drop"``: return the report whose ``data`` lacks every offending row. Unsorted rows are not
  dropped but put in place: the cleaned frame is sorted by (symbol, ts), keeping input order among
  equal keys, because sorting repairs them without losing data. Of duplicates the first is kept.

A violation that points at another row says so in its ``ref`` column, not only in its text: a
``duplicate`` refers to the first row with its (symbol, ts), an ``unsorted`` row to the row before it.
Readers that rename rows (``backtape.sources.files`` names file lines) map ``row`` and ``ref`` and
rebuild the text from ``REFERENCE_PHRASES``; nothing parses ``detail`` back.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import polars as pl

from ._time import NS_PER_DAY, format_ns
from .calendars import get_calendar
from .errors import BacktapeWarning, DataFormatError, DataValidationError
from .schema import OPTIONAL_COLUMNS, SCHEMAS, TS

OnInvalid = Literal["raise", "drop", "warn"]

#: How many violations an error or warning message lists before summarising the rest.
MESSAGE_LIMIT = 20
#: How many violations a ``DataValidationError`` carries as dicts (the report has them all).
ERROR_RECORD_LIMIT = 10_000

VIOLATION_SCHEMA = pl.Schema(
    [("rule", pl.String()), ("symbol", pl.String()), ("ts", TS), ("row", pl.Int64()), ("ref", pl.Int64()),
     ("detail", pl.String())]
)
#: Text before the referenced place in the ``detail`` of rules that refer to another row.
REFERENCE_PHRASES = {"duplicate": "repeats (symbol, ts) of", "unsorted": "(symbol, ts) sorts before that of"}

_PRICE_COLUMNS = {"bars": ("open", "high", "low", "close"), "trades": ("price",), "quotes": ("bid", "ask")}
_SIZE_COLUMNS = {"bars": ("volume",), "trades": ("size",), "quotes": ("bid_size", "ask_size")}
_SIZE_RULE = {"bars": "negative_volume", "trades": "negative_size", "quotes": "negative_size"}
_ROW = "__row"


class DataQualityWarning(BacktapeWarning):
    """Market data broke a validation rule and ``on_invalid="warn"`` let it through (or ``"drop"``
    removed the rows); printed as one ``warning: ...`` line like every backtape warning."""


@dataclass(frozen=True)
class Violation:
    """One broken rule at one row, with the rows it names as numbers (never to be parsed from text).

    ``row`` is the 0-based input row (null for a property of a whole column); ``ref`` the row it
    refers to (the first row of a ``duplicate``, the previous row of an ``unsorted`` one). Files
    add ``line``/``ref_line``: the CSV file lines of both, header counted. ``ts`` is UTC epoch ns.
    """

    rule: str
    symbol: str | None
    ts: int | None
    row: int | None
    detail: str
    ref: int | None = None
    line: int | None = None
    ref_line: int | None = None

    def __str__(self) -> str:
        if self.row is None:
            return f"{self.rule}: {self.detail}"
        where = f"line {self.line}" if self.line is not None else f"row {self.row}"
        when = "null ts" if self.ts is None else format_ns(self.ts)
        return f"{where} {self.symbol} {when}: {self.rule} ({self.detail})"


def violation_records(violations: pl.DataFrame, limit: int | None = None) -> list[Violation]:
    """The first ``limit`` (default all) rows of a violations frame as ``Violation`` records."""
    shown = violations if limit is None else violations.head(limit)
    shown = shown.with_columns(pl.col("ts").dt.epoch("ns"))
    names = [f for f in Violation.__dataclass_fields__ if f in shown.columns]
    return [Violation(**rec) for rec in shown.select(names).iter_rows(named=True)]


@dataclass(frozen=True)
class QualityReport:
    """What validation found: the data, every violation, counts per rule and a score.

    ``data`` is the input frame (``"raise"``, ``"warn"``) or the cleaned one (``"drop"``).
    ``violations`` has one row per broken rule and row: ``rule, symbol, ts, row, ref, detail`` where
    ``row`` is the 0-based index in the input and ``ref`` the row it refers to, if any (a file's
    report adds ``line`` and ``ref_line``). ``score`` is the fraction of rows without violations.
    """

    kind: str
    rows: int
    data: pl.DataFrame
    violations: pl.DataFrame
    counts: dict[str, int] = field(default_factory=dict)

    def records(self, limit: int | None = None) -> list[Violation]:
        """The first ``limit`` (default all) violations as ``Violation`` records."""
        return violation_records(self.violations, limit)

    @property
    def ok(self) -> bool:
        """True when no rule is broken."""
        return self.violations.height == 0

    @property
    def bad_rows(self) -> int:
        """Number of distinct input rows with at least one violation."""
        return self.violations.get_column("row").drop_nulls().n_unique()

    @property
    def score(self) -> float:
        """Fraction of clean rows, 0..1 (1.0 for an empty frame)."""
        return 1.0 if self.rows == 0 else 1.0 - self.bad_rows / self.rows

    def summary(self) -> str:
        """A readable table: one line per broken rule with its count and first example."""
        status = "OK" if self.ok else "NOT OK"
        head = (
            f"{self.kind} quality: {self.rows:,} rows, {self.violations.height:,} violation(s) in "
            f"{self.bad_rows:,} row(s), score {self.score:.4f} [{status}]"
        )
        if self.ok:
            return head
        firsts = violation_records(self.violations.group_by("rule", maintain_order=True).first())
        width = max(len("rule"), *(len(r) for r in self.counts))
        lines = [head, f"  {'rule':<{width}}  {'count':>10}  first example"]
        for v in firsts:
            lines.append(f"  {v.rule:<{width}}  {self.counts[v.rule]:>10,}  {v}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def validate_bars(df: pl.DataFrame, on_invalid: OnInvalid = "raise", *,
                  calendar: str | None = None) -> QualityReport:
    """Check bars: OHLC consistency, positive prices, volume, ts_end after ts, duplicates, order, UTC;
    with ``calendar`` (``"XNYS"``...) also that intraday bars fall in its sessions."""
    return _validate(df, "bars", on_invalid, calendar)


def validate_trades(df: pl.DataFrame, on_invalid: OnInvalid = "raise") -> QualityReport:
    """Check trades: positive prices, non-negative sizes, no missing values, order, UTC timestamps."""
    return _validate(df, "trades", on_invalid)


def validate_quotes(df: pl.DataFrame, on_invalid: OnInvalid = "raise") -> QualityReport:
    """Check quotes: positive bid/ask, no crossed book (bid > ask), sizes, order, UTC timestamps."""
    return _validate(df, "quotes", on_invalid)


@dataclass(frozen=True)
class _Rule:
    """One check: a boolean ``mask`` (True = broken), the ``detail`` text for broken rows and, for
    rules about two rows, the ``ref`` row they refer to (the detail then names it after the rule's
    ``REFERENCE_PHRASES`` entry)."""

    name: str
    mask: pl.Expr
    detail: pl.Expr
    ref: pl.Expr | None = None

    @classmethod
    def referring(cls, name: str, mask: pl.Expr, ref: pl.Expr) -> _Rule:
        """A rule whose violations point at row ``ref``; its detail is built from that number."""
        return cls(name, mask, pl.format(f"{REFERENCE_PHRASES[name]} row {{}}", ref), ref)


def _validate(df: pl.DataFrame, kind: str, on_invalid: OnInvalid,
              calendar: str | None = None) -> QualityReport:
    """Run every rule of ``kind`` over ``df`` and act on the result as ``on_invalid`` says."""
    if on_invalid not in ("raise", "drop", "warn"):
        raise ValueError(f"on_invalid must be 'raise', 'drop' or 'warn', got {on_invalid!r}")
    ts_columns = _check_columns(df, kind)
    frame_level = _timestamp_violations(df, kind, ts_columns)
    lf = df.lazy().with_row_index(_ROW).with_columns(
        pl.col(_ROW).cast(pl.Int64), pl.col("symbol").cast(pl.String), *(_to_utc(df, c) for c in ts_columns)
    )
    rules = _row_rules(kind, df.schema, volume_nulls=kind == "bars" and df.get_column("volume").has_nulls())
    session = _session_rule(df, calendar) if calendar is not None and kind == "bars" else None
    if session is not None:
        lf = lf.with_columns(*session[1])
        rules.append(session[0])
    counts = _count(lf, rules)
    if kind == "bars":
        dup = _duplicate_rule(already_sorted=counts["unsorted"] == 0)
        rules.append(dup)
        counts.update(_count(lf, [dup]))
    active = [r for r in rules if counts[r.name]]
    parts = [frame_level, *(_collect_rule(lf, r) for r in active)]
    violations = pl.concat(parts).sort("row", nulls_last=False, maintain_order=True)
    final_counts = {"timestamp_not_utc": frame_level.height} if frame_level.height else {}
    final_counts.update({r.name: counts[r.name] for r in active})
    data = _drop(df, violations, counts.get("unsorted", 0)) if on_invalid == "drop" else df
    report = QualityReport(kind=kind, rows=df.height, data=data, violations=violations, counts=final_counts)
    if not report.ok and on_invalid == "raise":
        raise DataValidationError(_message(report), violation_records(violations, ERROR_RECORD_LIMIT), report)
    if not report.ok and on_invalid == "warn":
        warnings.warn(_message(report), DataQualityWarning, stacklevel=3)
    return report


def _check_columns(df: pl.DataFrame, kind: str) -> list[str]:
    """Raise ``DataFormatError`` for missing or mistyped required columns; return timestamp columns."""
    schema = SCHEMAS[kind]
    required = [c for c in schema if c not in OPTIONAL_COLUMNS[kind]]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataFormatError(
            f"{kind}: missing required column(s) {', '.join(missing)}; got {', '.join(df.columns) or 'none'}"
        )
    ts_columns = [c for c in required if schema[c] == TS]
    for name in required:
        dtype = df.schema[name]
        if name in ts_columns and not isinstance(dtype, pl.Datetime):
            raise DataFormatError(
                f"{kind}: column {name!r} has dtype {dtype}; expected Datetime('ns', 'UTC') "
                "(parse timestamps first, e.g. with backtape.schema.conform)"
            )
        if schema[name] == pl.Float64 and not dtype.is_numeric():
            raise DataFormatError(f"{kind}: column {name!r} has dtype {dtype}; expected a number")
        if schema[name] == pl.String and dtype not in (pl.String, pl.Categorical, pl.Enum):
            raise DataFormatError(f"{kind}: column {name!r} has dtype {dtype}; expected text")
    return ts_columns


def _timestamp_violations(df: pl.DataFrame, kind: str, ts_columns: list[str]) -> pl.DataFrame:
    """One ``timestamp_not_utc`` row per naive or non-UTC timestamp column."""
    records = []
    for name in ts_columns:
        tz = time_zone(df.schema[name])
        if tz != "UTC":
            what = "naive (no time zone)" if tz is None else f"in time zone {tz!r}"
            records.append(
                {"rule": "timestamp_not_utc", "symbol": None, "ts": None, "row": None, "ref": None,
                 "detail": f"{kind} column {name!r} is {what}; timestamps must be UTC"}
            )
    return pl.DataFrame(records, schema=VIOLATION_SCHEMA)


def _to_utc(df: pl.DataFrame, name: str) -> pl.Expr:
    """Expression giving column ``name`` as UTC nanoseconds (naive values are read as UTC)."""
    zone = time_zone(df.schema[name])
    col = pl.col(name)
    if zone is None:
        col = col.dt.replace_time_zone("UTC")
    elif zone != "UTC":
        col = col.dt.convert_time_zone("UTC")
    return col.dt.cast_time_unit("ns").alias(name)


def time_zone(dtype: pl.DataType) -> str | None:
    """Time zone of a Datetime dtype (None when naive or not a Datetime)."""
    return dtype.time_zone if isinstance(dtype, pl.Datetime) else None


def _is_bad(name: str, dtype: pl.DataType) -> pl.Expr:
    """Null, or (for floats) NaN or infinite."""
    expr = pl.col(name).is_null()
    if dtype.is_float():
        expr = expr | pl.col(name).is_finite().not_().fill_null(False)
    return expr


def _row_rules(kind: str, schema: pl.Schema, *, volume_nulls: bool = False) -> list[_Rule]:
    """Per-row rules of ``kind`` except ``duplicate`` (which depends on the frame's order)."""
    bad = {c: _is_bad(c, schema[c]) for c in ["symbol", "ts", *_PRICE_COLUMNS[kind], *_SIZE_COLUMNS[kind]]}
    if kind == "quotes":  # quote sizes are unknown for many venues (FX): null is allowed, NaN is not
        bad.update({c: bad[c] & pl.col(c).is_not_null() for c in _SIZE_COLUMNS[kind]})
    elif volume_nulls:  # a symbol without any volume (FX, indices) is fine; a hole in its volumes is not
        bad["volume"] = bad["volume"] & pl.col("volume").is_not_null().any().over("symbol")
    missing = pl.any_horizontal(*bad.values())

    def valid(*columns: str) -> pl.Expr:
        """The row's ``columns`` all hold values, so a rule reading only them can be checked."""
        return pl.all_horizontal(*(bad[c].not_() for c in columns))

    rules = [
        _Rule(
            "missing_value",
            missing,
            pl.format("null, NaN or infinite in {}", pl.concat_str(
                [pl.when(e).then(pl.lit(c)) for c, e in bad.items()], separator=", ", ignore_nulls=True
            )),
        )
    ]
    prices = _PRICE_COLUMNS[kind]
    non_pos = pl.any_horizontal(*(valid(c) & (pl.col(c) <= 0) for c in prices))
    rules.append(_Rule("non_positive_price", non_pos, _list_values(prices, lambda c: pl.col(c) <= 0)))
    sizes = _SIZE_COLUMNS[kind]
    rules.append(
        _Rule(_SIZE_RULE[kind], pl.any_horizontal(*(valid(c) & (pl.col(c) < 0) for c in sizes)),
              _list_values(sizes, lambda c: pl.col(c) < 0))
    )
    if kind == "bars":
        oc_max = pl.max_horizontal("open", "close")
        oc_min = pl.min_horizontal("open", "close")
        rules += [
            _Rule("high_below_low", valid("high", "low") & (pl.col("high") < pl.col("low")),
                  pl.format("high {} < low {}", "high", "low")),
            _Rule("high_below_open_close", valid("open", "high", "close") & (pl.col("high") < oc_max),
                  pl.format("high {} < max(open, close) {}", "high", oc_max)),
            _Rule("low_above_open_close", valid("open", "low", "close") & (pl.col("low") > oc_min),
                  pl.format("low {} > min(open, close) {}", "low", oc_min)),
            _Rule("ts_end_not_after_ts", (pl.col("ts_end") <= pl.col("ts")).fill_null(False),
                  pl.format("ts_end {} <= ts", pl.col("ts_end").dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ"))),
        ]
    if kind == "quotes":
        rules.append(_Rule("crossed_quote", valid("bid", "ask") & (pl.col("bid") > pl.col("ask")),
                           pl.format("bid {} > ask {}", "bid", "ask")))
    rules.append(_Rule.referring("unsorted", _out_of_order(), pl.col(_ROW) - 1))
    return rules


def _session_rule(df: pl.DataFrame, calendar: str) -> tuple[_Rule, list[pl.Series]] | None:
    """``outside_session``: intraday bars (shorter than a day) overlapping no session of ``calendar``
    (a 24/7 calendar has no outside: no rule).

    Returns the rule and the columns it reads (computed here with the calendar's session arrays).
    """
    cal = get_calendar(calendar)
    if cal.is_24_7:
        return None
    ts, ts_end = (df.get_column(c).dt.cast_time_unit("ns").to_physical()  # UTC ns whatever the zone
                  for c in ("ts", "ts_end"))
    intraday = (ts_end - ts < NS_PER_DAY).fill_null(False).to_numpy()
    outside = pl.Series("__outside", intraday & cal.outside_sessions(ts.fill_null(0).to_numpy(),
                                                                     ts_end.fill_null(0).to_numpy()))
    local = pl.col("ts").dt.convert_time_zone(cal.tz).dt.strftime("%Y-%m-%d %H:%M")
    detail = pl.format(f"starts {{}} {cal.tz}, outside every session of calendar {cal.name}", local)
    # eager (the streaming engine panics on this text in polars 2.1), and only for flagged rows
    details = df.select(_to_utc(df, "ts"), outside).select(
        pl.when(pl.col("__outside")).then(detail).alias("__outside_detail")).to_series()
    return _Rule("outside_session", pl.col("__outside"), pl.col("__outside_detail")), [outside, details]


def _list_values(columns: tuple[str, ...], test: Callable[[str], pl.Expr]) -> pl.Expr:
    """Detail text naming each column that fails ``test`` with its value, e.g. ``'low=-1.0'``."""
    parts = [pl.when(test(c)).then(pl.format(f"{c}={{}}", c)) for c in columns]
    return pl.concat_str(parts, separator=", ", ignore_nulls=True)


def _duplicate_rule(*, already_sorted: bool) -> _Rule:
    """Later rows repeating an earlier (symbol, ts); a cheap neighbour test when the frame is sorted."""
    keys = ["symbol", "ts"]
    if already_sorted:
        mask = (pl.col("symbol") == pl.col("symbol").shift(1)) & (pl.col("ts") == pl.col("ts").shift(1))
    else:
        mask = pl.struct(keys).is_first_distinct().not_()
    first = pl.col(_ROW).min().over(keys)
    return _Rule.referring("duplicate", mask.fill_null(False), first)


def _count(lf: pl.LazyFrame, rules: list[_Rule]) -> dict[str, int]:
    """Number of rows breaking each rule, in one pass."""
    row = lf.select([r.mask.sum().alias(r.name) for r in rules]).collect().row(0, named=True)
    return {k: int(v) for k, v in row.items()}


def _collect_rule(lf: pl.LazyFrame, rule: _Rule) -> pl.DataFrame:
    """The violation rows of one rule, in the violation schema."""
    ref = pl.lit(None, pl.Int64) if rule.ref is None else rule.ref
    return (
        lf.with_columns(__detail=rule.detail, __ref=ref)
        .filter(rule.mask)
        .select(
            pl.lit(rule.name).alias("rule"),
            pl.col("symbol"),
            pl.col("ts"),
            pl.col(_ROW).alias("row"),
            pl.col("__ref").alias("ref"),
            pl.col("__detail").alias("detail"),
        )
        .collect()
        .cast(VIOLATION_SCHEMA)
    )


def _drop(df: pl.DataFrame, violations: pl.DataFrame, unsorted: int) -> pl.DataFrame:
    """``df`` without rows that break a rule, sorted by (symbol, ts) if it was out of order."""
    bad = violations.filter(pl.col("rule") != "unsorted").get_column("row").drop_nulls().unique()
    out = df
    if bad.len():
        out = (
            df.with_row_index(_ROW)
            .filter(pl.col(_ROW).cast(pl.Int64).is_in(bad.implode()).not_())
            .drop(_ROW)
        )
    return sort_by_symbol_ts(out) if unsorted else out


def sort_by_symbol_ts(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` sorted by (symbol, ts), keeping input order among equal keys; returned as is if sorted.

    Two stable single-key sorts of the keys and one gather: in Polars this is several times faster
    than a multi-column sort of the whole frame.
    """
    if df.height < 2:
        return df
    symbol = df.get_column("symbol")
    if symbol.null_count() == 0 and (symbol == symbol[0]).all():  # one symbol: no string shifts
        if df.get_column("ts").is_sorted():
            return df
    elif not df.select(_out_of_order().any()).item():
        return df
    keys = df.select(pl.col("symbol").cast(pl.String), "ts").with_row_index(_ROW)
    order = keys.sort("ts", maintain_order=True).sort("symbol", maintain_order=True)
    return df[order.get_column(_ROW)]


def _out_of_order() -> pl.Expr:
    """True where a row sorts before the previous one by (symbol, ts)."""
    sym = pl.col("symbol").cast(pl.String)
    prev_sym, prev_ts = sym.shift(1), pl.col("ts").shift(1)
    earlier = (sym < prev_sym) | ((sym == prev_sym) & (pl.col("ts") < prev_ts))
    return earlier.fill_null(False)


def _message(report: QualityReport) -> str:
    """Error/warning text: totals per rule, then the first violations one per line."""
    counts = ", ".join(f"{rule}: {n:,}" for rule, n in report.counts.items())
    head = f"{report.kind}: {report.violations.height:,} violation(s) in {report.rows:,} rows ({counts})"
    lines = [head, *(f"  {v}" for v in report.records(MESSAGE_LIMIT))]
    extra = report.violations.height - MESSAGE_LIMIT
    if extra > 0:
        lines.append(f"  ... and {extra:,} more")
    return "\n".join(lines)

