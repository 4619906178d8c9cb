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
  week with missing data still ends when the exchange's week ends). ``Nw`` bars gather N ISO weeks,
  ``Nd`` bars N sessions (counted from the calendar's first), and months (``1mo``), quarters
  (``1q``) and years (``1y``) the sessions of each calendar period, the same way.
* Early closes and DST come from the calendar's actual opens and closes (UTC nanoseconds).
* ``calendar=None`` means ``"24/7"``: sessions midnight to midnight UTC every day, right for crypto.
  For exchange-traded data pass the source's calendar (``source.calendar``, e.g. ``"XNYS"``).
* Input outside every session (pre- and post-market, intraday breaks) is dropped by default, for
  every timeframe (so a daily bar equals the aggregate of its intraday bars). With
  ``include_outside=True`` (intraday timeframes only) each gap between sessions is binned on its
  own, anchored at the gap's start and cut at the next open, so such bars never mix with session bars.
* Empty bins produce no bar (no forward fill).
* Input is expected to be valid (see ``backtape.validation``); a null or NaN in a required column raises
  ``DataValidationError`` rather than spreading into the output.
* Every input bar must fit inside one output bar (``ts_end <= bin end``), which holds when the input
  is finer than the output and aligned to it (1min -> 5min, 5min -> 15min, 1h -> 1d); otherwise
  ``TimeframeError`` names the first bar that does not fit.

Values: ``open`` first, ``high`` max, ``low`` min, ``close`` last, ``volume`` sum (null when an input
bar's volume is null: FX and index bars have none), ``transactions``
sum (null when all inputs are null), ``vwap`` = sum(p * volume) / sum(volume) where p is the input
bar's ``vwap``, or its ``close`` when the vwap is null (an approximation); null when volume is 0.
From trades: ``vwap`` = sum(price * size) / sum(size), ``transactions`` = number of trades.

The work is vectorized: a small numba kernel finds each row's session in the calendar (a forward
walk over rows sorted by symbol and time) and its bin, and a second kernel reduces the sorted runs of
equal (symbol, bin) to bars.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ._time import NS_PER_DAY, format_ns
from .calendars import TradingCalendar, get_calendar
from .errors import DataValidationError, InvalidRangeError, NoDataError, TimeframeError
from .schema import BAR_SCHEMA, TS, conform, empty
from .timeframes import Timeframe, calendar_periods
from .validation import Violation, sort_by_symbol_ts

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
    binned = _binned(conform(bars, "bars", sort=False), tf, cal, include_outside)
    if binned is None:
        return empty("bars")
    df, start, end, starts = binned
    volume = df.get_column("volume").to_numpy()
    price = df.select(pl.coalesce("vwap", "close")).to_series().to_numpy()
    o, h, lo, c = (df.get_column(name).to_numpy() for name in ("open", "high", "low", "close"))
    return _frame(df, starts, start, end, (o, h, lo, c), volume, price * volume,
                  _sum_transactions(df.get_column("transactions"), starts))


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
    binned = _binned(conform(trades, "trades", sort=False), tf, cal, include_outside)
    if binned is None:
        return empty("bars")
    df, start, end, starts = binned
    price = df.get_column("price").to_numpy()
    size = df.get_column("size").to_numpy()
    counts = pl.Series(np.diff(np.append(starts, df.height)))
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


def _binned(
    df: pl.DataFrame, tf: Timeframe, cal: TradingCalendar, include_outside: bool
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray, np.ndarray] | None:
    """Rows to aggregate, sorted, with each row's bin start and end and the first row of each bar.

    ``None`` for an empty input. Bars (frames with ``ts_end``) must fit inside their bin.
    """
    if df.height == 0:
        return None
    _check_nulls(df)
    df, run_id = _sorted_runs(df)
    start, end, keep = session_bins(cal, _ns(df, "ts"), tf, include_outside)
    if "ts_end" in df.columns:
        _check_fit(df, _ns(df, "ts_end"), end, keep, tf)
    if not keep.all():
        if not keep.any():
            raise NoDataError(
                f"none of the {df.height:,} input rows falls inside a {cal.name} session; pass the "
                "calendar of the data's exchange (calendar='24/7' for crypto) or include_outside=True"
            )
        df, start, end, run_id = df.filter(pl.Series(keep)), start[keep], end[keep], run_id[keep]
    new_bar = np.empty(start.size, dtype=bool)
    new_bar[0] = True
    new_bar[1:] = (start[1:] != start[:-1]) | (run_id[1:] != run_id[:-1])
    return df, start, end, np.flatnonzero(new_bar)


def _check_nulls(df: pl.DataFrame) -> None:
    """Raise ``DataValidationError`` for a null or NaN in a required column (one cheap pass); bar
    volume may be null for a symbol without any (FX, indices), whose output volume is then null."""
    optional = {"vwap", "transactions", "exchange", "conditions", "id"}
    required = [c for c in df.columns if c not in optional]
    missing = [pl.col(c).is_null() | (pl.col(c).is_nan() if df.schema[c].is_float() else False)
               for c in required]
    if "volume" in required and df.get_column("volume").has_nulls():
        volume = pl.col("volume")
        missing[required.index("volume")] = volume.is_nan().fill_null(False) | (
            volume.is_null() & volume.is_not_null().any().over("symbol"))
    counts = df.select(m.sum().alias(c) for c, m in zip(required, missing, strict=True)).row(0, named=True)
    bad = [name for name, n in counts.items() if n]
    if bad:
        row = int(df.select(missing[required.index(bad[0])].arg_true().first()).item())
        symbol = df.get_column("symbol")[row]
        ts = df.get_column("ts").dt.epoch("ns")[row]
        raise DataValidationError(
            f"cannot aggregate: null or NaN {', '.join(bad)} (first at row {row}, symbol {symbol}); "
            "run backtape.validate_bars(..., on_invalid='drop') first",
            [Violation("missing_value", symbol, ts, row, f"null or NaN {bad[0]}")],
        )


def _sorted_runs(df: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray]:
    """``df`` sorted by (symbol, ts) (sorted only if needed) and a run number per symbol for each row."""
    new_symbol = _new_symbol(df)
    if not _in_order(df, new_symbol):
        df = sort_by_symbol_ts(df)
        new_symbol = _new_symbol(df)
    return df, np.cumsum(new_symbol)


def _new_symbol(df: pl.DataFrame) -> np.ndarray:
    """True on each row whose symbol differs from the previous row's."""
    symbol = df.get_column("symbol")
    flags = symbol.ne_missing(symbol.shift(1)).to_numpy()
    flags[0] = True
    return flags


def _in_order(df: pl.DataFrame, new_symbol: np.ndarray) -> bool:
    """Whether rows are sorted by (symbol, ts): ts rises within each run and run symbols rise."""
    ts = _ns(df, "ts")
    if not ((ts[1:] >= ts[:-1]) | new_symbol[1:]).all():
        return False
    firsts = df.get_column("symbol").gather(np.flatnonzero(new_symbol))
    return firsts.len() < 2 or bool((firsts.slice(1) > firsts.slice(0, firsts.len() - 1)).all())


def session_bins(
    cal: TradingCalendar, ts: np.ndarray, tf: Timeframe, include_outside: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start and end (UTC ns) of the ``tf`` bar holding each instant of ``ts``, and which are kept.

    The binning rules of the module docstring as arrays aligned with ``ts`` (non-empty, int64 UTC
    ns); shared with the portal's multi-timeframe views so both build identical bars. Works on the
    slice of the calendar that the data spans, so the per-row work touches short arrays.
    """
    first_ts, last_ts = int(ts.min()), int(ts.max())
    if first_ts < cal.opens[0] or last_ts >= cal.closes[-1]:
        raise InvalidRangeError(
            f"data from {format_ns(first_ts)} to {format_ns(last_ts)} lies outside the {cal.name} "
            f"calendar ({format_ns(int(cal.opens[0]))} to {format_ns(int(cal.closes[-1]))})"
        )
    # sessions from the one before the data (its close starts the first gap) to the one after it
    lo = max(int(np.searchsorted(cal.closes, first_ts, side="right")) - 1, 0)
    hi = min(int(np.searchsorted(cal.opens, last_ts, side="right")) + 1, len(cal.opens))
    part = slice(lo, hi)
    if tf.is_intraday or (tf.unit == "d" and tf.n == 1):
        period_start, period_end = cal.opens[part], cal.closes[part]
    else:  # a period runs from its first session's open to its last session's close
        key = period_keys(cal, tf)
        period_start = cal.opens[np.searchsorted(key, key[part], side="left")]
        period_end = cal.closes[np.searchsorted(key, key[part], side="right") - 1]
    step = tf.nanos if tf.is_intraday else 0
    args = (ts, cal.opens[part], cal.closes[part], cal.break_starts[part], cal.break_ends[part],
            period_start, period_end, step, include_outside)
    if ts.size < _SMALL:
        return _assign_bins_small(*args)
    from ._aggregate_kernels import _assign_bins

    return _assign_bins(*args)


def period_keys(cal: TradingCalendar, tf: Timeframe) -> np.ndarray:
    """Per session of ``cal``, the number of its ``tf`` period (non-decreasing; ``tf`` a day or more).

    ``Nd`` counts sessions from the calendar's first; weeks are ISO weeks (1970-01-05, day 4, was a
    Monday); months, quarters and years are calendar ones, all counted from 1970.
    """
    if tf.unit == "d":
        return np.arange(cal.labels.size, dtype=np.int64) // tf.n
    return calendar_periods(cal.labels // NS_PER_DAY, tf)


_SMALL = 50_000
"""Below this many rows bins are assigned with numpy: numba's first call in a process costs ~0.3 s,
more than numpy needs for 50,000 rows (~3 ms); above it the numba pass is ~10x faster."""


def _assign_bins_small(
    ts: np.ndarray, opens: np.ndarray, closes: np.ndarray, break_starts: np.ndarray, break_ends: np.ndarray,
    period_start: np.ndarray, period_end: np.ndarray, step: int, include_outside: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_aggregate_kernels._assign_bins`` vectorized: the same rows, bins and kept flags (tested)."""
    j = np.maximum(np.searchsorted(opens, ts, side="right") - 1, 0)
    after = ts >= closes[j]
    before_break = ~after & (ts < break_starts[j])
    after_break = ~after & ~before_break & (ts >= break_ends[j])
    inside = before_break | after_break
    if step == 0:
        return period_start[j], period_end[j], inside
    next_open = opens[np.minimum(j + 1, opens.size - 1)]
    where = [after, before_break, after_break]
    seg0 = np.select(where, [closes[j], opens[j], break_ends[j]], break_starts[j])
    seg1 = np.select(where, [next_open, break_starts[j], closes[j]], break_ends[j])
    start = seg0 + (ts - seg0) // step * step
    return start, np.minimum(start + step, seg1), inside | include_outside


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


def _sum_transactions(transactions: pl.Series, starts: np.ndarray) -> pl.Series:
    """Per-bar sum of the input bars' trade counts; null where every input count is null."""
    if transactions.null_count() == transactions.len():
        return pl.Series(values=[None] * starts.size, dtype=pl.Int64)
    values, valid = transactions.fill_null(0).to_numpy(), transactions.is_not_null().to_numpy()
    from ._aggregate_kernels import _sum_runs

    sums, counted = _sum_runs(values, valid, starts)
    return pl.Series(sums).scatter(np.flatnonzero(counted == 0), None)


def _frame(
    df: pl.DataFrame, starts: np.ndarray, start: np.ndarray, end: np.ndarray,
    ohlc: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    volume: np.ndarray, pv: np.ndarray, transactions: pl.Series,
) -> pl.DataFrame:
    """Reduce each run (rows ``starts[k]`` up to the next start) to one canonical bar.

    ``ohlc`` are the per-row open, high, low and close inputs, ``pv`` price times volume for the
    vwap, ``transactions`` the already reduced count per bar.
    """
    out = pl.DataFrame(
        {
            "symbol": df.get_column("symbol").gather(starts),
            "ts": start[starts],
            "ts_end": end[starts],
            **reduce_runs(starts, ohlc, volume, pv),
            "transactions": transactions,
        }
    )
    unknown = pl.col("volume").is_nan()  # inputs without volume (FX, indices): null, not 0 or NaN
    return out.with_columns(
        pl.col("ts", "ts_end").cast(TS),
        pl.when(unknown.not_()).then(pl.col("volume")).alias("volume"),
        pl.when(unknown.not_() & (pl.col("volume") != 0)).then(pl.col("vwap")).alias("vwap"),
    ).cast(BAR_SCHEMA)


def reduce_runs(
    starts: np.ndarray, ohlc: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    volume: np.ndarray, pv: np.ndarray,
) -> dict[str, np.ndarray]:
    """OHLCV and vwap of each run of rows (``starts[k]`` up to the next start), as numpy arrays.

    ``open`` first, ``high`` max, ``low`` min, ``close`` last, ``volume`` sum, ``vwap`` =
    sum(``pv``) / volume (NaN when the volume is 0). Shared with the portal's views.
    """
    o, h, lo, c = ohlc
    last = np.append(starts[1:], len(c)) - 1
    h64, lo64, vol64, pv64 = (np.ascontiguousarray(a, np.float64) for a in (h, lo, volume, pv))
    from ._aggregate_kernels import _reduce_runs

    high, low, vol, pv_sum = _reduce_runs(h64, lo64, vol64, pv64, starts.astype(np.int64))
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = pv_sum / vol
    return {"open": o[starts], "high": high, "low": low, "close": c[last], "volume": vol, "vwap": vwap}


