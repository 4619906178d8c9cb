"""``data show``, ``validate``, ``sources`` and ``demo`` against the real sample and small files."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from backtape.cli._common import parse_options
from backtape.cli.app import app
from backtape.errors import DataValidationError
from backtape.sources import DataSource, SampleDataSource, registry

runner = CliRunner()
SPLIT_WEEK = ["--start", "2014-06-04", "--end", "2014-06-13"]

GOOD_CSV = """date,open,high,low,close,volume
2024-01-02,10,11,9,10.5,1000
2024-01-03,10.5,12,10,11,1200
2024-01-04,11,11.5,10.2,10.4,900
"""
BAD_CSV = """date,open,high,low,close,volume
2024-01-02,10,11,9,10.5,1000
2024-01-03,10.5,10.6,10,11,1200
2024-01-04,11,11.5,10.2,10.4,-5
"""


def error_line(result) -> str:
    (line,) = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert line.startswith("error: ") and "Traceback" not in result.stderr
    return line


def test_data_show_prints_the_library_rows() -> None:
    expected = SampleDataSource().fetch_sync("AAPL", "2014-06-04", "2014-06-13", "1d")
    result = runner.invoke(app, ["data", "show", "AAPL", "--source", "sample", *SPLIT_WEEK])
    assert result.exit_code == 0, result.stderr
    assert f"{expected.height} rows" in result.stdout
    assert "2014-06-09 13:30" in result.stdout  # the session open, in UTC


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_data_show_output_files(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"btc{suffix}"
    args = ["data", "show", "BTC-PERP", "-s", "sample", "-f", "5min", "--start", "2022-01-03",
            "--end", "2022-01-04", "--output", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    expected = SampleDataSource().fetch_sync("BTC-PERP", "2022-01-03", "2022-01-04", "5min")
    written = pl.read_parquet(out) if suffix == ".parquet" else pl.read_csv(out)
    assert written.height == expected.height == 288
    if suffix == ".parquet":
        assert written.equals(expected)
    assert f"wrote {expected.height} rows" in result.stderr


def test_data_show_uses_the_configured_default_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKTAPE_DATA__DEFAULT_SOURCE", "synthetic")
    result = runner.invoke(app, ["data", "show", "ANY", "--start", "2024-01-02", "--end", "2024-01-05"])
    assert result.exit_code == 0, result.stderr
    assert "source synthetic" in result.stdout


def test_data_show_kinds_and_local_files(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "show", "AAPL", "-s", "sample", "-k", "actions",
                                 "--start", "2014-01-01", "--end", "2015-01-01"])
    assert result.exit_code == 0 and "split" in result.stdout
    path = tmp_path / "XYZ.csv"
    path.write_text(GOOD_CSV, encoding="utf-8")
    result = runner.invoke(app, ["data", "show", "XYZ", "-s", "csv", "--path", str(path),
                                 "-o", "calendar=XNYS", "--start", "2024-01-01", "--end", "2024-02-01"])
    assert result.exit_code == 0, result.stderr
    assert "3 rows" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-s", "nope"], "unknown data source 'nope'"),
        (["-s", "sample", "-f", "1m"], "ambiguous"),
        (["-s", "sample", "--start", "2014-06-13", "--end", "2014-06-04"], "impossible range"),
        (["-s", "sample", "--start", "2001-01-01", "--end", "2001-02-01"], "no bars 1d for AAPL"),
        (["-s", "sample", "--output", "x.xlsx"], "unsupported extension '.xlsx'"),
        (["-s", "sample", "--start", "yesterday"], "cannot parse 'yesterday'"),
        (["-s", "sample", "-o", "novalue"], "write NAME=VALUE"),
    ],
)
def test_data_show_errors_are_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["data", "show", "AAPL", *SPLIT_WEEK, *args])
    assert result.exit_code == 2
    assert message in error_line(result)


def test_unknown_symbol_is_named() -> None:
    result = runner.invoke(app, ["data", "show", "NOPE", "-s", "sample", *SPLIT_WEEK])
    assert result.exit_code == 2
    assert "'NOPE'" in error_line(result)


class _Broken(DataSource):
    name = "broken"

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def fetch(self, symbols, start, end, frequency="1d"):
        raise self.error

    def get_metadata(self):
        raise NotImplementedError


def _register_broken(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    """A source named ``broken`` whose fetches raise ``error``, registered for one test only."""
    monkeypatch.setattr(registry, "_specs", dict(registry._specs))  # the original comes back after
    registry.register("broken", lambda **options: _Broken(error))


def test_unexpected_errors_suggest_verbose(monkeypatch: pytest.MonkeyPatch) -> None:
    _register_broken(monkeypatch, RuntimeError("internal bug"))
    result = runner.invoke(app, ["data", "show", "X", "-s", "broken", *SPLIT_WEEK])
    assert result.exit_code == 2
    line = error_line(result)
    assert "unexpected RuntimeError: internal bug" in line and "--verbose" in line
    result = runner.invoke(app, ["--verbose", "data", "show", "X", "-s", "broken", *SPLIT_WEEK])
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert "raise self.error" in result.stderr and "RuntimeError: internal bug" in result.stderr


def test_multi_line_errors_are_shortened(monkeypatch: pytest.MonkeyPatch) -> None:
    error = DataValidationError("3 violations in bars\n  duplicate X 2024-01-02 row 4\n  unsorted X row 7")
    _register_broken(monkeypatch, error)
    result = runner.invoke(app, ["data", "show", "X", "-s", "broken", *SPLIT_WEEK])
    assert result.exit_code == 2
    assert error_line(result) == "error: 3 violations in bars (+2 more lines; --verbose shows all)"
    result = runner.invoke(app, ["-v", "data", "show", "X", "-s", "broken", *SPLIT_WEEK])
    assert "unsorted X row 7" in result.stderr


def test_validate_clean_file(tmp_path: Path) -> None:
    path = tmp_path / "XYZ.csv"
    path.write_text(GOOD_CSV, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.stderr
    assert "XYZ.csv (bars)" in result.stdout and "1.0000" in result.stdout


def test_validate_reports_violations_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "XYZ.csv"
    path.write_text(BAD_CSV, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(path), "--kind", "bars"])
    assert result.exit_code == 1
    out = result.stdout
    assert "high_below_open_close" in out and "negative_volume" in out
    assert "2024-01-03" in out and "XYZ" in out  # each violation names its timestamp and symbol
    assert "2 of 2 violations" in out


def test_validate_tick_files(tmp_path: Path) -> None:
    path = tmp_path / "quotes.csv"
    path.write_text("ts,symbol,bid,ask,bid_size,ask_size\n"
                    "2024-01-02T14:30:00Z,ABC,10.0,10.1,5,5\n"
                    "2024-01-02T14:30:01Z,ABC,10.2,10.1,5,5\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", str(path), "-k", "quotes"])
    assert result.exit_code == 1
    assert "crossed_quote" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("date,open,high,low,volume\n2024-01-02,1,2,0.5,15\n", "cannot tell bars, trades or quotes"),
        ("date,open,high,low,close,volume\nnot-a-date,1,2,0.5,1.5,10\n", "not-a-date"),
    ],
)
def test_validate_unreadable_files_are_one_line(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "f.csv"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    line = error_line(result)
    assert message in line and "f.csv" in line


def test_sources_builds_providers_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "backtape.yaml"
    path.write_text("providers:\n  polygon:\n    api_key: from-file-1234\n    base_url: http://127.0.0.1:9\n",
                    encoding="utf-8")
    result = runner.invoke(app, ["--config", str(path), "sources"])
    assert result.exit_code == 0, result.stderr
    polygon = next(line for line in result.stdout.splitlines() if line.startswith("│ polygon"))
    assert "ready" in polygon and "from-file-1234" not in result.stdout


def test_sources_lists_every_registered_source() -> None:
    result = runner.invoke(app, ["sources"])
    assert result.exit_code == 0, result.stderr
    for name, _ in registry.list():
        assert name in result.stdout
    assert "needs options: path" in result.stdout  # csv and parquet need a path
    assert "ready" in result.stdout  # sample and synthetic build without options


def test_demo_tours_the_sample() -> None:
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for heading in ("1. What is in the sample", "2. A validated 5-minute view",
                    "3. Daily views follow exchange sessions", "4. Quality report"):
        assert heading in out
    for symbol in SampleDataSource().list_symbols():
        assert symbol in out
    assert "BTCUSDT quotes" in out and "BTCUSDT trades" in out
    assert "volume preserved True" in out and "day's high preserved True" in out
    assert "2013-11-29 18:00" in out  # the early close
    assert "high_below_open_close" in out and "negative_volume" in out and "duplicate" in out


def test_parse_options() -> None:
    assert parse_options(["tz=UTC", "header=false", "n=3", 'columns={"Date": "ts"}']) == {
        "tz": "UTC", "header": False, "n": 3, "columns": {"Date": "ts"},
    }
