"""A scriptable HTTP server on 127.0.0.1 for replaying provider wire formats in tests.

``ReplayServer(route)`` serves ``route(request) -> Reply`` from a thread. ``server.fail(...)`` queues
faults (status, body, headers, delay) served before the route on matching paths, which lets a test
say "the second page answers 500 once" or "the next request sleeps past the client timeout".
Every request is recorded (path, query, headers) so tests can assert the exact wire traffic.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from backtape._time import NS_PER_MINUTE
from backtape.calendars import get_calendar
from backtape.sources._http import RetryPolicy

#: retry policy for tests: three tries, millisecond backoff, Retry-After honoured up to 2 s
FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05, max_retry_after=2.0)


@dataclass
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw_query: str = ""


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class _Fault:
    path_contains: str
    reply: Reply
    times: int
    skip: int = 0


class ReplayServer:
    """Threaded HTTP server answering with ``route``; use as a context manager."""

    def __init__(self, route: Callable[[Request], Reply], *, latency: float = 0.0) -> None:
        self.route = route
        self.latency = latency
        self.requests: list[Request] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                req = Request(parts.path, dict(parse_qsl(parts.query, keep_blank_values=True)),
                              {k: v for k, v in self.headers.items()}, parts.query)
                reply = outer._answer(req)
                if outer.latency:
                    time.sleep(outer.latency)
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.encoded()
                try:
                    self.send_response(reply.status)
                    headers = {"Content-Type": "application/json", **reply.headers}
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def _answer(self, req: Request) -> Reply:
        with self._lock:
            self.requests.append(req)
            for fault in self._faults:
                if fault.path_contains in req.path + "?" + req.raw_query and fault.times > 0:
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    fault.times -= 1
                    return fault.reply
        return self.route(req)

    def fail(self, path_contains: str, reply: Reply, *, times: int = 1, skip: int = 0) -> None:
        """Serve ``reply`` ``times`` times on paths containing the text, after ``skip`` matches."""
        with self._lock:
            self._faults.append(_Fault(path_contains, reply, times, skip))

    def clear_faults(self) -> None:
        """Forget every queued fault: the server answers normally again."""
        with self._lock:
            self._faults.clear()

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def session_minutes(start: str, end: str, calendar: str = "XNYS") -> np.ndarray:
    """Every regular-session minute start (int ns) of the sessions in ``[start, end)``."""
    cal = get_calendar(calendar)
    sessions = cal.sessions(start, end)
    opens = sessions["open"].dt.epoch("ns").to_list()
    closes = sessions["close"].dt.epoch("ns").to_list()
    out = [np.arange(o, c, NS_PER_MINUTE, dtype=np.int64) for o, c in zip(opens, closes, strict=True)]
    return np.concatenate(out) if out else np.array([], dtype=np.int64)


def price_path(symbol: str, n: int, base: float = 100.0) -> np.ndarray:
    """A deterministic positive random walk per symbol."""
    rng = np.random.default_rng(sum(map(ord, symbol)))
    return np.round(base * np.exp(np.cumsum(rng.normal(0, 0.001, n))), 4)
