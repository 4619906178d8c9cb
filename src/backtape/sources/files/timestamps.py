"""Timestamps of a file mapped to UTC: text or epoch parsing, time zones, bar size and bar bounds.

Naive times are wall-clock times in the ``timezone`` option, else in the zone of the ``calendar``
option when one is given (``2024-01-02 09:30`` with ``calendar="XNYS"`` is 14:30 UTC), else UTC; a
column named as UTC (``timestamp_utc``, ``gmt_time``) is always UTC. Integer epochs are read in
``timestamp_unit`` or a unit guessed from their magnitude. Daily rows become bars of their
calendar session (``ts`` = session open, ``ts_end`` = close); intraday bars get
``ts_end = ts + frequency`` (or ``ts = ts_end - frequency`` when stamped at their end).
"""

from __future__ import annotations

import re
import warnings
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from ..._time import NS_PER_DAY, NS_PER_MINUTE
from ...calendars import get_calendar
from ...errors import DataFormatError, UnsupportedDataError
from ...schema import TS
from ...timeframes import Timeframe
from ...validation import DataQualityWarning, time_zone
from .layout import first_bad, norm, where
from .options import EPOCH_UNITS, FileOptions

_INT64_MAX = 2**63 - 1
_NAMED_UTC = re.compile(r"(^|_)(utc|gmt)($|_)")
#: naive layouts tried before polars' inference (exact: a value must match the whole format)
_COMMON_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")
_UNIT_NAMES = {ns: name for name, ns in EPOCH_UNITS.items()}
#: a day and month in either order before a 4-digit year, e.g. 02/01/2024 or 1.2.2024 9:30
_NUMERIC_DATE = (r"^(?<day_or_month>\d{1,2})(?<sep>[/.-])(?<month_or_day>\d{1,2})[/.-](?<year>\d{4})"
                 r"(?<rest>(?:[ T].*)?)$")
#: column of parsed rows naming their file row once non-session rows were left out
KEPT_ROW = "_row"


def _units_by_magnitude(values: pl.Series) -> pl.Series:
    """Nanoseconds per unit each epoch value suggests: ns from 1e17, us from 1e14, ms from 1e11, else s."""
    mag = values.abs()
    return pl.select(pl.when(mag >= 10**17).then(1).when(mag >= 10**14).then(1_000)
                     .when(mag >= 10**11).then(1_000_000).otherwise(1_000_000_000)).to_series()


def epoch_unit(values: pl.Series, opts: FileOptions) -> int:
    """Nanoseconds per unit of integer epochs: the option, else guessed from the largest value."""
    if opts.timestamp_unit:
        return EPOCH_UNITS[opts.timestamp_unit]
    top = values.abs().max()
    return int(_units_by_magnitude(pl.Series([top or 0], dtype=pl.Int64))[0])


