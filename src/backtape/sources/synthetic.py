"""The ``synthetic`` source: deterministic, seeded market data for any symbol, range and frequency.

How prices are made (and why overlapping requests always agree)
----------------------------------------------------------------
* Time runs on a *trading clock* counted in minutes: each session minute is one tick of the clock
  and each gap between sessions counts as ``overnight_minutes`` (so overnight gaps exist but are
  smaller than a day's move). On ``24/7`` the clock is plain UTC minutes.
* The log price is a Brownian motion on that clock, built by dyadic midpoint refinement (Lévy's
  construction): the value at any clock minute is found by descending ~25 levels from a root
  interval, each midpoint drawn from a counter-based hash (splitmix64) of ``(seed, symbol, node)``.
  No path from a range start is ever needed, so a value depends only on its instant. Multi-year
  excursions are damped so prices stay in a plausible band around ``base_price``.
* One-minute bars: open/close are the path at the minute's ends (rounded to ``tick_size``), high
  and low extend them by hashed amounts; volume is a hashed log-normal with an intraday U shape.
  Every coarser bar (``5min``, ``1h``, ``1d``, ``1w``) is the exact aggregate of its one-minute
  bars within the session (intraday bars anchored at the open, the last one cut at the close).
* Trades and quotes are drawn per minute from hashes of the minute's clock index: with
  ``trades_per_minute >= 4`` the first trade is at the open, the last at the close, one at the high
  and one at the low, and sizes sum to the volume, so trades aggregate back to the 1-minute bars.
  Quotes have ``bid < ask``, their mid inside the minute's ``[low, high]``.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from .._time import NS_PER_DAY, NS_PER_MINUTE, TimeLike, check_range
from ..calendars import get_calendar
from ..errors import ConfigError
from ..schema import TS, Kind, TickKind, conform, empty
from ..timeframes import Timeframe
from .base import ANY_FREQUENCY, DataSource, DataSourceMetadata, SourceCapabilities

_LEVELS = 25  # the clock spans 2**25 minutes (~64 years of 24/7, far more of sessions)
_BLOCK_LEVELS = 11  # minutes inside a 2**11-minute block are refined in a second, vectorised stage
_DAMP_FROM = 20  # intervals longer than 2**20 clock minutes move less (keeps prices in a band)
_DAMP = 0.3
_MINUTES_PER_YEAR_24_7 = 365.25 * 1440


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 arrays (wrapping arithmetic): a fast, well-mixed hash."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _stream_key(seed: int, symbol: str, stream: str) -> np.uint64:
    """Stable 64-bit key of ``(seed, symbol, stream)`` (``hash()`` is salted per process)."""
    digest = hashlib.blake2b(f"{seed}|{symbol}|{stream}".encode(), digest_size=8).digest()
    return np.uint64(int.from_bytes(digest, "little"))


def _uniform(key: np.uint64, idx: np.ndarray) -> np.ndarray:
    """Uniforms in (0, 1) for integer counters ``idx``."""
    h = _splitmix64(_splitmix64(np.asarray(idx).astype(np.uint64)) ^ key)
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def _normal(key: np.uint64, idx: np.ndarray) -> np.ndarray:
    """Standard normals for integer counters ``idx`` (Box-Muller on one 64-bit hash)."""
    h = _splitmix64(_splitmix64(np.asarray(idx).astype(np.uint64)) ^ key)
    u1 = ((h >> np.uint64(32)).astype(np.float64) + 0.5) * (1.0 / 4294967296.0)
    u2 = ((h & np.uint64(0xFFFFFFFF)).astype(np.float64) + 0.5) * (1.0 / 4294967296.0)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def _descend(key: np.uint64, q: np.ndarray, lo: np.ndarray, hi: np.ndarray, w_lo: np.ndarray,
             w_hi: np.ndarray, levels: int) -> np.ndarray:
    """Brownian value at clock minutes ``q`` by midpoint refinement of ``[lo, hi]`` (in minutes).

    Each midpoint ``m`` is ``(w_lo + w_hi) / 2 + sqrt((hi - lo) / 4) * Z(m)``: the Brownian bridge
    law, with ``Z`` hashed from the node ``m`` alone, so every query sees the same tree.
    """
    lo, hi, w_lo, w_hi = lo.copy(), hi.copy(), w_lo.copy(), w_hi.copy()
    for _ in range(levels):
        mid = (lo + hi) // 2
        length = (hi - lo).astype(np.float64)
        scale = np.sqrt(length / 4.0) * np.where(length > 2.0**_DAMP_FROM, _DAMP, 1.0)
        w_mid = 0.5 * (w_lo + w_hi) + scale * _normal(key, mid)
        left = q < mid
        hi = np.where(left, mid, hi)
        w_hi = np.where(left, w_mid, w_hi)
        lo = np.where(left, lo, mid)
        w_lo = np.where(left, w_lo, w_mid)
    return np.where(q == lo, w_lo, w_hi)


def _brownian(key: np.uint64, q: np.ndarray) -> np.ndarray:
    """Pinned Brownian path (0 at both ends of the clock) at integer clock minutes ``q``."""
    block = np.int64(1 << _BLOCK_LEVELS)
    blocks, inverse = np.unique(q // block, return_inverse=True)
    ends = np.concatenate([blocks, blocks + 1]) * block
    zeros = np.zeros(len(ends))
    root_lo, root_hi = np.zeros(len(ends), np.int64), np.full(len(ends), 1 << _LEVELS, np.int64)
    w_ends = _descend(key, ends, root_lo, root_hi, zeros, zeros, _LEVELS - _BLOCK_LEVELS)
    n = len(blocks)
    paths = _fill_blocks(key, blocks, w_ends[:n], w_ends[n:])
    return paths[inverse.ravel(), q - blocks[inverse.ravel()] * block]


def _fill_blocks(key: np.uint64, blocks: np.ndarray, w0: np.ndarray, w1: np.ndarray) -> np.ndarray:
    """Whole 2**11-minute blocks refined level by level: the same tree as :func:`_descend`.

    Returns an array ``(len(blocks), 2**11 + 1)`` of path values at every minute of each block.
    Filling complete blocks costs one normal per minute instead of one per level per query.
    """
    size = 1 << _BLOCK_LEVELS
    path = np.empty((len(blocks), size + 1))
    path[:, 0], path[:, size] = w0, w1
    step = size
    while step > 1:
        half = step // 2
        mids = np.arange(half, size, step)
        nodes = blocks[:, None] * size + mids[None, :]
        z = _normal(key, nodes)
        path[:, mids] = 0.5 * (path[:, mids - half] + path[:, mids + half]) + np.sqrt(step / 4.0) * z
        step = half
    return path


@dataclass(frozen=True)
class _Clock:
    """Trading clock of a calendar: the clock minute at each session's open, sessions' lengths."""

    opens: np.ndarray
    closes: np.ndarray
    minutes: np.ndarray
    start: np.ndarray
    labels: np.ndarray
    sigma_scale: float  # 1 / sqrt(clock minutes per year)


@functools.cache
def _clock(calendar: str, overnight: int) -> _Clock:
    cal = get_calendar(calendar)
    minutes = ((cal.closes - cal.opens) // NS_PER_MINUTE).astype(np.int64)
    gap = 0 if cal.is_24_7 else overnight
    start = gap + np.concatenate([[0], np.cumsum(minutes + gap)[:-1]]).astype(np.int64)
    total = int(start[-1] + minutes[-1])
    if total >= 1 << _LEVELS:
        raise ConfigError(f"calendar {calendar!r} spans too many minutes for the synthetic clock")
    years = (cal.closes[-1] - cal.opens[0]) / (365.25 * NS_PER_DAY)
    return _Clock(cal.opens, cal.closes, minutes, start, cal.labels, float(np.sqrt(years / total)))


class SyntheticDataSource(DataSource):
    """Deterministic bars, trades and quotes: same ``(seed, symbol, frequency, ts)``, same values.

    >>> src = SyntheticDataSource(seed=7, calendar="XNYS")
    >>> src.fetch_sync("ACME", "2024-01-02", "2024-01-03", "5min").height
    78
    """

    name = "synthetic"

    def __init__(self, seed: int = 0, calendar: str = "XNYS", base_price: float = 100.0,
                 volatility: float = 0.3, volume: float = 1000.0, tick_size: float = 0.01,
                 trades_per_minute: int = 10, quotes_per_minute: int = 20, spread_bps: float = 2.0,
                 overnight_minutes: int = 120) -> None:
        if base_price <= 0 or volatility < 0 or volume <= 0 or tick_size <= 0 or spread_bps < 0:
            raise ConfigError("synthetic: base_price, volume and tick_size must be positive; "
                              "volatility and spread_bps non-negative")
        if trades_per_minute < 1 or quotes_per_minute < 1 or overnight_minutes < 0:
            raise ConfigError("synthetic: trades_per_minute and quotes_per_minute must be >= 1, "
                              "overnight_minutes >= 0")
        self.seed = int(seed)
        self.calendar_name = get_calendar(calendar).name
        self.base_price = float(base_price)
        self.volatility = float(volatility)
        self.volume = float(volume)
        self.tick_size = float(tick_size)
        self.trades_per_minute = int(trades_per_minute)
        self.quotes_per_minute = int(quotes_per_minute)
        self.spread_bps = float(spread_bps)
        self.overnight_minutes = int(overnight_minutes)

    # -- one-minute bars ---------------------------------------------------------------------
    @property
    def _clock(self) -> _Clock:
        return _clock(self.calendar_name, self.overnight_minutes)

    def _minute_bars(self, symbol: str, session: np.ndarray, offset: np.ndarray) -> dict[str, np.ndarray]:
        """One-minute bars at ``offset`` minutes into each ``session`` (index arrays)."""
        clk = self._clock
        clock = clk.start[session] + offset
        sigma = self.volatility * clk.sigma_scale
        walk = _stream_key(self.seed, symbol, "walk")
        both = _brownian(walk, np.concatenate([clock, clock + 1]))
        n = len(clock)
        tick = self.tick_size
        log_base = np.log(self.base_price)
        o = np.maximum(np.round(np.exp(log_base + sigma * both[:n]) / tick), 1) * tick
        c = np.maximum(np.round(np.exp(log_base + sigma * both[n:]) / tick), 1) * tick
        ext = _stream_key(self.seed, symbol, "range")
        up = np.abs(_normal(ext, 2 * clock)) * 0.6 * sigma
        down = np.abs(_normal(ext, 2 * clock + 1)) * 0.6 * sigma
        h = np.ceil(np.maximum(o, c) * np.exp(up) / tick - 1e-9) * tick
        low = np.maximum(np.floor(np.minimum(o, c) * np.exp(-down) / tick + 1e-9), 1) * tick
        x = (offset + 0.5) / clk.minutes[session]
        shape = 0.6 + 2.4 * (2.0 * x - 1.0) ** 2
        noise = np.exp(0.6 * _normal(_stream_key(self.seed, symbol, "volume"), clock) - 0.18)
        vol = np.maximum(np.round(self.volume * shape / 1.4 * noise), 1.0)
        ts = clk.opens[session] + offset * NS_PER_MINUTE
        return {"ts": ts, "open": o, "high": h, "low": low, "close": c, "volume": vol, "clock": clock}

    def _minutes_in(self, s: int, e: int) -> tuple[np.ndarray, np.ndarray]:
        """(session, offset) of every session minute starting in ``[s, e)``."""
        clk = self._clock
        lo = int(np.searchsorted(clk.closes, s, side="right"))
        hi = int(np.searchsorted(clk.opens, e, side="left"))
        sess = np.arange(lo, hi)
        first = np.clip(-(-(s - clk.opens[sess]) // NS_PER_MINUTE), 0, clk.minutes[sess])
        last = np.clip(-(-(e - clk.opens[sess]) // NS_PER_MINUTE), 0, clk.minutes[sess])
        return _ranges(sess, first, last)

    # -- bars at any frequency ---------------------------------------------------------------
    def _bar_layout(self, tf: Timeframe, s: int, e: int) -> tuple[np.ndarray, ...]:
        """Bars with ``ts`` in ``[s, e)``: (ts, ts_end, session, first minute, minute count)."""
        clk = self._clock
        if tf.is_intraday:
            step = tf.minutes
            lo = int(np.searchsorted(clk.closes, s, side="right"))
            hi = int(np.searchsorted(clk.opens, e, side="left"))
            sess = np.arange(lo, hi)
            nbars = -(-clk.minutes[sess] // step)
            first = np.clip(-(-(s - clk.opens[sess]) // (step * NS_PER_MINUTE)), 0, nbars)
            last = np.clip(-(-(e - clk.opens[sess]) // (step * NS_PER_MINUTE)), 0, nbars)
            b_sess, k = _ranges(sess, first, last)
            start_min = k * step
            count = np.minimum(step, clk.minutes[b_sess] - start_min)
            ts = clk.opens[b_sess] + start_min * NS_PER_MINUTE
            return ts, ts + count * NS_PER_MINUTE, b_sess, start_min, count
        lo = int(np.searchsorted(clk.opens, s, side="left"))
        hi = int(np.searchsorted(clk.opens, e, side="left"))
        if tf.unit == "d":
            sess = np.arange(lo, hi)
            return (clk.opens[sess], clk.closes[sess], sess, np.zeros(len(sess), np.int64),
                    clk.minutes[sess])
        # weeks: sessions grouped by the Monday of their date label; a week's bar starts at its first open
        week = (clk.labels // NS_PER_DAY + 3) // 7
        first_of_week = np.flatnonzero(np.r_[True, week[1:] != week[:-1]])
        starts = first_of_week[(first_of_week >= lo) & (first_of_week < hi)]
        ends = np.r_[first_of_week[1:], len(week)][np.searchsorted(first_of_week, starts)]
        _, sess = _ranges(starts, starts, ends)
        return (clk.opens[starts], clk.closes[ends - 1], sess, np.zeros(len(sess), np.int64),
                clk.minutes[sess], ends - starts)

    def _bars(self, symbol: str, tf: Timeframe, s: int, e: int) -> pl.DataFrame:
        layout = self._bar_layout(tf, s, e)
        ts, ts_end, sess, start_min, count = layout[:5]
        if tf.unit == "w":  # minutes of every session of each week
            per_week = layout[5]
            m_sess, m_off = _ranges(sess, start_min, count)
            minutes_per_bar = np.add.reduceat(count, np.r_[0, np.cumsum(per_week)[:-1]]) \
                if len(per_week) else np.zeros(0, np.int64)
        else:
            m_sess, m_off = _ranges(sess, start_min, start_min + count)
            minutes_per_bar = count
        if len(ts) == 0:
            return empty("bars")
        m = self._minute_bars(symbol, m_sess, m_off)
        cuts = np.r_[0, np.cumsum(minutes_per_bar)[:-1]]
        frame = pl.DataFrame({
            "ts": pl.Series(ts, dtype=pl.Int64).cast(TS),
            "ts_end": pl.Series(ts_end, dtype=pl.Int64).cast(TS),
            "open": m["open"][cuts],
            "high": np.maximum.reduceat(m["high"], cuts),
            "low": np.minimum.reduceat(m["low"], cuts),
            "close": m["close"][np.r_[cuts[1:], len(m["close"])] - 1],
            "volume": np.add.reduceat(m["volume"], cuts),
        }).with_columns(pl.lit(symbol).alias("symbol"))
        return conform(frame, "bars", sort=False)

    async def fetch(self, symbols: list[str], start: TimeLike, end: TimeLike,
                    frequency: str | Timeframe = "1d") -> pl.DataFrame:
        s, e = check_range(start, end)
        tf = Timeframe.parse(frequency)
        return _concat([self._bars(sym, tf, s, e) for sym in sorted(set(symbols))], "bars")

    # -- ticks -------------------------------------------------------------------------------
    def _ticks(self, symbol: str, s: int, e: int, kind: TickKind) -> pl.DataFrame:
        sess, off = self._minutes_in(s - NS_PER_MINUTE + 1, e)
        if len(sess) == 0:
            return empty(kind)
        m = self._minute_bars(symbol, sess, off)
        n = self.trades_per_minute if kind == "trades" else self.quotes_per_minute
        counter = (m["clock"].astype(np.int64)[:, None] * n + np.arange(n)[None, :]).ravel()
        times = np.sort(_uniform(_stream_key(self.seed, symbol, f"{kind}-time"), counter)
                        .reshape(-1, n), axis=1)
        ts = (m["ts"][:, None] + (times * NS_PER_MINUTE).astype(np.int64)).ravel()
        o, h, low, c = (m[k][:, None] for k in ("open", "high", "low", "close"))
        frac = np.arange(n)[None, :] / max(n - 1, 1)
        wiggle = _uniform(_stream_key(self.seed, symbol, f"{kind}-price"), counter).reshape(-1, n) - 0.5
        path = np.clip(o + (c - o) * frac + (h - low) * wiggle, low, h)
        tick = self.tick_size
        if kind == "trades":
            price = np.round(path / tick) * tick
            price[:, 0], price[:, -1] = o[:, 0], c[:, 0]
            if n >= 4:
                # two distinct interior trades carry the minute's high and low
                pick = _uniform(_stream_key(self.seed, symbol, "extremes"),
                                np.concatenate([2 * m["clock"], 2 * m["clock"] + 1]))
                hi_pos = 1 + (pick[: len(price)] * (n - 2)).astype(np.int64)
                shift = 1 + (pick[len(price):] * (n - 3)).astype(np.int64)
                lo_pos = 1 + (hi_pos - 1 + shift) % (n - 2)
                rows = np.arange(len(price))
                price[rows, hi_pos] = h[:, 0]
                price[rows, lo_pos] = low[:, 0]
            weights = -np.log(_uniform(_stream_key(self.seed, symbol, "trade-size"), counter)).reshape(-1, n)
            size = weights / weights.sum(axis=1, keepdims=True) * m["volume"][:, None]
            frame = pl.DataFrame({"ts": ts, "price": price.ravel(), "size": size.ravel()})
        else:
            spread = np.maximum(np.round(path * self.spread_bps / 1e4 / tick), 1.0) * tick
            bid = np.maximum(np.floor((path - spread / 2) / tick + 1e-9), 1.0) * tick
            sizes = np.exp(_normal(_stream_key(self.seed, symbol, "quote-size"),
                                   np.concatenate([2 * counter, 2 * counter + 1])))
            sizes = np.round(sizes * self.volume / 10) + 1
            frame = pl.DataFrame({"ts": ts, "bid": bid.ravel(), "ask": (bid + spread).ravel(),
                                  "bid_size": sizes[: len(counter)], "ask_size": sizes[len(counter):]})
        frame = frame.filter((pl.col("ts") >= s) & (pl.col("ts") < e)).with_columns(
            pl.col("ts").cast(TS), pl.lit(symbol).alias("symbol"))
        return conform(frame, kind, sort=False)

    async def fetch_trades(self, symbols: list[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        s, e = check_range(start, end)
        return _concat([self._ticks(sym, s, e, "trades") for sym in sorted(set(symbols))], "trades")

    async def fetch_quotes(self, symbols: list[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        s, e = check_range(start, end)
        return _concat([self._ticks(sym, s, e, "quotes") for sym in sorted(set(symbols))], "quotes")

    # -- description ---------------------------------------------------------------------------
    def _params(self) -> dict[str, Any]:
        return {"seed": self.seed, "calendar": self.calendar_name, "base_price": self.base_price,
                "volatility": self.volatility, "volume": self.volume, "tick_size": self.tick_size,
                "trades_per_minute": self.trades_per_minute, "quotes_per_minute": self.quotes_per_minute,
                "spread_bps": self.spread_bps, "overnight_minutes": self.overnight_minutes}

    def get_metadata(self) -> DataSourceMetadata:
        return DataSourceMetadata(
            name=self.name,
            source_type="synthetic",
            description="deterministic seeded bars, trades and quotes (range-independent)",
            calendar=self.calendar_name,
            capabilities=SourceCapabilities(kinds=frozenset({"bars", "trades", "quotes"}),
                                            frequencies=ANY_FREQUENCY),
            details=self._params(),
        )

    def cache_identity(self) -> str:
        """Every parameter that shapes the data (the algorithm version too)."""
        params = ",".join(f"{k}={v}" for k, v in self._params().items())
        return f"synthetic:v1:{params}"

    def __repr__(self) -> str:
        return f"SyntheticDataSource(seed={self.seed}, calendar={self.calendar_name!r})"


def _ranges(owner: np.ndarray, first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flatten ``[first, last)`` integer ranges: (owner of each item, item value)."""
    counts = np.maximum(last - first, 0).astype(np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rep_owner = np.repeat(owner, counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    values = np.arange(total, dtype=np.int64) - starts + np.repeat(first, counts)
    return rep_owner.astype(np.int64), values


def _concat(frames: list[pl.DataFrame], kind: Kind) -> pl.DataFrame:
    frames = [f for f in frames if f.height]
    return pl.concat(frames) if frames else empty(kind)
