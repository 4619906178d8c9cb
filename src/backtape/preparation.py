"""Data preparation (the seeds' DataPreprocessor): outliers, missing bars and feature columns.

Every step is point-in-time safe: a value on a bar is computed from that bar and earlier ones of
its symbol only, so changing a later bar never changes an earlier value (tested by perturbation).

=====================  ====================================================================
step                   what it does
=====================  ====================================================================
``Outliers``           flags (column ``outlier``) or drops bars whose return or range is far
                       from the trailing ``window`` bars before it: ``"hampel"`` measures with
                       the median and 1.4826 x MAD, ``"zscore"`` with the mean and std
``MissingBars``        the bars the calendar expected but the data lacks: ``"leave"`` them out,
                       ``"ffill"`` them (OHLC = previous close, volume 0, column ``filled``)
                       or ``"drop"`` every session that lacks any
``Features``           columns computed from the past: ``returns``, ``log_returns``,
                       ``volatility_N`` (std of N returns), ``zscore_N`` (close vs its N-bar
                       mean, in stds), ``sma_N``, ``ema_N``, ``rsi_N``, ``atr_N``
=====================  ====================================================================

``prepare(bars, ...)`` works on a canonical bars frame; ``PreparedSource(source, ...)`` applies the
same steps to everything a source serves, so strategies read the features through the portal
(``ctx.history(symbol, 20, field="rsi_14")``) and vector strategies find them in their arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from ._time import TimeLike
from .calendars import TradingCalendar, get_calendar
from .errors import ConfigError
from .sources.base import DataSource, DataSourceMetadata
from .timeframes import Timeframe

_MAD_TO_STD = 1.4826


@dataclass(frozen=True)
class Outliers:
    """Bars whose log return or log range is more than ``threshold`` spreads from the trailing
    ``window`` bars' centre (median and MAD for ``"hampel"``, mean and std for ``"zscore"``)."""

    method: Literal["hampel", "zscore"] = "hampel"
    window: int = 21
    threshold: float = 6.0
    action: Literal["flag", "drop"] = "flag"

    def __post_init__(self) -> None:
        _check_choice("Outliers.method", self.method, ("hampel", "zscore"))
        _check_choice("Outliers.action", self.action, ("flag", "drop"))
        if self.window < 3 or not self.threshold > 0:
            raise ConfigError(f"Outliers needs window >= 3 and threshold > 0, got {self.window}, "
                              f"{self.threshold}")


@dataclass(frozen=True)
class MissingBars:
    """What to do with bars the calendar expected (``calendar``, ``frequency``) that are absent."""

    policy: Literal["leave", "ffill", "drop"] = "leave"
    calendar: str = "XNYS"
    frequency: str = "1d"

    def __post_init__(self) -> None:
        _check_choice("MissingBars.policy", self.policy, ("leave", "ffill", "drop"))
        if not Timeframe.parse(self.frequency).is_intraday and self.frequency != "1d":
            raise ConfigError(f"MissingBars works on intraday or 1d bars, got {self.frequency!r}")


@dataclass(frozen=True)
class Features:
    """Feature columns; each window is a number of bars of the frame's own frequency."""

    returns: bool = True
    log_returns: bool = False
    volatility: Sequence[int] = ()
    zscore: Sequence[int] = ()
    sma: Sequence[int] = ()
    ema: Sequence[int] = ()
    rsi: Sequence[int] = ()
    atr: Sequence[int] = ()
    names: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        names = ["returns"] * self.returns + ["log_returns"] * self.log_returns
        for kind in ("volatility", "zscore", "sma", "ema", "rsi", "atr"):
            for n in getattr(self, kind):
                if not isinstance(n, int) or n < 2:
                    raise ConfigError(f"Features.{kind} windows must be integers >= 2, got {n!r}")
                names.append(f"{kind}_{n}")
        object.__setattr__(self, "names", tuple(names))


