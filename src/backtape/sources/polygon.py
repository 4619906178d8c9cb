"""Polygon.io (now Massive): aggregates, trades v3, NBBO quotes v3, splits/dividends and S3 flat files.

Wire details that decide correctness (``shared/providers.md`` §1): ``t`` is the bar start in Unix ms
and daily bars are stamped at midnight America/New_York (mapped here to the session open/close);
trades and quotes come newest first unless ``order=asc`` (sent, and rows are sorted anyway); their
nanosecond stamps stay Python ints; ``next_url`` points at the production host without the key, so
its path and query are followed on the configured base with auth re-added; flat-file volumes may be
fractional. Prices are raw (``adjusted=false``) unless ``adjusted=True`` is passed.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import gzip
from typing import Any, BinaryIO
from urllib.parse import quote

import numpy as np
import polars as pl

from .._time import NS_PER_DAY, TimeLike, check_range
from ..calendars import get_calendar
from ..errors import AuthenticationError, ConfigError, ProviderError, UnsupportedDataError
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
    actions_frame,
    bars_in_range,
    date_labels,
    local_date_labels,
    sessions_for_labels,
    ticks_in_range,
    week_bounds,
)
from .base import ANY_FREQUENCY, DataSourceMetadata, SourceCapabilities

DEFAULT_BASE_URL = "https://api.massive.com"
DEFAULT_FLAT_FILES_ENDPOINT = "https://files.massive.com"
#: the Basic (free) plan's published limit; paid plans are "unlimited", pass requests_per_minute=
DEFAULT_REQUESTS_PER_MINUTE = 5.0
MAX_LIMIT = 50_000
#: decompressed CSV bytes parsed at a time when streaming a flat file
FLAT_BLOCK_BYTES = 8 * 1024 * 1024
_TIMESPANS = {"min": "minute", "h": "hour", "d": "day", "w": "week"}
_FLAT_DATASETS = {"1min": "minute_aggs_v1", "1d": "day_aggs_v1", "trades": "trades_v1", "quotes": "quotes_v1"}

_AGG_SCHEMA = {"t": pl.Int64, "o": pl.Float64, "h": pl.Float64, "l": pl.Float64, "c": pl.Float64,
               "v": pl.Float64, "vw": pl.Float64, "n": pl.Int64}
_TRADE_SCHEMA = pl.Schema({"sip_timestamp": pl.Int64(), "sequence_number": pl.Int64(),
                           "price": pl.Float64(), "size": pl.Float64(), "exchange": pl.Int64(),
                           "conditions": pl.List(pl.Int64()), "id": pl.String()})
_QUOTE_SCHEMA = pl.Schema({"sip_timestamp": pl.Int64(), "sequence_number": pl.Int64(),
                           "bid_price": pl.Float64(), "ask_price": pl.Float64(), "bid_size": pl.Float64(),
                           "ask_size": pl.Float64(), "bid_exchange": pl.Int64(), "ask_exchange": pl.Int64()})


def _credentials(api_key: str | None = None) -> str:
    """The REST key, as given (the workspace fills it from ``POLYGON_API_KEY`` / ``MASSIVE_API_KEY``)."""
    key = api_key
    if not key:
        raise ConfigError("polygon: no API key; pass api_key= or set POLYGON_API_KEY")
    return key


def _s3_credentials(access_key_id: str | None, secret_access_key: str | None) -> tuple[str, str]:
    """Flat-file S3 keys (separate from the REST key), as given (the workspace reads ``POLYGON_S3_*``)."""
    key_id, secret = access_key_id, secret_access_key
    if not key_id or not secret:
        raise ConfigError("polygon flat files: no S3 keys; pass s3_access_key_id= and s3_secret_access_key= "
                          "or set POLYGON_S3_ACCESS_KEY_ID and POLYGON_S3_SECRET_ACCESS_KEY")
    return key_id, secret


def _check_status(payload: Any) -> None:
    """Polygon may answer an error with HTTP 200: inspect the body's ``status``."""
    if not isinstance(payload, dict):
        raise ProviderError(f"polygon: expected a JSON object, got {type(payload).__name__}",
                            provider="polygon")
    status = payload.get("status")
    if status == "NOT_AUTHORIZED":
        raise AuthenticationError(f"polygon: {payload.get('message') or 'not authorized'}",
                                  status=200, provider="polygon")
    if status == "ERROR":
        raise ProviderError(f"polygon: {payload.get('error') or payload.get('message') or 'error'}",
                            status=200, provider="polygon")


