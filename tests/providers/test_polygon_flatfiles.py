"""Polygon flat files (CSV.gz on S3) read with real boto3 calls against moto's S3 server."""
# ruff: noqa: E501  (CSV fixtures keep the providers' exact header lines)

from __future__ import annotations

import gzip

import boto3
import pytest

from backtape.calendars import get_calendar
from backtape.errors import ProviderError, UnsupportedDataError
from backtape.sources import PolygonDataSource

pytestmark = pytest.mark.network_local

S3_ID, S3_SECRET = "AKIAFLATFILETEST01", "flat/Secret+Key/0123456789abcdefghij"

MINUTE_CSV = """ticker,volume,open,close,high,low,window_start,transactions
AAPL,4930,200.29,200.5,200.63,200.29,1704292200000000000,129
AAPL,1815.25,200.39,200.34,200.61,200.34,1704292260000000000,57
MSFT,2036584.149027,370.1,370.2,370.3,370.0,1704292200000000000,812
"""
DAY_CSV = """ticker,volume,open,close,high,low,window_start,transactions
AAPL,58414460.5,184.22,184.25,185.88,183.43,1704258000000000000,656400
MSFT,21115320,373.86,370.6,375.9,369.4,1704258000000000000,301001
"""
TRADES_CSV = """ticker,conditions,correction,exchange,id,participant_timestamp,price,sequence_number,sip_timestamp,size,tape,trf_id,trf_timestamp
AAPL,"12,37",0,4,52983525159748,1704292200494482943,184.790000,3478,1704292200799308985,4.000000,3,201,1704292200799271495
AAPL,,0,11,52983525159749,1704292200494482999,184.800000,3479,1704292200799308985,0.5,3,,0
MSFT,37,0,4,7,1704292201000000001,370.1,12,1704292201000000003,1,3,,0
"""
QUOTES_CSV = """ticker,ask_exchange,ask_price,ask_size,bid_exchange,bid_price,bid_size,conditions,indicators,participant_timestamp,sequence_number,sip_timestamp,tape,trf_timestamp
AAPL,12,184.8,2,11,184.7,3,"1,81",,1704292200626456646,174,1704292200626915885,3,0
"""


@pytest.fixture(scope="module")
def s3_url():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=url, aws_access_key_id=S3_ID, aws_secret_access_key=S3_SECRET,
                      region_name="us-east-1")
    s3.create_bucket(Bucket="flatfiles")
    for dataset, text in (("minute_aggs_v1", MINUTE_CSV), ("day_aggs_v1", DAY_CSV),
                          ("trades_v1", TRADES_CSV), ("quotes_v1", QUOTES_CSV)):
        s3.put_object(Bucket="flatfiles", Key=f"us_stocks_sip/{dataset}/2024/01/2024-01-03.csv.gz",
                      Body=gzip.compress(text.encode()))
    yield url
    server.stop()


def make(url: str) -> PolygonDataSource:
    return PolygonDataSource(api_key="pk_unused_rest_key", flat_files=True, s3_endpoint=url,
                             s3_access_key_id=S3_ID, s3_secret_access_key=S3_SECRET)


def test_minute_bars_with_fractional_volume(s3_url):
    bars = make(s3_url).fetch_sync(["AAPL", "MSFT"], "2024-01-03", "2024-01-04", "1min")
    assert bars["symbol"].to_list() == ["AAPL", "AAPL", "MSFT"]
    assert bars["volume"].to_list() == [4930.0, 1815.25, 2036584.149027]
    assert bars["ts"].dt.epoch("ns").to_list() == [1704292200000000000, 1704292260000000000,
                                                   1704292200000000000]
    assert bars["transactions"].to_list() == [129, 57, 812]


def test_day_bars_map_to_the_session(s3_url):
    bars = make(s3_url).fetch_sync(["AAPL"], "2024-01-03", "2024-01-04", "1d")
    session = get_calendar("XNYS").sessions("2024-01-03", "2024-01-04")
    assert bars["ts"].to_list() == session["open"].to_list()
    assert bars["ts_end"].to_list() == session["close"].to_list()
    assert bars["volume"].to_list() == [58414460.5]


def test_trades_quoted_conditions_and_exact_ns(s3_url):
    trades = make(s3_url).fetch_kind_sync("trades", ["AAPL"], "2024-01-03", "2024-01-04")
    assert trades["ts"].dt.epoch("ns").to_list() == [1704292200799308985, 1704292200799308985]
    assert trades["conditions"].to_list() == ["12,37", None]
    assert trades["size"].to_list() == [4.0, 0.5]
    assert trades["id"].to_list() == ["52983525159748", "52983525159749"]


def test_quotes(s3_url):
    quotes = make(s3_url).fetch_kind_sync("quotes", ["AAPL"], "2024-01-03", "2024-01-04")
    assert quotes.select("bid", "ask", "bid_size", "ask_size", "bid_exchange").row(0) == (
        184.7, 184.8, 3.0, 2.0, "11")
    assert quotes["ts"].dt.epoch("ns")[0] == 1704292200626915885


def test_missing_day_file_is_an_error_not_a_gap(s3_url):
    with pytest.raises(ProviderError, match=r"2024-01-04\.csv\.gz at .* does not exist") as info:
        make(s3_url).fetch_sync(["AAPL"], "2024-01-03", "2024-01-05", "1min")
    assert S3_SECRET not in str(info.value)


def test_unsupported_flat_file_frequency(s3_url):
    with pytest.raises(UnsupportedDataError, match="1min and 1d"):
        make(s3_url).fetch_sync(["AAPL"], "2024-01-03", "2024-01-04", "5min")


def test_metadata_has_no_secrets(s3_url):
    meta = str(make(s3_url).get_metadata())
    assert S3_SECRET not in meta and S3_ID not in meta and "pk_unused" not in meta
