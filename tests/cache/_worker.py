"""Subprocess entry point of the crash and process-concurrency tests.

    python _worker.py fetch CACHE LOG GO START END SYMBOLS   wait for GO, fetch, verify, exit 0
    python _worker.py crash CACHE STAGE MARKER START END     stop forever at STAGE (parent SIGKILLs)
    python _worker.py ingest BUNDLES GO NAME SYMBOLS         wait for GO, ingest SYMBOLS into bundle NAME
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from _upstream import CountingSource

from backtape.cache import CachedDataSource, NeverStalePolicy

LATE = 1_893_456_000_000_000_000  # 2030-01-01


def _fetch(cache: str, log: str, go: str, start: str, end: str, symbols: str) -> int:
    up = CountingSource("24/7", log=log, delay=0.4)
    cached = CachedDataSource(up, cache_dir=cache, clock=lambda: LATE, freshness_policy=NeverStalePolicy())
    while not Path(go).exists():
        time.sleep(0.01)
    syms = symbols.split(",")
    got = cached.fetch_sync(syms, int(start), int(end), "1d")
    return 0 if got.equals(up.bars(syms, int(start), int(end), "1d")) else 1


def _crash(cache: str, stage: str, marker: str, start: str, end: str) -> int:
    def hook(name: str) -> None:
        if name == stage:
            Path(marker).write_text(name)
            time.sleep(120)

    cached = CachedDataSource(CountingSource("24/7"), cache_dir=cache, clock=lambda: LATE,
                              freshness_policy=NeverStalePolicy(), write_hook=hook)
    cached.fetch_sync(["AAPL"], int(start), int(end), "1d")
    return 3  # the parent kills us before this point


def _ingest(bundles: str, go: str, name: str, symbols: str) -> int:
    from backtape.cache.bundles import ingest_to_bundle

    while not Path(go).exists():
        time.sleep(0.01)
    ingest_to_bundle(name, symbols.split(","), "2024-01-01", "2024-03-01", "1d",
                     source=CountingSource(delay=0.2), bundles_dir=bundles)
    return 0


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    sys.exit({"fetch": _fetch, "crash": _crash, "ingest": _ingest}[mode](*args))
