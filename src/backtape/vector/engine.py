"""Vectorized backtests: many columns (parameter sets or symbols) simulated by one numba loop.

``simulate`` takes prices (1-D, or 2-D time x columns) and either entry/exit signals or target
positions (time x columns) and returns equity, trades and metrics per column. Fills, costs and
sizing follow ``backtape.fills`` exactly (the event engine uses the same description), metrics
follow ``backtape.analytics``. Example::

    from backtape.vector import simulate, sma, crossed_above, crossed_below
    fast, slow = sma(close, 10), sma(close, 20)
    res = simulate(close, open=open_, entries=crossed_above(fast, slow),
                   exits=crossed_below(fast, slow), commission=0.002)
    res.metrics["sharpe"][0], res.trades

Signals: at each bar the first that applies wins: a long entry when not long (reversing a short),
a short entry when not short (reversing a long), a long exit when long, a short exit when short.
Targets (``targets=``): NaN keeps the position, any other value is the wanted position in the
units of ``size_type`` ("percent" of equity, "shares", or cash "value"; negative is short).
Stops are fractions of the average entry price: ``stop_loss=0.05`` exits a long 5% below it,
``trailing_stop=0.1`` 10% below the highest high since entry (the bar being checked excluded),
``take_profit`` above it; they are active from the entry bar when filled at its open, else from the
next bar.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Literal, TypedDict, Unpack

import numba
import numpy as np
import polars as pl

from ..analytics import metrics_dict, metrics_frame
from ..errors import ConfigError
from ..fills import fill_mode
from . import _kernel as k

SizeType = Literal["percent", "shares", "value"]
_SIZE_TYPES = {"percent": k.SIZE_PERCENT, "shares": k.SIZE_SHARES, "value": k.SIZE_VALUE}
ArrayLike = np.ndarray | pl.Series | list


class VectorResult:
    """Output of ``simulate``: ``equity`` (numpy, bars x columns), ``trades`` and ``metrics`` (Polars).

    ``trades`` has one row per closed round trip (``reason`` says why it closed) plus one row with
    ``is_open`` true per position still open at the last bar (marked at the last close, not counted
    in the metrics). ``metrics`` has one row per column, ``column`` first. Both tables are built
    from the raw arrays (``metric_values``, ``trade_records``) on first access.
    """

    def __init__(self, equity: np.ndarray, metric_values: np.ndarray, trade_records: np.ndarray,
                 blocks: np.ndarray | None = None) -> None:
        self.equity = equity
        self.metric_values = metric_values
        self.trade_records = trade_records
        #: per column, sums of the returns and of their squares per block (``simulate(blocks=...)``)
        self.blocks = blocks

    @cached_property
    def trades(self) -> pl.DataFrame:
        """One row per trade (see the class doc)."""
        return trades_frame(self.trade_records)

    @cached_property
    def metrics(self) -> pl.DataFrame:
        """One row of metrics per column."""
        return metrics_frame(self.metric_values).insert_column(
            0, pl.Series("column", np.arange(self.metric_values.shape[0]))
        )

    def column_metrics(self, col: int = 0) -> dict[str, float]:
        """The metrics of one column as a dict."""
        return metrics_dict(self.metric_values[col])

    def __repr__(self) -> str:
        return (
            f"VectorResult({self.equity.shape[1]} column(s) x {self.equity.shape[0]} bars, "
            f"{self.trade_records.shape[0]} trade record(s))"
        )


def _matrix(x: ArrayLike, name: str, dtype: type, n_rows: int | None = None) -> np.ndarray:
    """A bars x columns input as the kernel's C-ordered columns x bars array."""
    arr: np.ndarray = np.asarray(x, dtype=dtype)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ConfigError(f"{name} must be 1-D or 2-D (bars x columns), got shape {arr.shape}")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise ConfigError(f"{name} has {arr.shape[0]} bars but close has {n_rows}")
    return np.require(arr.T, requirements=("C", "W"))


