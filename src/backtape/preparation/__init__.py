"""Data preparation (the seeds' DataPreprocessor): missing bars, outliers and feature columns.

Every step is point in time: whether a bar is kept, flagged or filled, and every value on it,
depends on that bar and earlier ones of its symbol only, so changing or removing a later bar never
changes an earlier row (tested by perturbation). The steps run in the order of the table.

=====================  ====================================================================
step                   what it does
=====================  ====================================================================
``MissingBars``        the bars the calendar expected but the data lacks, between a symbol's
                       first and last bar: ``"leave"`` them out, ``"ffill"`` them (OHLC =
                       previous close, volume 0 or null like that bar's, column ``filled``),
                       or ``"drop"`` each session's bars from its first absent bar on (known
                       at each bar; with 1d bars nothing is left to drop, as ``"leave"``).
                       Calendar and frequency are the bars' own unless given (see below)
``Outliers``           flags (column ``outlier``) or drops bars whose log return or log range
                       is beyond ``threshold`` spreads of the ``window`` bars before it:
                       ``"hampel"`` centres on their median with spread 1.4826 x the median
                       absolute deviation from it, ``"zscore"`` on their mean and std. After
                       a flagged bar the next return also counts from the last good bar, so
                       the way back from a spike is not flagged
``Features``           columns computed from the past: ``returns``, ``log_returns``,
                       ``volatility_N`` (std of N returns), ``zscore_N`` (close vs its N-bar
                       mean, in stds), ``sma_N``, ``ema_N``, ``rsi_N``, ``atr_N``
=====================  ====================================================================

Corporate actions: given ``actions`` (``PreparedSource`` fetches them), outliers and features
are computed on prices adjusted for the actions that went ex at or before each bar, as a strategy
at that bar sees them: AAPL's 7:1 split is not a -86% return. Ratio features (returns,
volatility, zscore, rsi) are the same in any later adjustment; price-level ones (sma, ema, atr)
are in the prices of their own bar. The frame's prices stay raw (the portal adjusts them on read).

``MissingBars`` reads the frequency from the bars' ``ts_end - ts`` (1d when each bar is a whole
session) and takes the calendar from the source (``PreparedSource``) or ``MissingBars(calendar=)``;
bars that do not sit on that calendar's grid are a ``ConfigError``, never silently lost.

``prepare(bars, ...)`` works on a canonical bars frame; ``PreparedSource(source, ...)`` applies the
same steps to everything a source serves, so strategies read the features through the portal
(``ctx.history(symbol, 20, field="rsi_14")``) and vector strategies in their arrays
(``bars["rsi_14"]``). Features are per served bar frequency: a run whose bars the portal
aggregates (``1w``, ``1mo``... from daily bars) has no feature fields.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from .._time import TimeLike
from ..errors import ConfigError
from ..sources.base import DataSource, DataSourceMetadata
from ..timeframes import Timeframe
from .missing import handle_missing
from .specs import Features, MissingBars, Outliers, as_features, as_missing, as_outliers, check_choice
from .steps import adjustment_factors, feature_columns, outlier_flags

_NEEDED = ("symbol", "ts", "ts_end", "open", "high", "low", "close")
ADJUSTMENTS = ("raw", "split", "total_return")


def prepare(bars: pl.DataFrame, *, outliers: Outliers | str | None = None,
            missing: MissingBars | str | None = None, features: Features | None = None,
            actions: pl.DataFrame | None = None, adjust: str = "split") -> pl.DataFrame:
    """``bars`` with missing bars handled, outliers flagged or dropped, then feature columns added.

    ``outliers="hampel"`` and ``missing="ffill"`` (or another policy) mean that step's defaults.
    ``actions`` (a corporate actions frame) and ``adjust`` (``"raw"``, ``"split"``,
    ``"total_return"``) set the prices outliers and features are computed on.
    """
    return _prepare(bars, as_outliers(outliers), as_missing(missing), as_features(features), actions,
                    adjust, None)


def _prepare(bars: pl.DataFrame, outliers: Outliers | None, missing: MissingBars | None,
             features: Features | None, actions: pl.DataFrame | None, adjust: str,
             calendar_of: Callable[[str], str] | None) -> pl.DataFrame:
    if not isinstance(bars, pl.DataFrame):
        raise ConfigError(f"prepare takes a polars bars DataFrame, got {type(bars).__name__}; convert a "
                          "pandas frame with polars.from_pandas and backtape.read_bars' columns")
    absent = [c for c in _NEEDED if c not in bars.columns]
    if absent:
        raise ConfigError(f"prepare needs bars with columns {', '.join(_NEEDED)}; "
                          f"missing {', '.join(absent)}")
    if "volume" not in bars.columns:  # FX and index files: no volume, as the file readers give it
        bars = bars.with_columns(pl.lit(None, dtype=pl.Float64).alias("volume"))
    dupes = bars.select("symbol", "ts").is_duplicated()
    if dupes.any():
        first = bars.filter(dupes).row(0, named=True)
        raise ConfigError(f"prepare: {dupes.sum()} bars share a (symbol, ts) with another, first "
                          f"{first['symbol']} at {first['ts']}; keep one bar per time "
                          "(e.g. frame.unique(['symbol', 'ts'], keep='last'))")
    check_choice("prepare adjust", adjust, ADJUSTMENTS)
    if actions is not None and not (isinstance(actions, pl.DataFrame)
                                    and {"symbol", "ts", "action", "value"} <= set(actions.columns)):
        raise ConfigError("prepare actions must be a corporate actions frame (symbol, ts, action, value), "
                          "such as a source's fetch_corporate_actions")
    out = bars.sort("symbol", "ts")
    if missing is not None:
        out = handle_missing(out, missing, calendar_of)
    if outliers is None and features is None:
        return out
    factor = adjustment_factors(out, actions, adjust)
    adjusted = out.with_columns(pl.col(c) * pl.Series(factor) for c in ("open", "high", "low", "close"))
    if outliers is not None:
        flags = outlier_flags(adjusted, outliers)
        if outliers.action == "drop":
            out, adjusted, factor = out.filter(~flags), adjusted.filter(~flags), factor[~flags]
        else:
            out = out.with_columns(pl.Series("outlier", flags))
    if features is not None:  # a feature's warm-up is null whichever step computed it (never NaN)
        out = out.with_columns(c.fill_nan(None) for c in feature_columns(adjusted, features, factor))
    return out


class PreparedSource(DataSource):
    """A source whose bars come prepared by ``prepare``; trades, quotes and actions pass through.

    Missing bars use each symbol's calendar (``calendar_of``); outliers and features are computed
    on prices adjusted (``adjust``, the portal's default ``"split"``) as of each bar, with the
    source's actions in the fetched range. Features need their window of bars inside each fetched
    range (a portal loads a strategy's warm-up before ``start``, so request that much history).
    """

    def __init__(self, source: DataSource, *, outliers: Outliers | str | None = None,
                 missing: MissingBars | str | None = None, features: Features | None = None,
                 adjust: str = "split") -> None:
        if not isinstance(source, DataSource):
            raise ConfigError(f"PreparedSource wraps a DataSource (Workspace().source(...)), got {source!r}")
        check_choice("PreparedSource adjust", adjust, ADJUSTMENTS)
        self.inner = source
        self.outliers, self.missing = as_outliers(outliers), as_missing(missing)
        self.features, self.adjust = as_features(features), adjust
        self.name = f"prepared({source.name})"
        self.remote = source.remote

    async def fetch(self, symbols: list[str], start: TimeLike, end: TimeLike,
                    frequency: str | Timeframe = "1d") -> pl.DataFrame:
        bars = await self.inner.fetch(symbols, start, end, frequency)
        wants_actions = (self.outliers or self.features) and self.adjust != "raw" and bars.height
        actions = await self.inner.fetch_corporate_actions(symbols, start, end) if wants_actions else None
        return _prepare(bars, self.outliers, self.missing, self.features, actions, self.adjust,
                        self.inner.calendar_of)

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
        steps = (self.outliers, self.missing, self.features, self.adjust)
        return f"prepared({self.inner.cache_identity()}, {steps!r})"


__all__ = ["Features", "MissingBars", "Outliers", "PreparedSource", "prepare"]

