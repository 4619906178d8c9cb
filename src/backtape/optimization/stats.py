"""Overfitting statistics and Monte Carlo helpers for optimization results.

* ``deflated_sharpe_ratio``: Bailey & Lopez de Prado (2014). The probability that the best
  Sharpe ratio of ``n_trials`` is above what the best of that many skill-less trials would show,
  correcting for the returns' skewness and kurtosis.
* ``probability_of_backtest_overfitting``: Bailey, Borwein, Lopez de Prado & Zhu (2015),
  combinatorially symmetric cross-validation (CSCV). The bars are cut into ``n_partitions``
  blocks; for every way of choosing half of them as in-sample, the in-sample best configuration's
  out-of-sample rank is recorded; PBO is the share of splits where it lands in the bottom half.
* ``reshuffle_trades`` / ``bootstrap_returns``: seeded Monte Carlo of the trade order and of
  block-resampled returns, summarized as percentiles of final equity, max drawdown and Sharpe.
"""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist

import numpy as np
import polars as pl
from numba import njit

from ..errors import ConfigError

_EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


def sharpe_ratio(returns: np.ndarray) -> float:
    """Per-period (not annualized) Sharpe ratio ``mean / std(ddof=1)`` of a return series."""
    r = np.asarray(returns, dtype=np.float64)
    sd = r.std(ddof=1) if r.size > 1 else np.nan
    return float(r.mean() / sd) if sd > 0 else math.nan


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Expected maximum of ``n_trials`` Sharpe ratios of zero true skill (the DSR benchmark)."""
    if n_trials < 1:
        raise ConfigError(f"n_trials must be >= 1, got {n_trials}")
    if n_trials == 1:
        return 0.0
    z1 = _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    z2 = _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(sharpe_variance) * ((1.0 - _EULER_GAMMA) * z1 + _EULER_GAMMA * z2)


def probabilistic_sharpe_ratio(
    sharpe: float, benchmark: float, n_obs: int, skew: float, kurtosis: float
) -> float:
    """P(true Sharpe > ``benchmark``) given an observed per-period ``sharpe`` over ``n_obs`` returns.

    ``kurtosis`` is the plain (non-excess) kurtosis, 3 for normal returns.
    """
    if n_obs < 2:
        return math.nan
    denom = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe
    if denom <= 0:
        return math.nan
    z = (sharpe - benchmark) * math.sqrt(n_obs - 1.0) / math.sqrt(denom)
    return _NORMAL.cdf(z)


def deflated_sharpe_ratio(
    best_returns: np.ndarray, trial_sharpes: np.ndarray, n_trials: int | None = None
) -> float:
    """Deflated Sharpe ratio of the selected configuration.

    ``best_returns`` are the per-bar returns of the chosen configuration, ``trial_sharpes`` the
    per-period (not annualized) Sharpe ratios of all configurations tried (their variance sets the
    benchmark), ``n_trials`` defaults to their count. Returns a probability in [0, 1]; above 0.95
    the selection is unlikely to be luck alone.
    """
    r = np.asarray(best_returns, dtype=np.float64)
    trials = np.asarray(trial_sharpes, dtype=np.float64)
    trials = trials[np.isfinite(trials)]
    if r.size < 3:
        raise ConfigError("deflated_sharpe_ratio needs at least 3 returns")
    n = int(trials.size if n_trials is None else n_trials)
    var = float(trials.var(ddof=1)) if trials.size > 1 else 0.0
    sr = sharpe_ratio(r)
    sd = r.std()
    if not math.isfinite(sr) or sd == 0:
        return math.nan
    z = (r - r.mean()) / sd
    skew = float(np.mean(z**3))
    kurt = float(np.mean(z**4))
    return probabilistic_sharpe_ratio(sr, expected_max_sharpe(n, var), r.size, skew, kurt)


def probability_of_backtest_overfitting(
    returns: np.ndarray, n_partitions: int = 16, max_splits: int | None = None, seed: int = 0
) -> dict[str, float]:
    """PBO by CSCV from a (bars x configurations) matrix of per-bar returns.

    ``n_partitions`` (even) blocks give C(S, S/2) splits; with ``max_splits`` a seeded random subset
    of them is used. Performance in each half is the per-period Sharpe ratio. Returns ``pbo``, the
    number of ``splits`` and the mean out-of-sample rank ``logit`` (negative is overfit).
    """
    m = np.asarray(returns, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] < 2:
        raise ConfigError(f"returns must be (bars x configurations) with >= 2 configurations, got {m.shape}")
    if n_partitions < 2 or n_partitions % 2:
        raise ConfigError(f"n_partitions must be an even number >= 2, got {n_partitions}")
    if m.shape[0] < 2 * n_partitions:
        raise ConfigError(f"{m.shape[0]} bars are too few for {n_partitions} partitions")
    s1, s2, cnt = block_sums(m, n_partitions)
    return pbo_from_block_sums(s1, s2, cnt, max_splits=max_splits, seed=seed)


def block_sums(returns: np.ndarray, n_partitions: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-block sums of r and r^2 (partitions x configurations) and block lengths, for CSCV.

    Sums over equal consecutive blocks are all CSCV needs, so a sweep can feed configurations in
    chunks without ever holding the full bars x configurations matrix.
    """
    m = np.asarray(returns, dtype=np.float64)
    bounds = np.linspace(0, m.shape[0], n_partitions + 1).astype(np.int64)
    s1 = np.add.reduceat(m, bounds[:-1], axis=0)
    s2 = np.add.reduceat(m * m, bounds[:-1], axis=0)
    return s1, s2, np.diff(bounds).astype(np.float64)


