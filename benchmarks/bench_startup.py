"""The first command: whole-process wall times of `import backtape`, `backtape --help` and the smallest
backtest on the sample, in fresh processes with warm caches (median of several runs), beside the peers'
import times from the same run.

    python benchmarks/bench_startup.py [runs]
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
BACKTAPE = str(Path(PY).parent / "backtape")


def _wall(cmd: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median and best wall time (s) of ``cmd`` over ``runs`` fresh processes (after one warm-up)."""
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    env = {**os.environ, "BACKTAPE_RESULTS_DB": str(work / "results.db"),
           "BACKTAPE_CACHE_DIR": str(work / "c")}
    backtest = [BACKTAPE, "backtest", "sma_crossover", "--symbols", "AAPL", "--start", "2013-01-01",
                "--end", "2014-01-01", "--no-store"]
    rows = [
        ("python -c pass (interpreter alone)", [PY, "-c", "pass"], "-"),
        ("import backtape", [PY, "-c", "import backtape"], "<= 0.3 s"),
        ("backtape --help", [BACKTAPE, "--help"], "<= 0.3 s"),
        ("backtape backtest sma_crossover AAPL 2013 (sample)", backtest, "<= 1 s"),
    ]
    for peer in ("backtesting", "backtrader", "vectorbt"):
        if importlib.util.find_spec(peer) is not None:
            rows.append((f"peer: import {peer}", [PY, "-c", f"import {peer}"], "-"))
    print(f"{'command':<52} {'median':>8} {'best':>8}  goal")
    for label, cmd, goal in rows:
        median, best = _wall(cmd, env, runs)
        print(f"{label:<52} {median:>7.3f}s {best:>7.3f}s  {goal}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
