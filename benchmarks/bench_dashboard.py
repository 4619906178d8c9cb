"""Dashboard page latency over a 10,000-run results database (target: a page in under 200 ms).

Builds the database from one real backtest (sample data, sma_crossover on AAPL and MSFT 2012–2014)
stored 10,000 times under varied strategies, symbols, ranges, parameters and metrics, each with its
trades, equity curve and result frames, as ``backtape backtest --store`` stores them; plus a real
optimization. Then starts ``backtape serve`` in a subprocess and times each page over HTTP on
127.0.0.1 (p50 and p95 of ``--repeat`` requests after one warm-up), beside two floors from the same
run: a static file from the same server, and the existing ``ResultsStore.list_runs(50)`` in-process.

    python benchmarks/bench_dashboard.py [--runs 10000] [--repeat 30] [--db PATH (kept and reused)]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

SRC = Path(__file__).parents[1] / "src"
TARGET_MS = 200.0


def build(db: Path, n_runs: int) -> tuple[list[int], int]:
    """A results database with ``n_runs`` stored runs and one optimization; returns run ids and the
    optimization id (reuses ``db`` when it already holds enough runs)."""
    from backtape.results import ResultsStore
    from backtape.results.queries import RunFilter, list_optimizations, open_readonly, query_runs
    from backtape.workspace import Workspace

    if db.exists():
        ro = open_readonly(db)
        page = query_runs(ro, RunFilter(per_page=1))
        opts = list_optimizations(ro, 1)
        if page.total >= n_runs and opts:
            ids = [r["id"] for r in query_runs(ro, RunFilter(per_page=500)).rows]
            return ids, int(opts[0]["id"])
    store = ResultsStore(db)
    ws = Workspace()
    base = ws.run_backtest("sma_crossover", ["AAPL", "MSFT"], "2012-01-01", "2015-01-01", source="sample")
    opt = ws.optimize("sma_crossover", {"fast": [5, 10, 20], "slow": [30, 50, 100]}, ["AAPL"], "2012-01-01",
                      "2015-01-01", source="sample", store=store, engine="event", n_jobs=1)
    rng = random.Random(7)
    strategies = ["SmaCrossover", "RsiMeanReversion", "DonchianBreakout", "Momentum"]
    symbols = ["AAPL", "MSFT", "KO", "IBM", "SPY", "QQQ", "BTC/USDT", "ETH/USDT"]
    frames = base.frames()
    ids: list[int] = []
    t0 = time.perf_counter()
    for i in range(n_runs):
        metrics = {k: (v * rng.uniform(0.5, 1.5) if isinstance(v, float) else v)
                   for k, v in base.metrics.items()}
        year = rng.randint(2005, 2020)
        ids.append(store.save_run(
            strategy=rng.choice(strategies),
            parameters={"fast": rng.randint(2, 30), "slow": rng.randint(30, 200)},
            symbols=rng.sample(symbols, rng.randint(1, 3)), start=f"{year}-01-01", end=f"{year + 3}-01-01",
            frequency="1d", metrics=metrics, trades=base.trades, equity=base.equity, source="sample",
            cash=base.cash, duration_s=base.duration_s, fingerprint=base.fingerprint, frames=frames))
        if (i + 1) % 1000 == 0:
            print(f"  stored {i + 1:,} runs ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    assert opt.optimization_id is not None
    return ids, int(opt.optimization_id)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _times(client: httpx.Client, url: str, repeat: int) -> tuple[float, float, float, float, int]:
    """Client wall p50 and p95, the server's own p50 wall and CPU (``Server-Timing``), in ms, and the
    size of ``url``, after one warm-up request."""
    first = client.get(url)
    first.raise_for_status()
    wall, app, cpu = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        response = client.get(url)
        wall.append((time.perf_counter() - t0) * 1000)
        response.raise_for_status()
        timing = dict(part.strip().split(";dur=") for part in response.headers["server-timing"].split(","))
        app.append(float(timing["app"]))
        cpu.append(float(timing["cpu"]))
    return (statistics.median(wall), _p95(wall), statistics.median(app), statistics.median(cpu),
            len(first.content))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--db", type=Path, default=None)
    args = parser.parse_args()
    db = args.db or Path(tempfile.mkdtemp(prefix="bench-dashboard-")) / "results.db"
    t0 = time.perf_counter()
    ids, opt_id = build(db, args.runs)
    print(f"database: {db} ({db.stat().st_size / 1e6:,.0f} MB, built or checked in "
          f"{time.perf_counter() - t0:.0f} s)")

    from backtape.results import ResultsStore

    store = ResultsStore(db)
    store.list_runs(50)
    floor = []
    for _ in range(args.repeat):
        t1 = time.perf_counter()
        store.list_runs(50)
        floor.append((time.perf_counter() - t1) * 1000)

    port = _port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "backtape.cli.app", "serve", "--db", str(db), "--port",
                             str(port)], env=env, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(300):
                try:
                    client.get("/static/app.js")
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            mid = ids[len(ids) // 2]
            pages = [
                ("runs, newest first", "/runs"),
                ("runs sorted by sharpe", "/runs?sort=sharpe&dir=desc"),
                ("runs filtered (strategy, symbol, dates)",
                 "/runs?strategy=Momentum&symbol=MSFT&from=2010-01-01&to=2015-12-31&sort=return"),
                ("runs, page 150", "/runs?page=150"),
                ("one run", f"/runs/{mid}"),
                ("run report", f"/runs/{mid}/report"),
                ("compare 3 runs", f"/compare?ids={ids[0]},{mid},{ids[-1]}"),
                ("optimizations", "/optimizations"),
                ("optimization (heatmap)", f"/optimizations/{opt_id}"),
                ("data", "/data"),
            ]
            rows = [(name, *_times(client, url, args.repeat)) for name, url in pages]
            rows.append(("floor: static app.js, same server", *_times(client, "/static/app.js", args.repeat)))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    rows.append(("floor: ResultsStore.list_runs(50), in-process", statistics.median(floor), _p95(floor),
                 statistics.median(floor), float("nan"), 0))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\ndashboard page latency, {args.runs:,} stored runs, {args.repeat} requests each, ms "
          f"(load average {load:.1f} on {os.cpu_count()} CPUs; server = Server-Timing of the app)")
    print(f"{'page':<48} {'p50':>7} {'p95':>7} {'srv p50':>8} {'cpu p50':>8} {'KB':>7}  p95<{TARGET_MS:.0f}")
    for name, p50, p95, app, cpu, size in rows:
        verdict = "" if name.startswith("floor") else ("yes" if p95 < TARGET_MS else "NO")
        print(f"{name:<48} {p50:7.1f} {p95:7.1f} {app:8.1f} {cpu:8.1f} {size / 1024:7.1f}  {verdict}")


if __name__ == "__main__":
    main()
