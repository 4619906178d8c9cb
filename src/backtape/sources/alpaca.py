"""Alpaca Market Data v2 (stocks): bars, trades and quotes with ``page_token`` paging and feed choice.

Wire details (``shared/providers.md`` §2): multi-symbol pages are maps sorted by symbol and ``limit``
counts rows across all symbols, so lists are merged per symbol across pages; an empty single-symbol
result is ``"bars": null``; timestamps are RFC 3339 with up to nine fractional digits, parsed to exact
nanoseconds; daily bars are stamped at midnight New York (mapped to the session); ``start``/``end``
are inclusive. Auth is the ``APCA-API-KEY-ID``/``APCA-API-SECRET-KEY`` header pair.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import polars as pl

from .._time import NS_PER_DAY, TimeLike, check_range, format_ns
from ..errors import ConfigError, ProviderError, SymbolNotFoundError
from ..schema import TickKind, empty
from ..timeframes import Timeframe
from ._http import (
    DEFAULT_CONCURRENCY,
    HttpClient,
    HttpSource,
    ProgressCallback,
    RetryPolicy,
    follow_pages,
)
from ._normalize import (
    NEW_YORK,
    bars_in_range,
    local_date_labels,
    rfc3339_to_ns,
    sessions_for_labels,
    ticks_in_range,
    week_bounds,
)
from .base import ANY_FREQUENCY, DataSourceMetadata, SourceCapabilities

DEFAULT_BASE_URL = "https://data.alpaca.markets"
#: the Basic (free) plan's published limit; Algo Trader Plus allows 10,000/min
DEFAULT_REQUESTS_PER_MINUTE = 200.0
MAX_LIMIT = 10_000
FEEDS = ("iex", "sip", "otc", "delayed_sip", "boats", "overnight")
ADJUSTMENTS = ("raw", "split", "dividend", "all")


def _credentials(api_key: str | None = None, secret_key: str | None = None) -> tuple[str, str]:
    """The key pair, as given (the workspace fills it from ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY``)."""
    key_id, secret = api_key, secret_key
    if not key_id or not secret:
        raise ConfigError("alpaca: no key pair; pass api_key= and secret_key= or set APCA_API_KEY_ID "
                          "and APCA_API_SECRET_KEY")
    return key_id, secret


def _rfc3339(ns: int) -> str:
    """UTC RFC 3339 with nine fractional digits."""
    text = format_ns(ns - ns % 1_000_000_000)
    if "T" not in text:
        text += "T00:00:00Z"
    return text[:-1] + f".{ns % 1_000_000_000:09d}Z"


def _error_hook(response: httpx.Response, shown: str) -> Exception | None:
    """400/422 naming an invalid symbol become ``SymbolNotFoundError``."""
    if response.status_code in (400, 422) and "symbol" in response.text.lower():
        return SymbolNotFoundError(f"alpaca: {response.text[:200].strip()} (GET {shown})")
    return None


class AlpacaDataSource(HttpSource):
    """Alpaca stock bars (any minute/hour size, day, week), trades and quotes.

    ``feed`` selects ``iex``/``sip``/... (default: the best your plan allows); ``adjustment`` is
    ``raw`` (default, backtape applies corporate actions itself), ``split``, ``dividend`` or ``all``.
    """

    name = "alpaca"

    def __init__(
        self,
        api_key: str | None = None,
        secret_key: str | None = None,
        base_url: str | None = None,
        *,
        feed: str | None = None,
        adjustment: str = "raw",
        calendar: str = "XNYS",
        requests_per_minute: float | None = DEFAULT_REQUESTS_PER_MINUTE,
        burst: int | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        concurrency: int = DEFAULT_CONCURRENCY,
        progress: ProgressCallback | None = None,
        chunk_minutes: int | dict[str, int] | None = None,
        avg_volume: dict[str, float] | None = None,
        page_limit: int = MAX_LIMIT,
    ) -> None:
        if feed is not None and feed not in FEEDS:
            raise ConfigError(f"alpaca: unknown feed {feed!r}; use one of {', '.join(FEEDS)}")
        if adjustment not in ADJUSTMENTS:
            raise ConfigError(f"alpaca: unknown adjustment {adjustment!r}; "
                              f"use one of {', '.join(ADJUSTMENTS)}")
        key_id, secret = _credentials(api_key, secret_key)
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.feed = feed
        self.adjustment = adjustment
        self.page_limit = min(page_limit, MAX_LIMIT)
        self._http = HttpClient(
            "alpaca", self.base_url,
            headers={"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret},
            secrets=[key_id, secret], requests_per_minute=requests_per_minute, burst=burst,
            retry=retry, timeout=timeout,
        )
        self._init_common(concurrency=concurrency, progress=progress, chunk_minutes=chunk_minutes,
                          avg_volume=avg_volume, calendar=calendar)

    def get_metadata(self) -> DataSourceMetadata:
        return DataSourceMetadata(
            name=self.name, source_type="http", description="Alpaca market data v2 (stocks)",
            calendar=self.calendar_name,
            capabilities=SourceCapabilities(kinds=frozenset({"bars", "trades", "quotes"}),
                                            frequencies=ANY_FREQUENCY, adjusted=self.adjustment != "raw"),
            details={"base_url": self._http.redact(self.base_url), "feed": self.feed or "default",
                     "adjustment": self.adjustment},
        )

    def cache_identity(self) -> str:
        return (f"alpaca:feed={self.feed or 'default'}:adjustment={self.adjustment}"
                f":calendar={self.calendar_name}")

    def _common(self) -> dict[str, str | int]:
        params: dict[str, str | int] = {"limit": self.page_limit, "sort": "asc"}
        if self.feed:
            params["feed"] = self.feed
        return params

    async def _pages(self, path: str, params: dict[str, str | int], symbol: str | None) -> list[dict]:
        """Every page of a ``page_token`` listing (the identical query plus the token)."""
        get = functools.partial(self._http.get_json, path, symbol=symbol, check=_check_object,
                                error_hook=_error_hook)
        seen: set[str] = set()

        def follow(page: dict):
            token = page.get("next_page_token")
            if not token:
                return None
            if token in seen:
                raise ProviderError(f"alpaca: next_page_token repeats on {path}", provider="alpaca")
            seen.add(token)
            return get({**params, "page_token": token})

        return await follow_pages(lambda: get(params), follow, provider="alpaca")

    # -- bars -----------------------------------------------------------------------------------
    async def fetch(self, symbols: list[str], start: TimeLike, end: TimeLike,
                    frequency: str | Timeframe = "1d") -> pl.DataFrame:
        """Canonical bars from the multi-symbol endpoint, time windows fetched concurrently."""
        s, e = check_range(start, end)
        tf = Timeframe.parse(frequency)
        span = max(1, self.page_limit * tf.minutes // 1440) * NS_PER_DAY if tf.is_intraday else e - s
        params = {**self._common(), "symbols": ",".join(symbols), "timeframe": _alpaca_timeframe(tf),
                  "adjustment": self.adjustment}
        jobs = [functools.partial(self._pages, "/v2/stocks/bars",
                                  {**params, "start": _rfc3339(a), "end": _rfc3339(min(a + span, e) - 1)},
                                  symbols[0] if len(symbols) == 1 else None)
                for a in range(s, e, span)]
        pages = [p for window in await self._gather(jobs) for p in window]
        frames = [self._bars(sym, rows, tf) for sym, rows in _merge_by_symbol(pages, "bars").items()]
        if not frames:
            return empty("bars")
        return bars_in_range(pl.concat(frames, how="vertical"), s, e)

    def _bars(self, symbol: str, rows: list[dict], tf: Timeframe) -> pl.DataFrame:
        raw = pl.from_dicts(rows, schema={"t": pl.String, "o": pl.Float64, "h": pl.Float64, "l": pl.Float64,
                                          "c": pl.Float64, "v": pl.Float64, "n": pl.Int64, "vw": pl.Float64})
        t = rfc3339_to_ns(raw["t"].to_list()).to_numpy().astype(np.int64)
        if tf.is_intraday:
            ts, ts_end = t, t + tf.nanos
        elif tf.unit == "d":
            labels = local_date_labels(t, NEW_YORK)
            ts, ts_end = sessions_for_labels(labels, self.calendar_name, provider="alpaca", symbol=symbol)
        else:
            ts, ts_end = week_bounds(t, self.calendar_name, provider="alpaca", symbol=symbol)
        return pl.DataFrame({
            "symbol": pl.Series([symbol] * raw.height, dtype=pl.String), "ts": ts, "ts_end": ts_end,
            "open": raw["o"], "high": raw["h"], "low": raw["l"], "close": raw["c"], "volume": raw["v"],
            "vwap": raw["vw"], "transactions": raw["n"],
        })

    # -- trades and quotes ----------------------------------------------------------------------
    async def fetch_trades(self, symbols: list[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        """Canonical trades (exact-ns ``t``) in ``[start, end)``, liquidity-sized windows in parallel."""
        return await self._fetch_ticks("trades", symbols, start, end)

    async def fetch_quotes(self, symbols: list[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        """Canonical NBBO quotes in ``[start, end)``."""
        return await self._fetch_ticks("quotes", symbols, start, end)

    async def _fetch_ticks(self, kind: TickKind, symbols: list[str], start: TimeLike,
                           end: TimeLike) -> pl.DataFrame:
        s, e = check_range(start, end)
        jobs, owners = [], []
        for sym in symbols:
            for a, b in await self._tick_windows(sym, s, e):
                params = {**self._common(), "start": _rfc3339(a), "end": _rfc3339(b - 1)}
                jobs.append(functools.partial(self._pages, f"/v2/stocks/{quote(sym, safe='')}/{kind}",
                                              params, sym))
                owners.append(sym)
        rows_by_symbol: dict[str, list[dict]] = {}
        for sym, pages in zip(owners, await self._gather(jobs), strict=True):
            for page in pages:
                rows_by_symbol.setdefault(sym, []).extend(page.get(kind) or [])  # null when empty
        out = [_ticks(kind, sym, rows) for sym, rows in rows_by_symbol.items() if rows]
        if not out:
            return empty(kind)
        return ticks_in_range(pl.concat(out, how="vertical"), kind, s, e)


def _ticks(kind: TickKind, symbol: str, rows: list[dict]) -> pl.DataFrame:
    """Alpaca trade (``t x p s c i``) or quote (``t ax ap as bx bp bs``) rows to canonical columns."""
    if kind == "trades":
        raw = pl.from_dicts(rows, schema={"t": pl.String, "x": pl.String, "p": pl.Float64, "s": pl.Float64,
                                          "c": pl.List(pl.String), "i": pl.Int64})
        return raw.select(
            pl.lit(symbol, dtype=pl.String).alias("symbol"), rfc3339_to_ns(raw["t"].to_list()).alias("ts"),
            pl.col("p").alias("price"), pl.col("s").alias("size"), pl.col("x").alias("exchange"),
            pl.col("c").list.join(",").alias("conditions"), pl.col("i").cast(pl.String).alias("id"),
        ).sort("ts", maintain_order=True)
    raw = pl.from_dicts(rows, schema={"t": pl.String, "ax": pl.String, "ap": pl.Float64, "as": pl.Float64,
                                      "bx": pl.String, "bp": pl.Float64, "bs": pl.Float64})
    return raw.select(
        pl.lit(symbol, dtype=pl.String).alias("symbol"), rfc3339_to_ns(raw["t"].to_list()).alias("ts"),
        pl.col("bp").alias("bid"), pl.col("ap").alias("ask"), pl.col("bs").alias("bid_size"),
        pl.col("as").alias("ask_size"), pl.col("bx").alias("bid_exchange"),
        pl.col("ax").alias("ask_exchange"),
    ).sort("ts", maintain_order=True)


def _merge_by_symbol(pages: list[dict], key: str) -> dict[str, list[dict]]:
    """Concatenate per-symbol lists across multi-symbol pages (a symbol may span several pages)."""
    merged: dict[str, list[dict]] = {}
    for page in pages:
        for sym, rows in (page.get(key) or {}).items():
            merged.setdefault(sym, []).extend(rows or [])
    return {sym: rows for sym, rows in merged.items() if rows}


def _check_object(payload: Any) -> None:
    if not isinstance(payload, dict):
        raise ProviderError(f"alpaca: expected a JSON object, got {type(payload).__name__}",
                            provider="alpaca")


def _alpaca_timeframe(tf: Timeframe) -> str:
    """Alpaca's case-sensitive timeframe: ``5Min``, ``1Hour``, ``1Day``, ``1Week``."""
    if tf.unit == "min":
        return f"{tf.n}Min"
    if tf.unit == "h":
        if tf.n > 23:
            raise ConfigError(f"alpaca: hour bars go up to 23Hour, not {tf}")
        return f"{tf.n}Hour"
    return "1Day" if tf.unit == "d" else "1Week"


__all__ = ["AlpacaDataSource"]
