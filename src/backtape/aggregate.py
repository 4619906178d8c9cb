"""Session-aware aggregation: fine bars (or trades) to coarser bars that follow the exchange's sessions.

Rules
-----
* **Intraday bars** (``Nmin``, ``Nh``) are anchored at the session open: NYSE 5-minute bars start at
  09:30, 09:35...; 1-hour bars at 09:30, 10:30... 15:30, and the last one is cut at the close, so
  ``ts_end = min(ts + N, session close)``. A session with an intraday break is two segments (open to
  break start, break end to close): bars restart at the break end and never span the break.
* **Daily bars** belong to their session: ``ts`` = session open, ``ts_end`` = session close, also when
  the session opens on the previous UTC day (CME Globex opens 17:00 Chicago the evening before).
* **Weekly bars** gather the sessions of one ISO week (Monday to Sunday, by session date): ``ts`` =
  that week's first session open, ``ts_end`` = its last session close, both from the calendar (so a
  week with missing data still ends when the exchange's week ends).
* Early closes and DST come from the calendar's actual opens and closes (UTC nanoseconds).
* ``calendar=None`` means ``"24/7"``: sessions midnight to midnight UTC every day, right for crypto.
  For exchange-traded data pass the source's calendar (``source.calendar``, e.g. ``"XNYS"``).
* Input outside every session (pre- and post-market, intraday breaks) is dropped by default. With
  ``include_outside=True`` (intraday timeframes only) each gap between sessions is binned on its
  own, anchored at the gap's start and cut at the next open, so such bars never mix with session bars.
* Empty bins produce no bar (no forward fill).
* Every input bar must fit inside one output bar (``ts_end <= bin end``), which holds when the input
  is finer than the output and aligned to it (1min -> 5min, 5min -> 15min, 1h -> 1d); otherwise
  ``TimeframeError`` names the first bar that does not fit.

Values: ``open`` first, ``high`` max, ``low`` min, ``close`` last, ``volume`` sum, ``transactions``
sum (null when all inputs are null), ``vwap`` = sum(p * volume) / sum(volume) where p is the input
bar's ``vwap``, or its ``close`` when the vwap is null (an approximation); null when volume is 0.
From trades: ``vwap`` = sum(price * size) / sum(size), ``transactions`` = number of trades.

The work is vectorized: ``calendar.session_index`` (numpy searchsorted) finds each row's session,
integer arithmetic its bin, and ``ufunc.reduceat`` reduces the sorted runs of equal (symbol, bin).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ._time import NS_PER_DAY, format_ns
from .calendars import TradingCalendar, get_calendar
from .errors import InvalidRangeError, NoDataError, TimeframeError
from .schema import BAR_SCHEMA, TS, conform, empty
from .timeframes import Timeframe
from .validation import sort_by_symbol_ts

CalendarLike = str | TradingCalendar | None


def aggregate(
    bars: pl.DataFrame,
    timeframe: str | Timeframe,
    calendar: CalendarLike = None,
    *,
    include_outside: bool = False,
) -> pl.DataFrame:
    """Aggregate canonical ``bars`` (any number of symbols) to ``timeframe`` by exchange session.

    ``calendar`` is a calendar name (``"XNYS"``, ``"CMES"``, ``"24/7"``...) or a ``TradingCalendar``;
    ``None`` means ``"24/7"``. Returns canonical bars sorted by (symbol, ts).
    """
    tf, cal = _setup(timeframe, calendar, include_outside)
    df = sort_by_symbol_ts(conform(bars, "bars", sort=False))
    if df.height == 0:
        return empty("bars")
    ts = _ns(df, "ts")
    start, end, keep = _bins(cal, ts, tf, include_outside)
    _check_fit(df, _ns(df, "ts_end"), end, keep, tf)
    df, start, end = _keep(df, start, end, keep, cal, include_outside)
    starts = _run_starts(df, start)
    volume = df.get_column("volume").to_numpy()
    price = df.select(pl.coalesce("vwap", "close")).to_series().to_numpy()
    transactions = df.get_column("transactions")
    counted = np.add.reduceat(transactions.is_not_null().to_numpy().astype(np.int64), starts)
    summed = np.add.reduceat(transactions.fill_null(0).to_numpy(), starts)
    ohlc = tuple(df.get_column(c).to_numpy() for c in ("open", "high", "low", "close"))
    bars_out = _frame(df, starts, start, end, ohlc, volume, price * volume, summed)
    return bars_out.with_columns(
        pl.when(pl.Series(counted) > 0).then(pl.col("transactions")).alias("transactions")
    )


def trades_to_bars(
    trades: pl.DataFrame,
    timeframe: str | Timeframe,
    calendar: CalendarLike = None,
    *,
    include_outside: bool = False,
) -> pl.DataFrame:
    """Build canonical bars from canonical ``trades`` with the same session rules as ``aggregate``.

    OHLC from trade prices in exchange order, volume = sum of sizes, ``vwap`` = sum(price * size) /
    sum(size), ``transactions`` = number of trades.
    """
    tf, cal = _setup(timeframe, calendar, include_outside)
    df = sort_by_symbol_ts(conform(trades, "trades", sort=False))
    if df.height == 0:
        return empty("bars")
    start, end, keep = _bins(cal, _ns(df, "ts"), tf, include_outside)
    df, start, end = _keep(df, start, end, keep, cal, include_outside)
    starts = _run_starts(df, start)
    price = df.get_column("price").to_numpy()
    size = df.get_column("size").to_numpy()
    counts = np.diff(np.append(starts, df.height))
    return _frame(df, starts, start, end, (price, price, price, price), size, price * size, counts)


def _setup(
    timeframe: str | Timeframe, calendar: CalendarLike, include_outside: bool
) -> tuple[Timeframe, TradingCalendar]:
    """Parse the timeframe, resolve the calendar and reject option combinations that mean nothing."""
    tf = Timeframe.parse(timeframe)
    if include_outside and not tf.is_intraday:
        raise TimeframeError(
            f"include_outside=True applies to intraday timeframes only; a {tf} bar is made of "
            "sessions, and bars outside sessions belong to none"
        )
    if calendar is None:
        return tf, get_calendar("24/7")
    return tf, calendar if isinstance(calendar, TradingCalendar) else get_calendar(calendar)


def _ns(df: pl.DataFrame, name: str) -> np.ndarray:
    """A timestamp column as int64 UTC nanoseconds."""
    return df.get_column(name).to_physical().to_numpy()


def _bins(
    cal: TradingCalendar, ts: np.ndarray, tf: Timeframe, include_outside: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start and end (UTC ns) of the output bar holding each instant, and which instants are kept."""
    if ts.size and (ts.min() < cal.opens[0] or ts.max() >= cal.closes[-1]):
        raise InvalidRangeError(
            f"data from {format_ns(int(ts.min()))} to {format_ns(int(ts.max()))} lies outside the "
            f"{cal.name} calendar ({format_ns(int(cal.opens[0]))} to {format_ns(int(cal.closes[-1]))})"
        )
    idx = cal.session_index(ts)
    inside = idx >= 0
    i = np.where(inside, idx, 0)
    if tf.unit == "d":
        return cal.opens[i], cal.closes[i], inside
    if tf.unit == "w":
        week = (cal.labels // NS_PER_DAY + 3) // 7  # ISO weeks: 1970-01-05 (day 4) was a Monday
        first = np.searchsorted(week, week[i], side="left")
        last = np.searchsorted(week, week[i], side="right") - 1
        return cal.opens[first], cal.closes[last], inside
    in_break = inside & (ts >= cal.break_starts[i]) & (ts < cal.break_ends[i])
    inside &= ~in_break
    after_break = ts >= cal.break_ends[i]
    seg_start = np.where(after_break, cal.break_ends[i], cal.opens[i])
    seg_end = np.where(after_break, cal.closes[i], cal.break_starts[i])
    if include_outside:
        gap = np.clip(np.searchsorted(cal.opens, ts, side="right") - 1, 0, len(cal.opens) - 2)
        seg_start = np.where(in_break, cal.break_starts[i], np.where(inside, seg_start, cal.closes[gap]))
        seg_end = np.where(in_break, cal.break_ends[i], np.where(inside, seg_end, cal.opens[gap + 1]))
    step = tf.nanos
    start = seg_start + (ts - seg_start) // step * step
    end = np.minimum(start + step, seg_end)
    return start, end, np.ones_like(inside) if include_outside else inside


def _check_fit(
    df: pl.DataFrame, ts_end: np.ndarray, end: np.ndarray, keep: np.ndarray, tf: Timeframe
) -> None:
    """Raise ``TimeframeError`` when an input bar does not fit in the output bar it starts in."""
    bad = np.flatnonzero(keep & (ts_end > end))
    if bad.size:
        k = int(bad[0])
        start_ns = int(_ns(df, "ts")[k])
        raise TimeframeError(
            f"cannot aggregate to {tf}: input bar {df.get_column('symbol')[k]} "
            f"[{format_ns(start_ns)}, {format_ns(int(ts_end[k]))}) ends after its {tf} bar "
            f"[..., {format_ns(int(end[k]))}); {bad.size:,} input bar(s) do not fit. The input must be "
            f"finer than {tf} and aligned to its session-anchored bins"
        )


def _keep(
    df: pl.DataFrame, start: np.ndarray, end: np.ndarray, keep: np.ndarray,
    cal: TradingCalendar, include_outside: bool,
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Rows inside sessions; ``NoDataError`` when none is, which usually means the wrong calendar."""
    if keep.all():
        return df, start, end
    if not keep.any():
        raise NoDataError(
            f"none of the {df.height:,} input rows falls inside a {cal.name} session; pass the "
            "calendar of the data's exchange (calendar='24/7' for crypto) or include_outside=True"
        )
    return df.filter(pl.Series(keep)), start[keep], end[keep]


def _run_starts(df: pl.DataFrame, start: np.ndarray) -> np.ndarray:
    """Indices where a new (symbol, bin) run begins in rows sorted by (symbol, ts)."""
    new_symbol = df.select(pl.col("symbol").ne_missing(pl.col("symbol").shift(1))).to_series().to_numpy()
    new_bin = np.empty(start.size, dtype=bool)
    new_bin[0] = True
    np.not_equal(start[1:], start[:-1], out=new_bin[1:])
    return np.flatnonzero(new_symbol | new_bin)


def _frame(
    df: pl.DataFrame, starts: np.ndarray, start: np.ndarray, end: np.ndarray,
    ohlc: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    volume: np.ndarray, pv: np.ndarray, transactions: np.ndarray,
) -> pl.DataFrame:
    """Reduce each run (rows ``starts[k]`` up to the next start) to one canonical bar.

    ``ohlc`` are the per-row open, high, low and close inputs, ``pv`` price times volume for the
    vwap, ``transactions`` the already reduced count per run.
    """
    o, h, lo, c = ohlc
    last = np.append(starts[1:], df.height) - 1
    vol = np.add.reduceat(volume, starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = np.add.reduceat(pv, starts) / vol
    out = pl.DataFrame(
        {
            "symbol": df.get_column("symbol").gather(starts),
            "ts": start[starts],
            "ts_end": end[starts],
            "open": o[starts],
            "high": np.maximum.reduceat(h, starts),
            "low": np.minimum.reduceat(lo, starts),
            "close": c[last],
            "volume": vol,
            "vwap": vwap,
            "transactions": transactions,
        }
    )
    return out.with_columns(
        pl.col("ts", "ts_end").cast(TS),
        pl.when(pl.col("volume") != 0).then(pl.col("vwap")).alias("vwap"),
    ).cast(dict(BAR_SCHEMA))  # type: ignore[arg-type]
