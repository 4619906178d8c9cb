"""A Rust panic inside Polars on a damaged file ends in backtape's one error line, not a panic report."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

from backtape._panics import without_panic_reports

OFF = (b"\nthread '<unnamed>' panicked at crates/polars-io/src/x.rs:5:9:\nassertion failed: a <= b\n"
       b"note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n")
SHORT = (b"\nthread 'tokio-rt-worker' (4888) panicked at crates/x.rs:585:9:\nbad range\nstack backtrace:\n"
         b"   0: __rustc::rust_begin_unwind\n   1: core::panicking::panic_fmt\n"
         b"             at /rustc/x.rs:1\n"
         b"note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.\n")
FULL = (b"thread 'main' panicked at src/y.rs:1:1:\nboom\nstack backtrace:\n   0: 0x55 - std::rt\n"
        b"   1: 0x56 - main\n")


@pytest.mark.parametrize("report", [OFF, SHORT, FULL], ids=["off", "short", "full"])
def test_panic_reports_are_dropped_and_everything_else_kept(report: bytes) -> None:
    text = b"WARNING: before\n" + report + b"UserWarning: after\n" + report
    assert without_panic_reports(text) == b"WARNING: before\nUserWarning: after\n"


def test_a_warning_written_inside_the_block_still_reaches_stderr() -> None:
    code = textwrap.dedent("""
        import os, sys, warnings
        from backtape._panics import quiet_panics
        with quiet_panics():
            with quiet_panics():
                warnings.warn("kept warning")
                os.write(2, b"raw line\\n")
        print("after", file=sys.stderr)
    """)
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr
    assert "kept warning" in err and "raw line" in err and err.rstrip().endswith("after")


def _panicking_parquet(folder: Path) -> Path:
    """A bar file with bytes changed so that Polars' reader panics (searched with a fixed seed)."""
    good = folder / "good.parquet"
    pl.DataFrame({"date": [f"2024-01-{d:02d}" for d in range(2, 30)], "open": 10.0, "high": 11.0,
                  "low": 9.0, "close": 10.5, "volume": 100}).write_parquet(good, compression="uncompressed")
    pristine = good.read_bytes()
    rng = random.Random(1)
    probe = folder / "probe.parquet"
    for _ in range(400):
        damaged = bytearray(pristine)
        for _ in range(3):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        probe.write_bytes(damaged)
        try:
            pl.read_parquet(probe)
        except pl.exceptions.PanicException:
            return probe
        except Exception:  # the search wants a panic, not any error
            continue
    raise AssertionError("no byte damage made Polars panic: update this search for the Polars version")


def test_a_file_that_makes_polars_panic_gives_one_error_line(tmp_path: Path) -> None:
    path = _panicking_parquet(tmp_path)
    env = {**os.environ, "RUST_BACKTRACE": "1", "HOME": str(tmp_path / "home"),
           "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    proc = subprocess.run([sys.executable, "-m", "backtape", "validate", str(path)], capture_output=True,
                          text=True, env=env, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2
    assert len(lines) == 1 and lines[0].startswith("error: ") and "probe.parquet" in lines[0], proc.stderr
