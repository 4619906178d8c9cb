"""Corporate actions on read, checked against a vendor's adjusted prices (QUANDL WIKI, 2014)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from backtape._time import NS_PER_SECOND, to_ns
from backtape.calendars import get_calendar
from backtape.portal import DataPortal
from backtape.schema import conform

DATA = Path(__file__).parent / "data" / "QUANDL_WIKI_sample_1d_2014_multi_ticker_adj.csv"
SPLIT_OPEN = to_ns("2014-06-09T13:30Z")  # AAPL 7:1 ex-date session open


@pytest.fixture(scope="module")
def vendor() -> pl.DataFrame:
    """AAPL raw daily bars stamped with XNYS session open/close, beside the vendor's adjusted columns."""
    cal = get_calendar("XNYS")
    raw = pl.read_csv(DATA, try_parse_dates=True).filter(pl.col("ticker") == "AAPL")
    labels = raw["date"].cast(pl.Datetime("ns")).cast(pl.Int64).to_numpy()
    idx = np.searchsorted(cal.labels, labels)
    assert (cal.labels[idx] == labels).all()
    return raw.with_columns(ts=pl.Series(cal.opens[idx]), ts_end=pl.Series(cal.closes[idx]))


@pytest.fixture(scope="module")
def source(vendor, memory_source):
    bars = conform(vendor.select("ts", "ts_end", "open", "high", "low", "close", "volume",
                                 symbol=pl.lit("AAPL")), "bars")
    splits = vendor.filter(pl.col("split_ratio") != 1).select(
        "ts", action=pl.lit("split"), value="split_ratio")
    divs = vendor.filter(pl.col("ex-dividend") != 0).select(
        "ts", action=pl.lit("dividend"), value="ex-dividend")
    actions = conform(pl.concat([splits, divs]).with_columns(symbol=pl.lit("AAPL")), "actions")
    return memory_source(bars, actions=actions, frequencies=("1d",))


def _portal(source, mode: str) -> DataPortal:
    portal = DataPortal(source, adjustment=mode)
    portal.load_data("2014-01-02", "2015-01-01", ["AAPL"])
    return portal


def _row(vendor: pl.DataFrame, date: str) -> dict:
    return vendor.filter(pl.col("date") == pl.lit(date).str.to_date()).row(0, named=True)


def test_split_is_invisible_before_its_ex_date(source) -> None:
    portal = _portal(source, "split")
    portal.set_clock(SPLIT_OPEN - NS_PER_SECOND)
    window = portal.get_history_window("AAPL", None, 2, "1d", "close")[:, 0]
    assert window.tolist() == [647.35, 645.57]  # 06-05 and 06-06, raw
    assert portal.get_spot_value("AAPL", "volume") == 12497800.0


def test_split_adjusts_earlier_bars_from_its_ex_date_on(source, vendor) -> None:
    portal = _portal(source, "split")
    portal.set_clock(SPLIT_OPEN)  # the split is visible at the ex-date open; 06-09's bar is not yet
    window = portal.get_history_window("AAPL", None, 2, "1d", "close")[:, 0]
    np.testing.assert_allclose(window, [647.35 / 7, 645.57 / 7])
    portal.set_clock("2014-06-10T20:00Z")
    closes = portal.get_history_window("AAPL", None, 3, "1d", "close")[:, 0]
    volumes = portal.get_history_window("AAPL", None, 3, "1d", "volume")[:, 0]
    before, on = _row(vendor, "2014-06-06"), _row(vendor, "2014-06-09")
    # no dividend between 06-06 and 06-09: the vendor's ratio is split-only comparable
    assert closes[0] / closes[1] == pytest.approx(before["adj_close"] / on["adj_close"], rel=1e-9)
    assert volumes[0] == before["adj_volume"]
    assert closes[1] == on["close"]


def test_raw_mode_never_adjusts(source) -> None:
    portal = _portal(source, "raw")
    portal.set_clock("2014-12-31")
    portal_close = portal.get_history_window("AAPL", "2014-06-10", 2, "1d", "close")[:, 0]
    assert portal_close.tolist() == [645.57, 93.7]


def test_total_return_back_adjusts_dividends_like_the_vendor(source, vendor) -> None:
    portal = _portal(source, "total_return")
    portal.set_clock("2014-08-07T20:00:01Z")
    window = portal.get_history_window("AAPL", None, 3, "1d", "close")[:, 0]
    before, on = _row(vendor, "2014-08-06"), _row(vendor, "2014-08-07")
    assert window[1] == pytest.approx(before["close"] * (1 - 0.47 / before["close"]))
    assert window[1] / window[2] == pytest.approx(before["adj_close"] / on["adj_close"], rel=1e-6)
    # seen from before the ex-date the dividend is invisible
    portal.set_clock(to_ns("2014-08-07T13:30Z") - 1)
    assert portal.get_spot_value("AAPL", "close") == before["close"]
    # the 06-06 close seen from year end carries the split and the two later dividends
    portal.set_clock("2014-12-31T21:00Z")
    june = portal.get_history_window("AAPL", "2014-06-06T20:00Z", 1, "1d", "close")[0, 0]
    nov = _row(vendor, "2014-11-05")["close"]
    aug = before["close"]
    assert june == pytest.approx(645.57 / 7 * (1 - 0.47 / aug) * (1 - 0.47 / nov))
    visible = portal.get_corporate_actions("AAPL")
    assert visible["action"].to_list() == ["dividend", "dividend", "split", "dividend", "dividend"]
