"""Local files are validated in file order on load: impossible rows are named by file and line.

Problems (impossible bars, non-positive prices, negative volume or size, NaN, crossed quotes,
duplicates with different values) raise by default, are dropped with a warning naming the lines
(``on_invalid="drop"``) or kept with a warning (``"warn"``). Rows merely out of order and exact
repeats of a bar are repaired without loss: no error, an INFO note and an entry in the file report.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtape.errors import ConfigError, DataValidationError
from backtape.schema import TS, conform
from backtape.sources import CSVDataSource, ParquetDataSource, SampleDataSource
from backtape.sources.files import PROBLEM_LIMIT, parse_file, read_bars, read_ticks
from backtape.sources.sample import sample_data_dir
from backtape.validation import DataQualityWarning, validate_bars


def _real_file_table() -> list[tuple]:
    """The real files and their reading options, as listed once in ``test_local.py``."""
    spec = importlib.util.spec_from_file_location("_local_cases", Path(__file__).with_name("test_local.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [case[:3] for case in module.REAL_FILES + module.SHIPPED]


SAMPLE = sample_data_dir()

HEADER = "date,open,high,low,close,volume\n"
# the integrator's example: unsorted (line 3), high < low (line 4), negative volume (line 5) and a
# duplicate of line 5 with other values (line 6)
EXAMPLE = HEADER + (
    "2024-01-03,10,11,9,10.5,100\n"
    "2024-01-02,10,11,9,10.5,100\n"
    "2024-01-04,10,9,11,10.5,100\n"
    "2024-01-05,10,11,9,10,-100\n"
    "2024-01-05,10,11,9,10,100\n"
)
CLEAN_ROW = "2024-01-02,10,11,9,10.5,100\n"


def write(tmp_path: Path, text: str, name: str = "X.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def dates(df: pl.DataFrame) -> list[str]:
    return [t.date().isoformat() for t in df["ts"].to_list()]


def test_example_raises_naming_file_lines_symbol_ts_and_rule(tmp_path: Path):
    path = write(tmp_path, EXAMPLE)
    with pytest.raises(DataValidationError) as info:
        read_bars(path)
    text = str(info.value)
    first = text.splitlines()[0]
    assert first.startswith(f"{path}: 3 invalid bars row(s) of 5 (")
    assert "on_invalid='drop'" in first
    assert "  line 4 X 2024-01-04T14:30:00Z: high_below_low (high 9.0 < low 11.0)" in text
    assert "  line 5 X 2024-01-05T14:30:00Z: negative_volume (volume=-100.0)" in text
    assert "  line 6 X 2024-01-05T14:30:00Z: duplicate (repeats (symbol, ts) of line 5)" in text
    assert "unsorted" not in text  # out of order loses nothing: not a problem
    lines = {(v.rule, v.line) for v in info.value.violations}
    assert {("high_below_low", 4), ("negative_volume", 5), ("duplicate", 6)} <= lines
    assert {v.row for v in info.value.violations} == {2, 3, 4}  # 0-based file rows
    report = info.value.report  # type: ignore[attr-defined]
    assert report.counts["unsorted"] == 1 and not report.ok


@pytest.mark.parametrize(
    ("row", "rule", "detail"),
    [
        ("2024-01-03,10,9,11,10.5,100", "high_below_low", "high 9.0 < low 11.0"),
        ("2024-01-03,10,10.2,9,10.5,100", "high_below_open_close", "high 10.2 < max(open, close) 10.5"),
        ("2024-01-03,10,11,10.2,10.5,100", "low_above_open_close", "low 10.2 > min(open, close) 10.0"),
        ("2024-01-03,0,11,0,10.5,100", "non_positive_price", "open=0.0, low=0.0"),
        ("2024-01-03,-1,11,-2,10.5,100", "non_positive_price", "open=-1.0, low=-2.0"),
        ("2024-01-03,10,11,9,10.5,-1", "negative_volume", "volume=-1.0"),
        ("2024-01-03,10,NaN,9,10.5,100", "missing_value", "null, NaN or infinite in high"),
        ("2024-01-03,10,11,9,10.5,", "missing_value", "null, NaN or infinite in volume"),
        ("2024-01-02,10,12,9,11,100", "duplicate", "repeats (symbol, ts) of line 2"),
    ],
    ids=["high<low", "high<close", "low>open", "zero-price", "negative-price", "negative-volume", "nan",
         "empty-volume", "duplicate-other-values"],
)
def test_each_impossible_bar_names_file_and_line(tmp_path: Path, row: str, rule: str, detail: str):
    path = write(tmp_path, HEADER + CLEAN_ROW + row + "\n2024-01-04,10,11,9,10.5,100\n")
    with pytest.raises(DataValidationError) as info:
        read_bars(path)
    day = row[:10]
    assert f"  line 3 X {day}T14:30:00Z: {rule} ({detail})" in str(info.value).splitlines()
    assert str(path) in str(info.value)
    # the same row in the middle of a clean file is the only problem
    assert {v.line for v in info.value.violations} == {3}


def test_message_lists_the_first_problems_and_the_total(tmp_path: Path):
    days = pl.date_range(pl.date(2024, 1, 1), pl.date(2024, 3, 29), eager=True)
    rows = [f"{d},10,11,9,10.5,{-1 if i % 2 else 5}" for i, d in enumerate(days.to_list())]
    path = write(tmp_path, HEADER + "\n".join(rows) + "\n")
    with pytest.raises(DataValidationError) as info:
        read_bars(path, calendar="24/7")
    text = str(info.value).splitlines()
    bad = len(rows) // 2
    assert text[0].startswith(f"{path}: {bad} invalid bars row(s) of {len(rows)} (negative_volume: {bad})")
    listed = [line for line in text if line.startswith("  line ")]
    assert len(listed) == PROBLEM_LIMIT and listed[0].startswith("  line 3 X 2024-01-02")
    assert text[-1] == f"  ... and {bad - PROBLEM_LIMIT} more"
    assert len(info.value.violations) == bad
    first_lines = ", ".join(str(line) for line in range(3, 3 + 2 * PROBLEM_LIMIT, 2))
    with pytest.warns(DataQualityWarning, match=rf"at lines {first_lines} and {bad - PROBLEM_LIMIT} more"):
        assert read_bars(path, calendar="24/7", on_invalid="drop").height == len(rows) - bad


def test_drop_removes_offending_rows_and_names_their_lines(tmp_path: Path):
    path = write(tmp_path, EXAMPLE)
    with pytest.warns(DataQualityWarning) as caught:
        df = read_bars(path, on_invalid="drop")
    # line 6 repeats the date of line 5, which was invalid: the first *valid* row is kept
    assert dates(df) == ["2024-01-02", "2024-01-03", "2024-01-05"]
    assert df["volume"].to_list() == [100.0, 100.0, 100.0]
    validate_bars(df)
    message = str(caught[0].message)
    assert message.startswith(f"{path}: dropped 2 invalid bars row(s) of 5 at lines 4, 5 (")
    assert "negative_volume: 1" in message and "duplicate" not in message.splitlines()[0]
    assert len(caught) == 1


def test_drop_keeps_the_first_of_valid_duplicates(tmp_path: Path):
    path = write(tmp_path, HEADER + CLEAN_ROW + "2024-01-02,10,12,9,11,100\n2024-01-03,10,11,9,10.5,100\n")
    dropped = r"dropped 1 invalid bars row\(s\) of 3 at line 3 \(duplicate: 1\)"
    with pytest.warns(DataQualityWarning, match=dropped):
        df = read_bars(path, on_invalid="drop")
    assert dates(df) == ["2024-01-02", "2024-01-03"] and df["high"].to_list() == [11.0, 11.0]


def test_warn_keeps_every_row_and_says_why(tmp_path: Path):
    path = write(tmp_path, EXAMPLE)
    with pytest.warns(DataQualityWarning, match=r"3 invalid bars row\(s\) of 5") as caught:
        df = read_bars(path, on_invalid="warn")
    assert df.height == 5 and dates(df) == ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05",
                                             "2024-01-05"]
    assert "line 4 X 2024-01-04T14:30:00Z: high_below_low" in str(caught[0].message)


def test_unsorted_rows_are_sorted_with_a_note_not_an_error(tmp_path: Path, caplog):
    newest_first = HEADER + "2024-01-05,10,11,9,10.5,5\n2024-01-04,10,11,9,10.5,4\n" \
        "2024-01-03,10,11,9,10.5,3\n2024-01-02,10,11,9,10.5,2\n"
    path = write(tmp_path, newest_first)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with caplog.at_level(logging.INFO, logger="backtape.sources.files"):
            src = CSVDataSource(path)
            df = src.frame("bars")
    assert dates(df) == ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
    assert df["volume"].to_list() == [2.0, 3.0, 4.0, 5.0]  # rows moved whole
    assert f"{path}: 3 bars row(s) earlier than their symbol's previous row at lines 3, 4, 5" in caplog.text
    report = src.file_reports()[path]
    assert report.counts == {"unsorted": 3}
    assert report.violations["line"].to_list() == [3, 4, 5]
    assert report.violations["detail"][0] == "ts earlier than the symbol's previous row at line 2"


def test_symbols_interleaved_by_time_are_in_order(tmp_path: Path):
    rows = "".join(f"2024-01-0{d},{s},10,11,9,10.5,1\n" for d in (2, 3, 4) for s in ("B", "A"))
    path = write(tmp_path, "date,symbol,open,high,low,close,volume\n" + rows)
    src = CSVDataSource(path)
    df = src.frame("bars")
    assert df["symbol"].to_list() == ["A"] * 3 + ["B"] * 3
    assert src.file_reports()[path].ok
    assert parse_file(path).data.equals(df)  # one file is served sorted by (symbol, ts) too


def test_exact_repeats_are_removed_without_loss(tmp_path: Path, caplog):
    path = write(tmp_path, HEADER + CLEAN_ROW + CLEAN_ROW + "2024-01-03,10,11,9,10.5,100\n")
    with caplog.at_level(logging.INFO, logger="backtape.sources.files"):
        src = CSVDataSource(path)
        df = src.frame("bars")
    assert dates(df) == ["2024-01-02", "2024-01-03"]
    assert "1 bars row(s) repeat an earlier row exactly at line 3" in caplog.text
    assert src.file_reports()[path].counts == {"duplicate": 1}


def test_parquet_names_the_row_index(tmp_path: Path):
    bars = read_bars(SAMPLE / "MSFT_1d_2012-2014_with_div_split.csv").head(6)
    broken = bars.with_columns(low=pl.when(pl.int_range(pl.len()) == 4).then(-1.0).otherwise("low"))
    path = tmp_path / "MSFT.parquet"
    broken.write_parquet(path)
    with pytest.raises(DataValidationError) as info:
        ParquetDataSource(path).frame("bars")
    assert f"{path}: 1 invalid bars row(s) of 6" in str(info.value)
    assert "  row 4 MSFT 2012-01-09T14:30:00Z: non_positive_price (low=-1.0)" in str(info.value)
    assert [(v.row, v.line) for v in info.value.violations] == [(4, None)]
    with pytest.warns(DataQualityWarning, match="at row 4"):
        assert read_bars(path, on_invalid="drop").height == 5


def test_lines_stay_right_when_non_session_rows_are_dropped(tmp_path: Path):
    path = write(tmp_path, HEADER + CLEAN_ROW + "2024-01-06,10,11,9,10.5,1\n2024-01-08,10,11,9,10.5,-1\n")
    with pytest.warns(UserWarning, match="not sessions"), \
            pytest.raises(DataValidationError, match=r"line 4 X 2024-01-08T14:30:00Z: negative_volume"):
        read_bars(path, on_non_session="drop")


def test_ticks_are_validated_with_lines(tmp_path: Path):
    quotes = write(tmp_path, "ts,symbol,bid,ask,bid_size,ask_size\n"
                   "2024-01-02T14:30:00Z,ABC,10.0,10.1,5,5\n"
                   "2024-01-02T14:30:01Z,ABC,10.2,10.1,5,5\n", "q.csv")
    with pytest.raises(DataValidationError, match=r"line 3 ABC 2024-01-02T14:30:01Z: crossed_quote"):
        read_ticks(quotes, "quotes")
    with pytest.warns(DataQualityWarning, match="at line 3"):
        assert read_ticks(quotes, "quotes", on_invalid="drop").height == 1
    trades = write(tmp_path, "ts,symbol,price,size\n2024-01-02T14:30:01Z,ABC,10,-3\n"
                   "2024-01-02T14:30:00Z,ABC,10,1\n2024-01-02T14:30:00Z,ABC,10,1\n", "t.csv")
    with pytest.raises(DataValidationError, match=r"line 2 ABC 2024-01-02T14:30:01Z: negative_size"):
        read_ticks(trades, "trades")
    # trades may share a timestamp: identical ticks are kept, out-of-order ones sorted
    with pytest.warns(DataQualityWarning, match="negative_size"):
        kept = read_ticks(trades, "trades", on_invalid="warn")
    assert kept["size"].to_list() == [1.0, 1.0, -3.0]


def test_folder_error_names_the_bad_file(tmp_path: Path):
    write(tmp_path, HEADER + CLEAN_ROW, "AAA.csv")
    bad = write(tmp_path, HEADER + "2024-01-02,10,9,11,10.5,100\n", "BBB.csv")
    with pytest.raises(DataValidationError, match=rf"^{bad}: 1 invalid bars row"):
        CSVDataSource(tmp_path).frame("bars")
    with pytest.warns(DataQualityWarning, match="BBB.csv: dropped 1"):
        assert CSVDataSource(tmp_path, on_invalid="drop").symbols() == ["AAA"]


def test_on_invalid_option_is_checked(tmp_path: Path):
    with pytest.raises(ConfigError, match="on_invalid"):
        CSVDataSource(write(tmp_path, HEADER + CLEAN_ROW), on_invalid="ignore")


@pytest.mark.parametrize(("name", "kind", "options"), _real_file_table())
def test_real_files_are_clean_in_file_order(data_dir: Path, name: str, kind: str, options: dict):
    folder = data_dir if (data_dir / name).exists() else SAMPLE
    cls = ParquetDataSource if name.endswith(".parquet") else CSVDataSource
    src = cls(folder / name, **options)
    src.frame(kind)
    (report,) = src.file_reports().values()
    assert report.ok, report.summary()


def test_sample_source_loads_every_file_with_the_default():
    sample = SampleDataSource()
    for kind in ("bars", "trades", "quotes"):
        for symbol in sample.list_symbols(kind):
            start, end = ("2000-01-01", "2030-01-01")
            assert sample.fetch_kind_sync(kind, symbol, start, end, "1min" if symbol.startswith("BTC")
                                          else "1d").height > 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["B", "A", "C", None]),
                          st.one_of(st.none(), st.integers(0, 4))), min_size=0, max_size=40))
def test_conform_sort_equals_a_stable_multi_column_sort(keys):
    df = pl.DataFrame({"symbol": [k[0] for k in keys], "ts": [k[1] for k in keys],
                       "price": np.arange(len(keys), dtype=float), "size": np.ones(len(keys))},
                      schema={"symbol": pl.String, "ts": pl.Int64, "price": pl.Float64, "size": pl.Float64})
    got = conform(df, "trades")
    expected = conform(df, "trades", sort=False).sort(["symbol", "ts"], maintain_order=True)
    assert got.equals(expected)


def test_conform_sort_on_a_shuffled_frame_with_ties():
    rng = np.random.default_rng(7)
    n = 50_000
    df = pl.DataFrame({"symbol": rng.choice(["ES", "NQ", "CL"], n), "ts": rng.integers(0, 500, n),
                       "price": np.arange(n, dtype=float), "size": np.ones(n)})
    df = df.with_columns(pl.col("ts").cast(TS))
    got = conform(df, "trades")
    assert got.equals(df.sort(["symbol", "ts"], maintain_order=True).pipe(conform, "trades", sort=False))
    assert conform(got, "trades").equals(got)  # already sorted: unchanged
