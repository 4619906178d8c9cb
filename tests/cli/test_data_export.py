"""``data show --output FILE`` streams window by window: same rows, bounded memory, progress on a tty."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from _big_files import result_mib, run_measured
from backtape.cli.app import app
from backtape.cli.data import windows
from backtape.sources import get_source

runner = CliRunner()
RANGE = ["--start", "2020-01-01", "--end", "2020-04-15"]  # four 30-day windows of minute bars


def read(path: Path) -> pl.DataFrame:
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    return pl.read_csv(path, try_parse_dates=True)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_export_in_windows_writes_exactly_the_rows_of_one_fetch(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"ab{suffix}"
    args = ["data", "show", "A,B", "-s", "synthetic", "-o", "calendar=24/7", "-f", "1min", *RANGE,
            "--output", str(out), "-n", "4"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    synthetic = get_source("synthetic", calendar="24/7")
    expected = synthetic.fetch_sync(["A", "B"], "2020-01-01", "2020-04-15", "1min")
    written = read(out)
    assert written.height == expected.height == 2 * 105 * 1440
    assert result.stderr.strip() == f"wrote {expected.height:,} rows to {out}"  # no progress off a tty
    assert f"{expected.height:,} rows" in result.stdout and "…" in result.stdout
    assert "2020-04-14 23:59" in result.stdout  # the last row of B, from the last window
    if suffix == ".parquet":
        assert written.equals(expected)  # (symbol, ts) order kept: one symbol at a time
    else:
        assert written.select("open", "close").equals(expected.select("open", "close"))
    assert not list(tmp_path.glob(".*partial"))


def test_windows_cut_only_minute_bars_and_ticks() -> None:
    day = 86_400 * 10**9
    assert windows("bars", "1min", 0, 95 * day) == [(0, 30 * day), (30 * day, 60 * day), (60 * day, 90 * day),
                                                   (90 * day, 95 * day)]
    assert len(windows("trades", "1d", 0, 3 * day)) == 3
    assert windows("bars", "5min", 0, 95 * day) == [(0, 95 * day)]  # may be built from finer bars
    assert windows("actions", "1d", 0, 95 * day) == [(0, 95 * day)]


def test_a_failed_export_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "exports" / "x.parquet"
    result = runner.invoke(app, ["data", "show", "NOPE", "-s", "sample", *RANGE, "--output", str(out)])
    assert result.exit_code == 2 and "NOPE" in result.stderr
    assert not out.exists() and not list(out.parent.glob("*"))


def test_progress_is_drawn_on_a_terminal(tmp_path: Path) -> None:
    out = tmp_path / "a.parquet"
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "backtape.cli.app", "data", "show", "A", "-s", "synthetic",
         "-o", "calendar=24/7", "-f", "1min", *RANGE, "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=follower, env={**os.environ, "COLUMNS": "120", "TERM": "xterm"})
    os.close(follower)
    drawn = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        drawn += chunk
    assert proc.wait(timeout=120) == 0
    text = drawn.decode(errors="replace")
    assert "synthetic A → a.parquet" in text and "wrote 151,200 rows" in text


@pytest.mark.slow
def test_export_memory_stays_below_the_size_of_what_it_writes(tmp_path: Path) -> None:
    out = tmp_path / "big.parquet"
    peak, _, _ = run_measured(f"""
        import sys
        from backtape.cli.app import main
        sys.argv = ["backtape", "data", "show", "A,B", "-s", "synthetic", "-o", "calendar=24/7", "-f", "1min",
                    "--start", "2018-01-01", "--end", "2022-01-01", "--output", {str(out)!r}]
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, exc.code
    """, timeout=900)
    rows = pl.scan_parquet(out).select(pl.len()).collect().item()
    assert rows == 2 * 1461 * 1440
    assert peak < result_mib(rows), (peak, result_mib(rows))  # never all rows at once