def _check_prices(name: str, arr: np.ndarray) -> None:
    if k.all_valid(arr):
        return
    col, row = k.first_invalid(arr)
    if col >= 0:
        raise ConfigError(f"{name} must be finite and positive: bar {row}, column {col} is {arr[col, row]!r}")


def _prices(
    close: ArrayLike, open_: ArrayLike | None, high: ArrayLike | None, low: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    c = _matrix(close, "close", np.float64)
    n = c.shape[1]
    o = c if open_ is None else _matrix(open_, "open", np.float64, n)
    if o.shape != c.shape:
        raise ConfigError(f"open has shape {o.shape} but close has {c.shape}")
    h = np.maximum(o, c) if high is None else _matrix(high, "high", np.float64, n)
    lo = np.minimum(o, c) if low is None else _matrix(low, "low", np.float64, n)
    for name, arr in (("close", c), ("open", o), ("high", h), ("low", lo)):
        if arr.shape != c.shape:
            raise ConfigError(f"{name} has shape {arr.shape} but close has {c.shape}")
        _check_prices(name, arr)
    return o, h, lo, c


def _params(n_cols: int, **values: float | ArrayLike) -> np.ndarray:
    """The per-column parameter matrix (one row when every parameter is a scalar)."""
    arrays = {name: np.asarray(v, dtype=np.float64) for name, v in values.items()}
    rows = 1
    for name, arr in arrays.items():
        if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] not in (1, n_cols)):
            raise ConfigError(f"{name} must be a scalar or one value per column ({n_cols})")
        if arr.ndim == 1 and arr.shape[0] == n_cols:
            rows = n_cols
    params = np.zeros((rows, k.N_PARAMS))
    slots = {
        "cash": k.P_CASH, "commission": k.P_RATE, "fixed_commission": k.P_FIXED,
        "slippage_bps": k.P_SLIP, "size": k.P_SIZE, "size_type": k.P_SIZE_TYPE,
        "fractional": k.P_FRACTIONAL, "stop_loss": k.P_SL, "take_profit": k.P_TP,
        "trailing_stop": k.P_TRAIL, "fill": k.P_FILL, "allow_short": k.P_ALLOW_SHORT,
        "periods_per_year": k.P_PPY,
    }  # fmt: skip
    for name, arr in arrays.items():
        params[:, slots[name]] = np.broadcast_to(arr.reshape(-1), (rows,)) if arr.ndim else arr
    for name in ("cash", "periods_per_year"):
        if (params[:, slots[name]] <= 0).any():
            raise ConfigError(f"{name} must be positive")
    for name in ("commission", "fixed_commission", "slippage_bps", "stop_loss", "take_profit",
                 "trailing_stop"):  # fmt: skip
        col = params[:, slots[name]]
        if (col < 0).any() or not np.isfinite(col).all():
            raise ConfigError(f"{name} must be finite and >= 0 (0 disables it)")
    return params


class CostOptions(TypedDict, total=False):
    """The trading options of ``cost_params`` as keyword arguments (``simulate`` and the sweeps)."""

    cash: float | ArrayLike
    commission: float | ArrayLike
    fixed_commission: float | ArrayLike
    slippage_bps: float | ArrayLike
    size: float | ArrayLike
    size_type: SizeType
    fractional: bool
    stop_loss: float | ArrayLike | None
    take_profit: float | ArrayLike | None
    trailing_stop: float | ArrayLike | None
    fill: str
    periods_per_year: float


