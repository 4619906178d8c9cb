"""Alpha Vantage time series: daily (raw or adjusted) and intraday by ``month``; corporate actions.

Wire details (``shared/providers.md`` §3): every answer is HTTP 200, errors and rate limits arrive
as a top-level ``Error Message``/``Information``/``Note``; values are strings; keys are US/Eastern
local times, newest first. Intraday keys are treated as bar starts (the last 5-minute key of an
extended session is 19:55, so a key labels the start of its interval); daily keys are session dates.
The key travels as the ``apikey`` query parameter, so every URL is redacted before it is shown.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import polars as pl

from .._time import TimeLike, check_range
from ..errors import (
    AuthenticationError,
    ConfigError,
    ProviderError,
    RateLimitError,
    SymbolNotFoundError,
    UnsupportedDataError,
)
from ..schema import TS, empty
from ..timeframes import Timeframe
from ._http import (
    DEFAULT_CONCURRENCY,
    HttpClient,
    HttpSource,
    PayloadCheck,
    ProgressCallback,
    RetryableBody,
    RetryPolicy,
)
from ._normalize import (
    NEW_YORK,
    actions_frame,
    bars_in_range,
    date_labels,
    local_date_labels,
    sessions_for_labels,
)
from .base import DataSourceMetadata, SourceCapabilities

DEFAULT_BASE_URL = "https://www.alphavantage.co"
#: free keys: about one request per second (and 25 per day, which the provider enforces itself)
DEFAULT_REQUESTS_PER_MINUTE = 60.0
_INTERVALS = {"1min": "1min", "5min": "5min", "15min": "15min", "30min": "30min", "1h": "60min"}
_ERROR_KEYS = ("Error Message", "Information", "Note")


def _credentials(api_key: str | None = None) -> str:
    """The key, as given (the workspace fills it from ``ALPHAVANTAGE_API_KEY``)."""
    key = api_key
    if not key:
        raise ConfigError("alphavantage: no API key; pass api_key= or set ALPHAVANTAGE_API_KEY")
    return key


def _classify(symbol: str) -> PayloadCheck:
    """Payload check mapping Alpha Vantage's HTTP-200 error bodies to typed errors."""

    def check(payload: Any) -> None:
        if not isinstance(payload, dict):
            raise ProviderError("alphavantage: expected a JSON object", provider="alphavantage")
        key = next((k for k in _ERROR_KEYS if k in payload), None)
        if key is None:
            return
        text = str(payload[key])
        low = text.lower()
        if "apikey" in low and ("invalid" in low or "missing" in low):
            raise AuthenticationError(f"alphavantage: {text}", status=200, provider="alphavantage")
        if "premium" in low and "rate limit" not in low and "spreading out" not in low:
            raise AuthenticationError(f"alphavantage: {text}", status=200, provider="alphavantage")
        if "spreading out" in low or "per second" in low or "per minute" in low:
            raise RetryableBody(text, retry_after=1.0 if "second" in low else 60.0)
        if "per day" in low or "rate limit" in low:
            raise RateLimitError(f"alphavantage: daily quota exhausted: {text}", status=200,
                                 provider="alphavantage")
        if key == "Error Message" and "invalid api call" in low:
            raise SymbolNotFoundError(f"alphavantage: unknown symbol {symbol!r} ({text})")
        raise ProviderError(f"alphavantage: {text}", status=200, body=text[:200], provider="alphavantage")

    return check


