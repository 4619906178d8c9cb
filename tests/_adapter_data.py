"""The real data files of the adapter parity tests, as backtape reads them and as peers read them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from backtape.sources.sample import sample_data_dir

DATA = Path(__file__).parent / "data"
GOOG = DATA / "GOOG_1d_2004-08-19_2013-03-01.csv"
BTC = DATA / "BTC-PERP_1m_2021-12-31_2022-02-01.csv"
#: the 1-minute window the minute tests run on (a week of BTC-PERP)
BTC_RANGE = ("2022-01-03", "2022-01-08")


def goog_pandas() -> pd.DataFrame:
    """GOOG as the peers read it themselves: the CSV straight into pandas."""
    return pd.read_csv(GOOG, index_col=0, parse_dates=True)


def btc_pandas() -> pd.DataFrame:
    """The BTC-PERP minute window of ``BTC_RANGE`` read straight from the CSV."""
    df = pd.read_csv(BTC, index_col=0, parse_dates=True)
    df = df.loc[(df.index >= BTC_RANGE[0]) & (df.index < BTC_RANGE[1])]
    return df.rename(columns=str.capitalize)


def daily_pandas(symbol: str) -> pd.DataFrame:
    """A shipped daily file (split-adjusted prices) straight into pandas."""
    path = sample_data_dir() / f"{symbol}_1d_2012-2014_with_div_split.csv"
    df = pd.read_csv(path, index_col=0, parse_dates=True)
    return df.rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]