class PolygonDataSource(HttpSource):
    """Polygon/Massive REST (bars at any minute/hour/day/week size, trades, quotes, corporate actions)
    and, with ``flat_files=True``, the S3 flat files for 1-minute/daily bars, trades and quotes.

    ``auth="header"`` (default) sends ``Authorization: Bearer``; ``auth="query"`` sends ``apiKey=``.
    """

    name = "polygon"

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        adjusted: bool = False,
        auth: str = "header",
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
        flat_files: bool = False,
        s3_endpoint: str | None = None,
        s3_bucket: str = "flatfiles",
        s3_access_key_id: str | None = None,
        s3_secret_access_key: str | None = None,
        s3_prefix: str = "us_stocks_sip",
        flat_block_bytes: int = FLAT_BLOCK_BYTES,
    ) -> None:
        if auth not in ("header", "query"):
            raise ConfigError(f"polygon: auth must be 'header' or 'query', not {auth!r}")
        key = _credentials(api_key)
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.adjusted = adjusted
        self.page_limit = min(page_limit, MAX_LIMIT)
        self._http = HttpClient(
            "polygon", self.base_url,
            headers={"Authorization": f"Bearer {key}"} if auth == "header" else None,
            auth_params={"apiKey": key} if auth == "query" else None,
            secrets=[key], requests_per_minute=requests_per_minute, burst=burst, retry=retry,
            timeout=timeout,
        )
        self._init_common(concurrency=concurrency, progress=progress, chunk_minutes=chunk_minutes,
                          avg_volume=avg_volume, calendar=calendar)
        self.flat_files = flat_files
        self.s3_endpoint = (s3_endpoint or DEFAULT_FLAT_FILES_ENDPOINT)
        self.s3_bucket = s3_bucket
        self.s3_prefix = s3_prefix
        self.flat_block_bytes = flat_block_bytes
        self._s3_keys = _s3_credentials(s3_access_key_id, s3_secret_access_key) if flat_files else None
        if self._s3_keys:
            from .. import _secrets

            _secrets.register(*self._s3_keys)
        self._s3_client: Any = None

    # -- metadata -------------------------------------------------------------------------------
    def get_metadata(self) -> DataSourceMetadata:
        kinds = frozenset({"bars", "trades", "quotes", "actions"})
        return DataSourceMetadata(
            name=self.name, source_type="http",
            description="Polygon.io / Massive market data" + (" (S3 flat files)" if self.flat_files else ""),
            calendar=self.calendar_name,
            capabilities=SourceCapabilities(
                kinds=kinds, frequencies=("1min", "1d") if self.flat_files else ANY_FREQUENCY,
                corporate_actions=True, adjusted=self.adjusted),
            details={"base_url": self._http.redact(self.base_url), "adjusted": self.adjusted,
                     "flat_files": self.flat_files,
                     **({"s3_endpoint": self.s3_endpoint, "s3_bucket": self.s3_bucket}
                        if self.flat_files else {})},
        )

    def cache_identity(self) -> str:
        origin = "flatfiles" if self.flat_files else "rest"
        return f"polygon:{origin}:adjusted={str(self.adjusted).lower()}:calendar={self.calendar_name}"

    @property
    def _stamp_tz(self) -> str:
        return "UTC" if get_calendar(self.calendar_name).is_24_7 else NEW_YORK

    # -- bars -----------------------------------------------------------------------------------
    async def fetch(self, symbols: list[str], start: TimeLike, end: TimeLike,
                    frequency: str | Timeframe = "1d") -> pl.DataFrame:
        """Canonical bars of ``symbols`` in ``[start, end)``, concurrently by symbol and time chunk."""
        s, e = check_range(start, end)
        tf = Timeframe.parse(frequency)
        if self.flat_files:
            return await self._flat_bars(symbols, s, e, tf)
        jobs = [functools.partial(self._agg_range, sym, tf, a, b)
                for sym in symbols for a, b in self._bar_windows(tf, s, e)]
        frames = await self._gather(jobs)
        if not frames:
            return empty("bars")
        return bars_in_range(pl.concat(frames, how="vertical"), s, e)

    def _bar_windows(self, tf: Timeframe, s: int, e: int) -> list[tuple[str, str]]:
        """``from``/``to`` path values: ms windows small enough for one query's base-aggregate limit.

        ``limit`` caps the minute aggregates an intraday query reads (not the bars it returns), so a
        window spans at most ``limit`` minutes of a 24-hour day whatever the bar size.
        """
        if not tf.is_intraday:
            first, last = local_date_labels([s, e - 1], self._stamp_tz)
            return [(_iso_date(first), _iso_date(last))]
        span = max(1, self.page_limit // 1440) * NS_PER_DAY
        return [(str(a // 1_000_000), str((min(a + span, e) - 1) // 1_000_000)) for a in range(s, e, span)]

    async def _agg_range(self, symbol: str, tf: Timeframe, frm: str, to: str) -> pl.DataFrame:
        path = f"/v2/aggs/ticker/{quote(symbol, safe='')}/range/{tf.n}/{_TIMESPANS[tf.unit]}/{frm}/{to}"
        params = {"adjusted": str(self.adjusted).lower(), "sort": "asc", "limit": self.page_limit}
        rows = await self._paged_results(path, params, symbol)
        raw = pl.from_dicts(rows, schema=_AGG_SCHEMA) if rows else pl.DataFrame(schema=_AGG_SCHEMA)
        return self._bars_from_aggs(raw, symbol, tf, "t", 1_000_000)

    def _bars_from_aggs(self, raw: pl.DataFrame, symbol: str, tf: Timeframe, stamp: str,
                        to_ns: int) -> pl.DataFrame:
        """Map vendor bar stamps to canonical ``[ts, ts_end)`` (sessions for daily and weekly)."""
        t = raw[stamp].to_numpy().astype(np.int64) * to_ns
        if tf.is_intraday:
            ts, ts_end = t, t + tf.nanos
        elif tf.unit == "d":
            labels = local_date_labels(t, self._stamp_tz)
            ts, ts_end = sessions_for_labels(labels, self.calendar_name, provider="polygon", symbol=symbol)
        else:
            ts, ts_end = week_bounds(t, self.calendar_name, provider="polygon", symbol=symbol)
        return pl.DataFrame({
            "symbol": pl.Series([symbol] * raw.height, dtype=pl.String),
            "ts": ts, "ts_end": ts_end, "open": raw["o"], "high": raw["h"], "low": raw["l"],
            "close": raw["c"], "volume": raw["v"],
            "vwap": raw["vw"] if "vw" in raw.columns else None,
            "transactions": raw["n"] if "n" in raw.columns else None,
        })

    async def _paged_results(self, path: str, params: dict[str, Any], symbol: str) -> list[dict]:
        """All ``results`` across ``next_url`` pages (an empty page has no ``results`` key)."""
        get = functools.partial(self._http.get_json, symbol=symbol, check=_check_status)

        seen: set[str] = set()

        def follow(page: dict):
            nxt = page.get("next_url")
            if not nxt:
                return None
            if nxt in seen:
                raise ProviderError(f"polygon: next_url repeats for {symbol}; the cursor does not advance",
                                    provider="polygon")
            seen.add(nxt)
            return get(nxt)

        pages = await follow_pages(lambda: get(path, params), follow, provider="polygon")
        return [row for page in pages for row in (page.get("results") or [])]

    # -- trades and quotes ----------------------------------------------------------------------
    async def fetch_trades(self, symbols: list[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        """Canonical trades (``ts`` = SIP timestamp, exact ns) in ``[start, end)``."""
        return await self._fetch_ticks("trades", symbols, start, end)

    async def fetch_quotes(self, symbols: list[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        """Canonical NBBO quotes (``ts`` = SIP timestamp, exact ns) in ``[start, end)``."""
        return await self._fetch_ticks("quotes", symbols, start, end)

    async def _fetch_ticks(self, kind: TickKind, symbols: list[str], start: TimeLike,
                           end: TimeLike) -> pl.DataFrame:
        s, e = check_range(start, end)
        if self.flat_files:
            return await self._flat_ticks(kind, symbols, s, e)
        jobs = []
        for sym in symbols:
            windows = await self._tick_windows(sym, s, e)
            jobs += [functools.partial(self._tick_window, kind, sym, a, b) for a, b in windows]
        frames = await self._gather(jobs)
        if not frames:
            return empty(kind)
        return ticks_in_range(pl.concat(frames, how="vertical"), kind, s, e)

    async def _tick_window(self, kind: TickKind, symbol: str, a: int, b: int) -> pl.DataFrame:
        params = {"timestamp.gte": a, "timestamp.lt": b, "order": "asc", "sort": "timestamp",
                  "limit": self.page_limit}
        rows = await self._paged_results(f"/v3/{kind}/{quote(symbol, safe='')}", params, symbol)
        schema = _TRADE_SCHEMA if kind == "trades" else _QUOTE_SCHEMA
        raw = pl.from_dicts(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
        raw = raw.sort(["sip_timestamp", "sequence_number"], maintain_order=True)
        return _canonical_ticks(kind, raw, symbol, list_conditions=True)

    # -- corporate actions ----------------------------------------------------------------------
    async def fetch_corporate_actions(self, symbols: list[str], start: TimeLike,
                                      end: TimeLike) -> pl.DataFrame:
        """Splits (ratio ``split_to/split_from``) and cash dividends, stamped at the ex-date's open."""
        s, e = check_range(start, end)
        first, last = local_date_labels([s, e - 1], self._stamp_tz)
        lo, hi = _iso_date(first), _iso_date(last + NS_PER_DAY)
        jobs = []
        for sym in symbols:
            jobs.append(functools.partial(
                self._paged_results, "/v3/reference/splits",
                {"ticker": sym, "execution_date.gte": lo, "execution_date.lt": hi, "limit": 1000}, sym))
            jobs.append(functools.partial(
                self._paged_results, "/v3/reference/dividends",
                {"ticker": sym, "ex_dividend_date.gte": lo, "ex_dividend_date.lt": hi, "limit": 1000}, sym))
        results = await self._gather(jobs)
        rows: list[tuple[str, str, str, float]] = []
        for i, sym in enumerate(symbols):
            rows += [(sym, r["execution_date"], "split", float(r["split_to"]) / float(r["split_from"]))
                     for r in results[2 * i]]
            rows += [(sym, r["ex_dividend_date"], "dividend", float(r["cash_amount"]))
                     for r in results[2 * i + 1] if r.get("cash_amount") is not None]
        labels = date_labels([r[1] for r in rows])
        return actions_frame([r[0] for r in rows], labels, [r[2] for r in rows], [r[3] for r in rows],
                             self.calendar_name, s, e)

    # -- flat files -----------------------------------------------------------------------------
    def _s3(self) -> Any:
        if self._s3_client is None:
            import boto3
            from botocore.config import Config

            assert self._s3_keys is not None
            self._s3_client = boto3.client(
                "s3", endpoint_url=self.s3_endpoint, aws_access_key_id=self._s3_keys[0],
                aws_secret_access_key=self._s3_keys[1], region_name="us-east-1",
                config=Config(signature_version="s3v4", retries={"max_attempts": 5, "mode": "standard"}),
            )
        return self._s3_client

    def _flat_key(self, dataset: str, label_ns: int) -> str:
        day = _iso_date(label_ns)
        return f"{self.s3_prefix}/{dataset}/{day[:4]}/{day[5:7]}/{day}.csv.gz"

    def _read_flat(self, key: str, symbols: list[str]) -> pl.DataFrame:
        """Stream one gzipped CSV from S3, keeping only ``symbols``' rows (every column as text).

        Market-wide day files run to gigabytes; they are decompressed and parsed in blocks of
        ``flat_block_bytes`` and filtered block by block, so memory holds one block plus the kept rows.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        where = f"s3://{self.s3_bucket}/{key} at {self.s3_endpoint}"
        try:
            body = self._s3().get_object(Bucket=self.s3_bucket, Key=key)["Body"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                raise ProviderError(f"polygon flat files: {where} does not exist (not yet published, "
                                    "or not a trading day)", status=404, provider="polygon") from None
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
                raise AuthenticationError(f"polygon flat files: access denied to {where} ({code})",
                                          status=403, provider="polygon") from None
            raise ProviderError(f"polygon flat files: {code or 'error'} reading {where}",
                                provider="polygon") from None
        except BotoCoreError as exc:
            raise ProviderError(f"polygon flat files: {self._http.redact(str(exc))}",
                                provider="polygon") from None
        try:
            return filter_csv_gz(body, "ticker", symbols, block_bytes=self.flat_block_bytes)
        except BotoCoreError as exc:
            raise ProviderError(f"polygon flat files: reading {where} failed: {self._http.redact(str(exc))}",
                                provider="polygon") from None
        except (OSError, EOFError, ValueError, pl.exceptions.PolarsError) as exc:
            raise ProviderError(f"polygon flat files: {where} is not a valid CSV.gz ({exc})",
                                provider="polygon") from None
        finally:
            body.close()

    async def _flat_frames(self, dataset: str, symbols: list[str], s: int, e: int) -> list[pl.DataFrame]:
        """One filtered frame per session day overlapping ``[s, e)`` (all days fetched concurrently)."""
        cal = get_calendar(self.calendar_name)
        labels = cal.sessions(s, e)["session"].cast(pl.Datetime("ns")).cast(pl.Int64).to_list()

        async def day(label: int) -> pl.DataFrame:
            return await asyncio.to_thread(self._read_flat, self._flat_key(dataset, label), symbols)

        return await self._gather([functools.partial(day, lbl) for lbl in labels])

    async def _flat_bars(self, symbols: list[str], s: int, e: int, tf: Timeframe) -> pl.DataFrame:
        if str(tf) not in _FLAT_DATASETS:
            raise UnsupportedDataError(f"polygon flat files hold 1min and 1d bars, not {tf}; aggregate "
                                       "1min bars with backtape.aggregate")
        frames = await self._flat_frames(_FLAT_DATASETS[str(tf)], symbols, s, e)
        out = []
        for raw in frames:
            typed = raw.select(
                pl.col("ticker"), pl.col("window_start").cast(pl.Int64).alias("t"),
                *(pl.col(src).cast(pl.Float64).alias(dst) for src, dst in
                  (("open", "o"), ("high", "h"), ("low", "l"), ("close", "c"), ("volume", "v"))),
                pl.col("transactions").cast(pl.Int64).alias("n"))
            for (sym,), part in typed.partition_by("ticker", as_dict=True).items():
                out.append(self._bars_from_aggs(part, sym, tf, "t", 1))
        if not out:
            return empty("bars")
        return bars_in_range(pl.concat(out, how="vertical"), s, e)

    async def _flat_ticks(self, kind: TickKind, symbols: list[str], s: int, e: int) -> pl.DataFrame:
        frames = await self._flat_frames(_FLAT_DATASETS[kind], symbols, s, e)
        price_cols = (("price", "size") if kind == "trades"
                      else ("bid_price", "ask_price", "bid_size", "ask_size"))
        int_cols = (("sip_timestamp", "sequence_number", "exchange") if kind == "trades"
                    else ("sip_timestamp", "sequence_number", "bid_exchange", "ask_exchange"))
        out = []
        for raw in frames:
            typed = raw.with_columns(
                *(pl.col(c).cast(pl.Int64) for c in int_cols),
                *(pl.col(c).cast(pl.Float64) for c in price_cols),
            ).sort(["ticker", "sip_timestamp", "sequence_number"], maintain_order=True)
            for (sym,), part in typed.partition_by("ticker", as_dict=True).items():
                out.append(_canonical_ticks(kind, part, sym, list_conditions=False))
        if not out:
            return empty(kind)
        return ticks_in_range(pl.concat(out, how="vertical"), kind, s, e)


def filter_csv_gz(stream: BinaryIO, column: str, values: list[str], *,
                  block_bytes: int = FLAT_BLOCK_BYTES) -> pl.DataFrame:
    """Rows of a gzipped CSV ``stream`` whose ``column`` is one of ``values``, read block by block.

    Every column stays text (exact int64 nanoseconds, fractional sizes, quoted condition lists);
    only empty fields are null. Blocks end at a line break (flat files hold no quoted line breaks),
    so memory holds about two decompressed blocks plus the kept rows.
    """
    wanted = pl.Series(values, dtype=pl.String).implode()
    with gzip.GzipFile(fileobj=stream, mode="rb") as text:
        header = text.readline()
        if not header.strip():
            raise ValueError("no header line")
        names = next(csv.reader([header.decode("utf-8").rstrip("\r\n")]))
        if column not in names:
            raise ValueError(f"no {column!r} column in the header ({', '.join(names)})")
        schema = {name: pl.String for name in names}

        def kept(lines: bytes) -> pl.DataFrame:
            rows = pl.read_csv(lines, has_header=False, schema=schema)
            return rows.filter(pl.col(column).is_in(wanted))

        parts = [pl.DataFrame(schema=schema)]
        rest = b""
        while block := text.read(block_bytes):
            data = rest + block
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            if cut:
                parts.append(kept(data[:cut]))
        if rest.strip():
            parts.append(kept(rest))
    return pl.concat(parts, how="vertical")


def _canonical_ticks(kind: TickKind, raw: pl.DataFrame, symbol: str, *,
                     list_conditions: bool) -> pl.DataFrame:
    """Vendor trade/quote columns to canonical ones (exchanges and conditions as text)."""
    sym = pl.lit(symbol, dtype=pl.String).alias("symbol")
    ts = pl.col("sip_timestamp").alias("ts")
    if kind == "trades":
        cond = pl.col("conditions")
        cond = cond.list.eval(pl.element().cast(pl.String)).list.join(",") if list_conditions else cond
        return raw.select(sym, ts, pl.col("price"), pl.col("size"),
                          pl.col("exchange").cast(pl.String), cond.alias("conditions"),
                          pl.col("id").cast(pl.String))
    return raw.select(sym, ts, pl.col("bid_price").alias("bid"), pl.col("ask_price").alias("ask"),
                      pl.col("bid_size"), pl.col("ask_size"), pl.col("bid_exchange").cast(pl.String),
                      pl.col("ask_exchange").cast(pl.String))


def _iso_date(label_ns: int) -> str:
    """``YYYY-MM-DD`` of a midnight-UTC label."""
    return str(np.datetime64(int(label_ns), "ns").astype("datetime64[D]"))


__all__ = ["PolygonDataSource"]
