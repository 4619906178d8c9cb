"""Yahoo Finance chart API v8 over raw HTTP (no yfinance): bars, dividends and splits.

Wire details (``shared/providers.md`` §4): ``timestamp`` in Unix seconds parallel to
``indicators.quote[0]`` arrays that hold ``null`` (such rows are dropped, never filled); daily bars
are stamped at the session open (mapped to the session by exchange-local date); the last bar may
still be forming (dropped while its end is in the future); unknown symbols are HTTP 404 with a
``chart.error`` object; 429 bodies are plain text. Yahoo's ``close`` is split-adjusted, so bars are
reported as adjusted; ``adjust="all"`` also applies dividends through ``adjclose``. Yahoo has no
published limits or terms for this API; the default rate limit is deliberately gentle.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import numpy as np
import polars as pl

from .._time import NS_PER_DAY, NS_PER_SECOND, TimeLike, check_range, now_ns
from ..errors import ConfigError, ProviderError, UnsupportedDataError
from ..schema import empty
from ..timeframes import Timeframe
from ._http import DEFAULT_CONCURRENCY, HttpClient, HttpSource, ProgressCallback, RetryPolicy
from ._normalize import (
    NEW_YORK,
    actions_frame,
    bars_in_range,
    local_date_labels,
    sessions_for_labels,
    week_bounds,
)
from .base import DataSourceMetadata, SourceCapabilities

DEFAULT_BASE_URL = "https://query2.finance.yahoo.com"
DEFAULT_REQUESTS_PER_MINUTE = 60.0
_INTERVALS = {"1min": "1m", "2min": "2m", "5min": "5m", "15min": "15m", "30min": "30m", "1h": "60m",
              "90min": "90m", "1d": "1d", "1w": "1wk"}
#: longest window one request may span, per Yahoo's (undocumented) interval limits
_MAX_SPAN_DAYS = {"1m": 7, "2m": 59, "5m": 59, "15m": 59, "30m": 59, "60m": 729, "90m": 59}


def _credentials() -> None:
    """Yahoo's chart API needs no key; kept so every adapter has the same extension point."""
    return None


