"""Peak memory of a streamed run does not grow with its length (real subprocesses, peak RSS).

The source is the synthetic one, which computes each requested range on demand and holds nothing,
so the figure is the engine's and the portal's own. A whole-run control shows the measure sees
growth where there is some.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = """
import json, resource, sys


def peak():  # VmHWM: ru_maxrss would carry the parent's (pytest's) peak across exec
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) * 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


from backtape.engine import BacktestEngine
from backtape.engine.run import build_strategy
from backtape.sources.synthetic import SyntheticDataSource
end, windows = sys.argv[1], int(sys.argv[2])
names = [f"S{i}" for i in range(20)]
engine = BacktestEngine(source=SyntheticDataSource(seed=1), window_sessions=windows)
result = engine.run(build_strategy("equal_weight", {"rebalance": "1mo"}), names, "2024-01-01", end, "1min")
print(json.dumps({"steps": result.equity.height, "trades": result.trades.height,
                  "fetches": sum(f["kind"] == "bars" for f in result.fingerprint["fetches"]),
                  "rss": peak()}))
"""


def peak(end: str, windows: int) -> dict:
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", CHILD, end, str(windows)], capture_output=True, text=True,
                         env=env, check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_twelve_months_of_minutes_peak_like_three() -> None:
    short, long_ = peak("2024-04-01", 10), peak("2025-01-01", 10)
    whole = peak("2025-01-01", 0)
    assert long_["steps"] > 3.9 * short["steps"] and long_["fetches"] >= 24
    assert long_["steps"] == whole["steps"] and long_["trades"] == whole["trades"]
    assert long_["rss"] <= 1.3 * short["rss"], (short, long_)
    assert whole["rss"] - short["rss"] > 3 * max(long_["rss"] - short["rss"], 1), (short, long_, whole)
