"""Local files as a data source: CSV (plain or gzip) and Parquet, one file or a folder of files.

A file is read once (a CSV block by block, so memory is the typed result plus a few blocks),
normalised at the edge into the canonical schemas of ``backtape.schema`` and kept in memory. The
work is split by job, each module doing one:

=============  ===================================================================================
module         job
=============  ===================================================================================
``options``    the reading options (``FileOptions``; every option and its meaning)
``reading``    bytes in blocks and sniffing: gzip, separator, header or headerless layout; CSV, Parquet
``layout``     vendor columns mapped to canonical roles, the kind guessed, numbers read
``timestamps`` text/epoch timestamps, time zones (the calendar's for naive intraday times), bar
               size, calendar sessions of daily rows
``actions``    dividends and splits in bar files; raw prices restored from split-adjusted ones
``screen``     validation on load in file order, with structured file rows and lines
``parse``      the pipeline of one file (``parse_file``)
``source``     ``CSVDataSource``/``ParquetDataSource``, ``read_bars`` and ``read_ticks``
=============  ===================================================================================

Registry names: ``csv`` and ``parquet`` (``get_source("csv", path="~/data/daily")``). Paths may
use ``~`` and ``$VARS``.
"""

from __future__ import annotations

from .options import FileOptions
from .parse import ParsedFile, parse_file, parse_frame
from .screen import PROBLEM_LIMIT
from .source import (
    CSVDataSource,
    FileDataSource,
    ParquetDataSource,
    aggregate_to,
    read_bars,
    read_ticks,
    source_for,
)

__all__ = [
    "PROBLEM_LIMIT",
    "CSVDataSource",
    "FileDataSource",
    "FileOptions",
    "ParquetDataSource",
    "ParsedFile",
    "aggregate_to",
    "parse_file",
    "parse_frame",
    "read_bars",
    "read_ticks",
    "source_for",
]
