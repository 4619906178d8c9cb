"""Hostile and malformed files end in one clear ``BacktapeError``, in seconds and bounded memory."""

from __future__ import annotations

import contextlib
import gzip
import subprocess
import sys
import textwrap
import warnings
import zlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtape.errors import BacktapeError, DataFormatError
from backtape.sources.files import CSVDataSource, read_bars, read_ticks
from backtape.sources.files.reading import GZIP_FREE_BYTES

HEADER = "date,open,high,low,close,volume\n"
ROWS = "".join(f"2024-01-{d:02d},10,11,9,10.5,100\n" for d in range(2, 12))


def peak_rss_mib(code: str) -> tuple[float, str]:
    """Run ``code`` in a fresh interpreter; its peak resident memory (MiB) and what it printed."""
    # VmHWM is this process's own peak (ru_maxrss would carry over the forking parent's)
    script = textwrap.dedent(code) + textwrap.dedent("""
        import re
        from pathlib import Path
        print("PEAK", int(re.search(r"VmHWM:\\s+(\\d+)", Path("/proc/self/status").read_text())[1]) / 1024)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    peak = float(out.rsplit("PEAK", 1)[1])
    return peak, out


def test_zero_filled_sparse_file_fails_fast_with_little_memory(tmp_path: Path) -> None:
    path = tmp_path / "sparse.csv"
    with path.open("wb") as fh:
        fh.truncate(2 << 30)  # 2 GiB of zeros, sparse on disk
    peak, out = peak_rss_mib(f"""
        from backtape.errors import DataFormatError
        from backtape.sources.files import read_bars
        try:
            read_bars({str(path)!r})
        except DataFormatError as exc:
            print("ERROR", exc)
    """)
    assert "binary content (a NUL byte at offset 0" in out
    assert peak < 512


def test_gzip_bomb_is_refused_by_the_ratio_guard(tmp_path: Path) -> None:
    path = tmp_path / "bomb.csv.gz"
    line = b"2024-01-02,10,11,9,10.5,100\n"
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip container
    with path.open("wb") as fh:
        fh.write(packer.compress(HEADER.encode()))
        block = line * (1 << 15)
        for _ in range((2 * GZIP_FREE_BYTES) // len(block) + 1):
            fh.write(packer.compress(block))
        fh.write(packer.flush())
    assert path.stat().st_size < GZIP_FREE_BYTES // 200
    peak, out = peak_rss_mib(f"""
        from backtape.errors import DataFormatError
        from backtape.sources.files import read_bars
        try:
            read_bars({str(path)!r})
        except DataFormatError as exc:
            print("ERROR", exc)
    """)
    assert "decompression bomb" in out
    assert peak < 512


def test_a_bomb_far_larger_than_the_ratio_of_its_size_stops_after_the_free_bytes(tmp_path: Path) -> None:
    # 32 GiB in 512 gzip members of 64 MiB (~80 MB on disk): 40x its size would let 3 GB of text
    # through; measured against the bytes consumed, the guard stops it after GZIP_FREE_BYTES
    path = tmp_path / "bomb.csv.gz"
    member = zlib.compressobj(9, zlib.DEFLATED, 31)
    member_bytes = member.compress(b"2024-01-02,10,11,9,10.5,100\n" * ((64 << 20) // 28)) + member.flush()
    with path.open("wb") as fh:
        fh.write(gzip.compress(HEADER.encode()))
        for _ in range(512):
            fh.write(member_bytes)
    assert path.stat().st_size * 40 > 1 << 30
    peak, out = peak_rss_mib(f"""
        import time
        from backtape.errors import DataFormatError
        from backtape.sources.files import read_bars
        t = time.perf_counter()
        try:
            read_bars({str(path)!r})
        except DataFormatError as exc:
            print("ERROR", exc)
        print("SECONDS", time.perf_counter() - t)
    """)
    assert "decompression bomb" in out
    assert float(out.split("SECONDS")[1].split()[0]) < 10
    assert peak < 256


def test_a_parquet_file_claiming_too_many_rows_is_refused_from_its_footer(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "bomb.parquet"
    n = 2_000_000
    table = pa.table({"ts": pa.array(np.full(n, 1_704_204_000_000_000_000), pa.timestamp("ns", "UTC")),
                      **{c: np.full(n, 10.0) for c in ("open", "high", "low", "close", "volume")}})
    with pq.ParquetWriter(path, table.schema) as writer:
        for _ in range(10):  # 20M rows, about 1 GB decoded, a few hundred KB on disk
            writer.write_table(table)
    assert path.stat().st_size < 2 << 20
    peak, out = peak_rss_mib(f"""
        from backtape.errors import DataFormatError
        from backtape.sources.files import read_bars
        try:
            read_bars({str(path)!r})
        except DataFormatError as exc:
            print("ERROR", exc)
    """)
    assert "claim 20,000,000 rows" in out and "decompression bomb" in out
    assert peak < 256


def test_a_genuine_parquet_file_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "X.parquet"
    pl.DataFrame({"date": [f"2024-01-{d:02d}" for d in range(2, 12)], "open": 10.0, "high": 11.0,
                  "low": 9.0, "close": 10.5, "volume": 100}).write_parquet(path)
    assert read_bars(path, calendar="24/7").height == 10


def test_a_genuine_gzip_file_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "X.csv.gz"
    path.write_bytes(gzip.compress((HEADER + ROWS).encode()))
    assert read_bars(path, calendar="24/7").height == 10


def test_ragged_rows_name_the_header_columns(tmp_path: Path) -> None:
    path = tmp_path / "X.csv"
    path.write_text(HEADER + "2024-01-02,10,11\n")
    with pytest.raises(DataFormatError, match=r"rows do not have the 6 columns of the header"):
        read_bars(path)


@pytest.mark.parametrize(("rows", "message"), [
    ("1704204000000,10,1\n99999999999999999999999,10,1\n", r"line 3: epoch '9+' does not fit in 64 bits"),
    ("1704204000000,10,1\n1704204001,10,1\n", r"line 3: epoch 1704204001 looks like s while the file's "
                                              r"largest is in ms; pass timestamp_unit"),
    ("9300000000000,10,1\n", r"line 2: epoch 9300000000000 ms is beyond the year 2262"),
])
def test_epochs_that_cannot_be_right_are_refused(tmp_path: Path, rows: str, message: str) -> None:
    path = tmp_path / "T.csv"
    path.write_text("ts,price,size\n" + rows)
    with pytest.raises(DataFormatError, match=message):
        read_ticks(path, "trades")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_csv_bytes_give_rows_or_a_backtape_error(tmp_path: Path, data: st.DataObject) -> None:
    base = (HEADER + ROWS).encode()
    edits = data.draw(st.lists(st.tuples(st.integers(0, len(base)), st.integers(0, 12),
                                         st.binary(max_size=12) | st.sampled_from(
                                             [b",", b"\n", b'"', b"\0", b"1e400", b"-", b";", b"\r",
                                              b"99999999999999999999999", b"NaN", b"2024-13-45"])),
                                max_size=6))
    body = bytearray(base)
    for at, cut, insert in edits:
        body[at:at + cut] = insert
    path = tmp_path / "F.csv"
    path.write_bytes(bytes(body))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.suppress(BacktapeError):
            read_bars(path, calendar="24/7", on_invalid=data.draw(st.sampled_from(["raise", "drop", "warn"])))


def test_validate_reports_every_missing_value_with_its_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from backtape.cli.app import app

    path = tmp_path / "X.csv"
    path.write_text(HEADER + "2024-01-02,10,11,9,10.5,100\n2024-01-03,10,11\n2024-01-04,10,11,9,10.5,100\n"
                    "2024-01-05,10,,9,10.5,100\n")
    with pytest.raises(DataFormatError, match=r"column 'high', line 5: missing value"):  # raise: stops
        read_bars(path)
    with pytest.warns(UserWarning, match="lines 3, 5"):
        assert read_bars(path, on_invalid="drop").height == 2
    with pytest.warns(UserWarning, match="line 3"):
        report = CSVDataSource(path, on_invalid="warn").file_reports()[path]
    assert [(v.line, v.detail) for v in report.records()] == [
        (3, "null, NaN or infinite in low, close, volume"), (5, "null, NaN or infinite in high")]
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "missing_value 2" in result.stdout


def test_a_latin1_file_is_refused_with_advice_to_save_it_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "X.csv"
    path.write_bytes(("date,open,high,low,close,volume,note\n2024-01-02,10,11,9,10.5,100,Société\n")
                     .encode("latin-1"))
    with pytest.raises(DataFormatError, match=r"utf-8.*save it as UTF-8"):
        read_bars(path, calendar="24/7")
