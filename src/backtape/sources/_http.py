"""The one HTTP layer every provider adapter uses: retries, rate limits, paging, concurrency, errors.

* ``HttpClient`` wraps ``httpx.AsyncClient``: exponential backoff with jitter on 429, 5xx, timeouts
  and connection errors, honouring ``Retry-After`` (seconds or an HTTP date, capped); a per-provider
  token bucket; typed errors from :mod:`backtape.errors` whose text never holds a secret.
* ``gather_limited`` runs chunk fetches with at most N in flight and reports progress; the first
  failure cancels the rest and is raised, so a caller never receives a partial range.
* ``tick_chunks`` cuts a tick range into windows sized by liquidity (seed 001: 5/10/15 minutes).
* ``HttpSource`` is the shared base of the HTTP adapters (credentials, base URL, client lifecycle).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import polars as pl

from .. import _secrets
from .._time import NS_PER_HOUR, NS_PER_MINUTE
from ..calendars import get_calendar
from ..errors import (
    AuthenticationError,
    BacktapeError,
    ProviderError,
    RateLimitError,
    SymbolNotFoundError,
)
from .base import DataSource


def _json_parser() -> Callable[[bytes], Any]:
    """orjson's ``loads`` when installed (several times faster on large pages), else the stdlib's.

    int64 nanoseconds stay exact either way.
    """
    try:
        import orjson
    except ImportError:  # pragma: no cover - optional speed-up
        return json.loads
    loads: Callable[[bytes], Any] = orjson.loads
    return loads


_json_loads = _json_parser()

log = logging.getLogger("backtape.sources.http")

#: progress hook: ``callback(done, total)`` after each finished chunk
ProgressCallback = Callable[[int, int], None]
#: payload check for errors that arrive with HTTP 200; raise ``RetryableBody`` for transient ones
PayloadCheck = Callable[[Any], None]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
BODY_EXCERPT_CHARS = 200
DEFAULT_CONCURRENCY = 5


class RetryableBody(Exception):
    """Raised by a :data:`PayloadCheck` when a 200 body says "slow down" (e.g. Alpha Vantage)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry: ``attempts`` tries in all, backoff doubling from ``backoff``."""

    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based): Retry-After, else jittered backoff."""
        if retry_after is not None:
            return max(0.0, retry_after)
        ceiling = min(self.max_backoff, self.backoff * (2**attempt))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class RateLimiter:
    """A token bucket: ``rate`` requests per second on average, bursts of up to ``capacity``.

    Thread-safe and free of event-loop state, so one limiter serves every fetch of a source even when
    each fetch runs on its own loop (``fetch_sync``).
    """

    def __init__(self, requests_per_minute: float | None, burst: int | None = None) -> None:
        self.rate = None if not requests_per_minute else requests_per_minute / 60.0
        self.capacity = float(burst or max(1, int(requests_per_minute or 1)))
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def _reserve(self) -> float:
        """Take one token, returning how long the caller must wait before using it (0 when unlimited)."""
        rate = self.rate
        if rate is None:
            return 0.0
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * rate)
            self._stamp = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / rate

    async def acquire(self) -> None:
        """Wait until a request may be sent under the limit."""
        if self.rate is None:
            return
        wait = self._reserve()
        if wait > 0:
            await asyncio.sleep(wait)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta seconds or an HTTP date; None if absent."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def rebase(url: str, base_url: str) -> str:
    """``url``'s path and query on ``base_url`` (cursor URLs point at the production host)."""
    parts = urlsplit(url)
    base = base_url.rstrip("/")
    base_path = urlsplit(base).path
    path = parts.path
    if base_path and path.startswith(base_path + "/"):
        path = path[len(base_path):]
    return f"{base}{path}" + (f"?{parts.query}" if parts.query else "")


@dataclass
class _Pool:
    """One event loop's shared client and how many ``session`` blocks are using it."""

    client: httpx.AsyncClient
    users: int = 0


