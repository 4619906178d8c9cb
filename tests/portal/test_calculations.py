"""Built-in calculations against plain-Python references, one load for many calculations, the CLI."""

from __future__ import annotations

import itertools
import math

import polars as pl
import pytest
from typer.testing import CliRunner

from backtape._time import to_ns
from backtape.calculations import CALCULATIONS, get_calculation
from backtape.calculations.runner import run_calculations
from backtape.portal import DataPortal

SYM = "A"
#: the bar-based calculations (the tick ones need trades, tested in tests/ticks)
BAR_CALCS = [n for n in CALCULATIONS if n not in ("cum_delta", "tick_flow")]
ENTRY = "2024-01-17T16:07Z"


@pytest.fixture(scope="module")
def bars(make_minute_bars) -> pl.DataFrame:
    return make_minute_bars([SYM], "2023-11-01", "2024-01-19", seed=11)


@pytest.fixture
def portal(bars, memory_source) -> DataPortal:
    calcs = [get_calculation(n) for n in BAR_CALCS]
    p = DataPortal(memory_source(bars))
    p.load_data(ENTRY, "2024-01-18", [SYM], requirements=calcs)
    return p


def _visible(bars: pl.DataFrame, five_minutes: bool = False) -> pl.DataFrame:
    """Minute bars complete at the entry, or the complete 5-minute bars built from them."""
    seen = bars.filter(pl.col("ts_end").cast(pl.Int64) <= to_ns(ENTRY))
    if not five_minutes:
        return seen
    return seen.group_by_dynamic("ts", every="5m", closed="left", label="left").agg(
        pl.col("close").last()
    ).filter(pl.col("ts").cast(pl.Int64) + 300 * 10**9 <= to_ns(ENTRY))


def _ref_ema(xs: list[float], period: int) -> float:
    value = sum(xs[:period]) / period
    k = 2 / (period + 1)
    for x in xs[period:]:
        value = x * k + value * (1 - k)
    return value


def _ref_wilder(xs: list[float], period: int) -> float:
    value = sum(xs[:period]) / period
    for x in xs[period:]:
        value = (value * (period - 1) + x) / period
    return value


def _compute(portal: DataPortal, name: str) -> dict[str, float]:
    calc = get_calculation(name)
    calc.initialize(SYM)
    portal.set_clock(ENTRY)
    return calc.compute(portal, ENTRY)


def test_ema_on_one_and_five_minute_bars(portal, bars) -> None:
    one = _visible(bars)["close"].to_list()[-80:]
    assert _compute(portal, "ema_1m")["ema"] == pytest.approx(_ref_ema(one, 20), rel=1e-12)
    five = _visible(bars, five_minutes=True)["close"].to_list()[-80:]  # session-aligned: XNYS opens at :30
    assert _compute(portal, "ema_5m")["ema"] == pytest.approx(_ref_ema(five, 20), rel=1e-12)


def test_vwap_opening_range_and_rvol(portal, bars) -> None:
    seen = _visible(bars)
    today = seen.filter(pl.col("ts").dt.date() == pl.date(2024, 1, 17))
    typical = (today["high"] + today["low"] + today["close"]) / 3
    assert _compute(portal, "vwap")["vwap"] == pytest.approx((typical * today["volume"]).sum()
                                                             / today["volume"].sum(), rel=1e-12)
    first30 = today.head(30)
    rng = _compute(portal, "opening_range")
    expected = (first30["high"].max(), first30["low"].min(), 1.0)
    assert (rng["or_high"], rng["or_low"], rng["or_complete"]) == expected
    minutes = today.height  # 97 minutes since 14:30
    days = seen.with_columns(d=pl.col("ts").dt.date()).group_by("d", maintain_order=True).agg(
        pl.col("volume").head(minutes).sum())
    past = days["volume"].to_list()[-11:-1]
    assert _compute(portal, "rvol")["rvol"] == pytest.approx(today["volume"].sum() / (sum(past) / 10))


def test_atr_rsi_realized_vol(portal, bars) -> None:
    daily = _visible(bars).with_columns(d=pl.col("ts").dt.date()).group_by("d", maintain_order=True).agg(
        pl.col("high").max(), pl.col("low").min(), pl.col("close").last(), pl.col("ts_end").max())
    daily = daily.filter(pl.col("d") < pl.date(2024, 1, 17)).tail(43)
    h, lo, c = daily["high"].to_list(), daily["low"].to_list(), daily["close"].to_list()
    tr = [max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1])) for i in range(1, len(c))]
    assert _compute(portal, "atr")["atr"] == pytest.approx(_ref_wilder(tr, 14), rel=1e-12)
    five = _visible(bars, five_minutes=True)["close"].to_list()
    closes = five[-57:]
    diffs = [b - a for a, b in itertools.pairwise(closes)]
    gain = _ref_wilder([max(d, 0) for d in diffs], 14)
    loss = _ref_wilder([max(-d, 0) for d in diffs], 14)
    assert _compute(portal, "rsi")["rsi"] == pytest.approx(100 - 100 / (1 + gain / loss), rel=1e-12)
    last = five[-31:]
    ref = math.sqrt(sum(math.log(b / a) ** 2 for a, b in itertools.pairwise(last)))
    assert _compute(portal, "realized_vol")["realized_vol"] == pytest.approx(ref, rel=1e-12)


def test_more_calculations_do_not_mean_more_upstream_calls(bars, memory_source) -> None:
    entries = ["2024-01-17T15:00Z", "2024-01-17T16:07Z", "2024-01-17T20:59Z"]
    few_source, all_source = memory_source(bars), memory_source(bars)
    _few, _ = run_calculations(few_source, SYM, entries, ["vwap"])
    every, portal = run_calculations(all_source, SYM, entries, BAR_CALCS)
    assert len(few_source.calls) == len(all_source.calls) == 2  # bars + corporate actions
    assert every.height == 3 * len(BAR_CALCS)
    assert not every["values"].str.starts_with("error").any()
    assert portal.requirements_report().height >= len(BAR_CALCS)


def test_cli_prints_one_row_per_entry_and_calculation(bars, memory_source, tmp_path) -> None:
    import typer

    from backtape.cli.calc import calc
    from backtape.sources import registry

    registry.register("memory-calc-test", lambda: memory_source(bars), replace=True)
    app = typer.Typer()
    app.command()(calc)
    entries = tmp_path / "entries.csv"
    entries.write_text("entry\n2024-01-17T16:07Z\n")
    args = ["--symbol", SYM, "--entry", "2024-01-17T15:00Z", "--entries", str(entries),
            "--calcs", "vwap,rsi", "--source", "memory-calc-test"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert result.output.count("vwap=") == 2 and result.output.count("rsi=") == 2
    assert "upstream calls: 2" in result.output
    from backtape.cli.app import app as root

    bad = CliRunner().invoke(root, ["calc", "--symbol", SYM, "--entry", "2024-01-17T15:00Z",
                                    "--calcs", "nope", "--source", "memory-calc-test"])
    assert bad.exit_code == 2 and "unknown calculation 'nope'" in bad.stderr
