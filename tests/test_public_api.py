"""Every name the package promises is importable, and the issue-given names exist."""

from __future__ import annotations

import subprocess
import sys

import backtape


def test_every_exported_name_resolves() -> None:
    for name in backtape.__all__:
        assert getattr(backtape, name) is not None, name


def test_documented_entry_points() -> None:
    from backtape.calculations import CalculationAdapter
    from backtape.sources import (
        AlpacaDataSource,
        AlphaVantageDataSource,
        CCXTDataSource,
        CSVDataSource,
        DataSource,
        DataSourceRegistry,
        ParquetDataSource,
        PolygonDataSource,
        SampleDataSource,
        SyntheticDataSource,
        YahooDataSource,
    )
    from backtape.ticks import classify_trades, cumulative_delta, merge_streams

    classes = (AlpacaDataSource, AlphaVantageDataSource, CCXTDataSource, CSVDataSource, ParquetDataSource,
               PolygonDataSource, SampleDataSource, SyntheticDataSource, YahooDataSource)
    assert all(issubclass(c, DataSource) for c in classes)
    assert DataSourceRegistry and CalculationAdapter
    assert callable(classify_trades) and callable(cumulative_delta) and callable(merge_streams)
    assert callable(backtape.run_backtest) and callable(backtape.aggregate) and callable(backtape.read_bars)


def test_import_is_light() -> None:
    """`import backtape` does not pull in numba, SQLAlchemy or httpx (they load on first use)."""
    heavy = "('numba', 'sqlalchemy', 'httpx')"
    code = f"import sys, backtape; print(','.join(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
