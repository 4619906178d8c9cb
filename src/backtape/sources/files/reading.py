"""Reading files as raw tables: gzip detection, separator and header sniffing, CSV and Parquet.

CSV is read as text (every column a string) so that layout mapping decides each column's type
and can name the file line of a bad value; Parquet keeps its own types.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl

from ...errors import DataFormatError
from .layout import ALIASES, norm
from .options import FileOptions

PARQUET_SUFFIXES = (".parquet", ".pq")
_DATETIME_TEXT = re.compile(r"^[\d\-/:.TZ+ ]+$")
_TIME_OF_DAY = re.compile(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$")
_HISTDATA_TS = re.compile(r"^\d{8} \d{9}$")
_VISIBLE = re.compile(rb"\S")
_EOL = re.compile(rb"\r\n|\r|\n")
_CHUNK = 1 << 20
#: bytes looked at to tell text from binary before reading on
SNIFF_BYTES = 1 << 16
#: how many times its size a gzip file may expand (beyond ``GZIP_FREE_BYTES``)
MAX_GZIP_RATIO = 40  # real market-data CSV compresses about 3-8x
GZIP_FREE_BYTES = 64 << 20


def is_parquet(path: Path) -> bool:
    """Whether ``path`` is named like a Parquet file."""
    return path.name.lower().endswith(PARQUET_SUFFIXES)


def read_bytes(path: Path) -> bytes | bytearray:
    """The file's bytes, gunzipped when they start with the gzip magic number.

    Binary content (NUL bytes in the first ``SNIFF_BYTES``) is refused before the rest is read, and
    a gzip file may expand to at most ``MAX_GZIP_RATIO`` times its size (beyond ``GZIP_FREE_BYTES``),
    so a zero-filled file or a decompression bomb gives a clear error in seconds.
    """
    try:
        with path.open("rb") as fh:
            gzipped = fh.read(2) == b"\x1f\x8b"
            fh.seek(0)
            data = _gunzip(fh, path) if gzipped else _plain(fh, path)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataFormatError(f"{path}: cannot read file ({exc}); is it truncated or corrupt?") from exc
    if not _VISIBLE.search(data):
        raise DataFormatError(f"{path}: file is empty")
    return data


def _sniff(path: Path, head: bytes) -> None:
    """Refuse binary content: CSV text has no NUL bytes."""
    nul = head.find(b"\0", 0, SNIFF_BYTES)
    if nul >= 0:
        raise DataFormatError(f"{path}: binary content (a NUL byte at offset {nul:,}), not CSV text; "
                              "is it the right file (UTF-16 text must be saved as UTF-8)?")


def _plain(fh: BinaryIO, path: Path) -> bytes:
    head = fh.read(SNIFF_BYTES)
    _sniff(path, head)
    return head + fh.read()


def _gunzip(fh: BinaryIO, path: Path) -> bytearray:
    """Stream-decompress ``fh``, refusing output beyond the ratio guard."""
    limit = max(GZIP_FREE_BYTES, MAX_GZIP_RATIO * os.fstat(fh.fileno()).st_size)
    out = bytearray()
    with gzip.GzipFile(fileobj=fh) as gz:
        while chunk := gz.read(_CHUNK):
            if not out:
                _sniff(path, chunk)
            out += chunk
            if len(out) > limit:
                raise DataFormatError(f"{path}: decompresses to more than {limit:,} bytes ({MAX_GZIP_RATIO}x "
                                      "its size), a decompression bomb? gunzip it yourself if it is genuine")
    return out


def _split(line: str, sep: str) -> list[str]:
    return [f.strip().strip('"') for f in line.split(sep)]


def looks_like_header(fields_: list[str]) -> bool:
    """A first line is a header when some field is neither a number nor a date/time."""
    for f in fields_:
        if not f:
            continue
        try:
            float(f)
        except ValueError:
            if not _DATETIME_TEXT.match(f):
                return True
    return False


def read_csv_raw(path: Path, opts: FileOptions) -> tuple[pl.DataFrame, int, dict[str, Any]]:
    """Read a CSV as strings. Returns the frame, the file line of its first row, layout defaults."""
    data = read_bytes(path)
    first_raw, after_first = _line(data, 0)
    second_raw, _ = _line(data, after_first)
    first = first_raw.decode("utf-8-sig", errors="replace")
    sep = opts.separator or max((",", ";", "\t"), key=first.count)
    head = _split(first, sep)
    has_header = looks_like_header(head) if opts.has_header is None else opts.has_header
    defaults: dict[str, Any] = {}
    names: list[str] | None = list(opts.names) if opts.names else None
    skip = 0
    if has_header:
        skip = 1
        names = names or head
        if after_first < len(data):
            row = _split(second_raw.decode("utf-8", errors="replace"), sep)
            if len(row) == len(names) + 1 and len(row) > 1 and _TIME_OF_DAY.match(row[1]) \
                    and not any(norm(n) in ALIASES["time"] for n in names):
                names = [names[0], "time", *names[1:]]  # backtrader files: Date,Time under "Date"
    elif names is None:
        names, defaults = _headerless_layout(path, head)
    names = [n if n else "unnamed_0" for n in names]
    if not _VISIBLE.search(data, after_first if skip else 0):
        raise DataFormatError(f"{path}: no data rows")
    try:
        df = pl.read_csv(
            io.BytesIO(data), has_header=False, skip_rows=skip, new_columns=names, separator=sep,
            infer_schema=False, truncate_ragged_lines=False, quote_char='"',
        )
    except pl.exceptions.SchemaError as exc:
        raise DataFormatError(f"{path}: rows do not have the {len(names)} columns of the header "
                              f"({', '.join(names)}); is the file ragged or not CSV? "
                              f"({str(exc).splitlines()[0]})") from exc
    except pl.exceptions.PolarsError as exc:
        raise DataFormatError(f"{path}: malformed CSV ({str(exc).splitlines()[0]})") from exc
    if df.width != len(names):
        raise DataFormatError(f"{path}: expected {len(names)} columns ({', '.join(names)}), found {df.width}")
    if df.height == 0:
        raise DataFormatError(f"{path}: no data rows")
    return df, skip + 1, defaults


def _line(data: bytes | bytearray, start: int) -> tuple[bytes, int]:
    """The line of ``data`` starting at ``start`` (without its end) and where the next one starts."""
    end = _EOL.search(data, start)
    if end is None:
        return bytes(data[start:]), len(data)
    return bytes(data[start:end.start()]), end.end()


def _headerless_layout(path: Path, head: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Column names (and layout defaults) of a file without a header, from its first row."""
    if _HISTDATA_TS.match(head[0]) and len(head) in (3, 4):
        defaults = {"ts_format": "%Y%m%d %H%M%S%3f", "timezone": "Etc/GMT+5", "kind": "quotes"}
        return ["timestamp", "bid", "ask", "volume"][: len(head)], defaults
    if len(head) in (6, 7):
        return ["datetime", "open", "high", "low", "close", "volume", "open_interest"][: len(head)], {}
    raise DataFormatError(f"{path}: no header line and an unknown layout of {len(head)} fields; "
                          "pass names=[...]")


def read_parquet_raw(path: Path) -> pl.DataFrame:
    """A Parquet file as it is typed."""
    try:
        df = pl.scan_parquet(path).collect()
    except (OSError, pl.exceptions.ComputeError) as exc:
        raise DataFormatError(f"{path}: cannot read Parquet ({str(exc).splitlines()[0]})") from exc
    if df.height == 0:
        raise DataFormatError(f"{path}: no data rows")
    return df