class YahooDataSource(HttpSource):
    """Yahoo chart bars (1/2/5/15/30/90 minutes, 1 hour, day, week) and dividend/split events.

    ``adjust`` is ``"split"`` (Yahoo's own close) or ``"all"`` (scaled by ``adjclose``; daily and
    weekly only). ``clock`` returns "now" in UTC ns and decides which bars are still unfinished.
    """

    name = "yahoo"

    def __init__(
        self,
        base_url: str | None = None,
        *,
        adjust: str = "split",
        include_prepost: bool = False,
        calendar: str = "XNYS",
        requests_per_minute: float | None = DEFAULT_REQUESTS_PER_MINUTE,
        burst: int | None = 5,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        concurrency: int = DEFAULT_CONCURRENCY,
        progress: ProgressCallback | None = None,
        clock: Callable[[], int] = now_ns,
    ) -> None:
        if adjust not in ("split", "all"):
            raise ConfigError(f"yahoo: adjust must be 'split' or 'all', not {adjust!r}")
        _credentials()
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.adjust = adjust
        self.include_prepost = include_prepost
        self.clock = clock
        self._http = HttpClient("yahoo", self.base_url, headers={"User-Agent": "Mozilla/5.0 (backtape)"},
                                requests_per_minute=requests_per_minute, burst=burst, retry=retry,
                                timeout=timeout)
        self._init_common(concurrency=concurrency, progress=progress, calendar=calendar)

    def get_metadata(self) -> DataSourceMetadata:
        return DataSourceMetadata(
            name=self.name, source_type="http", description="Yahoo Finance chart API (unofficial)",
            calendar=self.calendar_name,
            capabilities=SourceCapabilities(kinds=frozenset({"bars", "actions"}),
                                            frequencies=tuple(_INTERVALS), corporate_actions=True,
                                            adjusted=True),
            details={"base_url": self.base_url, "adjust": self.adjust,
                     "include_prepost": self.include_prepost},
        )

    def cache_identity(self) -> str:
        prepost = str(self.include_prepost).lower()
        return f"yahoo:adjust={self.adjust}:prepost={prepost}:calendar={self.calendar_name}"

    async def _chart(self, symbol: str, interval: str, a: int, b: int) -> dict:
        params = {"period1": a // NS_PER_SECOND, "period2": -(-b // NS_PER_SECOND), "interval": interval,
                  "events": "div,splits", "includePrePost": str(self.include_prepost).lower()}
        payload = await self._http.get_json(f"/v8/finance/chart/{quote(symbol, safe='')}", params,
                                            symbol=symbol, check=_check_chart)
        return payload["chart"]["result"][0]

    async def fetch(self, symbols: list[str], start: TimeLike, end: TimeLike,
                    frequency: str | Timeframe = "1d") -> pl.DataFrame:
        """Canonical finished bars in ``[start, end)``; windows respect Yahoo's per-interval span."""
        s, e = check_range(start, end)
        tf = Timeframe.parse(frequency)
        interval = _INTERVALS.get(str(tf))
        if interval is None:
            raise UnsupportedDataError(f"yahoo serves {', '.join(_INTERVALS)} bars, not {tf}")
        if self.adjust == "all" and tf.is_intraday:
            raise UnsupportedDataError("yahoo: adjust='all' needs adjclose, which comes only with 1d/1w bars")
        span = _MAX_SPAN_DAYS.get(interval, 0) * NS_PER_DAY or (e - s)
        jobs = [functools.partial(self._bars, sym, tf, interval, a, min(a + span, e))
                for sym in symbols for a in range(s, e, span)]
        frames = [f for f in await self._gather(jobs) if f.height]
        if not frames:
            return empty("bars")
        return bars_in_range(pl.concat(frames, how="vertical"), s, e)

    async def _bars(self, symbol: str, tf: Timeframe, interval: str, a: int, b: int) -> pl.DataFrame:
        result = await self._chart(symbol, interval, a, b)
        stamps = result.get("timestamp") or []
        if not stamps:
            return empty("bars")
        q = (result.get("indicators", {}).get("quote") or [{}])[0]
        columns: dict[str, Any] = {"t": stamps, **{k: q.get(k) or [None] * len(stamps)
                                                 for k in ("open", "high", "low", "close", "volume")}}
        if self.adjust == "all":
            adj = (result["indicators"].get("adjclose") or [{}])[0].get("adjclose") or [None] * len(stamps)
            columns["adjclose"] = adj
        raw = pl.DataFrame(columns, schema={"t": pl.Int64, "open": pl.Float64, "high": pl.Float64,
                                            "low": pl.Float64, "close": pl.Float64, "volume": pl.Float64,
                                            **({"adjclose": pl.Float64} if self.adjust == "all" else {})})
        raw = raw.drop_nulls()  # halts and holidays: Yahoo sends nulls; never fabricate a bar
        if self.adjust == "all":
            factor = pl.col("adjclose") / pl.col("close")
            raw = raw.with_columns(*(pl.col(c) * factor for c in ("open", "high", "low", "close")))
        t = raw["t"].to_numpy().astype(np.int64) * NS_PER_SECOND
        tz = (result.get("meta") or {}).get("exchangeTimezoneName") or NEW_YORK
        if tf.is_intraday:
            ts, ts_end = t, t + tf.nanos
        elif tf.unit == "d":
            ts, ts_end = sessions_for_labels(local_date_labels(t, tz), self.calendar_name,
                                             provider="yahoo", symbol=symbol)
        else:
            monday = local_date_labels(t, tz)
            ts, ts_end = week_bounds(monday, self.calendar_name, provider="yahoo", symbol=symbol)
        frame = pl.DataFrame({"symbol": pl.Series([symbol] * raw.height, dtype=pl.String), "ts": ts,
                              "ts_end": ts_end})
        frame = frame.hstack(raw.select("open", "high", "low", "close", "volume"))
        return frame.filter(pl.col("ts_end") <= self.clock())  # the live bar is not a bar yet

    async def fetch_corporate_actions(self, symbols: list[str], start: TimeLike,
                                      end: TimeLike) -> pl.DataFrame:
        """Dividends (cash per share) and splits (numerator/denominator) with ex-date in range."""
        s, e = check_range(start, end)
        results = await self._gather([functools.partial(self._chart, sym, "1d", s - NS_PER_DAY, e)
                                      for sym in symbols])
        rows: list[tuple[str, int, str, float]] = []
        for sym, result in zip(symbols, results, strict=True):
            events = result.get("events") or {}
            rows += [(sym, int(d["date"]), "dividend", float(d["amount"]))
                     for d in (events.get("dividends") or {}).values()]
            rows += [(sym, int(x["date"]), "split", float(x["numerator"]) / float(x["denominator"]))
                     for x in (events.get("splits") or {}).values()]
        stamps = np.asarray([r[1] for r in rows], dtype=np.int64) * NS_PER_SECOND
        labels = local_date_labels(stamps, NEW_YORK) if rows else stamps
        return actions_frame([r[0] for r in rows], labels, [r[2] for r in rows], [r[3] for r in rows],
                             self.calendar_name, s, e)


def _check_chart(payload: Any) -> None:
    """A 200 answer must hold ``chart.result[0]``; ``chart.error`` is reported as a provider error."""
    chart = payload.get("chart") if isinstance(payload, dict) else None
    if not isinstance(chart, dict):
        raise ProviderError("yahoo: answer lacks the 'chart' object", provider="yahoo")
    if chart.get("error"):
        err = chart["error"]
        raise ProviderError(f"yahoo: {err.get('code')}: {err.get('description')}", status=200,
                            provider="yahoo")
    if not chart.get("result"):
        raise ProviderError("yahoo: answer has no chart result", provider="yahoo")


__all__ = ["YahooDataSource"]
