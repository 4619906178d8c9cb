"""Keep Rust panic reports off the terminal around reads that may panic on a damaged file.

Polars turns a Rust panic into ``PanicException``, which backtape turns into one clear error, but
Rust's panic hook has already written its report (and, with ``RUST_BACKTRACE``, a backtrace) to the
process's stderr. Inside ``quiet_panics()`` file descriptor 2 is held in a temporary file; when the
outermost block ends, what was written is replayed without the panic reports, so nothing else is lost.

| stderr line(s)                                       | replayed |
| ---------------------------------------------------- | -------- |
| ``thread '…' panicked at …`` and its message         | no       |
| ``stack backtrace:`` and its numbered frames          | no       |
| the report's closing ``note: …`` line                 | no       |
| anything else (warnings, logs, other threads)         | yes      |
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

_PANICKED = re.compile(rb"^thread '[^']*'( \(\d+\))? panicked at ")
_FRAME = re.compile(rb"^\s+(\d+: |at )")
_lock = threading.Lock()
_depth = 0
_saved_fd = -1
_held: IO[bytes] | None = None


@contextmanager
def quiet_panics() -> Iterator[None]:
    """Hold stderr during the block and replay it without Rust panic reports (re-entrant, thread-safe)."""
    global _depth, _saved_fd, _held
    with _lock:
        if _depth == 0:
            sys.stderr.flush()
            _held = tempfile.TemporaryFile()  # noqa: SIM115 - closed when the outermost block ends
            _saved_fd = os.dup(2)
            os.dup2(_held.fileno(), 2)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _held is not None:
                sys.stderr.flush()
                os.dup2(_saved_fd, 2)
                os.close(_saved_fd)
                _held.seek(0)
                kept = without_panic_reports(_held.read())
                _held.close()
                _held = None
                if kept:
                    os.write(2, kept)


def without_panic_reports(text: bytes) -> bytes:
    """``text`` without the reports Rust's default panic hook writes (see the module's table)."""
    kept: list[bytes] = []
    state = "normal"
    for line in text.splitlines(keepends=True):
        bare = line.rstrip(b"\r\n")
        if _PANICKED.match(bare):
            if kept and not kept[-1].strip():
                kept.pop()  # the hook starts its report with a blank line
            state = "message"
        elif state == "message":
            if bare.startswith(b"note: "):
                state = "normal"
            elif bare == b"stack backtrace:":
                state = "frames"
        elif state == "frames" and not _FRAME.match(bare):
            state = "normal"
            if not bare.startswith(b"note: "):
                kept.append(line)
        elif state == "normal":
            kept.append(line)
    return b"".join(kept)