class HttpClient:
    """Async JSON-over-HTTP client of one provider with retries, rate limit and redacted errors.

    ``auth_params`` are added to every request's query string, ``headers`` to every request; both may
    carry secrets, which are registered for redaction. Use ``async with client.session():`` around a
    batch of requests so they share connections; requests outside a session open a short-lived one.
    """

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        auth_params: dict[str, str] | None = None,
        secrets: Iterable[str | None] = (),
        requests_per_minute: float | None = None,
        burst: int | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        self.auth_params = dict(auth_params or {})
        self.secrets = tuple(s for s in secrets if s)
        _secrets.register(*self.secrets)
        self.limiter = RateLimiter(requests_per_minute, burst)
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.requests_sent = 0
        self._clients: dict[int, _Pool] = {}  # by id(loop)

    def redact(self, text: str) -> str:
        """``text`` without this client's secrets or credential parameters."""
        return _secrets.redact(text, self.secrets)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[httpx.AsyncClient]:
        """Share one connection pool among the requests made inside the block (re-entrant)."""
        key = id(asyncio.get_running_loop())
        entry = self._clients.get(key)
        if entry is None:
            entry = _Pool(httpx.AsyncClient(timeout=self.timeout, headers=self.headers))
            self._clients[key] = entry
        entry.users += 1
        try:
            yield entry.client
        finally:
            entry.users -= 1
            if entry.users == 0:
                self._clients.pop(key, None)
                await entry.client.aclose()

    def url(self, path_or_url: str) -> str:
        """Absolute URL: paths are joined to the configured base; absolute URLs are rebased on it."""
        if path_or_url.startswith(("http://", "https://")):
            return rebase(path_or_url, self.base_url)
        return f"{self.base_url}/{path_or_url.lstrip('/')}"

    async def get_json(
        self,
        path_or_url: str,
        params: dict[str, Any] | None = None,
        *,
        symbol: str | None = None,
        check: PayloadCheck | None = None,
        error_hook: Callable[[httpx.Response, str], Exception | None] | None = None,
    ) -> Any:
        """GET and decode JSON, retrying transient failures; raises typed, redacted errors.

        ``symbol`` turns a 404 into :class:`SymbolNotFoundError`. ``check`` inspects the decoded body
        (raise a backtape error, or :class:`RetryableBody` to retry). ``error_hook`` may map a
        non-2xx response to a provider-specific error before the generic mapping.
        """
        async with self.session() as client:
            return await self._get_json(client, self.url(path_or_url), params, symbol, check, error_hook)

    async def _get_json(self, client, url, params, symbol, check, error_hook) -> Any:
        target = httpx.URL(url).copy_merge_params({**(params or {}), **self.auth_params})
        policy = self.retry
        last: BacktapeError | None = None
        for attempt in range(policy.attempts):
            retry_after: float | None = None
            await self.limiter.acquire()
            self.requests_sent += 1
            shown = self.redact(str(target))
            try:
                response = await client.get(target)
            except httpx.TimeoutException:
                last = ProviderError(f"{self.provider}: request timed out: GET {shown}",
                                     provider=self.provider)
            except httpx.TransportError as exc:
                last = ProviderError(
                    f"{self.provider}: connection failed ({type(exc).__name__}: {self.redact(str(exc))}): "
                    f"GET {shown}", provider=self.provider)
            else:
                status = response.status_code
                if status in RETRY_STATUSES:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    if status == 429 and retry_after is not None and retry_after > policy.max_retry_after:
                        raise RateLimitError(
                            f"{self.provider}: HTTP 429 from GET {shown}: asked to wait {retry_after:.0f} s, "
                            f"longer than this client waits ({policy.max_retry_after:.0f} s); retry later",
                            retry_after=retry_after, status=status, provider=self.provider)
                    last = self._status_error(response, shown, symbol, retry_after)
                elif status >= 400:
                    mapped = error_hook(response, shown) if error_hook else None
                    raise mapped or self._status_error(response, shown, symbol, None)
                else:
                    payload = self._decode(response, shown)
                    try:
                        if check is not None:
                            check(payload)
                        return payload
                    except RetryableBody as exc:
                        retry_after = exc.retry_after
                        last = RateLimitError(f"{self.provider}: {self.redact(str(exc))} (GET {shown})",
                                              retry_after=retry_after, status=status,
                                              provider=self.provider)
            if attempt + 1 < policy.attempts:
                delay = policy.delay(attempt, retry_after)
                log.debug("%s: retry %d in %.2fs after: %s", self.provider, attempt + 1, delay, last)
                await asyncio.sleep(min(delay, policy.max_retry_after))
        assert last is not None
        raise last

    def _status_error(self, response: httpx.Response, shown: str, symbol: str | None,
                      retry_after: float | None) -> BacktapeError:
        status = response.status_code
        body = self.redact(response.text[:BODY_EXCERPT_CHARS].strip())
        message = f"{self.provider}: HTTP {status} from GET {shown}: {body or '(empty body)'}"
        if status in (401, 403):
            return AuthenticationError(message, status=status, body=body, provider=self.provider)
        if status == 429:
            return RateLimitError(message + " (retries exhausted)", retry_after=retry_after, status=status,
                                  body=body, provider=self.provider)
        if status == 404 and symbol is not None:
            return SymbolNotFoundError(f"{self.provider}: unknown symbol {symbol!r} ({message})")
        return ProviderError(message, status=status, body=body, provider=self.provider)

    def _decode(self, response: httpx.Response, shown: str) -> Any:
        try:
            return _json_loads(response.content)
        except (ValueError, UnicodeDecodeError) as exc:
            excerpt = self.redact(response.text[-80:])
            raise ProviderError(
                f"{self.provider}: invalid or truncated JSON from GET {shown} "
                f"({exc.msg if hasattr(exc, 'msg') else exc}; {len(response.content)} bytes, ending "
                f"{excerpt!r})", status=response.status_code, body=excerpt, provider=self.provider,
            ) from None


