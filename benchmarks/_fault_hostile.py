"""Hostile-files sub-campaign: a sparse zero-filled file, gzip and Parquet bombs and fuzzed CSVs, each read by
``read_bars`` and checked by ``backtape validate`` in a fresh process whose peak memory is measured.

The fuzzed CSVs start from valid files of several shapes (daily, intraday, epoch milliseconds,
semicolons, gzip) and get random edits: cut spans, inserted separators, quotes, NULs, huge numbers,
impossible dates and random bytes. The goal: every outcome is rows or a ``BacktapeError`` (for the
command, exit 0/1 or one ``error:`` line), under 512 MiB, in seconds.
"""

from __future__ import annotations

import gzip
import json
import random
import zlib
from pathlib import Path

from _fault_common import Tally, spawn, worker

HOSTILE_COLUMNS = ("files", "seconds", "peak MiB", "over 512 MiB", "non-BacktapeError", "unclear")
LIMIT_MIB = 512
_TOKENS = [b",", b"\n", b'"', b"\0", b"1e400", b"-", b";", b"\r", b"99999999999999999999999", b"NaN",
           b"2024-13-45", b"\xff\xfe", b"inf", b"   ", b"2024-02-30 25:61:00", b"-0", b"\t"]


def _valid(rng: random.Random) -> bytes:
    """One valid bar file of a random shape."""
    shape = rng.choice(["daily", "intraday", "epoch", "semicolon"])
    rows = []
    for i in range(rng.randint(1, 40)):
        o = 100 + rng.random() * 5
        prices = f"{o:.2f},{o + 1:.2f},{o - 1:.2f},{o + 0.5:.2f},{rng.randint(0, 10_000)}"
        if shape == "daily":
            rows.append(f"2024-{1 + i // 28:02d}-{1 + i % 28:02d},{prices}")
        elif shape == "intraday":
            rows.append(f"2024-01-02 {9 + i // 60:02d}:{i % 60:02d}:00,{prices}")
        elif shape == "epoch":
            rows.append(f"{1704204000000 + i * 60_000},{prices}")
        else:
            rows.append(f"2024-01-{2 + i % 27:02d};" + prices.replace(",", ";"))
    header = "timestamp,open,high,low,close,volume"
    header = header.replace(",", ";") if shape == "semicolon" else header
    return ("\n".join([header, *rows]) + "\n").encode()


def fuzzed(rng: random.Random) -> bytes:
    """A valid file with 0-8 random edits, gzipped one time in ten (sometimes cut short)."""
    body = bytearray(_valid(rng))
    for _ in range(rng.randint(0, 8)):
        at, cut = rng.randint(0, len(body)), rng.randint(0, 12)
        body[at:at + cut] = rng.choice(_TOKENS) if rng.random() < 0.7 else rng.randbytes(rng.randint(1, 12))
    if rng.random() < 0.1:
        packed = gzip.compress(bytes(body))
        return packed[:rng.randint(10, len(packed))] if rng.random() < 0.3 else packed
    return bytes(body)


def sparse_file(path: Path, size: int = 2 << 30) -> Path:
    """``size`` bytes of zeros that take no disk space."""
    if not path.exists():
        with path.open("wb") as fh:
            fh.truncate(size)
    return path


def gzip_bomb(path: Path, gib: float) -> Path:
    """A single-member gzip of a CSV header and ``gib`` GiB of one repeated valid row (~2.5 MB per GiB)."""
    if path.exists():
        return path
    line = b"2024-01-02,10,11,9,10.5,100\n"
    block = line * (1 << 15)
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    with path.open("wb") as fh:
        fh.write(packer.compress(b"date,open,high,low,close,volume\n"))
        for _ in range(int(gib * (1 << 30)) // len(block)):
            fh.write(packer.compress(block))
        fh.write(packer.flush())
    return path


def parquet_bomb(path: Path, rows: int) -> Path:
    """A Parquet file of ``rows`` identical bars (48 bytes each decoded) that run-length encoding keeps
    small."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.exists():
        return path
    group = min(rows, 2_000_000)
    table = pa.table({"ts": pa.array([1_704_204_000_000_000_000] * group, pa.timestamp("ns", "UTC")),
                      **{c: pa.array([10.0] * group) for c in ("open", "high", "low", "close", "volume")}})
    with pq.ParquetWriter(path, table.schema) as writer:
        for _ in range(rows // group):
            writer.write_table(table)
    return path


def _run(folder: Path, work: Path, name: str) -> Tally:
    """read_bars and validate of every file in ``folder``, in one fresh process."""
    out = work / "fuzz.json"
    proc = spawn(worker("fuzz", out, folder), work / "home")
    _, err = proc.communicate(timeout=3600)
    tally = Tally(name)
    if proc.returncode:
        tally.add("unclear")
        tally.note(f"worker exit {proc.returncode}: {err.strip()[-300:]}")
        return tally
    got = json.loads(out.read_text())
    tally.counts.update({"files": got["files"], "seconds": f"{got['seconds']:.1f}",
                         "peak MiB": f"{got['peak_mib']:.0f}",
                         "over 512 MiB": int(got["peak_mib"] > LIMIT_MIB),
                         "non-BacktapeError": got["read_other"], "unclear": got["validate_other"]})
    for example in [*got["examples"], *got.get("messages", [])]:
        tally.note(example)
    return tally


def hostile(n_fuzz: int, work: Path, rng: random.Random, *, bomb_gib: float = 4.0) -> list[Tally]:
    base = work / "hostile"
    bomb_rows = int(bomb_gib * 50_000_000)  # as many decoded bytes as the gzip bomb's, about
    rows = []
    for name, make in (("2 GiB sparse file", lambda p: sparse_file(p / "sparse.csv")),
                       (f"{bomb_gib:g} GiB gzip bomb", lambda p: gzip_bomb(p / "bomb.csv.gz", bomb_gib)),
                       (f"{bomb_rows // 1_000_000}M-row Parquet bomb",
                        lambda p: parquet_bomb(p / "bomb.parquet", bomb_rows))):
        folder = base / name.replace(" ", "-")
        folder.mkdir(parents=True, exist_ok=True)
        make(folder)
        rows.append(_run(folder, work, name))
    fuzz = base / "fuzzed"
    fuzz.mkdir(parents=True, exist_ok=True)
    for i in range(n_fuzz):
        (fuzz / f"f{i:05d}.csv").write_bytes(fuzzed(rng))
    rows.append(_run(fuzz, work, f"{n_fuzz} fuzzed CSVs"))
    return rows
