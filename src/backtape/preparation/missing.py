"""``MissingBars``: the bars a calendar expected that the data lacks, left, forward-filled or dropped.

The calendar and the frequency are the bars' own unless given; given ones must put every bar on
the expected grid (same ``ts`` and ``ts_end``), so a wrong guess is an error, never lost rows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from .._time import NS_PER_MINUTE, format_ns
from ..calendars import TradingCalendar, get_calendar
from ..errors import BacktapeError, ConfigError, warn_once
from ..timeframes import Timeframe
from ..validation import DataQualityWarning
from .specs import MissingBars

_DAILY = Timeframe(1, "d")


def handle_missing(bars: pl.DataFrame, spec: MissingBars,
                   calendar_of: Callable[[str], str] | None) -> pl.DataFrame:
    """Each symbol's expected bars from its first to its last bar, then fill or drop the absent ones."""
    if bars.height == 0 or spec.policy == "leave":
        return bars
    parts = []
    for part in bars.partition_by("symbol", maintain_order=True):
        symbol = str(part["symbol"][0])
        name = spec.calendar or (calendar_of(symbol) if calendar_of is not None else None)
        if name is None:
            raise ConfigError(f"MissingBars({spec.policy!r}) needs the calendar of {symbol}'s bars: give "
                              "MissingBars(..., calendar='XNYS') (or '24/7', 'FX'...) or use PreparedSource, "
                              "which asks the source")
        try:
            cal = get_calendar(name)
        except BacktapeError as e:
            raise ConfigError(f"MissingBars calendar of {symbol}: {e}") from None
        ts = part["ts"].dt.epoch("ns").to_numpy()
        ts_end = part["ts_end"].dt.epoch("ns").to_numpy()
        tf = Timeframe.parse(spec.frequency) if spec.frequency else _infer(symbol, cal, ts, ts_end)
        expected = _expected(cal, tf, int(ts[0]), int(ts[-1]))
        _check_grid(symbol, spec, cal, tf, ts, ts_end, expected)
        parts.append(_fill(part, expected, spec.policy))
        lost = part.height - parts[-1].height
        if lost > 0:  # "drop" removes real bars too (those after a hole in their session): say how many
            warn_once(f"MissingBars('drop') removed {lost:,} of {symbol}'s {part.height:,} bars (each "
                      f"{cal.name} session's bars from its first missing one on)", DataQualityWarning)
    return pl.concat(parts, how="diagonal_relaxed")


def _infer(symbol: str, cal: TradingCalendar, ts: np.ndarray, ts_end: np.ndarray) -> Timeframe:
    """1d when every bar is a whole session of ``cal``, else the commonest bar length in minutes."""
    i = np.clip(np.searchsorted(cal.opens, ts), 0, len(cal.opens) - 1)
    if np.array_equal(cal.opens[i], ts) and np.array_equal(cal.closes[i], ts_end):
        return _DAILY
    lengths, counts = np.unique(ts_end - ts, return_counts=True)
    step = int(lengths[np.argmax(counts)])
    if step <= 0 or step % NS_PER_MINUTE:
        raise ConfigError(f"cannot read {symbol}'s bar frequency from ts_end - ts ({step} ns); give "
                          "MissingBars(..., frequency='1min') or the bars' own")
    return Timeframe.parse(f"{step // NS_PER_MINUTE}min")


def _check_grid(symbol: str, spec: MissingBars, cal: TradingCalendar, tf: Timeframe, ts: np.ndarray,
                ts_end: np.ndarray, expected: pl.DataFrame) -> None:
    grid = expected["ts"].dt.epoch("ns").to_numpy()
    ends = expected["ts_end"].dt.epoch("ns").to_numpy()
    at = np.clip(np.searchsorted(grid, ts), 0, max(len(grid) - 1, 0))
    off = np.flatnonzero((grid[at] != ts) | (ends[at] != ts_end)) if len(grid) else np.arange(len(ts))
    if off.size:
        how = "given" if spec.frequency else "read from ts_end - ts"
        raise ConfigError(
            f"MissingBars: {off.size} of {symbol}'s {len(ts)} bars (first at {format_ns(int(ts[off[0]]))}) "
            f"are "
            f"not {tf} bars ({how}) of calendar {cal.name}; give the bars' own calendar and frequency "
            "(or leave the frequency out to read it from the bars), or use policy 'leave'")


def _expected(cal: TradingCalendar, tf: Timeframe, first: int, last: int) -> pl.DataFrame:
    """Start, end and session of every ``tf`` bar from ``first`` to ``last`` (bar starts, UTC ns).

    Intraday bars are anchored at each segment's start (open, break end) and cut at its end, as in
    ``backtape.aggregation``; a 1d bar is the whole session.
    """
    lo = int(np.searchsorted(cal.closes, first, side="right"))
    hi = int(np.searchsorted(cal.opens, last, side="right"))
    starts, ends, sessions = [], [], []
    for i in range(lo, hi):
        if not tf.is_intraday:
            segments = [(int(cal.opens[i]), int(cal.closes[i]))]
            step = int(cal.closes[i] - cal.opens[i])
        else:
            step = tf.nanos
            segments = [(int(cal.opens[i]), int(cal.break_starts[i])),
                        (int(cal.break_ends[i]), int(cal.closes[i]))]
        for a, b in segments:
            s = np.arange(a, b, step, dtype=np.int64)
            starts.append(s)
            ends.append(np.minimum(s + step, b))
            sessions.append(np.full(s.size, i, dtype=np.int64))

    def column(name: str, parts: list[np.ndarray]) -> pl.Series:
        return pl.Series(name, np.concatenate(parts) if parts else np.empty(0, np.int64))

    grid = pl.DataFrame([column("ts", starts), column("ts_end", ends), column("session", sessions)])
    utc = pl.Datetime("ns", "UTC")
    return grid.filter(pl.col("ts").is_between(first, last)).with_columns(pl.col("ts", "ts_end").cast(utc))


def _fill(part: pl.DataFrame, expected: pl.DataFrame, policy: str) -> pl.DataFrame:
    """``ffill``: absent bars become flat bars at the previous close; ``drop``: in each session, the
    bars from its first absent one on are removed (known at each bar, so point in time)."""
    expected = expected.with_columns(pl.col("ts").cast(part.schema["ts"]),
                                     pl.col("ts_end").cast(part.schema["ts_end"]))
    merged = expected.join(part.rename({"ts_end": "_end"}), on="ts", how="left").with_columns(
        pl.col("close").is_null().alias("filled"))
    if policy == "drop":
        broken = pl.col("filled").cast(pl.Int32).cum_sum().over("session") > 0
        return merged.filter(~broken).drop("ts_end").rename({"_end": "ts_end"}).select(part.columns)
    prev = pl.col("close").forward_fill()
    no_volume = pl.when(~pl.col("filled")).then(pl.col("volume").is_null()).forward_fill()  # last real bar's
    filled = merged.with_columns(
        pl.col("symbol").fill_null(part["symbol"][0]),
        pl.col("_end").fill_null(pl.col("ts_end")),
        *[pl.col(c).fill_null(prev) for c in ("open", "high", "low", "close")],
        pl.when(pl.col("filled") & ~no_volume).then(0.0).otherwise(pl.col("volume")).alias("volume"),
    )
    return filled.drop("ts_end", "session").rename({"_end": "ts_end"}).select([*part.columns, "filled"])
