"""Large genuine bar files and peak-memory measurement, shared by the big-file test and benchmark.

``write_minute_csv`` writes a plausible 24/7 minute-bar CSV (a random walk with consistent OHLC and
integer volumes, ``timestamp,open,high,low,close,volume``) of about the requested size, a million
rows at a time so that writing it needs little memory. ``run_measured`` runs code in a fresh
interpreter and returns its own peak resident memory (``VmHWM``; ``ru_maxrss`` of an exec'd child
can carry the forking parent's peak) and wall time.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

BYTES_PER_ROW = 51  # "2015-01-01 00:00:00,100.00,100.06,99.98,100.01,4582\n"
#: memory of one canonical bar: a 16-byte string view for the symbol and nine 8-byte values
#: (polars' ``estimated_size`` leaves out views and all-null columns, so it is not used)
BAR_BYTES = 16 + 9 * 8
_ROWS_PER_WRITE = 1_000_000


def write_minute_csv(path: Path, size_bytes: int, seed: int = 1) -> int:
    """Write about ``size_bytes`` of genuine minute bars to ``path``; returns the number of rows."""
    rng = np.random.default_rng(seed)
    rows, last, start = 0, 100.0, datetime(2010, 1, 1)
    target = size_bytes // BYTES_PER_ROW
    with path.open("wb") as fh:
        while rows < target:
            n = min(_ROWS_PER_WRITE, target - rows)
            close = np.round(last * np.exp(np.cumsum(rng.normal(0, 4e-4, n))), 2)
            open_ = np.round(np.concatenate([[last], close[:-1]]), 2)
            wick = np.round(np.abs(rng.normal(0, 0.05, (2, n))), 2)
            first = start + timedelta(minutes=rows)
            pl.DataFrame({
                "timestamp": pl.datetime_range(first, first + timedelta(minutes=n - 1), "1m", eager=True),
                "open": open_, "high": np.maximum(open_, close) + wick[0],
                "low": np.minimum(open_, close) - wick[1], "close": close,
                "volume": rng.integers(1, 5000, n),
            }).write_csv(fh, include_header=rows == 0, datetime_format="%Y-%m-%d %H:%M:%S", float_precision=2)
            rows, last = rows + n, float(close[-1])
    return rows


def run_measured(code: str, timeout: float = 1800) -> tuple[float, float, str]:
    """Run ``code`` in a fresh interpreter: its peak RSS (MiB), wall seconds and what it printed."""
    script = "import time as _t\n_t0 = _t.perf_counter()\n" + textwrap.dedent(code) + textwrap.dedent("""
        import re as _re
        from pathlib import Path as _P
        _hwm = int(_re.search(r"VmHWM:\\s+(\\d+)", _P("/proc/self/status").read_text())[1]) / 1024
        print("MEASURED", _hwm, _t.perf_counter() - _t0)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout,
                         check=True).stdout
    peak, seconds = (float(x) for x in out.rsplit("MEASURED", 1)[1].split())
    return peak, seconds, out


READ_BARS = """
from backtape.sources.files import read_bars
bars = read_bars({path!r}, calendar="24/7")
print("ROWS", bars.height, "RESULT_MIB", bars.estimated_size() / 2**20)
"""
VALIDATE = """
import warnings
from backtape.sources.files import source_for
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    reports = source_for({path!r}, calendar="24/7", on_invalid="warn").file_reports()
print("ROWS", sum(r.rows for r in reports.values()), "OK", all(r.ok for r in reports.values()))
"""
POLARS_READ_CSV = """
import polars as pl
frame = pl.read_csv({path!r})
print("ROWS", frame.height, "RESULT_MIB", frame.estimated_size() / 2**20)
"""
BASELINE = """
import polars as pl
import backtape.sources.files
"""


def result_mib(rows: int) -> float:
    """Memory (MiB) that ``rows`` canonical bars occupy however they are read."""
    return rows * BAR_BYTES / 2**20


def field(out: str, name: str) -> float:
    """The number printed after ``name`` in a measured run's output."""
    found = re.search(rf"{name} (\S+)", out)
    assert found is not None, out
    return float(found[1])
