"""Reading files as raw tables: gzip detection, separator and header sniffing, CSV and Parquet.

CSV is read as text (every column a string) so that layout mapping decides each column's type
and can name the file line of a bad value, in blocks of ``BLOCK_BYTES`` so that memory is bounded
by the typed result, not by the text; Parquet keeps its own types.
"""

from __future__ import annotations

import gzip
import io
import itertools
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl

from ..._panics import quiet_panics
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
#: bytes of text parsed at a time: the string table of a block is a few times this
BLOCK_BYTES = 8 << 20
#: bytes looked at to tell text from binary before reading on
SNIFF_BYTES = 1 << 16
#: how many times its size a gzip file may expand (beyond ``GZIP_FREE_BYTES``)
MAX_GZIP_RATIO = 40  # real market-data CSV compresses about 3-8x
GZIP_FREE_BYTES = 16 << 20


def is_parquet(path: Path) -> bool:
    """Whether ``path`` is named like a Parquet file."""
    return path.name.lower().endswith(PARQUET_SUFFIXES)


def _blocks(path: Path) -> Iterator[bytes]:
    """The file's bytes (gunzipped when they start with the gzip magic number) in blocks of about
    ``BLOCK_BYTES`` that end at a line end, so no more than a block or two is ever held.

    Binary content (NUL bytes in the first ``SNIFF_BYTES``) is refused before the rest is read, and
    gzip output may outgrow the compressed bytes read so far at most ``MAX_GZIP_RATIO`` times (beyond
    ``GZIP_FREE_BYTES``), so a zero-filled file or a decompression bomb of any size gives a clear
    error in seconds, after at most ``GZIP_FREE_BYTES`` of text.
    """
    try:
        with path.open("rb") as fh:
            gzipped = fh.read(2) == b"\x1f\x8b"
            fh.seek(0)
            ready, tail = b"", b""  # a last line without its line end stays with the block before it
            for piece in _gunzip(fh, path) if gzipped else _plain(fh, path):
                data = tail + piece
                cut = data.rfind(b"\n") + 1
                if cut:
                    if ready:
                        yield ready
                    ready, tail = data[:cut], data[cut:]
                else:
                    tail = data
            yield ready + tail
    except (OSError, EOFError, zlib.error) as exc:
        raise DataFormatError(f"{path}: cannot read file ({exc}); is it truncated or corrupt?") from exc


def _sniff(path: Path, head: bytes) -> None:
    """Refuse binary content: CSV text has no NUL bytes."""
    nul = head.find(b"\0", 0, SNIFF_BYTES)
    if nul >= 0:
        raise DataFormatError(f"{path}: binary content (a NUL byte at offset {nul:,}), not CSV text; "
                              "is it the right file (UTF-16 text must be saved as UTF-8)?")


def _plain(fh: BinaryIO, path: Path) -> Iterator[bytes]:
    head = fh.read(SNIFF_BYTES)
    _sniff(path, head)
    yield head
    while block := fh.read(BLOCK_BYTES):
        yield block


def _gunzip(fh: BinaryIO, path: Path) -> Iterator[bytes]:
    """Stream-decompress ``fh`` in blocks, refusing output that outgrows the input by the ratio guard.

    The ratio is measured against the compressed bytes consumed so far, not the file's size, so a
    bomb is stopped once ``GZIP_FREE_BYTES`` are out whatever its size (each member of a multi-member
    file included), and what is held is bounded by that, not by the file.
    """
    total = 0
    out = bytearray()
    with gzip.GzipFile(fileobj=fh) as gz:
        while chunk := gz.read(_CHUNK):
            if not total:
                _sniff(path, chunk)
            total += len(chunk)
            if total > GZIP_FREE_BYTES and total > MAX_GZIP_RATIO * fh.tell():
                raise DataFormatError(
                    f"{path}: {fh.tell():,} compressed bytes expand to more than {total:,} (over "
                    f"{MAX_GZIP_RATIO}x), a decompression bomb? gunzip it yourself if it is genuine")
            out += chunk
            if len(out) >= BLOCK_BYTES:
                yield bytes(out)
                out = bytearray()
    yield bytes(out)


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


@dataclass
class CsvChunks:
    """A CSV read as text, block by block: column names, the file line of the first data row, layout
    defaults of a known headerless layout, and the tables of its blocks (every column a string)."""

    names: list[str]
    first_line: int
    defaults: dict[str, Any]
    tables: Iterator[pl.DataFrame]


