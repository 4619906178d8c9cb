"""Parameter sweeps that stream parameter columns: each indicator line is computed once, each
parameter pair is simulated inside a parallel numba loop straight from the lines, and only one row
of metrics per pair is kept. Nothing of size bars x combinations is ever allocated, so a sweep of
1,000 pairs over 100,000 bars needs the prices plus one array per distinct window.

Example::

    table = sma_crossover_sweep(close, fast=range(5, 55, 5), slow=range(20, 220, 2), open=open_)
    table.sort("sharpe", descending=True).head()
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import polars as pl
from numba import njit, prange

from ..analytics import metrics_frame
from ..errors import ConfigError
from ..indicators._kernels import plain, sma4_kernel, sma_kernel
from . import _kernel as k
from .engine import NO_BLOCKS, ArrayLike, _prices, block_bounds, cost_params

_NO_BOOL = np.zeros((0, 0), dtype=np.bool_)
_NO_FLOAT = np.zeros((0, 0))
_NO_TRADES = np.zeros((0, k.N_TRADE_FIELDS))
_NO_INDEX = np.zeros(0, dtype=np.int64)


@njit(cache=True, parallel=True, error_model="numpy")
def _sma_rows(close: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """One SMA row per window (rows x bars): four windows per pass, passes in parallel."""
    n = windows.shape[0]
    if not plain(close):
        out = np.empty((n, close.shape[0]))
        for r in prange(n):
            sma_kernel(close, windows[r], out[r])
        return out
    groups = (n + 3) // 4
    out = np.empty((groups * 4, close.shape[0]))
    last = n - 1  # the last group repeats its last window as needed
    for g in prange(groups):
        a = 4 * g
        sma4_kernel(close, windows[a], windows[min(a + 1, last)], windows[min(a + 2, last)],
                    windows[min(a + 3, last)], out[a : a + 4])  # fmt: skip
    return out[:n]


def sma_pairs(fast: Iterable[int], slow: Iterable[int]) -> np.ndarray:
    """All ``(fast, slow)`` pairs with ``fast < slow`` as an (n, 2) int64 array, fast-major."""
    pairs = [(f, s) for f in fast for s in slow if f < s]
    if not pairs:
        raise ConfigError("no (fast, slow) pair with fast < slow")
    return np.asarray(pairs, dtype=np.int64)


def crossover_sweep(
    close: ArrayLike,
    lines: np.ndarray,
    pairs: np.ndarray,
    *,
    open: ArrayLike | None = None,
    high: ArrayLike | None = None,
    low: ArrayLike | None = None,
    blocks: int = 0,
    **options: object,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Metrics (pairs x ``METRIC_NAMES``) of "long when line a crosses above line b" per row pair.

    ``lines`` is (lines x bars), ``pairs`` is (n, 2) row indices ``(a, b)``. Options are those of
    ``simulate`` plus ``allow_short`` (reverse to short on the opposite crossover). With
    ``blocks=P`` returns ``(metrics, sums)``, ``sums`` (pairs x 2 x P) as ``VectorResult.blocks``.
    """
    o, h, lo, c = _prices(close, open, high, low)
    if c.shape[0] != 1:
        raise ConfigError("a sweep runs on one price series; pass 1-D prices")
    rows = np.ascontiguousarray(lines, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != c.shape[1]:
        raise ConfigError(f"lines must be (lines x {c.shape[1]} bars), got shape {rows.shape}")
    idx = np.asarray(pairs, dtype=np.int64)
    if idx.ndim != 2 or idx.shape[1] != 2 or idx.shape[0] == 0:
        raise ConfigError(f"pairs must be a non-empty (n, 2) array of line indices, got shape {idx.shape}")
    if idx.min() < 0 or idx.max() >= rows.shape[0]:
        raise ConfigError(f"pair indices must be within 0..{rows.shape[0] - 1}")
    params = cost_params(idx.shape[0], **options)  # type: ignore[arg-type]
    bounds = block_bounds(c.shape[1], blocks) if blocks else _NO_INDEX
    sums = np.zeros((idx.shape[0], 2, blocks)) if blocks else NO_BLOCKS
    metrics, _ = k.run_columns(
        o, h, lo, c, _NO_BOOL, _NO_BOOL, _NO_BOOL, _NO_BOOL, _NO_FLOAT, rows,
        np.ascontiguousarray(idx[:, 0]), np.ascontiguousarray(idx[:, 1]), k.MODE_CROSS, params,
        idx.shape[0], _NO_FLOAT, _NO_TRADES, _NO_INDEX, bounds, sums,
    )  # fmt: skip
    return (metrics, sums) if blocks else metrics


def sma_crossover_sweep(
    close: ArrayLike,
    fast: Iterable[int] | None = None,
    slow: Iterable[int] | None = None,
    *,
    pairs: Sequence[tuple[int, int]] | np.ndarray | None = None,
    **options: Any,
) -> pl.DataFrame:
    """Metrics of ``sma_crossover(fast, slow)`` for every pair, one row each (columns fast, slow, ...).

    Give ``fast`` and ``slow`` window ranges (pairs with fast < slow are kept) or explicit
    ``pairs``. Same semantics as the built-in strategy: long all-in (whole shares) when the fast SMA
    crosses above the slow one, flat (or short with ``allow_short=True``) when it crosses below.
    Other options as in ``simulate`` (open, high, low, cash, commission, fill...).
    """
    if pairs is None:
        if fast is None or slow is None:
            raise ConfigError("give fast and slow window ranges, or pairs")
        grid = sma_pairs(fast, slow)
    else:
        grid = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if grid.size == 0 or grid.min() < 1:
        raise ConfigError("SMA windows must be positive integers")
    windows, inverse = np.unique(grid, return_inverse=True)
    close_1d = np.require(np.asarray(close, dtype=np.float64), requirements=("C", "W"))
    if close_1d.ndim != 1:
        raise ConfigError(f"close must be one-dimensional for a sweep, got shape {close_1d.shape}")
    lines = _sma_rows(close_1d, windows)
    metrics = crossover_sweep(close_1d, lines, inverse.reshape(grid.shape), **options)
    table = metrics_frame(metrics[0] if isinstance(metrics, tuple) else metrics)
    return table.insert_column(0, pl.Series("slow", grid[:, 1])).insert_column(
        0, pl.Series("fast", grid[:, 0])
    )
