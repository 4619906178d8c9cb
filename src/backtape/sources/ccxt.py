"""Crypto OHLCV from any CCXT exchange (``ccxt.async_support``), paged by ``since`` by the adapter.

Wire details (``shared/providers.md`` §5): markets load first (Binance's ``exchangeInfo``); rows are
``[ms, open, high, low, close, volume]``; Binance answers 429/418 with ``DDoSProtection`` (retried
with backoff, then ``RateLimitError``); ccxt does not follow cursors, so the range is cut into
windows of ``page_limit`` bars fetched concurrently and each window pages by ``since`` until done.
The bar still forming at "now" is dropped. ``base_url=`` swaps the host of every ``urls['api']``
entry (mirrors, tests); sessions are 24/7 UTC days.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import polars as pl

from .. import _secrets
from .._async import run_sync
from .._time import TimeLike, check_range, now_ns
from ..errors import (
    AuthenticationError,
    ConfigError,
    ProviderError,
    RateLimitError,
    SymbolNotFoundError,
    UnsupportedDataError,
)
from ..instruments import Instrument
from ..schema import empty
from ..timeframes import Timeframe
from ._http import (
    DEFAULT_CONCURRENCY,
    HttpSource,
    ProgressCallback,
    RetryPolicy,
    gather_limited,
    parse_retry_after,
)
from ._normalize import bars_in_range
from .base import ANY_FREQUENCY, DataSourceMetadata, SourceCapabilities

log = logging.getLogger("backtape.sources.ccxt")


def _credentials(exchange: str, api_key: str | None = None,
                 secret: str | None = None) -> tuple[str | None, str | None]:
    """Optional exchange keys, as given (the workspace fills them from ``<EXCHANGE>_API_KEY`` /
    ``<EXCHANGE>_API_SECRET``). OHLCV is public, so missing keys are fine; given ones are redacted.
    """
    _secrets.register(api_key, secret)
    return api_key, secret


def _rebase_urls(node: Any, base_url: str) -> Any:
    """Every URL string in ``urls['api']`` (a string or nested dict) moved onto ``base_url``'s host."""
    if isinstance(node, dict):
        return {k: _rebase_urls(v, base_url) for k, v in node.items()}
    if isinstance(node, str) and node.startswith(("http://", "https://")):
        parts = urlsplit(node)
        return base_url.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
    return node


