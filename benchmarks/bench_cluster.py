"""Parameter sweeps on this machine vs a real 2-node Ray cluster (``ray start`` x 2 on 127.0.0.1).

Rows: the 942-pair and a 10,000-set SMA sweep (vector engine), an event-engine sweep (process pool
vs cluster), Ray's overhead per task (empty chunks), and the time one killed worker costs. The peer
column is the local run of the same work in the same run. Both nodes share this machine's cores, so
the cluster cannot be faster here: the figures show its fixed costs, the scaling model is in README
("Scaling out"). ``python benchmarks/bench_cluster.py``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from backtape.optimization import optimize
from backtape.optimization.cluster import connect, local_cluster, map_chunks

DATA = {"symbols": "ACME", "start": "2015-01-01", "end": "2025-01-01", "source": "synthetic"}
SWEEPS: dict[str, tuple[dict[str, Any], str]] = {
    "942 pairs, vector": ({"fast": range(5, 55, 5), "slow": range(20, 220, 2)}, "vector"),
    "10,000 sets, vector": ({"fast": range(1, 101), "slow": range(101, 201)}, "vector"),
    "96 sets, event": ({"fast": range(5, 53, 2), "slow": [60, 80, 100, 120]}, "event"),
}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _noop(shared: Any, chunk: list[int]) -> int:
    return len(chunk)


def _cmdline(pid: int | str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _kill_one(port: str, killed: list[int], stop: threading.Event) -> None:
    """Kill the first worker of this cluster (its raylet's command names ``port``) running a chunk."""
    while not stop.is_set():
        for pid in (d for d in os.listdir("/proc") if d.isdigit()):
            if not _cmdline(pid).startswith("ray::_ray_eval"):
                continue
            try:
                parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
            except OSError:
                continue
            if port in _cmdline(parent):
                os.kill(int(pid), 9)
                killed.append(int(pid))
                return
        time.sleep(0.05)


def main() -> None:
    rows = []
    with local_cluster(nodes=2, cpus=1) as address:
        connect(address)
        for name, (grid, engine) in SWEEPS.items():
            kw: dict[str, Any] = {**DATA, "engine": engine, "constraint": "fast < slow", "commission": 0.001}
            local_kw: dict[str, Any] = {"n_jobs": 2} if engine == "event" else {}
            optimize("sma_crossover", {"fast": [5], "slow": [20]}, **{**kw, "engine": engine})  # warm numba
            t_local, local = timed(partial(optimize, "sma_crossover", grid, **kw, **local_kw))
            on_ray = partial(optimize, "sma_crossover", grid, **kw, executor="ray", address=address)
            t_ray, remote = timed(on_ray)
            assert remote.table.equals(local.table)
            how = "pool" if local_kw else "in-process"
            rows.append((f"{name} ({len(local.table)} sets)", t_ray, t_local, how))
        n = 400
        map_chunks(_noop, None, [[0]] * 8, address=address)
        t_noop, _ = timed(lambda: map_chunks(_noop, b"x" * 1_000_000, [[0]] * n, address=address))
        rows.append((f"overhead per task ({n} empty tasks)", t_noop / n, float("nan"), "-"))
        grid, engine = SWEEPS["96 sets, event"]
        kw = {**DATA, "engine": engine, "constraint": "fast < slow", "commission": 0.001}
        t_clean, _ = timed(lambda: optimize("sma_crossover", grid, **kw, executor="ray", address=address))
        killed: list[int] = []
        stop = threading.Event()
        killer = threading.Thread(target=_kill_one, args=(":" + address.rsplit(":", 1)[1], killed, stop))
        killer.start()
        t_kill, _ = timed(lambda: optimize("sma_crossover", grid, **kw, executor="ray", address=address))
        stop.set()
        killer.join()
        rows.append((f"event sweep, one worker killed ({len(killed)} killed)", t_kill, t_clean, "no kill"))
        import ray

        ray.shutdown()
    print(f"{'work':52} {'cluster s':>10} {'local s':>10}  local is")
    for name, ours, peer, how in rows:
        print(f"{name:52} {ours:10.4f} {peer:10.4f}  {how}")


if __name__ == "__main__":
    main()
