"""Validation rules, one by one, with hand-made frames whose violations are known."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from backtape.errors import DataFormatError, DataValidationError
from backtape.schema import TS
from backtape.validation import DataQualityWarning, validate_bars, validate_quotes, validate_trades

T0 = dt.datetime(2024, 1, 2, 14, 30, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


def bars(n: int = 4, symbols: tuple[str, ...] = ("AAA", "BBB")) -> pl.DataFrame:
    """Clean 1-minute bars: ``n`` per symbol, sorted by (symbol, ts)."""
    rows = []
    for s in symbols:
        for i in range(n):
            o = 100.0 + i
            rows.append({"symbol": s, "ts": T0 + i * MIN, "ts_end": T0 + (i + 1) * MIN, "open": o,
                         "high": o + 2, "low": o - 1, "close": o + 1, "volume": 10.0 * (i + 1)})
    return pl.DataFrame(rows).with_columns(pl.col("ts", "ts_end").cast(TS))


def trades() -> pl.DataFrame:
    return pl.DataFrame(
        {"symbol": ["X", "X", "X"], "ts": [T0, T0, T0 + MIN], "price": [10.0, 10.5, 10.25],
         "size": [1.0, 2.0, 3.0]}
    ).with_columns(pl.col("ts").cast(TS))


def quotes() -> pl.DataFrame:
    return pl.DataFrame(
        {"symbol": ["X", "X", "X"], "ts": [T0, T0, T0 + MIN], "bid": [10.0, 10.0, 10.1],
         "ask": [10.1, 10.0, 10.2], "bid_size": [1.0, 2.0, 3.0], "ask_size": [1.0, 1.0, 1.0]}
    ).with_columns(pl.col("ts").cast(TS))


def set_value(df: pl.DataFrame, row: int, column: str, value: object) -> pl.DataFrame:
    """A copy of ``df`` with one cell replaced."""
    return df.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value, dtype=df.schema[column]))
        .otherwise(pl.col(column)).alias(column)
    )


def test_clean_bars_pass_untouched() -> None:
    df = bars()
    report = validate_bars(df)
    assert report.ok and report.score == 1.0 and report.counts == {} and report.rows == 8
    assert report.data is df
    assert report.violations.height == 0
    assert "8 rows" in str(report) and "[OK]" in str(report)


@pytest.mark.parametrize(
    ("column", "value", "rules"),
    [
        ("high", 100.5, {"high_below_open_close"}),  # row 5: open 101, high 103, low 100, close 102
        ("low", 101.5, {"low_above_open_close"}),
        ("high", 98.0, {"high_below_open_close", "high_below_low"}),
        ("open", 0.0, {"non_positive_price", "low_above_open_close"}),
        ("low", -1.0, {"non_positive_price"}),
        ("volume", -5.0, {"negative_volume"}),
        ("close", float("nan"), {"missing_value"}),
        ("volume", None, {"missing_value"}),
        ("ts_end", T0, {"ts_end_not_after_ts"}),
    ],
)
def test_each_bar_rule_names_row_and_symbol(column: str, value: object, rules: set[str]) -> None:
    df = set_value(bars(), 5, column, value)  # row 5 = BBB, 14:31
    report = validate_bars(df, on_invalid="drop")
    assert set(report.counts) == rules
    assert report.violations.get_column("row").to_list() == [5] * len(rules)
    assert set(report.violations.get_column("symbol")) == {"BBB"}
    assert report.violations.get_column("ts").to_list() == [T0 + MIN] * len(rules)
    assert report.data.equals(bars().filter(pl.int_range(pl.len()) != 5))
    assert report.score == pytest.approx(7 / 8)


def test_a_missing_value_does_not_hide_the_rules_of_the_columns_that_are_there() -> None:
    df = set_value(set_value(set_value(bars(), 5, "close", None), 5, "high", 90.0), 5, "low", 95.0)
    df = set_value(set_value(df, 6, "open", float("nan")), 6, "volume", -5.0)
    report = validate_bars(df, on_invalid="drop")
    assert report.violations.select("rule", "row").rows() == [
        ("missing_value", 5), ("high_below_low", 5), ("missing_value", 6), ("negative_volume", 6)]
    quotes_report = validate_quotes(set_value(set_value(quotes(), 1, "bid", None), 1, "ask", -1.0),
                                    on_invalid="drop")
    assert quotes_report.counts == {"missing_value": 1, "non_positive_price": 1}


def test_duplicates_and_unsorted_rows() -> None:
    df = bars()
    shuffled = pl.concat([df[0:2], df[3:4], df[2:3], df[4:], df[6:7]])  # rows 2/3 swapped + a dup
    report = validate_bars(shuffled, on_invalid="drop")
    assert report.counts == {"unsorted": 2, "duplicate": 1}
    unsorted = report.violations.filter(pl.col("rule") == "unsorted")
    assert unsorted.get_column("row").to_list() == [3, 8]
    dup = report.violations.filter(pl.col("rule") == "duplicate").row(0, named=True)
    assert (dup["row"], dup["symbol"], dup["detail"]) == (8, "BBB", "repeats (symbol, ts) of row 6")
    assert report.data.equals(df)  # dropped the duplicate, sorted the rest back into place
    assert validate_bars(report.data).ok


def test_duplicates_in_sorted_frame_keep_the_first() -> None:
    df = bars()
    dup = pl.concat([df[:3], df[2:3].with_columns(close=pl.lit(101.5)), df[3:]])
    report = validate_bars(dup, on_invalid="drop")
    assert report.counts == {"duplicate": 1}
    assert report.violations.get_column("row").to_list() == [3]
    assert report.data.equals(df)


def test_raise_names_each_violation() -> None:
    df = set_value(set_value(bars(), 1, "low", -3.0), 6, "high", 50.0)
    with pytest.raises(DataValidationError) as info:
        validate_bars(df)
    text = str(info.value)
    assert "3 violation(s) in 8 rows" in text
    assert "row 1 AAA 2024-01-02T14:31:00Z: non_positive_price (low=-3.0)" in text
    assert "row 6 BBB 2024-01-02T14:32:00Z: high_below_low (high 50.0 < low 101.0)" in text
    assert [v.row for v in info.value.violations] == [1, 6, 6]
    assert info.value.violations[0].symbol == "AAA"
    assert info.value.report.counts["non_positive_price"] == 1  # type: ignore[attr-defined]


def test_raise_message_is_bounded() -> None:
    df = bars(n=30).with_columns(volume=-pl.col("volume"))
    with pytest.raises(DataValidationError, match=r"60 violation\(s\)") as info:
        validate_bars(df)
    assert "... and 40 more" in str(info.value)
    assert len(info.value.violations) == 60


def test_warn_returns_report() -> None:
    df = set_value(bars(), 0, "volume", -1.0)
    with pytest.warns(DataQualityWarning, match="negative_volume"):
        report = validate_bars(df, on_invalid="warn")
    assert not report.ok and report.data is df and report.counts == {"negative_volume": 1}
    assert "negative_volume" in report.summary() and "NOT OK" in report.summary()


def test_bad_arguments_and_columns() -> None:
    with pytest.raises(ValueError, match="on_invalid"):
        validate_bars(bars(), on_invalid="ignore")  # type: ignore[arg-type]
    with pytest.raises(DataFormatError, match=r"missing required column.*ts_end, volume"):
        validate_bars(bars().drop("ts_end", "volume"))
    with pytest.raises(DataFormatError, match="'ts' has dtype String"):
        validate_bars(bars().with_columns(pl.col("ts").cast(pl.String)))
    with pytest.raises(DataFormatError, match="'open' has dtype String"):
        validate_bars(bars().with_columns(pl.col("open").cast(pl.String)))


@pytest.mark.parametrize(("tz", "what"), [(None, "naive"), ("America/New_York", "America/New_York")])
def test_non_utc_timestamps_reported_once(tz: str | None, what: str) -> None:
    df = bars().with_columns(
        pl.col("ts", "ts_end").dt.replace_time_zone(None) if tz is None
        else pl.col("ts", "ts_end").dt.convert_time_zone(tz)
    )
    report = validate_bars(df, on_invalid="drop")
    assert report.counts == {"timestamp_not_utc": 2}  # once per column, not per row
    assert report.violations.get_column("row").null_count() == 2
    assert all(what in d for d in report.violations.get_column("detail"))
    assert report.score == 1.0 and not report.ok and report.data.height == 8
    with pytest.raises(DataValidationError, match="column 'ts' is"):
        validate_bars(df)


def test_non_utc_rows_are_still_checked() -> None:
    df = set_value(bars(), 2, "volume", -1.0).with_columns(pl.col("ts").dt.convert_time_zone("Asia/Tokyo"))
    report = validate_bars(df, on_invalid="drop")
    bad = report.violations.filter(pl.col("rule") == "negative_volume").row(0, named=True)
    assert bad["ts"] == T0 + 2 * MIN and bad["row"] == 2


def test_trades_may_share_timestamps() -> None:
    assert validate_trades(trades()).ok
    df = set_value(set_value(trades(), 1, "price", -10.5), 2, "size", -3.0)
    report = validate_trades(df, on_invalid="drop")
    assert report.counts == {"non_positive_price": 1, "negative_size": 1}
    assert report.violations.get_column("row").to_list() == [1, 2]
    assert report.data.height == 1


def test_trades_null_and_order() -> None:
    df = pl.concat([trades()[2:], trades()[:2]])
    report = validate_trades(set_value(df, 0, "size", None), on_invalid="drop")
    assert report.counts == {"missing_value": 1, "unsorted": 1}
    assert report.violations.get_column("row").to_list() == [0, 1]
    assert report.data.get_column("ts").is_sorted()


def test_quotes_crossed_locked_and_non_positive() -> None:
    assert validate_quotes(quotes()).ok  # row 1 is locked (bid == ask): allowed
    df = set_value(set_value(quotes(), 0, "bid", 10.2), 2, "ask", 0.0)
    report = validate_quotes(df, on_invalid="drop")
    assert report.counts == {"non_positive_price": 1, "crossed_quote": 2}
    rows = report.violations.select("rule", "row").rows()
    assert rows == [("crossed_quote", 0), ("non_positive_price", 2), ("crossed_quote", 2)]
    assert report.violations.get_column("detail")[0] == "bid 10.2 > ask 10.1"
    assert validate_quotes(set_value(quotes(), 1, "ask_size", -1.0), on_invalid="drop").counts == {
        "negative_size": 1
    }


def test_empty_frames_are_clean() -> None:
    report = validate_bars(bars().head(0))
    assert report.ok and report.score == 1.0 and report.rows == 0


def test_quote_sizes_may_be_unknown_but_not_nan() -> None:
    unknown = pl.lit(None, dtype=pl.Float64).alias("bid_size")
    fx = quotes().with_columns(unknown, pl.col("ask_size").cast(pl.Int64))
    assert validate_quotes(fx).ok
    report = validate_quotes(set_value(quotes(), 2, "bid_size", float("nan")), on_invalid="drop")
    assert report.counts == {"missing_value": 1}
    assert report.violations.get_column("detail").to_list() == ["null, NaN or infinite in bid_size"]
