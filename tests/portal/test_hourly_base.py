"""An hourly bar file backtests at every frequency its hours aggregate into (defect: the portal knew
only 1-minute and daily bases and refused 1h files at any frequency)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from backtape import run_backtest
from backtape.errors import UnsupportedDataError
from backtape.portal.requirements import base_frequency
from backtape.sources.base import SourceCapabilities
from backtape.sources.files import CSVDataSource
from backtape.timeframes import Timeframe


@pytest.fixture
def hourly_csv(tmp_path: Path) -> Path:
    hours = 24 * 150
    ts = pl.datetime_range(pl.datetime(2021, 1, 1), pl.datetime(2021, 1, 1) + pl.duration(hours=hours - 1),
                           "1h", eager=True)
    close = 100 + np.cumsum(np.sin(np.arange(hours) / 40.0))
    frame = pl.DataFrame({"ts": ts, "open": close, "high": close + 0.5, "low": close - 0.5, "close": close,
                          "volume": 1000.0})
    path = tmp_path / "XYZ_1h.csv"
    frame.with_columns(pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S")).write_csv(path)
    return path


def tf(text: str) -> Timeframe:
    return Timeframe.parse(text)


def test_base_is_the_coarsest_served_size_that_builds_every_need() -> None:
    caps = SourceCapabilities(frequencies=("1h",))
    for need in ("1h", "4h", "1d", "1w", "1mo"):
        assert base_frequency([tf(need)], caps, "csv") == tf("1h")
    both = SourceCapabilities(frequencies=("1min", "1d"))
    assert base_frequency([tf("1d"), tf("1w")], both, "x") == tf("1d")
    assert base_frequency([tf("1d"), tf("5min")], both, "x") == tf("1min")
    with pytest.raises(UnsupportedDataError, match="cannot make 5min bars from 1h bars"):
        base_frequency([tf("5min")], caps, "csv")
    with pytest.raises(UnsupportedDataError, match="cannot make 90min bars from 1h bars"):
        base_frequency([tf("90min")], caps, "csv")


@pytest.mark.parametrize("frequency", ["1h", "1d", "1w", "1mo"])
def test_hourly_file_backtests_at_coarser_frequencies(hourly_csv: Path, frequency: str) -> None:
    source = CSVDataSource(hourly_csv, calendar="24/7", timezone="UTC")
    result = run_backtest("sma_crossover", "XYZ", "2021-02-01", "2021-05-01", frequency, source=source,
                          params={"fast": 2, "slow": 3})
    assert result.equity.height > 0
    assert result.equity["ts"].max() <= dt.datetime(2021, 5, 1, tzinfo=dt.UTC)


def test_hourly_file_from_the_cli(hourly_csv: Path) -> None:
    from backtape.cli.app import app

    args = ["backtest", "sma_crossover", "-s", "XYZ", "--source", "csv", "-o", f"path={hourly_csv}",
            "-o", "calendar=24/7", "-o", "timezone=UTC", "--start", "2021-02-01", "--end", "2021-05-01",
            "-p", "fast=2", "-p", "slow=3", "--frequency"]
    runner = CliRunner()
    ok = runner.invoke(app, [*args, "1d"])
    assert ok.exit_code == 0, ok.stderr
    bad = runner.invoke(app, [*args, "5min"])
    assert bad.exit_code != 0
    assert "cannot make 5min bars from 1h bars" in bad.stderr