class AlphaVantageDataSource(HttpSource):
    """Alpha Vantage daily bars (``TIME_SERIES_DAILY``, or ``_ADJUSTED`` when ``adjusted=True``) and
    intraday bars at 1/5/15/30/60 minutes (one ``month=`` request per calendar month, ``outputsize=full``).

    ``extended_hours`` (default True, 04:00-20:00 ET) is passed through for intraday.
    """

    name = "alphavantage"

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        adjusted: bool = False,
        extended_hours: bool = True,
        entitlement: str | None = None,
        calendar: str = "XNYS",
        requests_per_minute: float | None = DEFAULT_REQUESTS_PER_MINUTE,
        burst: int | None = 1,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        concurrency: int = DEFAULT_CONCURRENCY,
        progress: ProgressCallback | None = None,
    ) -> None:
        key = _credentials(api_key)
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.adjusted = adjusted
        self.extended_hours = extended_hours
        self.entitlement = entitlement
        self._http = HttpClient("alphavantage", self.base_url, auth_params={"apikey": key}, secrets=[key],
                                requests_per_minute=requests_per_minute, burst=burst, retry=retry,
                                timeout=timeout)
        self._init_common(concurrency=concurrency, progress=progress, calendar=calendar)

    def get_metadata(self) -> DataSourceMetadata:
        return DataSourceMetadata(
            name=self.name, source_type="http", description="Alpha Vantage time series",
            calendar=self.calendar_name,
            capabilities=SourceCapabilities(kinds=frozenset({"bars", "actions"}),
                                            frequencies=("1min", "5min", "15min", "30min", "1h", "1d"),
                                            corporate_actions=True, adjusted=self.adjusted),
            details={"base_url": self._http.redact(self.base_url), "adjusted": self.adjusted,
                     "extended_hours": self.extended_hours},
        )

    def cache_identity(self) -> str:
        return (f"alphavantage:adjusted={str(self.adjusted).lower()}:extended_hours="
                f"{str(self.extended_hours).lower()}:calendar={self.calendar_name}")

    async def _query(self, symbol: str, params: dict[str, Any]) -> dict:
        return await self._http.get_json("/query", {**params, "symbol": symbol}, symbol=symbol,
                                         check=_classify(symbol))

    async def fetch(self, symbols: list[str], start: TimeLike, end: TimeLike,
                    frequency: str | Timeframe = "1d") -> pl.DataFrame:
        """Canonical bars in ``[start, end)``: one daily request per symbol, or one per symbol-month."""
        s, e = check_range(start, end)
        tf = Timeframe.parse(frequency)
        if tf.unit == "d":
            jobs = [functools.partial(self._daily, sym) for sym in symbols]
        elif str(tf) in _INTERVALS:
            jobs = [functools.partial(self._intraday, sym, tf, month)
                    for sym in symbols for month in _months(s, e)]
        else:
            raise UnsupportedDataError(f"alphavantage serves 1min, 5min, 15min, 30min, 1h and 1d bars, "
                                       f"not {tf}; aggregate finer bars with backtape.aggregate")
        frames = [f for f in await self._gather(jobs) if f.height]
        if not frames:
            return empty("bars")
        return bars_in_range(pl.concat(frames, how="vertical"), s, e)

    async def _daily_series(self, symbol: str, adjusted: bool) -> pl.DataFrame:
        function = "TIME_SERIES_DAILY_ADJUSTED" if adjusted else "TIME_SERIES_DAILY"
        payload = await self._query(symbol, {"function": function, "outputsize": "full"})
        return _series_frame(payload, "Time Series (Daily)", symbol)

    async def _daily(self, symbol: str) -> pl.DataFrame:
        raw = await self._daily_series(symbol, self.adjusted)
        if raw.height == 0:
            return empty("bars")
        opens, closes = sessions_for_labels(date_labels(raw["key"].to_list()), self.calendar_name,
                                            provider="alphavantage", symbol=symbol)
        factor = (pl.col("5. adjusted close") / pl.col("4. close")) if self.adjusted else pl.lit(1.0)
        volume = "6. volume" if self.adjusted else "5. volume"
        return raw.select(
            pl.lit(symbol, dtype=pl.String).alias("symbol"),
            pl.Series("ts", opens).cast(TS), pl.Series("ts_end", closes).cast(TS),
            (pl.col("1. open") * factor).alias("open"), (pl.col("2. high") * factor).alias("high"),
            (pl.col("3. low") * factor).alias("low"), (pl.col("4. close") * factor).alias("close"),
            pl.col(volume).alias("volume"),
        )

    async def _intraday(self, symbol: str, tf: Timeframe, month: str) -> pl.DataFrame:
        interval = _INTERVALS[str(tf)]
        params = {"function": "TIME_SERIES_INTRADAY", "interval": interval, "month": month,
                  "outputsize": "full", "adjusted": str(self.adjusted).lower(),
                  "extended_hours": str(self.extended_hours).lower()}
        if self.entitlement:
            params["entitlement"] = self.entitlement
        raw = await self._query(symbol, params)
        frame = _series_frame(raw, f"Time Series ({interval})", symbol)
        if frame.height == 0:
            return empty("bars")
        local = pl.col("key").str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="ns")
        ts = local.dt.replace_time_zone(NEW_YORK, ambiguous="raise", non_existent="raise") \
            .dt.convert_time_zone("UTC")
        return frame.select(
            pl.lit(symbol, dtype=pl.String).alias("symbol"), ts.alias("ts"),
            (ts + pl.duration(nanoseconds=tf.nanos)).alias("ts_end"),
            pl.col("1. open").alias("open"), pl.col("2. high").alias("high"), pl.col("3. low").alias("low"),
            pl.col("4. close").alias("close"), pl.col("5. volume").alias("volume"),
        )

    async def fetch_corporate_actions(self, symbols: list[str], start: TimeLike,
                                      end: TimeLike) -> pl.DataFrame:
        """Dividends and splits from ``TIME_SERIES_DAILY_ADJUSTED`` (a premium function)."""
        s, e = check_range(start, end)
        frames = await self._gather([functools.partial(self._daily_series, sym, True) for sym in symbols])
        syms, labels, actions, values = [], [], [], []
        for sym, raw in zip(symbols, frames, strict=True):
            if raw.height == 0:
                continue
            divs = raw.filter(pl.col("7. dividend amount") > 0)
            splits = raw.filter(pl.col("8. split coefficient") != 1.0)
            for part, action, column in ((divs, "dividend", "7. dividend amount"),
                                         (splits, "split", "8. split coefficient")):
                syms += [sym] * part.height
                labels.append(date_labels(part["key"].to_list()))
                actions += [action] * part.height
                values += part[column].to_list()
        all_labels = np.concatenate(labels) if labels else np.array([], dtype=np.int64)
        return actions_frame(syms, all_labels, actions, values, self.calendar_name, s, e)


