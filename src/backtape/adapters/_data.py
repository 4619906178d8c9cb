"""Bars for a peer: several symbols from a workspace source, cached, adjusted as chosen, any timeframe.

``load`` goes through ``Workspace.portal`` (so remote providers sit behind the cache and prices are
adjusted on read), reads every bar of ``[start, end)`` at ``frequency`` adjusted as of the last bar
(the usual back-adjusted series a peer expects), and keeps them as Polars frames. ``PeerData``
then hands them out in the shapes peers take: one pandas OHLCV frame per symbol (backtesting.py,
backtrader) or wide frames of one field aligned on the union of bar times (vectorbt).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from .._time import TimeLike, check_range, format_ns
from ..errors import ConfigError, NoDataError

if TYPE_CHECKING:
    import pandas as pd

    from ..sources.base import DataSource
    from ..workspace import Workspace

TS = pl.Datetime("ns", "UTC")
FIELDS = ("open", "high", "low", "close", "volume")
#: the column names backtesting.py (and backtrader's ``PandasData`` defaults) read
PEER_COLUMNS = {"open": "Open", "high": "High", "low": "Low", "close": "Close", "volume": "Volume"}


@dataclass(frozen=True)
class PeerData:
    """The bars a peer run reads: ``frames[symbol]`` has ``ts``, ``ts_end`` and OHLCV (adjusted)."""

    frames: dict[str, pl.DataFrame]
    frequency: str
    calendar: str
    source: str
    start: int
    end: int
    adjustment: str
    fingerprint: dict[str, Any] = field(default_factory=dict)

    @property
    def symbols(self) -> list[str]:
        return list(self.frames)

    def ts(self, symbol: str) -> np.ndarray:
        """Bar start times of ``symbol`` (UTC ns, int64): what a peer's bar index maps back to."""
        return self.frames[symbol]["ts"].cast(pl.Int64).to_numpy()

    def pandas(self, symbol: str, *, tz: bool = True) -> pd.DataFrame:
        """``symbol``'s bars as a pandas frame with ``Open``..``Volume`` columns indexed by bar start
        (UTC; ``tz=False`` gives naive UTC times, which backtrader wants)."""
        import pandas as pd

        frame = self.frames[symbol]
        index = pd.DatetimeIndex(frame["ts"].cast(pl.Int64).to_numpy().astype("datetime64[ns]"), name="ts")
        out = pd.DataFrame({PEER_COLUMNS[f]: frame[f].to_numpy() for f in FIELDS}, index=index)
        return out.tz_localize("UTC") if tz else out

    def wide(self, name: str) -> pd.DataFrame:
        """Field ``name`` (``close``, ``open``...) as bars x symbols, aligned on the union of bar starts
        (a symbol without a bar at a time holds NaN there), indexed by UTC bar start."""
        import pandas as pd

        if name not in FIELDS:
            raise NoDataError(f"no field {name!r}; use one of {', '.join(FIELDS)}")
        times = np.unique(np.concatenate([self.ts(s) for s in self.symbols]))
        out = np.full((times.size, len(self.symbols)), np.nan)
        for j, symbol in enumerate(self.symbols):
            out[np.searchsorted(times, self.ts(symbol)), j] = self.frames[symbol][name].to_numpy()
        index = pd.DatetimeIndex(times.astype("datetime64[ns]"), name="ts").tz_localize("UTC")
        return pd.DataFrame(out, index=index, columns=pd.Index(self.symbols, name="symbol"))


def load(symbols: Sequence[str] | str, start: TimeLike, end: TimeLike, frequency: str = "1d",
         source: DataSource | str | None = None, *, workspace: Workspace | None = None,
         adjustment: str | None = None) -> PeerData:
    """Every bar of ``symbols`` with ``start <= ts < end`` at ``frequency`` from ``source`` (a name or
    a ``DataSource``, wired by ``workspace``, default: the default workspace and its default source),
    adjusted (``"raw"``, ``"split"``, ``"total_return"``; default: the workspace's option) as of the
    last bar."""
    from ..portal import DataRequirement
    from ..workspace import default_workspace

    ws = workspace or default_workspace()
    names = [s.strip() for s in symbols.split(",")] if isinstance(symbols, str) else list(symbols)
    s, e = check_range(start, end)
    portal = ws.portal(source, adjustment=adjustment)  # type: ignore[arg-type]  # checked by the portal
    portal.load_data(s, e, names, [DataRequirement("bars", frequency, 0)])
    last = max((int(b.ts_end[-1]) for b in (portal.bars(n, frequency) for n in names) if len(b)), default=e)
    portal.set_clock(max(last, s))
    frames = {}
    for name in names:
        bars = portal.get_bars(name, s, frequency=frequency)
        keep = bars["ts"] < e
        if not keep.any():
            raise NoDataError(f"no {frequency} bars of {name} in [{format_ns(s)}, {format_ns(e)}) "
                              f"from source {portal.source.name!r}")
        frames[name] = pl.DataFrame({
            "ts": pl.Series(bars["ts"][keep]).cast(TS), "ts_end": pl.Series(bars["ts_end"][keep]).cast(TS),
            **{f: pl.Series(f, bars[f][keep], dtype=pl.Float64) for f in FIELDS},
        })
    fetches = portal.fetch_log.with_columns(pl.col("start", "end").dt.to_string())
    fingerprint = {"source": portal.source.name, "identity": portal.source.cache_identity(),
                   "symbols": names, "start": format_ns(s), "end": format_ns(e), "frequency": frequency,
                   "adjustment": portal.adjustment, "fetches": fetches.to_dicts()}
    return PeerData(frames, frequency, portal.calendar.name, portal.source.name, s, e, portal.adjustment,
                    fingerprint)


def cash_and_commission(workspace: Workspace | None, cash: float | None,
                        commission: float | None) -> tuple[float, float]:
    """Starting cash and commission (fraction of notional) of a peer run: the given values, else the
    workspace's ``backtesting`` options; a peer takes a plain fraction, not a ``Commission`` model."""
    from ..workspace import default_workspace

    options = (workspace or default_workspace()).options
    cash = options.cash if cash is None else cash
    rate = options.commission if commission is None else commission
    if not isinstance(rate, int | float) or isinstance(rate, bool) or rate < 0:
        raise ConfigError(f"a peer run takes commission as a non-negative fraction of notional, got {rate!r}")
    if not isinstance(cash, int | float) or cash <= 0:
        raise ConfigError(f"cash must be a positive number, got {cash!r}")
    return float(cash), float(rate)


__all__ = ["PeerData", "cash_and_commission", "load"]
