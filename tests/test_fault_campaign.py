"""The fault campaign (``benchmarks/fault_campaign.py``) at a tiny count, so that it cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import backtape

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="SIGKILL and /proc of POSIX")
def test_every_sub_campaign_meets_its_goals(tmp_path: Path) -> None:
    src = Path(backtape.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(ROOT / "benchmarks")])}
    tables = tmp_path / "tables.md"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fault_campaign.py"), "all", "--n", "3",
                           "--bomb-gib", "0.25", "--work", str(tmp_path / "work"), "--markdown", str(tables)],
                          env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    text = tables.read_text()
    for title in ("### SIGKILL", "### Concurrent ingest", "### Corruption", "### Hostile files"):
        assert title in text
    assert "| cache writes " in text and "| results database: flip " in text and "every goal met" in text
