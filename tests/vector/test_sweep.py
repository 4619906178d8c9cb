"""The streaming sweep gives exactly the metrics of one simulate() per parameter pair."""

from __future__ import annotations

import numpy as np
import pytest

from backtape.analytics import METRIC_NAMES
from backtape.errors import ConfigError
from backtape.vector import crossed_above, crossed_below, simulate, sma, sma_crossover
from backtape.vector.sweep import sma_crossover_sweep, sma_pairs

RNG = np.random.default_rng(5)
CLOSE = 100 * np.exp(np.cumsum(RNG.normal(0, 0.01, 600)))
OPEN = CLOSE * np.exp(RNG.normal(0, 0.002, 600))


@pytest.mark.parametrize("allow_short", [False, True])
def test_sweep_equals_individual_runs(allow_short: bool) -> None:
    table = sma_crossover_sweep(CLOSE, [3, 5], [8, 13], open=OPEN, commission=0.001, allow_short=allow_short)
    assert table.select("fast", "slow").rows() == [(3, 8), (3, 13), (5, 8), (5, 13)]
    for row in table.iter_rows(named=True):
        f, s = sma(CLOSE, row["fast"]), sma(CLOSE, row["slow"])
        up, down = crossed_above(f, s), crossed_below(f, s)
        shorts = {"short_entries": down, "short_exits": up} if allow_short else {}
        one = simulate(CLOSE, open=OPEN, entries=up, exits=down, commission=0.001, **shorts).column_metrics()
        for name in METRIC_NAMES:
            assert row[name] == pytest.approx(one[name], rel=1e-12, nan_ok=True), name


def test_pairs_keep_fast_below_slow() -> None:
    pairs = sma_pairs(range(5, 51, 5), range(20, 219, 2))
    assert (pairs[:, 0] < pairs[:, 1]).all() and len(pairs) == 942
    with pytest.raises(ConfigError, match="fast < slow"):
        sma_pairs([10], [5])


def test_sma_crossover_helper_matches_manual_signals() -> None:
    res = sma_crossover(CLOSE, 5, 13, open=OPEN, allow_short=True, commission=0.001)
    f, s = sma(CLOSE, 5), sma(CLOSE, 13)
    up, down = crossed_above(f, s), crossed_below(f, s)
    manual = simulate(
        CLOSE, open=OPEN, entries=up, exits=down, short_entries=down, short_exits=up, commission=0.001
    )
    assert res.trades.equals(manual.trades)
