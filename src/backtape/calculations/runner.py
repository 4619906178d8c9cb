"""Run named calculations for one symbol at many entry times over a single pre-load."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from .._time import NS_PER_MINUTE, TimeLike, to_ns
from ..errors import ConfigError
from ..portal import DataPortal
from ..schema import TS
from ..sources.base import DataSource
from . import get_calculation


def run_calculations(source: DataSource, symbol: str, entries: Sequence[TimeLike],
                     names: Sequence[str]) -> tuple[pl.DataFrame, DataPortal]:
    """One row per (entry, calculation): ``entry``, ``calculation``, ``values`` (``name=value`` text).

    All calculations' requirements are merged and loaded once, so upstream calls do not grow with
    the number of calculations or entries. Returns the rows and the portal (for its fetch log).
    """
    if not entries:
        raise ConfigError("run_calculations: give at least one entry time")
    times = sorted(to_ns(e, name="entry") for e in entries)
    calcs = {name: get_calculation(name) for name in names}
    portal = DataPortal(source)
    portal.load_data(times[0], times[-1] + NS_PER_MINUTE, [symbol], requirements=list(calcs.values()))
    for calc in calcs.values():
        calc.initialize(symbol)
    rows = []
    for t in times:
        portal.set_clock(t)
        for name, calc in calcs.items():
            try:
                values = calc.compute(portal, t)
                text = ", ".join(f"{k}={v:.6g}" for k, v in values.items())
            except Exception as exc:  # one failing calculation must not hide the others' rows
                text = f"error: {exc}"
            rows.append({"entry": t, "calculation": name, "values": text})
    frame = pl.DataFrame(rows, schema={"entry": pl.Int64, "calculation": pl.String, "values": pl.String})
    return frame.with_columns(pl.col("entry").cast(TS)), portal
