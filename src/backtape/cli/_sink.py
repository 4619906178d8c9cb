"""Rows written to a Parquet or CSV file as they come, window by window, so memory stays bounded.

The file is written under a temporary name beside the target and renamed into place when complete,
so an interrupted or failed export leaves no half-written file.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import polars as pl
import typer

from ._common import not_a_folder

SUFFIXES = (".parquet", ".csv")


def check_output(path: Path) -> None:
    """Refuse an output file whose extension names no supported format."""
    if path.suffix.lower() not in SUFFIXES:
        raise typer.BadParameter(
            f"{path}: unsupported extension {path.suffix or '(none)'!r}; use .parquet or .csv",
            param_hint="'--output'",
        )
    not_a_folder(path, "'--output'")


class FrameSink:
    """``with FrameSink(path) as sink: sink.write(frame)`` for each part; ``rows`` counts them."""

    def __init__(self, path: Path) -> None:
        check_output(path)
        self.path = path
        self.rows = 0
        self._tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
        self._parquet = path.suffix.lower() == ".parquet"
        self._writer: Any = None  # pyarrow.parquet.ParquetWriter once the first part is known
        self._csv: IO[bytes] | None = None

    def __enter__(self) -> FrameSink:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, frame: pl.DataFrame) -> None:
        """Append ``frame`` (every part has the first part's columns)."""
        if frame.is_empty():
            return
        if self._parquet:
            import pyarrow.parquet as pq

            table = frame.to_arrow()
            if self._writer is None:
                self._writer = pq.ParquetWriter(self._tmp, table.schema, compression="zstd")
            self._writer.write_table(table.cast(self._writer.schema))
        else:
            if self._csv is None:
                self._csv = self._tmp.open("wb")
            frame.write_csv(self._csv, include_header=self.rows == 0)
        self.rows += frame.height

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for handle in (self._writer, self._csv):
            if handle is not None:
                handle.close()
        try:
            if exc_type is None and self.rows:
                os.replace(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)  # nothing half-made is left behind