def prepare(bars: pl.DataFrame, *, outliers: Outliers | None = None, missing: MissingBars | None = None,
            features: Features | None = None) -> pl.DataFrame:
    """``bars`` with missing bars handled, outliers flagged or dropped, then feature columns added."""
    out = bars.sort("symbol", "ts")
    if missing is not None and missing.policy != "leave":
        out = _missing(out, missing)
    if outliers is not None:
        out = _outliers(out, outliers)
    if features is not None:
        out = _features(out, features)
    return out


class PreparedSource(DataSource):
    """A source whose bars come prepared by ``prepare``; trades, quotes and actions pass through.

    Features need their window of bars inside each fetched range (a portal loads a strategy's
    warm-up before ``start``, so request that much history).
    """

    def __init__(self, source: DataSource, *, outliers: Outliers | None = None,
                 missing: MissingBars | None = None, features: Features | None = None) -> None:
        self.inner = source
        self.outliers, self.missing, self.features = outliers, missing, features
        self.name = f"prepared({source.name})"
        self.remote = source.remote

    async def fetch(self, symbols: list[str], start: TimeLike, end: TimeLike,
                    frequency: str | Timeframe = "1d") -> pl.DataFrame:
        bars = await self.inner.fetch(symbols, start, end, frequency)
        return prepare(bars, outliers=self.outliers, missing=self.missing, features=self.features)

    async def fetch_trades(self, symbols: list[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        return await self.inner.fetch_trades(symbols, start, end)

    async def fetch_quotes(self, symbols: list[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        return await self.inner.fetch_quotes(symbols, start, end)

    async def fetch_corporate_actions(self, symbols: list[str], start: TimeLike,
                                      end: TimeLike) -> pl.DataFrame:
        return await self.inner.fetch_corporate_actions(symbols, start, end)

    def get_metadata(self) -> DataSourceMetadata:
        return self.inner.get_metadata()

    def calendar_of(self, symbol: str) -> str:
        return self.inner.calendar_of(symbol)

    def frequency_of(self, symbol: str) -> Timeframe | None:
        return self.inner.frequency_of(symbol)

    def cache_identity(self) -> str:
        steps = (self.outliers, self.missing, self.features)
        return f"prepared({self.inner.cache_identity()}, {steps!r})"


# steps ------------------------------------------------------------------------------------
def _outliers(bars: pl.DataFrame, spec: Outliers) -> pl.DataFrame:
    by = "symbol"
    log_ret = (pl.col("close") / pl.col("close").shift(1)).log().over(by)
    log_range = (pl.col("high") / pl.col("low")).log()
    flags = [_far(x, spec).over(by) for x in (log_ret, log_range)]
    out = bars.with_columns(pl.any_horizontal(f.fill_null(False) for f in flags).alias("outlier"))
    return out.filter(~pl.col("outlier")).drop("outlier") if spec.action == "drop" else out


def _far(x: pl.Expr, spec: Outliers) -> pl.Expr:
    """True where ``x`` lies beyond ``threshold`` spreads of the ``window`` values before it."""
    past = x.shift(1)
    if spec.method == "hampel":
        centre = past.rolling_median(spec.window)
        spread = (past - centre).abs().rolling_median(spec.window) * _MAD_TO_STD
    else:
        centre = past.rolling_mean(spec.window)
        spread = past.rolling_std(spec.window)
    return (x - centre).abs() > spec.threshold * spread


def _features(bars: pl.DataFrame, spec: Features) -> pl.DataFrame:
    by = "symbol"
    close = pl.col("close")
    ret = close / close.shift(1) - 1.0
    cols: list[pl.Expr] = []
    if spec.returns:
        cols.append(ret.over(by).alias("returns"))
    if spec.log_returns:
        cols.append((close / close.shift(1)).log().over(by).alias("log_returns"))
    cols += [ret.rolling_std(n).over(by).alias(f"volatility_{n}") for n in spec.volatility]
    cols += [((close - close.rolling_mean(n)) / close.rolling_std(n)).over(by).alias(f"zscore_{n}")
             for n in spec.zscore]
    out = bars.with_columns(cols)
    kernels = _indicator_kernels()
    arrays: dict[str, list[np.ndarray]] = {}
    for (kind, n) in [(k, n) for k in ("sma", "ema", "rsi", "atr") for n in getattr(spec, k)]:
        arrays[f"{kind}_{n}"] = [kernels[kind](part, n) for part in out.partition_by(by, maintain_order=True)]
    return out.with_columns(pl.Series(name, np.concatenate(parts) if parts else [], dtype=pl.Float64)
                            for name, parts in arrays.items())


def _indicator_kernels() -> dict[str, Callable[[pl.DataFrame, int], np.ndarray]]:
    """The one indicator set's functions, over one symbol's bars."""
    from . import indicators as ind

    def col(df: pl.DataFrame, name: str) -> np.ndarray:
        return df[name].to_numpy().astype(np.float64)

    return {
        "sma": lambda df, n: ind.sma(col(df, "close"), n),
        "ema": lambda df, n: ind.ema(col(df, "close"), n),
        "rsi": lambda df, n: ind.rsi(col(df, "close"), n),
        "atr": lambda df, n: ind.atr(col(df, "high"), col(df, "low"), col(df, "close"), n),
    }


def _missing(bars: pl.DataFrame, spec: MissingBars) -> pl.DataFrame:
    """Expected bars per symbol from its first to its last bar, then fill or drop the absent ones."""
    if bars.height == 0:
        return bars
    cal, tf = get_calendar(spec.calendar), Timeframe.parse(spec.frequency)
    parts = []
    for part in bars.partition_by("symbol", maintain_order=True):
        ts = part["ts"].dt.epoch("ns")
        expected = _expected(cal, tf, int(ts.min()), int(ts.max()))  # type: ignore[arg-type]
        parts.append(_fill(part, expected, spec.policy))
    return pl.concat(parts, how="diagonal_relaxed")


def _expected(cal: TradingCalendar, tf: Timeframe, first: int, last: int) -> pl.DataFrame:
    """Start, end and session of every ``tf`` bar in the sessions from ``first`` to ``last``.

    Intraday bars are anchored at each segment's start (open, break end) and cut at its end, as in
    ``backtape.aggregation``.
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

    return pl.DataFrame([column("ts", starts).cast(pl.Datetime("ns", "UTC")),
                         column("ts_end", ends).cast(pl.Datetime("ns", "UTC")), column("session", sessions)])


def _fill(part: pl.DataFrame, expected: pl.DataFrame, policy: str) -> pl.DataFrame:
    symbol = part["symbol"][0]
    ts_type = part.schema["ts"]
    expected = expected.with_columns(pl.col("ts").cast(ts_type), pl.col("ts_end").cast(part.schema["ts_end"]))
    merged = expected.join(part.drop("ts_end"), on="ts", how="left").with_columns(
        pl.col("close").is_null().alias("filled"))
    if policy == "drop":
        bad = merged.filter(pl.col("filled"))["session"].unique()
        kept = merged.filter(~pl.col("session").is_in(bad.implode()) & ~pl.col("filled"))
        return kept.drop("session", "filled").select(part.columns)
    prev = pl.col("close").forward_fill()
    filled = merged.with_columns(
        pl.lit(symbol).alias("symbol"),
        *[pl.col(c).fill_null(prev) for c in ("open", "high", "low", "close")],
        pl.col("volume").fill_null(0.0),
    ).filter(pl.col("close").is_not_null())   # nothing to carry before the first bar
    return filled.drop("session").select([*part.columns, "filled"])


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


__all__ = ["Features", "MissingBars", "Outliers", "PreparedSource", "prepare"]
