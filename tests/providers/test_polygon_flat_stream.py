"""Polygon flat files are streamed: a market-wide day file is decompressed, parsed and filtered block
by block, never held whole, and the result equals reading the whole file at once."""

from __future__ import annotations

import gzip
import io
import tracemalloc

import boto3
import numpy as np
import polars as pl
import pytest

from backtape.errors import ProviderError
from backtape.sources import PolygonDataSource
from backtape.sources.polygon import filter_csv_gz

pytestmark = pytest.mark.network_local

S3_ID, S3_SECRET = "AKIASTREAMTEST0001", "stream/Secret+Key/abcdefghij0123456789"
DAY = "2024-01-03"
FIRST_MINUTE_NS = 1704272400000000000  # 04:00 New York
N_TICKERS, N_MINUTES = 200, 500
WANTED = ["AAPL", "MSFT", "ZZZZ"]  # ZZZZ trades nowhere that day
BUCKET = "flatfiles-stream"  # moto servers of one process share their buckets: keep ours apart


def _market_wide_day() -> pl.DataFrame:
    """Minute aggregates of many tickers, sorted by ticker like the real files, every value as text."""
    tickers = sorted({f"T{i:04d}" for i in range(N_TICKERS - 2)} | {"AAPL", "MSFT"})
    rng = np.random.default_rng(7)
    n = len(tickers) * N_MINUTES
    price = np.round(rng.uniform(10, 500, n), 4)
    return pl.DataFrame({
        "ticker": np.repeat(tickers, N_MINUTES),
        "volume": np.round(rng.uniform(1, 5000, n), 2),  # fractional, as in the flat files
        "open": price, "close": price + 0.01, "high": price + 0.05, "low": price - 0.05,
        "window_start": np.tile(FIRST_MINUTE_NS + np.arange(N_MINUTES, dtype=np.int64) * 60 * 10**9,
                                len(tickers)),
        "transactions": rng.integers(1, 900, n),
    })


@pytest.fixture(scope="module")
def day_file() -> tuple[bytes, bytes]:
    """(CSV text, gzip of it) of one market-wide minute file."""
    text = _market_wide_day().write_csv().encode()
    return text, gzip.compress(text, compresslevel=1)


@pytest.fixture(scope="module")
def s3_url(day_file):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=url, aws_access_key_id=S3_ID, aws_secret_access_key=S3_SECRET,
                      region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"us_stocks_sip/minute_aggs_v1/2024/01/{DAY}.csv.gz", Body=day_file[1])
    s3.put_object(Bucket=BUCKET, Key="us_stocks_sip/minute_aggs_v1/2024/01/2024-01-04.csv.gz",
                  Body=day_file[1][: len(day_file[1]) // 2])  # cut off in the middle of the upload
    yield url
    server.stop()


def make(url: str, **kw) -> PolygonDataSource:
    return PolygonDataSource(api_key="pk_unused_rest_key", flat_files=True, s3_endpoint=url,
                             s3_bucket=BUCKET, s3_access_key_id=S3_ID, s3_secret_access_key=S3_SECRET, **kw)


def test_streamed_day_equals_whole_file_read(s3_url, day_file):
    whole = pl.read_csv(io.BytesIO(day_file[0]), infer_schema=False).filter(pl.col("ticker").is_in(WANTED))
    bars = make(s3_url, flat_block_bytes=1024 * 1024).fetch_sync(WANTED, DAY, "2024-01-04", "1min")
    assert len(day_file[0]) > 4 * 1024 * 1024  # several blocks
    assert bars.height == whole.height == 2 * N_MINUTES
    assert bars["symbol"].to_list() == whole["ticker"].to_list()
    assert bars["ts"].dt.epoch("ns").to_list() == whole["window_start"].cast(pl.Int64).to_list()
    for ours, theirs in (("open", "open"), ("high", "high"), ("low", "low"), ("close", "close"),
                         ("volume", "volume")):
        assert bars[ours].to_list() == whole[theirs].cast(pl.Float64).to_list()
    assert bars["transactions"].to_list() == whole["transactions"].cast(pl.Int64).to_list()


class _CountingStream(io.RawIOBase):
    """A read-only byte stream that records the size of every read, like an S3 body."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.reads: list[int] = []

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._data.read(size)
        self.reads.append(len(chunk))
        return chunk


def test_reader_holds_one_block_not_the_file(day_file):
    text, packed = day_file
    filter_csv_gz(io.BytesIO(gzip.compress(b"ticker\nX\n")), "ticker", ["X"])  # imports done before tracing
    stream = _CountingStream(packed)
    tracemalloc.start()
    try:
        kept = filter_csv_gz(stream, "ticker", WANTED, block_bytes=64 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kept.height == 2 * N_MINUTES
    assert sum(stream.reads) == len(packed)  # the whole file went through...
    assert len(stream.reads) > 10 and max(stream.reads) <= 1024 * 1024  # ...in small reads
    assert len(text) > 5 * 1024 * 1024
    assert peak < len(text) / 5  # two 64 KiB blocks and the kept rows; reading it whole needs len(text)


def test_truncated_day_file_is_an_error(s3_url):
    with pytest.raises(ProviderError, match=r"2024-01-04\.csv\.gz .* is not a valid CSV\.gz") as info:
        make(s3_url, flat_block_bytes=64 * 1024).fetch_sync(["AAPL"], "2024-01-04", "2024-01-05", "1min")
    assert S3_SECRET not in str(info.value) and S3_ID not in str(info.value)


def test_header_only_file_has_no_rows():
    packed = gzip.compress(b"ticker,volume,open,close,high,low,window_start,transactions\n")
    empty = filter_csv_gz(io.BytesIO(packed), "ticker", ["AAPL"])
    assert empty.height == 0 and empty.columns[0] == "ticker"


def test_block_edges_keep_quoted_fields_and_last_line():
    text = b'ticker,conditions,size\nAAPL,"12,37",0.5\nMSFT,,1\nAAPL,4,2'  # no final line break
    rows = filter_csv_gz(io.BytesIO(gzip.compress(text)), "ticker", ["AAPL"], block_bytes=7)
    assert rows.rows() == [("AAPL", "12,37", "0.5"), ("AAPL", "4", "2")]