class CCXTDataSource(HttpSource):
    """OHLCV bars of any exchange CCXT supports, e.g. ``CCXTDataSource("binance")``.

    ``options`` go to the ccxt constructor's ``options`` (e.g. ``{"fetchMarkets": {"types": ["spot"]}}``);
    ``enable_rate_limit`` keeps ccxt's own throttle (on by default).
    """

    name = "ccxt"
    calendar_name = "24/7"

    def __init__(
        self,
        exchange: str = "binance",
        *,
        api_key: str | None = None,
        secret: str | None = None,
        base_url: str | None = None,
        options: dict[str, Any] | None = None,
        enable_rate_limit: bool = True,
        page_limit: int = 1000,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        concurrency: int = DEFAULT_CONCURRENCY,
        progress: ProgressCallback | None = None,
        calendar: str = "24/7",
        clock: Callable[[], int] = now_ns,
    ) -> None:
        import ccxt.async_support as ccxt_async

        if not hasattr(ccxt_async, exchange):
            raise ConfigError(f"ccxt: unknown exchange {exchange!r}; see ccxt.exchanges")
        self.exchange_id = exchange
        self._keys = _credentials(exchange, api_key, secret)
        self.base_url = base_url.rstrip("/") if base_url else None
        self.options = dict(options or {})
        self.enable_rate_limit = enable_rate_limit
        self.page_limit = page_limit
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.clock = clock
        self._markets: tuple[dict, dict] | None = None
        self._requests = 0
        self._init_common(concurrency=concurrency, progress=progress, calendar=calendar)

    @property
    def requests_sent(self) -> int:
        """Calls made to the exchange (pages and market loads, retries included)."""
        return self._requests

    def get_metadata(self) -> DataSourceMetadata:
        details: dict[str, Any] = {"exchange": self.exchange_id}
        if self.base_url:
            details["base_url"] = _secrets.redact(self.base_url)
        return DataSourceMetadata(
            name=self.name, source_type="http", description=f"{self.exchange_id} through CCXT",
            calendar=self.calendar_name,
            capabilities=SourceCapabilities(kinds=frozenset({"bars"}), frequencies=ANY_FREQUENCY),
            details=details,
        )

    def cache_identity(self) -> str:
        return f"ccxt:{self.exchange_id}:calendar={self.calendar_name}"

    @contextlib.asynccontextmanager
    async def _exchange(self) -> AsyncIterator[Any]:
        """A ccxt exchange bound to the running loop, markets loaded (once per source), then closed."""
        import ccxt.async_support as ccxt_async

        config: dict[str, Any] = {"enableRateLimit": self.enable_rate_limit,
                                  "timeout": int(self.timeout * 1000)}
        if self.options:
            config["options"] = self.options
        if self._keys[0]:
            config["apiKey"], config["secret"] = self._keys
        ex = getattr(ccxt_async, self.exchange_id)(config)
        _strict_json(ex)
        _note_retry_after(ex)
        if self.base_url:
            ex.urls["api"] = _rebase_urls(ex.urls["api"], self.base_url)
        try:
            if self._markets is None:
                await self._call(ex.load_markets)
                self._markets = (ex.markets, ex.currencies)
            else:
                ex.set_markets(*self._markets)
            yield ex
        finally:
            await ex.close()

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One ccxt call with retries on throttling, timeouts and network errors; typed errors."""
        import ccxt

        policy = self.retry
        last: Exception | None = None
        for attempt in range(policy.attempts):
            self._requests += 1
            try:
                return await fn(*args, **kwargs)
            except (ccxt.DDoSProtection, ccxt.RateLimitExceeded) as exc:
                retry_after = getattr(exc, "retry_after", None)
                if retry_after is not None and retry_after > policy.max_retry_after:
                    raise RateLimitError(
                        self._message(f"rate limited; asked to wait {retry_after:.0f} s, longer than this "
                                      f"client waits ({policy.max_retry_after:.0f} s); retry later", exc),
                        provider=self.exchange_id, status=429, retry_after=retry_after) from None
                last = RateLimitError(self._message("rate limited (retries exhausted)", exc),
                                      provider=self.exchange_id, status=429, retry_after=retry_after)
            except ccxt.AuthenticationError as exc:
                raise AuthenticationError(self._message("authentication failed", exc),
                                          provider=self.exchange_id) from None
            except ccxt.BadSymbol as exc:
                raise SymbolNotFoundError(self._message("unknown symbol", exc)) from None
            except ccxt.NetworkError as exc:  # timeouts, unavailable exchange, invalid nonce...
                last = ProviderError(self._message(type(exc).__name__, exc), provider=self.exchange_id)
            except ccxt.BaseError as exc:
                raise ProviderError(self._message(type(exc).__name__, exc),
                                    provider=self.exchange_id) from None
            except (ValueError, TypeError, KeyError, IndexError) as exc:  # unparseable answer
                raise ProviderError(self._message("malformed response", exc),
                                    provider=self.exchange_id) from None
            if attempt + 1 < policy.attempts:
                delay = policy.delay(attempt, getattr(last, "retry_after", None))
                log.debug("ccxt %s: retry %d in %.2fs after: %s", self.exchange_id, attempt + 1, delay, last)
                await asyncio.sleep(min(delay, policy.max_retry_after))
        assert last is not None
        raise last

    def _message(self, what: str, exc: BaseException) -> str:
        text = _secrets.redact(str(exc), [k for k in self._keys if k])
        return f"ccxt {self.exchange_id}: {what}: {text[:300]}"

    async def fetch(self, symbols: list[str], start: TimeLike, end: TimeLike,
                    frequency: str | Timeframe = "1d") -> pl.DataFrame:
        """Canonical finished bars in ``[start, end)``; windows of ``page_limit`` bars in parallel."""
        s, e = check_range(start, end)
        tf = Timeframe.parse(frequency)
        async with self._exchange() as ex:
            code = _ccxt_timeframe(tf)
            if ex.timeframes and code not in ex.timeframes:
                raise UnsupportedDataError(f"ccxt {self.exchange_id}: no {tf} bars; it offers "
                                           f"{', '.join(ex.timeframes)}")
            for sym in symbols:
                if sym not in ex.markets:
                    raise SymbolNotFoundError(f"ccxt {self.exchange_id}: unknown symbol {sym!r}")
            step_ms = tf.nanos // 1_000_000
            span = step_ms * self.page_limit
            s_ms, e_ms = -(-s // 1_000_000), -(-e // 1_000_000)
            jobs = [functools.partial(self._window, ex, sym, code, a, min(a + span, e_ms), step_ms)
                    for sym in symbols for a in range(s_ms, e_ms, span)]
            frames = await gather_limited(jobs, limit=self.concurrency, progress=self.progress)
        frames = [f for f in frames if f.height]
        if not frames:
            return empty("bars")
        bars = bars_in_range(pl.concat(frames, how="vertical"), s, e)
        return bars.filter(pl.col("ts_end").dt.epoch("ns") <= self.clock())

    def instruments(self, symbols: Sequence[str]) -> dict[str, Instrument]:
        """Lot size (``precision.amount``), minimum quantity and minimum order value (``limits``) of
        the exchange's markets (Binance: the LOT_SIZE and NOTIONAL filters of ``exchangeInfo``)."""
        return run_sync(self._instruments(list(symbols)))

    async def _instruments(self, symbols: list[str]) -> dict[str, Instrument]:
        from ccxt.base.decimal_to_precision import TICK_SIZE

        out = {}
        async with self._exchange() as ex:
            for sym in symbols:
                market = ex.markets.get(sym)
                if not market:
                    continue
                step = (market.get("precision") or {}).get("amount")
                if step is not None and ex.precisionMode != TICK_SIZE:
                    step = 10.0 ** -float(step)  # decimal places
                limits = market.get("limits") or {}
                rule = Instrument(lot_size=_positive(step),
                                  min_notional=_positive((limits.get("cost") or {}).get("min")),
                                  min_quantity=_positive((limits.get("amount") or {}).get("min")))
                if rule != Instrument():
                    out[sym] = rule
        return out

    async def _window(self, ex: Any, symbol: str, code: str, a_ms: int, b_ms: int,
                      step_ms: int) -> pl.DataFrame:
        """Rows with ``a_ms <= t < b_ms``, paging by ``since`` until the window is covered."""
        rows: list[list] = []
        since = a_ms
        while since < b_ms:
            page = await self._call(ex.fetch_ohlcv, symbol, code, since=since, limit=self.page_limit,
                                    params={"until": b_ms - 1})
            page = [r for r in page if since <= r[0] < b_ms]
            if not page:
                break
            rows += page
            since = page[-1][0] + step_ms
        frame = pl.DataFrame(rows, schema={"t": pl.Int64, "open": pl.Float64, "high": pl.Float64,
                                           "low": pl.Float64, "close": pl.Float64, "volume": pl.Float64},
                             orient="row")
        ts = pl.col("t") * 1_000_000
        return frame.select(pl.lit(symbol, dtype=pl.String).alias("symbol"), ts.alias("ts"),
                            (ts + step_ms * 1_000_000).alias("ts_end"),
                            "open", "high", "low", "close", "volume")