async def follow_pages(
    first: Callable[[], Awaitable[Any]],
    next_page: Callable[[Any], Awaitable[Any] | None],
    *,
    provider: str,
    max_pages: int = 100_000,
) -> list[Any]:
    """Every page of a cursor-paged listing: ``first()``, then ``next_page(page)`` until it is None.

    Stops with a ``ProviderError`` after ``max_pages`` so a cursor that never ends cannot hang a fetch.
    """
    pages = [await first()]
    while True:
        follow = next_page(pages[-1])
        if follow is None:
            return pages
        if len(pages) >= max_pages:
            if asyncio.iscoroutine(follow):
                follow.close()
            raise ProviderError(f"{provider}: more than {max_pages} pages; the cursor does not end",
                                provider=provider)
        pages.append(await follow)


async def gather_limited(
    jobs: Sequence[Callable[[], Awaitable[Any]]],
    *,
    limit: int = DEFAULT_CONCURRENCY,
    progress: ProgressCallback | None = None,
) -> list[Any]:
    """Run ``jobs`` with at most ``limit`` in flight; results in job order.

    The first failure cancels every other job and is re-raised, so callers see all or nothing.
    """
    total = len(jobs)
    if total == 0:
        return []
    sem = asyncio.Semaphore(max(1, limit))
    done = 0

    async def run(job: Callable[[], Awaitable[Any]]) -> Any:
        nonlocal done
        async with sem:
            result = await job()
        done += 1
        if progress is not None:
            progress(done, total)
        return result

    tasks = [asyncio.ensure_future(run(job)) for job in jobs]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def chunk_minutes_for_volume(avg_daily_volume: float | None) -> int:
    """Tick-chunk length from liquidity (seed 001): >10M shares/day 5 min, >1M 10 min, else 15 min."""
    if avg_daily_volume is None:
        return 15
    if avg_daily_volume > 10_000_000:
        return 5
    if avg_daily_volume > 1_000_000:
        return 10
    return 15