def _series_frame(payload: dict, series_key: str, symbol: str) -> pl.DataFrame:
    """The series object as a frame: ``key`` (the timestamp text) plus numeric value columns."""
    if series_key not in payload:
        raise ProviderError(f"alphavantage: answer for {symbol} lacks {series_key!r}; keys: "
                            f"{', '.join(list(payload)[:5])}", provider="alphavantage")
    series = payload[series_key] or {}
    if not series:
        return pl.DataFrame({"key": []}, schema={"key": pl.String})
    keys = list(series)
    columns = {name: [series[k].get(name) for k in keys] for name in series[keys[0]]}
    try:
        return pl.DataFrame({"key": keys, **{n: pl.Series(v, dtype=pl.String).cast(pl.Float64)
                                             for n, v in columns.items()}})
    except pl.exceptions.InvalidOperationError as exc:
        raise ProviderError(f"alphavantage: non-numeric value in {series_key} for {symbol}: {exc}",
                            provider="alphavantage") from None


def _months(s: int, e: int) -> list[str]:
    """``YYYY-MM`` of every calendar month (US/Eastern) overlapping ``[s, e)``."""
    first, last = (np.datetime64(int(x), "ns").astype("datetime64[M]")
                   for x in local_date_labels([s, e - 1], NEW_YORK))
    return [str(m) for m in np.arange(first, last + 1)]


__all__ = ["AlphaVantageDataSource"]
