"""Fetch benchmark: one month of 1-minute bars for 10 symbols from a local Polygon-format server
that adds 50 ms latency per request (1,000 bars per page, so every symbol takes several pages).

Rows: serial (1 chunk in flight), concurrent (5 in flight, the default), then the concurrent run
through ``CachedDataSource`` twice (cold fill, then warm: the goal is 0 requests).

    python benchmarks/bench_fetch.py [--latency 0.05] [--page 1000]
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing as mp
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from backtape._time import NS_PER_MINUTE
from backtape.cache import CachedDataSource
from backtape.calendars import get_calendar
from backtape.sources import PolygonDataSource

SYMBOLS = ["AAPL", "MSFT", "AMZN", "GOOG", "META", "NVDA", "TSLA", "JPM", "XOM", "SPY"]
START, END = "2024-03-01", "2024-04-01"
KEY = "bench-key-0000"


def _minute_table() -> dict[str, list[dict]]:
    sessions = get_calendar("XNYS").sessions(START, END)
    minutes = np.concatenate([
        np.arange(o, c, NS_PER_MINUTE, dtype=np.int64)
        for o, c in zip(sessions["open"].dt.epoch("ns").to_list(), sessions["close"].dt.epoch("ns").to_list(),
                        strict=True)])
    table = {}
    for k, sym in enumerate(SYMBOLS):
        rng = np.random.default_rng(k)
        px = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, len(minutes))))
        table[sym] = [{"v": 1000.0 + i % 50, "vw": float(p), "o": float(p), "c": float(p),
                       "h": float(p) + 0.01, "l": float(p) - 0.01, "t": int(t // 1_000_000), "n": 7}
                      for i, (t, p) in enumerate(zip(minutes, px, strict=True))]
    return table


def _serve(port_box, counter, latency: float, page: int) -> None:
    """Server process: Polygon aggregates with ``next_url`` cursors and a fixed latency per request.

    Pages are encoded once and memoized, so the server's own CPU does not blur the client figures;
    it runs in its own process so it never competes with the client for the GIL.
    """
    table = _minute_table()
    encoded: dict[tuple, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            with counter.get_lock():
                counter.value += 1
            time.sleep(latency)
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query))
            seg = parts.path.strip("/").split("/")
            offset = int(base64.b64decode(query["cursor"])) if "cursor" in query else 0
            key = (parts.path, offset)
            if key not in encoded:
                ticker, lo, hi = seg[3], int(seg[7]), int(seg[8])
                rows = [r for r in table.get(ticker, []) if lo <= r["t"] <= hi]
                body = {"status": "OK", "ticker": ticker, "request_id": "b", "adjusted": False,
                        "results": rows[offset:offset + page]}
                if offset + page < len(rows):
                    cursor = base64.b64encode(str(offset + page).encode()).decode()
                    body["next_url"] = f"https://api.massive.com{parts.path}?cursor={cursor}"
                encoded[key] = json.dumps(body).encode()
            data = encoded[key]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    port_box.put(httpd.server_address[1])
    httpd.serve_forever(0.05)


class _Server:
    """Handle on the server process: its URL and the number of requests it has answered."""

    def __init__(self, latency: float, page: int) -> None:
        self.counter = mp.Value("i", 0)
        box: mp.Queue = mp.Queue()
        self.process = mp.Process(target=_serve, args=(box, self.counter, latency, page), daemon=True)
        self.process.start()
        self.url = f"http://127.0.0.1:{box.get(timeout=60)}"

    @property
    def requests(self) -> int:
        return self.counter.value

    def stop(self) -> None:
        self.process.terminate()
        self.process.join()


def _timed(label: str, server: _Server, source, rows: list) -> float:
    before = server.requests
    t0 = time.perf_counter()
    bars = source.fetch_sync(SYMBOLS, START, END, "1min")
    wall = time.perf_counter() - t0
    rows.append((label, server.requests - before, bars.height, wall))
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--page", type=int, default=1000)
    args = parser.parse_args()
    server = _Server(args.latency, args.page)

    def source(concurrency: int) -> PolygonDataSource:
        return PolygonDataSource(api_key=KEY, base_url=server.url, requests_per_minute=None,
                                 concurrency=concurrency)

    source(5).fetch_sync(SYMBOLS, START, END, "1min")  # warm-up: the server encodes its pages once
    rows: list[tuple[str, int, int, float]] = []
    serial = _timed("serial (1 in flight)", server, source(1), rows)
    _timed("concurrent (5 in flight)", server, source(5), rows)
    with tempfile.TemporaryDirectory() as folder:
        cached = CachedDataSource(source(5), cache_dir=folder)
        _timed("cache cold (fill)", server, cached, rows)
        _timed("cache warm (repeat)", server, cached, rows)
    server.stop()

    print(f"\n10 symbols x 1 month of 1-minute bars, {args.latency * 1000:.0f} ms latency, "
          f"{args.page} bars/page\n")
    print(f"{'run':<26}{'requests':>10}{'bars':>10}{'wall s':>10}{'speedup':>10}")
    for label, requests, height, wall in rows:
        print(f"{label:<26}{requests:>10}{height:>10}{wall:>10.2f}{serial / wall:>9.1f}x")
    concurrent_speedup = serial / rows[1][3]
    print(f"\nconcurrent speedup {concurrent_speedup:.1f}x (goal >= 4x); warm cache requests: "
          f"{rows[3][1]} (goal 0)")


if __name__ == "__main__":
    main()
