"""Bar files without a volume column (FX, indices): null volume, validated, aggregated, backtested."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import backtape
from backtape.cli.app import app
from backtape.errors import DataValidationError
from backtape.sources.files import CSVDataSource, read_bars
from backtape.validation import validate_bars

DATA = Path(__file__).parents[1] / "data"
EURUSD = DATA / "EURUSD_1h_2017-04-19_2018-02-07.csv"
EURO_FUTURE = DATA / "6EH4_CME_EURfut_1m_2024-01.csv.gz"


def without_volume(text: str, path: Path) -> Path:
    """``text`` (a real CSV whose last column is the volume) written to ``path`` without that column."""
    path.write_text("".join(line.rsplit(",", 1)[0] + "\n" for line in text.splitlines()))
    return path


@pytest.fixture
def fx_hourly(tmp_path: Path) -> Path:
    return without_volume(EURUSD.read_text(), tmp_path / "EURUSD_1h.csv")


@pytest.fixture
def euro_minutes(tmp_path: Path) -> Path:
    return without_volume(gzip.decompress(EURO_FUTURE.read_bytes()).decode(), tmp_path / "6EH4_1m.csv")


def read_quietly(path: Path, **options: object) -> pl.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", backtape.DataQualityWarning)
        return read_bars(path, on_invalid="drop", **options)


def test_a_real_fx_file_without_volume_reads_validates_and_aggregates(fx_hourly: Path) -> None:
    assert "Volume" not in fx_hourly.read_text().splitlines()[0]
    bars = read_quietly(fx_hourly, calendar="FX", timezone="UTC")
    with_volume = read_quietly(EURUSD, calendar="FX", timezone="UTC")
    assert bars.height == with_volume.height == 4998  # the two bars at Friday 17:00 New York dropped
    assert bars.schema["volume"] == pl.Float64 and bars["volume"].null_count() == bars.height
    assert validate_bars(bars, calendar="FX").ok
    daily = backtape.aggregate(bars, "1d", calendar="FX")
    reference = backtape.aggregate(with_volume, "1d", calendar="FX")
    assert daily.height == reference.height > 200
    assert daily["volume"].null_count() == daily.height  # unknown, not 0
    assert daily["vwap"].null_count() == daily.height
    assert daily.select("ts", "open", "high", "low", "close").equals(
        reference.select("ts", "open", "high", "low", "close"))
    assert validate_bars(daily, calendar="FX").ok
    result = CliRunner().invoke(app, ["validate", str(fx_hourly), "-o", "calendar=FX", "-o", "timezone=UTC"])
    assert "outside_session 2" in result.stdout and "missing_value" not in result.stdout


def test_a_hole_in_a_symbols_volumes_is_still_missing(tmp_path: Path) -> None:
    path = tmp_path / "X.csv"
    path.write_text("date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10\n2024-01-03,1,2,0.5,1.5,\n")
    with pytest.raises(DataValidationError,
                       match=r"line 3 .*missing_value \(null, NaN or infinite in volume\)"):
        read_bars(path)


def test_minute_bars_without_volume_aggregate_and_backtest_like_the_original(euro_minutes: Path) -> None:
    bars = read_quietly(euro_minutes, symbol="6EH4", calendar="CMES")
    hourly = backtape.aggregate(bars, "1h", calendar="CMES")
    assert hourly.height > 400 and hourly["volume"].null_count() == hourly.height
    options = {"calendar": "CMES", "on_invalid": "drop", "symbol": "6EH4"}
    runs = []
    for path in (euro_minutes, EURO_FUTURE):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", backtape.DataQualityWarning)
            src = CSVDataSource(path, **options)
            runs.append(backtape.run_backtest("sma_crossover", "6EH4", "2024-01-02", "2024-02-01", "1h",
                                              source=src, cash=100_000, fractional=True,
                                              params={"fast": 5, "slow": 20}))
    volumeless, original = runs
    assert volumeless.trades.height > 5
    assert volumeless.trades.equals(original.trades)  # sma_crossover never reads volume
    assert volumeless.equity.equals(original.equity)
