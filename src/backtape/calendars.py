"""The one place that talks to exchange calendars: sessions, opens, closes, 24/7 markets.

A ``TradingCalendar`` answers in UTC nanoseconds. Sessions come from ``exchange-calendars``; the
special name ``"24/7"`` gives midnight-to-midnight UTC sessions every day, and ``"FX"`` the foreign
exchange market's: one session per weekday, from 17:00 New York the evening before to 17:00 New York
(Sunday 17:00 opens Monday's), following New York's daylight saving time. Calendars are built once
for a wide range of years, kept on disk (``~/.cache/backtape/calendars``, one ``.npz`` per calendar
and exchange-calendars version, so a fresh process skips building them and importing pandas) and
shared within a process.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import tempfile
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from ._time import NS_PER_DAY, TimeLike, to_ns
from .errors import BacktapeError

ALIASES = {"NYSE": "XNYS", "NASDAQ": "XNAS", "CME": "CMES", "247": "24/7", "CRYPTO": "24/7",
           "FOREX": "FX"}
_FIRST_YEAR, _LAST_YEAR = 1990, 2035
_SLICE = 1 << 20


@dataclass(frozen=True)
class TradingCalendar:
    """Sessions of one exchange as sorted int64 arrays of UTC nanoseconds.

    ``labels`` are the session dates (midnight UTC of the session's local date), ``opens`` and
    ``closes`` its first and last instants, ``break_starts``/``break_ends`` the intraday break
    (equal to the close when there is none); ``tz`` is the exchange's time zone, in which its
    files' naive wall-clock times are read.
    """

    name: str
    labels: np.ndarray
    opens: np.ndarray
    closes: np.ndarray
    break_starts: np.ndarray
    break_ends: np.ndarray
    tz: str = "UTC"

    @property
    def is_24_7(self) -> bool:
        return self.name == "24/7"

    def sessions(self, start: TimeLike, end: TimeLike) -> pl.DataFrame:
        """Sessions overlapping ``[start, end)``: columns ``session`` (date), ``open``, ``close``."""
        s, e = to_ns(start), to_ns(end)
        lo = int(np.searchsorted(self.closes, s, side="right"))
        hi = int(np.searchsorted(self.opens, e, side="left"))
        return pl.DataFrame(
            {
                "session": self.labels[lo:hi],
                "open": self.opens[lo:hi],
                "close": self.closes[lo:hi],
            }
        ).with_columns(
            pl.col("session").cast(pl.Datetime("ns")).cast(pl.Date),
            pl.col("open").cast(pl.Datetime("ns", "UTC")),
            pl.col("close").cast(pl.Datetime("ns", "UTC")),
        )

    def session_index(self, ts_ns: np.ndarray) -> np.ndarray:
        """Index of the session each instant falls in (open <= t < close), or -1 outside sessions."""
        ts_ns = np.asarray(ts_ns, dtype=np.int64)
        idx = np.searchsorted(self.opens, ts_ns, side="right") - 1
        ok = (idx >= 0) & (ts_ns < self.closes[np.clip(idx, 0, None)])
        return np.where(ok, idx, -1)

    def outside_sessions(self, ts_ns: np.ndarray, ts_end_ns: np.ndarray) -> np.ndarray:
        """True for each interval ``[ts, ts_end)`` that overlaps no session (or lies in its break).

        Worked through in slices so the temporaries stay small for tens of millions of bars.
        """
        ts_ns, ts_end_ns = np.asarray(ts_ns, dtype=np.int64), np.asarray(ts_end_ns, dtype=np.int64)
        out = np.empty(len(ts_ns), dtype=bool)
        last = len(self.closes) - 1
        for lo in range(0, len(ts_ns), _SLICE):
            ts, te = ts_ns[lo:lo + _SLICE], ts_end_ns[lo:lo + _SLICE]
            idx = np.searchsorted(self.closes, ts, side="right")  # first session closing after ts
            i = np.minimum(idx, last)
            overlaps = (idx <= last) & (self.opens[i] < te)
            in_break = (self.break_starts[i] < self.break_ends[i]) & (self.break_starts[i] <= ts) \
                & (te <= self.break_ends[i])
            out[lo:lo + _SLICE] = ~overlaps | in_break
        return out

    def session_for_label(self, label_ns: int) -> int:
        """Index of the session whose date label is ``label_ns`` (midnight UTC), or -1."""
        i = int(np.searchsorted(self.labels, label_ns))
        return i if i < len(self.labels) and self.labels[i] == label_ns else -1

    def last_closed_session(self, now: TimeLike) -> int:
        """Index of the last session whose close is at or before ``now`` (-1 if none)."""
        return int(np.searchsorted(self.closes, to_ns(now), side="right")) - 1

    def is_open(self, t: TimeLike) -> bool:
        """True when ``t`` is inside a session (breaks count as closed)."""
        t_ns = to_ns(t)
        i = int(self.session_index(np.array([t_ns]))[0])
        return i >= 0 and not (self.break_starts[i] <= t_ns < self.break_ends[i])


#: where built exchange calendars are kept between processes
CACHE_DIR = Path.home() / ".cache" / "backtape" / "calendars"
_FIELDS = ("labels", "opens", "closes", "break_starts", "break_ends")


def get_calendar(name: str = "XNYS") -> TradingCalendar:
    """The calendar named ``name``, in any case (``XNYS``, ``cmes``, ``24/7``, ``fx``... aliases ``NYSE``,
    ``crypto``); one object per calendar whatever the spelling."""
    calendar = _calendar(name)
    return calendar if calendar.name == name else _calendar(calendar.name)


@functools.cache
def _calendar(name: str) -> TradingCalendar:
    """``get_calendar`` for one spelling of a name."""
    key = ALIASES.get(name.upper(), name) if isinstance(name, str) else name
    if isinstance(key, str) and key.upper() == "FX":
        key = "FX"
    if key == "24/7":
        start = to_ns(f"{_FIRST_YEAR}-01-01")
        labels = np.arange(start, to_ns(f"{_LAST_YEAR + 1}-01-01"), NS_PER_DAY, dtype=np.int64)
        closes = labels + NS_PER_DAY
        return TradingCalendar("24/7", labels, labels.copy(), closes, closes.copy(), closes.copy(), "UTC")
    if key == "FX":
        return _fx_calendar()
    for guess in dict.fromkeys((key, key.upper())):  # exchange-calendars' names are mostly upper case
        path = _cache_file(guess)
        cached = _load(path, guess) if path is not None else None
        if cached is not None:
            return cached
    calendar = _build(name, key)
    path = _cache_file(calendar.name)
    if path is not None:
        _save(path, calendar)
    return calendar


def _fx_calendar() -> TradingCalendar:
    """Weekday sessions from 17:00 New York the day before to 17:00 New York (DST-aware)."""
    days = pl.date_range(pl.date(_FIRST_YEAR, 1, 1), pl.date(_LAST_YEAR, 12, 31), "1d", eager=True)
    days = days.filter(days.dt.weekday() <= 5)

    def at_five(d: pl.Series) -> np.ndarray:
        local = (d.cast(pl.Datetime("ns")) + timedelta(hours=17)).dt.replace_time_zone("America/New_York")
        return local.dt.convert_time_zone("UTC").dt.epoch("ns").to_numpy().astype(np.int64)

    labels = days.cast(pl.Datetime("ns")).dt.epoch("ns").to_numpy().astype(np.int64)
    opens, closes = at_five(days - timedelta(days=1)), at_five(days)
    return TradingCalendar("FX", labels, opens, closes, closes.copy(), closes.copy(), "America/New_York")


def _cache_file(key: str) -> Path | None:
    """The disk copy of calendar ``key`` for the installed exchange-calendars, or None if unknown."""
    try:
        version = importlib.metadata.version("exchange-calendars")
    except importlib.metadata.PackageNotFoundError:
        return None
    safe = "".join(c if c.isalnum() else "_" for c in key)
    return CACHE_DIR / f"{safe}-{version}-{_FIRST_YEAR}-{_LAST_YEAR}.npz"


def _load(path: Path, key: str) -> TradingCalendar | None:
    """The calendar stored at ``path`` when it is there and whole (anything else: rebuild)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = [np.asarray(data[f], dtype=np.int64) for f in _FIELDS]
            tz = str(data["tz"])  # files written before zones were kept lack it: rebuilt
    except (OSError, KeyError, ValueError, EOFError):
        return None
    if len({len(a) for a in arrays}) != 1 or not len(arrays[0]):
        return None
    labels, opens, closes, break_starts, break_ends = arrays
    return TradingCalendar(key, labels, opens, closes, break_starts, break_ends, tz)


def _save(path: Path, calendar: TradingCalendar) -> None:
    """Store ``calendar`` atomically (a unique temp file renamed into place); failures are ignored."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as fh:
            np.savez(fh, tz=np.array(calendar.tz), **{f: getattr(calendar, f) for f in _FIELDS})
        os.replace(fh.name, path)
    except OSError:
        return


def _build(name: str, key: str) -> TradingCalendar:
    """Sessions of ``key`` (matched without regard to case) from exchange-calendars (imports pandas:
    about a second)."""
    import exchange_calendars as xcals

    known = xcals.get_calendar_names(include_aliases=True)
    key = key if key in known else {k.upper(): k for k in known}.get(key.upper(), key)
    if key not in known:
        raise BacktapeError(
            f"unknown exchange calendar {name!r}; use an exchange-calendars name such as "
            "'XNYS', 'XNAS', 'CMES', 'XLON', or 'FX' or '24/7'"
        )
    with warnings.catch_warnings():  # exchange-calendars' own pandas deprecations are not ours
        warnings.simplefilter("ignore")
        try:
            cal = xcals.get_calendar(key, start=f"{_FIRST_YEAR}-01-01", end=f"{_LAST_YEAR}-12-31")
        except ValueError:  # calendars whose data starts later than _FIRST_YEAR
            cal = xcals.get_calendar(key)
    sched = cal.schedule

    def column(name: str) -> np.ndarray:
        values = sched[name].dt.tz_convert("UTC").dt.tz_localize(None)
        return values.to_numpy(dtype="datetime64[ns]")

    opens = column("open").astype(np.int64)
    closes = column("close").astype(np.int64)
    labels = sched.index.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    bs, be = column("break_start"), column("break_end")
    break_starts = np.where(np.isnat(bs), closes, bs.astype(np.int64))
    break_ends = np.where(np.isnat(be), closes, be.astype(np.int64))
    return TradingCalendar(key, labels, opens, closes, break_starts, break_ends, str(cal.tz))
