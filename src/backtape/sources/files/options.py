"""Reading options of file sources: one frozen set, checked when built, with a stable identity.

==================  ==================================================================================
option              meaning
==================  ==================================================================================
``symbol``          symbol of every row (else a ``symbol``/``ticker`` column, else the file name)
``symbol_pattern``  regex applied to the file name; group ``symbol`` (or group 1) is the symbol
``columns``         mapping vendor column -> canonical name (``ts``, ``date``, ``time``, ``open``...)
``kind``            ``bars`` | ``trades`` | ``quotes`` (default: guessed from the columns)
``timezone``        zone of naive timestamps (``America/New_York``, ``Etc/GMT+5``...; default: the
                    ``calendar``'s zone when one is given, else UTC; a column named ``*_utc`` or
                    ``gmt_*`` is UTC)
``ts_format``       strptime format of the timestamp (of ``date + " " + time`` for split columns)
``date_column``     column holding the date; ``time_column`` the time of day, when split
``ts_column``       column holding the timestamp, when the guess is wrong
``timestamp_unit``  unit of integer epochs: ``s`` ``ms`` ``us`` ``ns`` (default: by magnitude)
``frequency``       bar size of the file (default: median spacing; date-only rows are ``1d``)
``calendar``        exchange calendar (``XNYS``, ``CMES``, ``FX``, ``24/7``...): the sessions of daily
                    rows (``XNYS`` when not given); when given, also the zone of naive intraday
                    times and the sessions intraday bars must fall in (``outside_session``)
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
                    validation rule (see ``backtape.sources.files.screen``)
==================  ==================================================================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from ...errors import ConfigError
from ...timeframes import Timeframe
from ...validation import OnInvalid

DataKind = Literal["bars", "trades", "quotes"]
#: nanoseconds per unit of an integer epoch
EPOCH_UNITS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
#: sessions of daily rows when no calendar is given
DEFAULT_CALENDAR = "XNYS"


@dataclass(frozen=True)
class FileOptions:
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
    calendar: str | None = None
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
    def from_kwargs(cls, options: Mapping[str, Any]) -> FileOptions:
        """Build options, rejecting unknown names and impossible values with a clear message."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        opts = dict(options)
        if isinstance(opts.get("names"), str):  # names=Date,Open,... from the command line
            opts["names"] = opts["names"].split(",")
        if opts.get("names") is not None:
            opts["names"] = tuple(opts["names"])
        if opts.get("separator") == "\\t":  # separator=\t as typed in a shell
            opts["separator"] = "\t"
        out = cls(**opts)
        _check_types(out)
        _check_choice("kind", out.kind, (None, "bars", "trades", "quotes"))
        _check_choice("stamp", out.stamp, ("start", "end"))
        _check_choice("on_non_session", out.on_non_session, ("raise", "drop"))
        _check_choice("on_invalid", out.on_invalid, ("raise", "drop", "warn"))
        _check_choice("adjusted", out.adjusted, (False, True, "splits"))
        _check_choice("timestamp_unit", out.timestamp_unit, (None, *EPOCH_UNITS))
        if out.frequency is not None:
            Timeframe.parse(out.frequency)
        return out

    @property
    def session_calendar(self) -> str:
        """The calendar of daily sessions and aggregation: the option, else ``XNYS``."""
        return self.calendar or DEFAULT_CALENDAR

    def identity(self) -> str:
        """Stable text of the options, for cache identities."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["columns"] = dict(sorted(dict(self.columns).items()))
        return json.dumps(values, sort_keys=True, default=str)


def _check_types(out: FileOptions) -> None:
    """Options of the wrong shape fail here, naming the option, not later inside the reader."""
    if not isinstance(out.columns, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in out.columns.items()):
        raise ConfigError(f"option columns must map file column names to canonical names, e.g. "
                          f"columns='{{\"Date\": \"ts\"}}', got {out.columns!r}")
    if out.names is not None and not all(isinstance(n, str) and n for n in out.names):
        raise ConfigError(f"option names must be column names, e.g. names=Date,Open,High,Low,Close,Volume, "
                          f"got {out.names!r}")
    if out.separator is not None and not (isinstance(out.separator, str) and len(out.separator) == 1):
        raise ConfigError(f"option separator must be one character such as ',' or ';', got {out.separator!r}")
    for name in ("has_header", "keep_extra"):
        value = getattr(out, name)
        if value is not None and not isinstance(value, bool):
            raise ConfigError(f"option {name} must be true or false, got {value!r}")
    if out.timezone is not None:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(str(out.timezone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"option timezone={out.timezone!r} is not a time zone; use an IANA name "
                              "such as 'America/New_York' or 'UTC'") from exc


def _check_choice(name: str, value: object, allowed: tuple[object, ...]) -> None:
    if not any(value is a or (value == a and type(value) is type(a)) for a in allowed):
        raise ConfigError(f"option {name}={value!r} is invalid; use one of {', '.join(map(repr, allowed))}")
