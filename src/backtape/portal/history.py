"""History windows: the last ``n`` bars of any frequency complete at a time, for one asset or many
aligned on their bar end times, and ``get_bars``' ranges. Called every bar: the common case (all
assets share their last end times) is written straight into the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, overload

import numpy as np
import polars as pl

from .._time import TimeLike, format_ns, from_ns, to_ns
from ..errors import BacktapeError, HistoryWindowStartsBeforeData, NoDataError
from ..schema import TS
from ..timeframes import Timeframe
from ._search import last_at_or_before
from .loading import LoadedData
from .store import BarSeries
from .views import partial_bar


class HistoryWindows(LoadedData):
    """``get_bars`` and ``get_history_window`` of ``DataPortal`` over the views of ``LoadedData``."""


    def get_bars(self, asset: str, start: TimeLike, end_dt: TimeLike | None = None,
                 frequency: str | Timeframe | None = None, *,
                 fields: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Every bar of ``asset`` with ``ts >= start`` complete at ``end_dt``, adjusted, as numpy arrays.

        Keys: ``ts``, ``ts_end`` (UTC ns) and each field (only ``fields`` when given). ``frequency``
        defaults to the base frequency.
        """
        t = self._at(end_dt)
        freq = str(frequency or self._base_tf)
        view = self._view(asset, freq)
        wanted = view.fields if fields is None else {f: view.fields[f] for f in fields if f in view.fields}
        if fields is not None and len(wanted) < len(set(fields)):
            missing = sorted(set(fields) - set(wanted))
            raise BacktapeError(f"{asset} {freq} bars have no field {', '.join(missing)}; "
                                f"have {', '.join(view.fields)}")
        lo = int(view.ts.searchsorted(to_ns(start, name="start"), "left"))
        hi = max(view.visible_count(t), lo)
        out = {"ts": view.ts[lo:hi].copy(), "ts_end": view.ts_end[lo:hi].copy()}
        out.update({f: v[lo:hi].copy() for f, v in wanted.items()})
        return out

    @overload
    def get_history_window(self, assets: str | Sequence[str], end_dt: TimeLike | None, bar_count: int,
                           frequency: str | Timeframe, field: str, *, partial: bool = False,
                           as_polars: Literal[False] = False) -> np.ndarray: ...

    @overload
    def get_history_window(self, assets: str | Sequence[str], end_dt: TimeLike | None, bar_count: int,
                           frequency: str | Timeframe, field: str, *, partial: bool = False,
                           as_polars: Literal[True]) -> pl.DataFrame: ...

    def get_history_window(self, assets: str | Sequence[str], end_dt: TimeLike | None, bar_count: int,
                           frequency: str | Timeframe, field: str, *, partial: bool = False,
                           as_polars: bool = False) -> np.ndarray | pl.DataFrame:
        """The last ``bar_count`` bars of ``frequency`` complete at ``end_dt``, as ``bar_count x assets``.

        Assets are aligned on the union of their bar end times; a bar one asset lacks is NaN. With
        ``partial=True`` the last row is the current, incomplete bar built from the base bars complete
        at ``end_dt``. ``as_polars=True`` returns a frame with ``ts_end`` and one column per asset.
        Raises ``HistoryWindowStartsBeforeData`` (with ``first_valid_end``) when the loaded data holds
        fewer bars.

        ==========  =========================================================  ==================
        row         bars                                                        price adjustment
        ==========  =========================================================  ==================
        0..n-2      complete bars (``ts_end <= end_dt``)                         as of the clock
        n-1         last complete bar, or the partial bar when ``partial=True``  as of the clock
        ==========  =========================================================  ==================
        """
        t = self._at(end_dt)
        if bar_count <= 0:
            raise NoDataError(f"bar_count must be positive, got {bar_count}")
        names = [assets] if isinstance(assets, str) else list(assets)
        freq = frequency if isinstance(frequency, str) else str(frequency)
        fast = None if partial else self._aligned_window(names, freq, t, bar_count, field)
        if fast is not None:
            ends, out = fast
            return out if not as_polars else _window_frame(names, ends, out)
        parts = [self._asset_window(a, freq, t, bar_count, field, partial) for a in names]
        ends = parts[0][0]
        key = ends.tobytes()
        if all(len(p[0]) == bar_count and p[0].tobytes() == key for p in parts):
            out = parts[0][1].reshape(-1, 1) if len(parts) == 1 else np.column_stack([p[1] for p in parts])
        else:
            ends, out = self._align(names, freq, parts, bar_count, t)
        return out if not as_polars else _window_frame(names, ends, out)

    def _aligned_window(self, names: list[str], freq: str, t: int, bar_count: int,
                        field: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The common case, written straight into the output: every asset has the same last
        ``bar_count`` end times. ``None`` sends the caller to the general aligning path.

        Views with identical end times share one array (see ``_view``), so the position is looked up
        once per distinct array, not once per asset.
        """
        out = np.empty((bar_count, len(names)))
        shared: np.ndarray | None = None
        key: bytes | None = None
        n = 0
        hints = self._hints
        for j, name in enumerate(names):
            view = self._views.get((name, freq)) or self._view(name, freq)  # adjusted: never in _views
            ends = view.ts_end
            if ends is not shared:
                hint_key = (name, freq)
                n = last_at_or_before(ends, t, hints.get(hint_key, 0)) + 1
                hints[hint_key] = n - 1
                if n < bar_count:
                    return None
                window = ends[n - bar_count:n].tobytes()
                if key is None:
                    key = window
                elif window != key:
                    return None
                shared = ends
            values = view.fields.get(field)
            if values is None:
                raise NoDataError(unknown_field(field, view))
            out[:, j] = values[n - bar_count:n]
        if shared is None:  # no names
            return None
        return shared[n - bar_count:n], out

    def _asset_window(self, symbol: str, freq: str, t: int, bar_count: int, field: str,
                      partial: bool) -> tuple[np.ndarray, np.ndarray]:
        view = self._view(symbol, freq)
        values = view.fields.get(field)
        if values is None:
            raise NoDataError(unknown_field(field, view))
        n = last_at_or_before(view.ts_end, t, self._hints.get((symbol, freq), 0)) + 1
        self._hints[(symbol, freq)] = n - 1
        part = partial_bar(view, self._base(symbol), t, field, n) if partial else None
        if part is None:
            lo = max(n - bar_count, 0)
            return view.ts_end[lo:n], values[lo:n].copy()  # never hand out the store's memory
        lo = max(n - bar_count + 1, 0)
        out = np.empty(n + 1 - lo)
        out[:-1] = values[lo:n]
        out[-1] = part
        return view.ts_end[lo:n + 1], out

    def _align(self, names: list[str], freq: str, parts: list[tuple[np.ndarray, np.ndarray]],
               bar_count: int, t: int) -> tuple[np.ndarray, np.ndarray]:
        ends = np.unique(np.concatenate([p[0] for p in parts]))[-bar_count:]
        if len(ends) < bar_count:
            first = np.unique(np.concatenate([self._view(a, freq).ts_end[:bar_count] for a in names]))
            valid = int(first[bar_count - 1]) if len(first) >= bar_count else None
            where = f"first valid end {format_ns(valid)}" if valid is not None else "not enough bars loaded"
            raise HistoryWindowStartsBeforeData(
                f"{bar_count} bars of {freq} for {', '.join(names)} at {format_ns(t)} start before the "
                f"loaded data ({len(ends)} available; {where})",
                first_valid_end=None if valid is None else from_ns(valid),
            )
        out = np.full((bar_count, len(names)), np.nan)
        for j, (e, values) in enumerate(parts):
            pos = ends.searchsorted(e)
            ok = (pos < bar_count) & (ends[np.minimum(pos, bar_count - 1)] == e)
            out[pos[ok], j] = values[ok]
        return ends, out


def _window_frame(names: list[str], ends: np.ndarray, out: np.ndarray) -> pl.DataFrame:
    columns: dict[str, pl.Series | np.ndarray] = {"ts_end": pl.Series(ends, dtype=pl.Int64).cast(TS)}
    columns.update({name: out[:, j] for j, name in enumerate(names)})
    return pl.DataFrame(columns)


def unknown_field(field: str, series: BarSeries) -> str:
    """The error message for a ``field`` that ``series`` does not carry."""
    return f"unknown field {field!r} for {series.symbol}; available: {', '.join(series.fields)}"