def cost_params(
    n_cols: int,
    *,
    cash: float | ArrayLike = 10_000.0,
    commission: float | ArrayLike = 0.0,
    fixed_commission: float | ArrayLike = 0.0,
    slippage_bps: float | ArrayLike = 0.0,
    size: float | ArrayLike = 1.0,
    size_type: SizeType = "percent",
    fractional: bool = False,
    stop_loss: float | ArrayLike | None = None,
    take_profit: float | ArrayLike | None = None,
    trailing_stop: float | ArrayLike | None = None,
    fill: str = "next_open",
    allow_short: bool = False,
    periods_per_year: float = 252.0,
) -> np.ndarray:
    """Validate the trading options shared by ``simulate`` and the sweeps into a parameter matrix."""
    if size_type not in _SIZE_TYPES:
        raise ConfigError(f"size_type must be one of {sorted(_SIZE_TYPES)}, got {size_type!r}")
    return _params(
        n_cols,
        cash=cash,
        commission=commission,
        fixed_commission=fixed_commission,
        slippage_bps=slippage_bps,
        size=size,
        size_type=_SIZE_TYPES[size_type],
        fractional=float(fractional),
        stop_loss=0.0 if stop_loss is None else stop_loss,
        take_profit=0.0 if take_profit is None else take_profit,
        trailing_stop=0.0 if trailing_stop is None else trailing_stop,
        fill=fill_mode(fill),
        allow_short=float(allow_short),
        periods_per_year=periods_per_year,
    )


_NO_BOOL = np.zeros((0, 0), dtype=np.bool_)
_NO_FLOAT = np.zeros((0, 0))
_NO_INDEX = np.zeros(0, dtype=np.int64)
NO_BLOCKS = np.zeros((0, 2, 0))


def block_bounds(n_bars: int, n_partitions: int) -> np.ndarray:
    """Starts of ``n_partitions`` equal consecutive blocks of the ``n_bars - 1`` returns, then their count.

    The same blocks as ``backtape.optimization.stats.block_sums`` on ``np.diff(equity) / equity[:-1]``.
    """
    if n_partitions < 1 or n_bars - 1 < n_partitions:
        raise ConfigError(f"{n_bars} bars are too few for {n_partitions} return blocks")
    return np.linspace(0, n_bars - 1, n_partitions + 1).astype(np.int64)


_REASON_NAMES = np.array(k.REASONS, dtype=object)
_REASON_ENUM = pl.Enum(list(k.REASONS))


def trades_frame(records: np.ndarray) -> pl.DataFrame:
    """Polars table of raw trade records (see ``_kernel.T_*``)."""
    return pl.DataFrame(
        {
            "column": records[:, k.T_COL].astype(np.int64),
            "entry_idx": records[:, k.T_ENTRY_IDX].astype(np.int64),
            "exit_idx": records[:, k.T_EXIT_IDX].astype(np.int64),
            "entry_price": records[:, k.T_ENTRY_PRICE],
            "exit_price": records[:, k.T_EXIT_PRICE],
            "size": records[:, k.T_SIZE],
            "pnl": records[:, k.T_PNL],
            "commission": records[:, k.T_COMM],
            "reason": pl.Series(_REASON_NAMES[records[:, k.T_REASON].astype(np.int64)], dtype=_REASON_ENUM),
            "is_open": records[:, k.T_REASON] == k.REASON_OPEN,
        }
    )


