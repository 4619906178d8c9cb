"""Parameter sweeps on this machine vs a real 2-node Ray cluster (``ray start`` x 2 on 127.0.0.1).

Rows: the 942-pair and a 10,000-set SMA sweep (vector engine), two event-engine sweeps (96 sets and
10,000 sets: process pool vs cluster), wall and CPU seconds (this process, its children and every
process of the cluster), Ray's overhead per task (empty chunks), and the time one killed worker and
one removed node cost. The peer column is the local run of the same work in the same run. Both
nodes share this machine's cores, so the cluster cannot be faster here: the figures show its fixed
costs; the scaling model is in docs/scaling.md. ``python benchmarks/bench_cluster.py``.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable
from functools import partial
from math import nan
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from backtape.optimization import optimize
from backtape.optimization.cluster import add_node, connect, local_cluster, map_chunks

DATA = {"symbols": "ACME", "start": "2015-01-01", "end": "2025-01-01", "source": "synthetic"}
ONE_YEAR = {**DATA, "start": "2024-01-01"}
TEN_K = {"fast": range(1, 101), "slow": range(101, 201)}
SWEEPS: dict[str, tuple[dict[str, Any], str, dict[str, Any]]] = {
    "942 pairs, vector": ({"fast": range(5, 55, 5), "slow": range(20, 220, 2)}, "vector", DATA),
    "10,000 sets, vector": (TEN_K, "vector", DATA),
    "96 sets, event": ({"fast": range(5, 53, 2), "slow": [60, 80, 100, 120]}, "event", DATA),
    "10,000 sets, event, 1 y daily": (TEN_K, "event", ONE_YEAR),
}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _ticks(pid: int | str) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def _sessions(port: int) -> set[int]:
    """Session ids of this cluster's nodes: the ``ray start`` processes naming its port lead them."""
    return {int(pid) for pid in os.listdir("/proc") if pid.isdigit()
            and "ray start" in _cmdline(pid) and f"{port}" in _cmdline(pid)}  # fmt: skip


def _cluster_ticks(sessions: set[int]) -> int:
    total = 0
    for pid in (d for d in os.listdir("/proc") if d.isdigit()):
        try:
            if os.getsid(int(pid)) in sessions:
                total += _ticks(pid)
        except OSError:
            continue
    return total


def cpu_timed(fn: Callable[[], Any],
              sessions: frozenset[int] | set[int] = frozenset()) -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds (this process, its reaped children and the cluster's processes), result."""
    def own() -> float:
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    c0, k0 = own(), _cluster_ticks(set(sessions))
    wall, out = timed(fn)
    ticks = _cluster_ticks(set(sessions)) - k0
    return wall, own() - c0 + ticks / os.sysconf("SC_CLK_TCK"), out


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
        sessions = _sessions(int(address.rsplit(":", 1)[1]))
        for name, (grid, engine, data) in SWEEPS.items():
            kw: dict[str, Any] = {**data, "engine": engine, "constraint": "fast < slow", "commission": 0.001}
            local_kw: dict[str, Any] = {"n_jobs": 2} if engine == "event" else {}
            optimize("sma_crossover", {"fast": [5], "slow": [20]}, **{**kw, "engine": engine})  # warm numba
            t_local, c_local, local = cpu_timed(partial(optimize, "sma_crossover", grid, **kw, **local_kw))
            on_ray = partial(optimize, "sma_crossover", grid, **kw, executor="ray", address=address)
            t_ray, c_ray, remote = cpu_timed(on_ray, sessions)
            assert remote.table.equals(local.table)
            how = "pool of 2" if local_kw else "in-process"
            tasks = 2 * 4
            rows.append((f"{name} ({len(local.table)} sets)", t_ray, c_ray, t_local, c_local,
                         (t_ray - t_local) / tasks * 1000, how))  # fmt: skip
        n = 400
        map_chunks(_noop, None, [[0]] * 8, address=address)
        t_noop, c_noop, _ = cpu_timed(lambda: map_chunks(_noop, b"x" * 1_000_000, [[0]] * n, address=address),
                                      sessions)  # fmt: skip
        rows.append((f"{n} empty tasks, 1 MB shared", t_noop, c_noop, nan, nan, t_noop / n * 1000, "-"))
        grid, engine, data = SWEEPS["96 sets, event"]
        kw = {**data, "engine": engine, "constraint": "fast < slow", "commission": 0.001}
        t_clean, _ = timed(lambda: optimize("sma_crossover", grid, **kw, executor="ray", address=address))
        killed: list[int] = []
        stop = threading.Event()
        killer = threading.Thread(target=_kill_one, args=(":" + address.rsplit(":", 1)[1], killed, stop))
        killer.start()
        t_kill, _ = timed(lambda: optimize("sma_crossover", grid, **kw, executor="ray", address=address))
        stop.set()
        killer.join()
        rows.append((f"96-set event sweep, {len(killed)} worker killed", t_kill, nan, t_clean, nan, nan,
                     "same, no kill"))  # fmt: skip
        rows.append(_node_removed(address, kw))
        import ray

        ray.shutdown()
    print(f"{'work':44} {'cluster s':>9} {'CPU s':>7} {'local s':>8} {'CPU s':>7} {'ms/task':>8}  local is")
    for name, ours, c_ours, peer, c_peer, per_task, how in rows:
        print(f"{name:44} {ours:9.3f} {c_ours:7.2f} {peer:8.3f} {c_peer:7.2f} {per_task:8.1f}  {how}")
    print("ms/task: (cluster s - local s) / 8 tasks for the sweeps; wall / tasks for the empty tasks")


def _node_removed(address: str, kw: dict[str, Any]) -> tuple[str, float, float, float, float, float, str]:
    """A third node joins, then is killed (all its processes at once) while it runs a chunk."""
    import ray

    grid = {"fast": range(3, 43), "slow": [50, 60, 70, 80, 90, 100]}
    sweep = partial(optimize, "sma_crossover", grid, **kw, executor="ray", address=address)
    with add_node(address) as node:
        while ray.cluster_resources().get("CPU", 0) < 3:
            time.sleep(0.2)
        sweep()  # the new node starts its worker
        t_clean, _ = timed(sweep)
        stopped: list[float] = []
        stop = threading.Event()

        def remove() -> None:
            while not stop.is_set():
                if any(_cmdline(pid).startswith("ray::_ray_eval") for pid in node.pids()):
                    node.stop()
                    stopped.append(time.monotonic())
                    return
                time.sleep(0.02)

        remover = threading.Thread(target=remove)
        remover.start()
        t_removed, _ = timed(sweep)
        stop.set()
        remover.join()
    label = f"240-set event sweep, node {'removed' if stopped else 'NOT removed'}"
    return (label, t_removed, nan, t_clean, nan, nan, "3 nodes, none removed")


if __name__ == "__main__":
    main()