def _epochs(raw: pl.Series, ints: pl.Series, col: str, path: Path, first_line: int,
            opts: FileOptions) -> pl.Series:
    """Integer epochs as ``Datetime('ns')``; values too large, or in another unit than the file's
    (a seconds row in a milliseconds file), raise instead of becoming wrong times."""
    bad = first_bad(ints.is_null() & raw.is_not_null())
    if bad is not None:
        raise DataFormatError(f"{where(path, col, bad, first_line)}: epoch {raw[bad]!r} does not fit "
                              "in 64 bits")
    unit = epoch_unit(ints, opts)
    if opts.timestamp_unit is None:
        bad = first_bad(_units_by_magnitude(ints) != unit)
        if bad is not None:
            looks = _UNIT_NAMES[int(_units_by_magnitude(ints[bad:bad + 1])[0])]
            raise DataFormatError(
                f"{where(path, col, bad, first_line)}: epoch {ints[bad]} looks like {looks} while the "
                f"file's largest is in {_UNIT_NAMES[unit]}; pass timestamp_unit=... if they are one unit")
    bad = first_bad(ints.abs() > _INT64_MAX // unit)
    if bad is not None:
        raise DataFormatError(f"{where(path, col, bad, first_line)}: epoch {ints[bad]} "
                              f"{_UNIT_NAMES[unit]} is beyond the year 2262")
    return (ints * unit).cast(pl.Datetime("ns"))


def parse_ts(raw: pl.Series, col: str, path: Path, first_line: int, opts: FileOptions,
             ts_format: str | None) -> pl.Series:
    """Parse a timestamp column into ``Datetime('ns')``: naive (local wall time) or UTC-aware."""
    missing = first_bad(raw.is_null())
    if missing is not None:
        raise DataFormatError(f"{where(path, col, missing, first_line)}: missing timestamp")
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
            return _epochs(raw, ints, col, path, first_line, opts)
    assert text is not None
    try:
        if ts_format:
            parsed = text.str.to_datetime(ts_format, time_unit="ns", strict=False)
        else:
            known = _common_layout(text)
            if known is None:
                iso = _numeric_dates_as_iso(text, col, path, first_line)
                known = _common_layout(iso) if iso is not None else None
            parsed = known if known is not None else text.str.to_datetime(time_unit="ns", strict=False)
    except pl.exceptions.PolarsError as exc:
        raise DataFormatError(f"{path}, column {col!r}: cannot parse timestamps like {text[0]!r} "
                              f"({str(exc).splitlines()[0]}); pass ts_format=...") from exc
    bad = first_bad(parsed.is_null())
    if bad is not None:
        hint = f" with format {ts_format!r}" if ts_format else "; pass ts_format=..."
        raise DataFormatError(f"{where(path, col, bad, first_line)}: cannot parse timestamp "
                              f"{text[bad]!r}{hint}")
    return parsed


def _common_layout(text: pl.Series) -> pl.Series | None:
    """``text`` parsed with the first of ``_COMMON_FORMATS`` that reads all of it, else None.

    A known format parses about three times faster than polars' per-value inference; a column it
    does not read whole (time zones, mixed layouts) is left to the inference.
    """
    first = text[0]
    for fmt in _COMMON_FORMATS:
        try:
            pl.Series([first]).str.to_datetime(fmt, time_unit="ns", strict=True)
        except pl.exceptions.PolarsError:
            continue
        parsed = text.str.to_datetime(fmt, time_unit="ns", strict=False)
        return parsed if parsed.null_count() == 0 else None
    return None


def _numeric_dates_as_iso(text: pl.Series, col: str, path: Path, first_line: int) -> pl.Series | None:
    """``dd/mm/yyyy`` or ``mm/dd/yyyy`` dates (``/``, ``.`` or ``-``; a time may follow) as ISO text,
    in the order a field above 12 shows; None for other layouts.

    A column in which every date reads both ways (no field above 12: ``02/01/2024`` is 2 January or
    1 February) raises instead of picking one, and so does one that has both orders.
    """
    parts = text.str.extract_groups(_NUMERIC_DATE)
    if parts.struct.field("day_or_month").null_count():
        return None
    first = parts.struct.field("day_or_month").cast(pl.Int32)
    second = parts.struct.field("month_or_day").cast(pl.Int32)
    day_first, month_first = first_bad(first > 12), first_bad(second > 12)
    sep = parts.struct.field("sep")[0]
    formats = f"ts_format='%d{sep}%m{sep}%Y' (day first) or ts_format='%m{sep}%d{sep}%Y' (month first)"
    if day_first is not None and month_first is not None:
        raise DataFormatError(f"{where(path, col, max(day_first, month_first), first_line)}: date "
                              f"{text[max(day_first, month_first)]!r} has the day and month in the other "
                              f"order than {text[min(day_first, month_first)]!r}; pass {formats}")
    if day_first is None and month_first is None:
        raise DataFormatError(f"{path}, column {col!r}: dates like {text[0]!r} read as day/month and as "
                              f"month/day (no day above 12 tells which); pass {formats}")
    order = "${year}-${month_or_day}-${day_or_month}" if day_first is not None else \
        "${year}-${day_or_month}-${month_or_day}"
    return text.str.replace(_NUMERIC_DATE, order + "${rest}")


def naive_zone(timezone: str | None, calendar: str | None, ts_col: str) -> str | None:
    """Zone of naive times: ``timezone`` (option or layout default), else the given calendar's zone
    unless the column is named as UTC, else None (UTC)."""
    if timezone or calendar is None or _NAMED_UTC.search(norm(ts_col)):
        return timezone
    return get_calendar(calendar).tz


def to_utc(ts: pl.Series, path: Path, timezone: str | None) -> pl.Series:
    """Naive wall-clock times in ``timezone`` (default UTC) -> UTC; aware ones are converted."""
    if time_zone(ts.dtype) is not None:
        return ts.dt.convert_time_zone("UTC")
    try:
        return ts.dt.replace_time_zone(timezone or "UTC", ambiguous="raise", non_existent="raise") \
            .dt.convert_time_zone("UTC")
    except pl.exceptions.PolarsError as exc:
        raise DataFormatError(f"{path}: timestamps are not valid in time zone {timezone!r} "
                              f"({str(exc).splitlines()[0]}); pass timezone=... (e.g. 'UTC')") from exc


def infer_frequency(ts: pl.Series, symbols: pl.Series, path: Path) -> Timeframe:
    """Bar size from the median spacing of consecutive bars of each symbol (``ts``: UTC times).

    A file of one symbol in time order (the usual case) is measured in place, without a sort.
    """
    t = ts.to_physical()
    if symbols.n_unique() == 1 and t.is_sorted():
        diffs = t.diff()
    else:
        frame = pl.DataFrame({"symbol": symbols, "t": t}).sort("symbol", "t")
        diffs = frame.select(pl.col("t").diff().over("symbol")).to_series()
    median = diffs.filter(diffs > 0).median()
    if median is None:
        raise DataFormatError(f"{path}: cannot infer the bar frequency from one bar; pass frequency=...")
    median = int(median)  # type: ignore[arg-type]
    if median >= 20 * 3_600_000_000_000 and median <= 4 * NS_PER_DAY:
        return Timeframe.parse("1d")
    if median % NS_PER_MINUTE or median > 4 * NS_PER_DAY:
        apart = (f"{median / NS_PER_DAY:,.1f} days" if median >= NS_PER_DAY
                 else f"{median / 1e9:,g} seconds")
        raise DataFormatError(f"{path}: rows are {apart} apart (the median spacing), not a bar size "
                              "backtape infers; pass frequency=... (e.g. 1w, 1mo) or check the dates")
    return Timeframe.parse(f"{median // NS_PER_MINUTE}min")


def bar_times(cols: dict[str, pl.Series], parsed_ts: pl.Series, path: Path, opts: FileOptions,
              timezone: str | None, first_line: int, ts_col: str
              ) -> tuple[dict[str, pl.Series], Timeframe]:
    """Set ``ts``/``ts_end`` of bars: calendar sessions for daily rows, ``ts + frequency`` intraday
    (naive intraday times read in ``naive_zone``: the calendar's zone when one is given).

    Daily rows on dates that are not sessions raise, or with ``on_non_session="drop"`` are left out
    with a warning; the kept rows' file rows are then given in column ``KEPT_ROW``.
    """
    naive_midnight = time_zone(parsed_ts.dtype) is None and bool(
        (parsed_ts.to_physical() % NS_PER_DAY == 0).all())
    if naive_midnight:  # dates: daily unless the option or the spacing says otherwise
        stamped = parsed_ts.dt.replace_time_zone("UTC")
    else:
        stamped = to_utc(parsed_ts, path, naive_zone(timezone, opts.calendar, ts_col))
    if opts.frequency is not None:
        frequency = Timeframe.parse(opts.frequency)
    elif naive_midnight and parsed_ts.len() == 1:
        frequency = Timeframe.parse("1d")
    else:
        frequency = infer_frequency(stamped, cols["symbol"], path)
    if frequency.unit == "w":
        raise UnsupportedDataError(f"{path}: weekly bar files are not supported; load daily bars")
    if frequency.unit == "d":
        return _session_times(cols, parsed_ts, opts, timezone, path, ts_col, first_line), frequency
    if naive_midnight:
        stamped = to_utc(parsed_ts, path, naive_zone(timezone, opts.calendar, ts_col))
    step = timedelta(microseconds=frequency.nanos // 1000)
    if opts.stamp == "end":
        cols["ts"], cols["ts_end"] = (stamped - step).alias("ts"), stamped.alias("ts_end")
    else:
        cols["ts"], cols["ts_end"] = stamped.alias("ts"), (stamped + step).alias("ts_end")
    return cols, frequency


def _session_times(cols: dict[str, pl.Series], parsed_ts: pl.Series, opts: FileOptions,
                   timezone: str | None, path: Path, ts_col: str, first_line: int) -> dict[str, pl.Series]:
    """Daily rows as bars of their calendar session: ``ts`` its open, ``ts_end`` its close."""
    local = parsed_ts if time_zone(parsed_ts.dtype) is None \
        else parsed_ts.dt.convert_time_zone(timezone or "UTC")
    labels = local.dt.date().cast(pl.Datetime("ns")).dt.epoch("ns").to_numpy()
    cal = get_calendar(opts.session_calendar)
    idx = np.searchsorted(cal.labels, labels)
    found = (idx < len(cal.labels)) & (cal.labels[np.clip(idx, 0, len(cal.labels) - 1)] == labels)
    if not found.all():
        bad = np.flatnonzero(~found)
        dates = local.dt.date().gather(bad[:3]).cast(pl.String).to_list()
        msg = (f"{where(path, ts_col, int(bad[0]), first_line)}: {len(bad)} date(s) are not "
               f"sessions of calendar {cal.name!r} (first: {', '.join(dates)})")
        if opts.on_non_session == "raise":
            raise DataFormatError(msg + "; pass calendar='24/7' or another calendar, "
                                  "or on_non_session='drop'")
        warnings.warn(msg + "; dropped", DataQualityWarning, stacklevel=5)
        keep = np.flatnonzero(found)
        cols = {k: v.gather(keep) for k, v in cols.items()}
        cols[KEPT_ROW] = pl.Series(KEPT_ROW, keep, pl.UInt32)
        idx = idx[keep]
    cols["ts"] = pl.Series("ts", cal.opens[idx]).cast(TS)
    cols["ts_end"] = pl.Series("ts_end", cal.closes[idx]).cast(TS)
    return cols