def tick_chunks(
    start_ns: int,
    end_ns: int,
    chunk_minutes: int,
    calendar: str = "XNYS",
    *,
    pre_ns: int = 5 * NS_PER_HOUR + 30 * NS_PER_MINUTE,
    post_ns: int = 4 * NS_PER_HOUR,
) -> list[tuple[int, int]]:
    """Cut ``[start_ns, end_ns)`` into contiguous windows covering it exactly once.

    Inside each session widened by ``pre_ns``/``post_ns`` (04:00-20:00 ET for XNYS) windows are
    ``chunk_minutes`` long; the quiet stretches between sessions are one window each (still paged),
    so a week of ticks costs hundreds of requests, not thousands.
    """
    step = chunk_minutes * NS_PER_MINUTE
    cal = get_calendar(calendar)
    if cal.is_24_7:
        dense = [(start_ns, end_ns)]
    else:
        lo = int(np.searchsorted(cal.closes, start_ns - post_ns, side="right"))
        hi = int(np.searchsorted(cal.opens, end_ns + pre_ns, side="left"))
        dense = [(max(start_ns, int(o) - pre_ns), min(end_ns, int(c) + post_ns))
                 for o, c in zip(cal.opens[lo:hi], cal.closes[lo:hi], strict=True)]
        dense = [(a, b) for a, b in dense if a < b]
    out: list[tuple[int, int]] = []
    cursor = start_ns
    for a, b in dense:
        a = max(a, cursor)
        if a >= b:
            continue
        if cursor < a:
            out.append((cursor, a))
        out.extend((t, min(t + step, b)) for t in range(a, b, step))
        cursor = b
    if cursor < end_ns:
        out.append((cursor, end_ns))
    return out


class HttpSource(DataSource):
    """Shared machinery of the HTTP adapters: the client, concurrency, progress, tick chunking.

    Subclasses build ``self._http`` (an :class:`HttpClient`) in ``__init__`` and implement the fetches.
    ``concurrency`` bounds the chunks in flight; ``progress`` is called as ``progress(done, total)``;
    ``chunk_minutes`` fixes the tick window (an int, or a dict per symbol), else ``avg_volume`` (a dict
    per symbol of shares/day) sizes it by liquidity, else the source estimates liquidity itself.
    """

    remote = True
    _http: HttpClient
    calendar_name: str = "XNYS"

    def _init_common(
        self,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        progress: ProgressCallback | None = None,
        chunk_minutes: int | dict[str, int] | None = None,
        avg_volume: dict[str, float] | None = None,
        calendar: str | None = None,
    ) -> None:
        self.concurrency = concurrency
        self.progress = progress
        self.chunk_minutes = chunk_minutes
        self.avg_volume: dict[str, float | None] = dict(avg_volume or {})
        if calendar:
            self.calendar_name = calendar

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent so far (retries included), for tests and benchmarks."""
        return self._http.requests_sent

    async def _gather(self, jobs: Sequence[Callable[[], Awaitable[Any]]]) -> list[Any]:
        async with self._http.session():
            return await gather_limited(jobs, limit=self.concurrency, progress=self.progress)

    async def _estimate_volume(self, symbol: str, start_ns: int) -> float | None:
        """Average daily volume over the month before ``start_ns`` (None when no bars come back)."""
        bars = await self.fetch([symbol], start_ns - 35 * 24 * NS_PER_HOUR, start_ns, "1d")
        return float(bars.select(pl.col("volume").mean()).item()) if bars.height else None

    async def _chunk_minutes(self, symbol: str, start_ns: int) -> int:
        """Tick window length for ``symbol``: explicit option, liquidity hint, or an estimate."""
        fixed = self.chunk_minutes
        if isinstance(fixed, int):
            return fixed
        if isinstance(fixed, dict) and symbol in fixed:
            return int(fixed[symbol])
        if symbol not in self.avg_volume:
            self.avg_volume[symbol] = await self._estimate_volume(symbol, start_ns)
        return chunk_minutes_for_volume(self.avg_volume[symbol])

    async def _tick_windows(self, symbol: str, start_ns: int, end_ns: int) -> list[tuple[int, int]]:
        minutes = await self._chunk_minutes(symbol, start_ns)
        return tick_chunks(start_ns, end_ns, minutes, self.calendar_name)

    async def aclose(self) -> None:
        """Nothing to release: clients live only for the duration of a fetch."""
