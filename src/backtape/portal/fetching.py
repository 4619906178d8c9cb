"""The portal's upstream calls and what it reports about them.

Every kind a load needs is fetched in one call for all symbols, concurrently; each call is logged
(``DataPortal.fetch_log``) and every declared requirement is traced to the fetch it caused
(``DataPortal.requirements_report``). Without requirements the portal picks its default bars here.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import polars as pl

from ..calendars import TradingCalendar, get_calendar
from ..errors import BacktapeError
from ..schema import TS
from ..sources.base import DataSource
from ..timeframes import Timeframe
from .requirements import FetchPlan


async def fetch_all(source: DataSource, plans: dict[str, FetchPlan], symbols: list[str], actions: bool,
                    log: list[dict[str, Any]]) -> dict[str, pl.DataFrame]:
    """Each planned kind (and the bars' corporate actions when ``actions``) fetched concurrently,
    every call appended to ``log``."""
    jobs = {kind: (p.start, p.end, p.frequency) for kind, p in plans.items()}
    if actions:
        bars = plans["bars"]
        jobs["actions"] = (bars.start, bars.end, bars.frequency)
    results = await asyncio.gather(*(_fetch_one(source, k, symbols, *j, log) for k, j in jobs.items()))
    return dict(zip(jobs, results, strict=True))


async def _fetch_one(source: DataSource, kind: str, symbols: list[str], start: int, end: int,
                     frequency: Timeframe, log: list[dict[str, Any]]) -> pl.DataFrame:
    t0 = time.perf_counter()
    frame = await source.fetch_kind(kind, symbols, start, end, str(frequency))
    log.append({
        "kind": kind, "frequency": str(frequency) if kind == "bars" else None,
        "symbols": ",".join(symbols), "start": start, "end": end, "rows": frame.height,
        "seconds": time.perf_counter() - t0,
    })
    return frame


def fetch_log_frame(log: list[dict[str, Any]]) -> pl.DataFrame:
    """``log`` as a frame: kind, frequency, symbols, range (UTC), rows, seconds."""
    schema = {"kind": pl.String, "frequency": pl.String, "symbols": pl.String, "start": pl.Int64,
              "end": pl.Int64, "rows": pl.Int64, "seconds": pl.Float64}
    return pl.DataFrame(log, schema=schema).with_columns(pl.col("start").cast(TS), pl.col("end").cast(TS))


def requirements_report(plans: dict[str, FetchPlan], rows: dict[str, int]) -> pl.DataFrame:
    """One row per requirement in ``plans``: who asked, what was fetched for it (``rows`` per kind)."""
    out = []
    for kind, plan in plans.items():
        for owner, req in plan.owners:
            out.append({
                "requested_by": owner, "kind": req.kind, "frequency": req.frequency,
                "lookback": req.lookback, "fetched_frequency": str(plan.frequency),
                "fetch_start": plan.start, "fetch_end": plan.end, "rows": rows.get(kind),
            })
    frame = pl.DataFrame(out, schema={
        "requested_by": pl.String, "kind": pl.String, "frequency": pl.String, "lookback": pl.Int64,
        "fetched_frequency": pl.String, "fetch_start": pl.Int64, "fetch_end": pl.Int64, "rows": pl.Int64,
    })
    return frame.with_columns(pl.col("fetch_start").cast(TS), pl.col("fetch_end").cast(TS))


def default_frequency(source: DataSource, symbols: list[str]) -> str:
    """1-minute bars when the source serves them for every symbol (``frequency_of(symbol)`` when the
    source knows each symbol's native bar size, like the sample's daily equities), else the finest
    size it serves (an hourly file's 1h), else daily."""
    caps = source.capabilities
    if not caps.supports_frequency("1min"):
        served = [Timeframe.parse(f) for f in caps.frequencies if f != "*"]
        return str(min(served, key=lambda tf: tf.nanos)) if served else "1d"
    try:
        native = [source.frequency_of(s) for s in symbols]
    except BacktapeError:
        return "1min"
    return "1d" if any(tf is not None and not tf.is_intraday for tf in native) else "1min"


def symbols_calendar(source: DataSource, symbols: list[str]) -> TradingCalendar | None:
    """The one calendar ``source`` names for all ``symbols`` (``calendar_of``), else ``None``."""
    try:
        names = {source.calendar_of(s) for s in symbols}
    except BacktapeError:
        return None
    return get_calendar(names.pop()) if len(names) == 1 else None