def pbo_from_block_sums(
    s1: np.ndarray, s2: np.ndarray, cnt: np.ndarray, max_splits: int | None = None, seed: int = 0
) -> dict[str, float]:
    """PBO by CSCV from ``block_sums`` output (see ``probability_of_backtest_overfitting``).

    The splits are evaluated in batches as matrix products (splits x configurations), so a
    thousand configurations and a few thousand splits take milliseconds, not a Python loop.
    """
    n_partitions = s1.shape[0]
    combos = list(itertools.combinations(range(n_partitions), n_partitions // 2))
    if max_splits is not None and max_splits < len(combos):
        pick = np.random.default_rng(seed).choice(len(combos), size=max_splits, replace=False)
        combos = [combos[i] for i in sorted(pick)]
    masks = np.zeros((len(combos), n_partitions))
    for j, combo in enumerate(combos):
        masks[j, list(combo)] = 1.0
    batch = max(1, 4_000_000 // max(1, s1.shape[1]))  # bounds the (splits x configurations) matrices
    logits = np.concatenate(
        [_split_logits(masks[k : k + batch], s1, s2, cnt) for k in range(0, len(combos), batch)]
    )
    return {"pbo": float(np.mean(logits <= 0)), "splits": float(len(combos)), "logit": float(logits.mean())}


def _split_logits(ins: np.ndarray, s1: np.ndarray, s2: np.ndarray, cnt: np.ndarray) -> np.ndarray:
    """Logit of the out-of-sample rank of each split's in-sample winner (one value per split row)."""
    is_sr = _block_sharpe(ins, s1, s2, cnt)
    oos = _block_sharpe(1.0 - ins, s1, s2, cnt)
    rows = np.arange(ins.shape[0])
    best = oos[rows, np.argmax(is_sr, axis=1)][:, None]
    below = np.sum(oos < best, axis=1)
    ties = np.sum(oos == best, axis=1) - 1
    rank = (below + 0.5 * ties + 1) / (oos.shape[1] + 1)
    return np.log(rank / (1.0 - rank))


def _block_sharpe(masks: np.ndarray, s1: np.ndarray, s2: np.ndarray, cnt: np.ndarray) -> np.ndarray:
    """Per-period Sharpe (splits x configurations) of the blocks each mask row selects (-inf if flat)."""
    n = (masks @ cnt)[:, None]
    mean = (masks @ s1) / n
    var = ((masks @ s2) - n * mean * mean) / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sr = mean / np.sqrt(var)
    return np.where(var > 0, sr, -np.inf)


@njit(cache=True, error_model="numpy")
def _path_stats(returns: np.ndarray, cash: float, out: np.ndarray) -> None:
    """Final equity, max drawdown and per-period Sharpe of compounding ``returns`` from ``cash``."""
    eq = cash
    peak = cash
    mdd = 0.0
    mean = 0.0
    m2 = 0.0
    for i in range(returns.shape[0]):
        r = returns[i]
        eq *= 1.0 + r
        peak = max(peak, eq)
        if peak > 0:
            mdd = max(mdd, 1.0 - eq / peak)
        d = r - mean
        mean += d / (i + 1)
        m2 += d * (r - mean)
    n = returns.shape[0]
    sd = np.sqrt(m2 / (n - 1)) if n > 1 else np.nan
    out[0] = eq
    out[1] = mdd
    out[2] = mean / sd if n > 1 and sd > 0 else np.nan


def path_statistics(returns: np.ndarray, cash: float) -> tuple[float, float, float]:
    """(final equity, max drawdown, per-period Sharpe) of compounding ``returns`` from ``cash``."""
    out = np.empty(3)
    _path_stats(np.ascontiguousarray(returns, dtype=np.float64), float(cash), out)
    return float(out[0]), float(out[1]), float(out[2])


@njit(cache=True, error_model="numpy")
def simulate_paths(returns: np.ndarray, index: np.ndarray, cash: float) -> np.ndarray:
    out = np.empty((index.shape[0], 3))
    path = np.empty(index.shape[1])
    for s in range(index.shape[0]):
        for i in range(index.shape[1]):
            path[i] = returns[index[s, i]]
        _path_stats(path, cash, out[s])
    return out


def percentile_table(
    paths: np.ndarray, percentiles: tuple[float, ...], periods_per_year: float
) -> pl.DataFrame:
    stats = {
        "final_equity": paths[:, 0],
        "max_drawdown": paths[:, 1],
        "sharpe": paths[:, 2] * math.sqrt(periods_per_year),
    }
    return pl.DataFrame(
        {
            "percentile": list(percentiles),
            **{name: np.nanpercentile(v, percentiles) for name, v in stats.items()},
        }
    )


_PCTS = (5.0, 25.0, 50.0, 75.0, 95.0)


def reshuffle_trades(
    trade_returns: np.ndarray,
    *,
    cash: float = 10_000.0,
    n_simulations: int = 1000,
    seed: int = 0,
    percentiles: tuple[float, ...] = _PCTS,
) -> pl.DataFrame:
    """Percentiles of final equity, max drawdown and per-trade Sharpe over random trade orders.

    ``trade_returns`` are per-trade returns on equity (``pnl / equity before the trade``); the
    final equity is order-independent, the drawdown is not. Seeded: same seed, same table.
    """
    r = np.asarray(trade_returns, dtype=np.float64)
    if r.ndim != 1 or r.size == 0:
        raise ConfigError("trade_returns must be a non-empty 1-D array")
    rng = np.random.default_rng(seed)
    index = np.argsort(rng.random((n_simulations, r.size)), axis=1)
    return percentile_table(simulate_paths(r, index, float(cash)), percentiles, 1.0)


def bootstrap_returns(
    returns: np.ndarray,
    *,
    cash: float = 10_000.0,
    n_simulations: int = 1000,
    block_size: int = 20,
    periods_per_year: float = 252.0,
    seed: int = 0,
    percentiles: tuple[float, ...] = _PCTS,
) -> pl.DataFrame:
    """Percentiles of final equity, max drawdown and annualized Sharpe over block-bootstrapped paths.

    Each path concatenates random contiguous blocks of ``block_size`` returns (keeping short-range
    autocorrelation) until it has as many returns as the input. Seeded.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1 or r.size < 2:
        raise ConfigError("returns must be a 1-D array of at least 2 values")
    if not np.isfinite(r).all():
        raise ConfigError(f"returns has a non-finite value at row {int(np.flatnonzero(~np.isfinite(r))[0])}")
    index = bootstrap_index(r.size, n_simulations, block_size, seed)
    return percentile_table(simulate_paths(r, index, float(cash)), percentiles, periods_per_year)


def bootstrap_index(n: int, n_simulations: int, block_size: int,
                    seed: int | np.random.SeedSequence) -> np.ndarray:
    """Row indices of ``n_simulations`` block-bootstrapped paths of ``n`` returns (seeded)."""
    block = max(1, min(int(block_size), n))
    n_blocks = -(-n // block)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n - block + 1, size=(n_simulations, n_blocks))
    index = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(n_simulations, -1)[:, :n]
    return np.ascontiguousarray(index)