def read_csv_chunks(path: Path, opts: FileOptions) -> CsvChunks:
    """Sniff a CSV from its first block (separator, header, layout) and parse it block by block.

    Rows are parsed ``BLOCK_BYTES`` of text at a time, so the text and its string table never exist
    whole; the tables raise ``DataFormatError`` for ragged or malformed rows, and for a file without
    data rows once they are exhausted. A quoted field may not span lines (market data never does).
    """
    blocks = _blocks(path)
    first_block = next(blocks, b"")
    if not _VISIBLE.search(first_block):
        raise DataFormatError(f"{path}: file is empty")
    first_raw, after_first = _line(first_block, 0)
    second_raw, _ = _line(first_block, after_first)
    first = first_raw.decode("utf-8-sig", errors="replace")
    sep = opts.separator or max((",", ";", "\t"), key=first.count)
    head = _split(first, sep)
    has_header = looks_like_header(head) if opts.has_header is None else opts.has_header
    defaults: dict[str, Any] = {}
    names: list[str] | None = list(opts.names) if opts.names else None
    if has_header:
        names = names or head
        if after_first < len(first_block):
            row = _split(second_raw.decode("utf-8", errors="replace"), sep)
            if len(row) == len(names) + 1 and len(row) > 1 and _TIME_OF_DAY.match(row[1]) \
                    and not any(norm(n) in ALIASES["time"] for n in names):
                names = [names[0], "time", *names[1:]]  # backtrader files: Date,Time under "Date"
    elif names is None:
        names, defaults = _headerless_layout(path, head)
    names = [n if n else "unnamed_0" for n in names]
    rest = memoryview(first_block)[after_first if has_header else 0:]
    return CsvChunks(names, 2 if has_header else 1, defaults,
                     _tables(itertools.chain([rest], blocks), names, sep, path))


def _tables(blocks: Iterable[bytes | memoryview], names: list[str], sep: str,
            path: Path) -> Iterator[pl.DataFrame]:
    """The string table of each block of text that has rows; ``no data rows`` when none has."""
    rows = 0
    for block in blocks:
        if not _VISIBLE.search(block):
            continue
        try:
            df = pl.read_csv(
                io.BytesIO(block), has_header=False, new_columns=names, separator=sep,
                infer_schema=False, truncate_ragged_lines=False, quote_char='"',
            )
        except pl.exceptions.SchemaError as exc:
            raise DataFormatError(f"{path}: rows do not have the {len(names)} columns of the header "
                                  f"({', '.join(names)}); is the file ragged or not CSV? "
                                  f"({str(exc).splitlines()[0]})") from exc
        except pl.exceptions.PolarsError as exc:
            first = str(exc).splitlines()[0]
            advice = "; save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)" if "utf-8" in first.lower() else ""
            raise DataFormatError(f"{path}: malformed CSV ({first}){advice}") from exc
        if df.width != len(names):
            raise DataFormatError(f"{path}: expected {len(names)} columns ({', '.join(names)}), "
                                  f"found {df.width}")
        rows += df.height
        if df.height:
            yield df
    if rows == 0:
        raise DataFormatError(f"{path}: no data rows")


def _line(data: bytes, start: int) -> tuple[bytes, int]:
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
    """A Parquet file as it is typed, after its footer shows it fits the same ratio guard as gzip.

    The decoded size (rows x column widths, from the footer) may be at most ``MAX_GZIP_RATIO`` times
    the file's size beyond ``GZIP_FREE_BYTES``: run-length and dictionary encoding let a small file
    claim billions of rows, which would otherwise be decoded before any check.
    """
    import pyarrow as pa  # only Parquet reads pay for importing it
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(path)
        width = sum(_decoded_width(meta.schema.column(i).physical_type) for i in range(meta.num_columns))
        decoded, size = meta.num_rows * width, path.stat().st_size
        if decoded > max(GZIP_FREE_BYTES, MAX_GZIP_RATIO * size):
            raise DataFormatError(f"{path}: {size:,} bytes claim {meta.num_rows:,} rows (about {decoded:,} "
                                  f"bytes decoded, over {MAX_GZIP_RATIO}x), a decompression bomb? split "
                                  "it into smaller files if it is genuine")
        with quiet_panics():
            df = pl.scan_parquet(path).collect()
    except (OSError, pa.ArrowException, pl.exceptions.ComputeError, pl.exceptions.PanicException) as exc:
        raise DataFormatError(f"{path}: cannot read Parquet ({str(exc).splitlines()[0]})") from exc
    if df.height == 0:
        raise DataFormatError(f"{path}: no data rows")
    return df


def _decoded_width(physical_type: str) -> int:
    """Bytes a value of a Parquet physical type takes once decoded (strings counted at 8)."""
    return {"BOOLEAN": 1, "INT32": 4, "FLOAT": 4, "INT96": 12}.get(physical_type, 8)