def simulate(
    close: ArrayLike,
    *,
    open: ArrayLike | None = None,
    high: ArrayLike | None = None,
    low: ArrayLike | None = None,
    entries: ArrayLike | None = None,
    exits: ArrayLike | None = None,
    short_entries: ArrayLike | None = None,
    short_exits: ArrayLike | None = None,
    targets: ArrayLike | None = None,
    trades: bool = True,
    blocks: int = 0,
    **options: Unpack[CostOptions],
) -> VectorResult:
    """Backtest every column of the signals (or targets) against the prices; see the module doc.

    Prices may have one column (shared) or one per signal column. ``open`` defaults to ``close``
    and ``high``/``low`` to the larger/smaller of open and close. ``options`` are those of
    ``cost_params`` (cash, commission, fixed_commission, slippage_bps, size, size_type, fractional,
    stop_loss, take_profit, trailing_stop, fill, periods_per_year); numeric ones may hold one value
    per column. ``trades=False`` skips building the trades table (a second pass over the data).
    ``blocks=P`` also returns, in ``result.blocks`` (columns x 2 x P), the sums of the per-bar
    returns and of their squares over P equal consecutive blocks (for PBO and the Deflated Sharpe).
    """
    o, h, lo, c = _prices(close, open, high, low)
    n = c.shape[1]
    if n == 0:
        raise ConfigError("close has no bars")
    signals = {"entries": entries, "exits": exits, "short_entries": short_entries, "short_exits": short_exits}
    given = {name: _matrix(v, name, np.bool_, n) for name, v in signals.items() if v is not None}
    if targets is not None and given:
        raise ConfigError("give either targets or entry/exit signals, not both")
    if targets is None and not given:
        raise ConfigError("give entries (and exits) or targets")
    if targets is not None:
        tg = _matrix(targets, "targets", np.float64, n)
        if np.isinf(tg).any():
            raise ConfigError("targets must be finite or NaN (NaN keeps the position)")
        n_cols, mode = tg.shape[0], k.MODE_TARGETS
    else:
        n_cols = max(v.shape[0] for v in given.values())
        mode, tg = k.MODE_SIGNALS, _NO_FLOAT
    if c.shape[0] not in (1, n_cols):
        raise ConfigError(f"prices have {c.shape[0]} columns but the signals have {n_cols}")
    if "allow_short" in options:
        raise ConfigError("simulate takes short_entries/short_exits rather than allow_short")
    sig = []
    for name in signals:
        arr = given.get(name)
        if arr is None:
            arr = np.zeros((n_cols, n), dtype=np.bool_) if mode == k.MODE_SIGNALS else _NO_BOOL
        elif arr.shape[0] != n_cols:
            if arr.shape[0] != 1:
                raise ConfigError(f"{name} has {arr.shape[0]} columns, expected 1 or {n_cols}")
            arr = np.require(np.broadcast_to(arr, (n_cols, n)), requirements=("C", "W"))
        sig.append(arr)
    params = cost_params(n_cols, **options)
    equity = np.empty((n_cols, n))
    if trades:
        # Every trade record starts with an entry (a signal or a target), so this bounds them.
        bound = (sig[0].sum(axis=1) + sig[2].sum(axis=1) if mode == k.MODE_SIGNALS else
                 (~np.isnan(tg)).sum(axis=1)) + 1  # fmt: skip
        offsets = np.concatenate(([0], np.cumsum(bound)[:-1])).astype(np.int64)
        buffer = np.empty((int(bound.sum()), k.N_TRADE_FIELDS))
    else:
        offsets, buffer = _NO_INDEX, np.zeros((0, k.N_TRADE_FIELDS))
    bounds = block_bounds(n, blocks) if blocks else _NO_INDEX
    sums = np.zeros((n_cols, 2, blocks)) if blocks else NO_BLOCKS
    le, lx, se, sx = sig
    with _threads(n_cols):
        metrics, counts = k.run_columns(o, h, lo, c, le, lx, se, sx, tg, _NO_FLOAT, _NO_INDEX,
                                        _NO_INDEX, mode, params, n_cols, equity, buffer, offsets, bounds,
                                        sums)  # fmt: skip
    if n_cols == 1 or not trades:
        records = buffer[: int(counts[0])] if trades else buffer
    else:
        records = buffer[np.concatenate([np.arange(a, a + m) for a, m in zip(offsets, counts, strict=True)])]
    return VectorResult(equity.T, metrics, records, sums if blocks else None)


@contextmanager
def _threads(n_cols: int) -> Iterator[None]:
    """Use no more numba threads than columns (idle threads only add scheduling latency)."""
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(before, n_cols)))
    try:
        yield
    finally:
        numba.set_num_threads(before)