def _positive(value: Any) -> float | None:
    """A market limit as a positive float (``None``: absent or zero)."""
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _strict_json(ex: Any) -> None:
    """Make ccxt raise on a truncated or invalid JSON body instead of treating it as an empty page."""
    import ccxt

    lenient = ex.parse_json

    def parse(http_response: str) -> Any:
        result = lenient(http_response)
        if result is None and type(ex).is_json_encoded_object(http_response):
            raise ccxt.BadResponse(f"{ex.id}: invalid or truncated JSON ({len(http_response)} bytes, ending "
                                   f"{http_response[-40:]!r})")
        return result

    ex.parse_json = parse


def _note_retry_after(ex: Any) -> None:
    """Attach the response's ``Retry-After`` (seconds) to the error ccxt raises for it.

    ccxt maps 429/418 to ``DDoSProtection`` but drops the header. ``handle_errors`` (which sees the
    headers) and ``handle_http_status_code`` run back to back without yielding to the loop, so the
    value belongs to that very response even with several windows in flight.
    """
    seen: dict[str, Any] = {}

    def tag(exc: Exception) -> None:
        if getattr(exc, "retry_after", None) is None:
            headers = seen.get("headers") or {}
            value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
            exc.retry_after = parse_retry_after(value)  # type: ignore[attr-defined]

    handle_errors, handle_status = ex.handle_errors, ex.handle_http_status_code

    def checked_errors(code: Any, reason: Any, url: Any, method: Any, headers: Any, *rest: Any) -> Any:
        seen["headers"] = headers
        try:
            return handle_errors(code, reason, url, method, headers, *rest)
        except Exception as exc:
            tag(exc)
            raise

    def checked_status(*args: Any) -> Any:
        try:
            return handle_status(*args)
        except Exception as exc:
            tag(exc)
            raise

    ex.handle_errors, ex.handle_http_status_code = checked_errors, checked_status


def _ccxt_timeframe(tf: Timeframe) -> str:
    """ccxt's unified timeframe: ``1m 5m 1h 4h 1d 1w``."""
    if tf.unit == "min":
        return f"{tf.n}m"
    if tf.unit == "h":
        return f"{tf.n}h"
    return "1d" if tf.unit == "d" else "1w"


__all__ = ["CCXTDataSource"]
