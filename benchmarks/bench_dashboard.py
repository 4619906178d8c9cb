"""Dashboard page latency over a 10,000-run results database (target: a page in under 200 ms).

Builds the database from one real backtest (sample data, sma_crossover on AAPL and MSFT 2012–2014)
stored 10,000 times under varied strategies, symbols, ranges, parameters and metrics, each with its
trades, equity curve and result frames, as ``backtape backtest --store`` stores them; plus a real
optimization. Then starts ``backtape serve`` in a subprocess and times each page over HTTP on
127.0.0.1: p50, p95 and p99 of ``--repeat`` requests after a first (cold) one, the server's own time
(``Server-Timing``), and beside each page its floor from the same run: the plain SQL that page needs,
run with the ``sqlite3`` module (no decoding, no HTML); plus a static file from the same server.

    python benchmarks/bench_dashboard.py [--runs 10000] [--repeat 100] [--db PATH (kept and reused)]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

SRC = Path(__file__).parents[1] / "src"
TARGET_MS = 200.0


def build(db: Path, n_runs: int) -> tuple[list[int], int]:
    """A results database with ``n_runs`` stored runs and one optimization; returns run ids and the
    optimization id (reuses ``db`` when it already holds enough runs)."""
    from backtape.results import ResultsStore
    from backtape.results.queries import RunFilter, list_optimizations, open_readonly, query_runs
    from backtape.workspace import Workspace

    store = ResultsStore(db)  # as any writer does, adds the browsing indexes a reused database lacks
    if db.exists():
        ro = open_readonly(db)
        page = query_runs(ro, RunFilter(per_page=1))
        opts = list_optimizations(ro, 1)
        if page.total >= n_runs and opts:
            return [int(r["id"]) for r in query_runs(ro, RunFilter(per_page=500)).rows], int(opts[0]["id"])
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


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _times(client: httpx.Client, urls: list[str], repeat: int) -> dict[str, float]:
    """Client wall p50/p95/p99, the server's own p50 wall and CPU (``Server-Timing``), in ms, the first
    (cold) request's wall time and the size; ``urls`` are requested in turn (one URL: the same page
    again; several: each a page not seen before)."""
    t0 = time.perf_counter()
    first = client.get(urls[0])
    cold = (time.perf_counter() - t0) * 1000
    first.raise_for_status()
    wall, app, cpu = [], [], []
    for i in range(repeat):
        url = urls[(i + 1) % len(urls)]
        t1 = time.perf_counter()
        response = client.get(url)
        wall.append((time.perf_counter() - t1) * 1000)
        response.raise_for_status()
        timing = dict(part.strip().split(";dur=") for part in response.headers["server-timing"].split(","))
        app.append(float(timing["app"]))
        cpu.append(float(timing["cpu"]))
    return {"p50": statistics.median(wall), "p95": _pct(wall, 0.95), "p99": _pct(wall, 0.99),
            "srv": statistics.median(app), "cpu": statistics.median(cpu), "first": cold,
            "kb": len(first.content) / 1024}


def _raw_floor(db: Path, statements: list[tuple[str, tuple[Any, ...]]], repeat: int) -> dict[str, float]:
    """The floor of a page: the plain SQL it needs, run with the ``sqlite3`` module on a read-only
    connection and fetched as tuples (no decoding, no HTML)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.execute("PRAGMA cache_size=-131072")

    def once() -> float:
        t0 = time.perf_counter()
        for sql, params in statements:
            con.execute(sql, params).fetchall()
        return (time.perf_counter() - t0) * 1000

    once()
    samples = [once() for _ in range(repeat)]
    con.close()
    return {"p50": statistics.median(samples), "p95": _pct(samples, 0.95), "p99": _pct(samples, 0.99)}


_COLS = ("b.id, b.strategy_name, b.start_date, b.end_date, b.frequency, b.symbols, b.source, b.created_at, "
         "m.total_return, m.sharpe_ratio, m.max_drawdown, m.win_rate, m.trades_count, m.final_equity")
_JOIN = "FROM backtests b LEFT JOIN performance_metrics m ON m.backtest_id = b.id"
_FILTER = ("b.strategy_name = ? AND CAST(b.symbols AS VARCHAR) LIKE ? AND b.end_date >= ? "
           "AND b.start_date <= ?")
_FILTER_ARGS = ("Momentum", '%"MSFT"%', "2010-01-01", "2015-12-31T99")


def _pages(ids: list[int], opt_id: int) -> list[tuple[str, list[str], list[tuple[str, tuple[Any, ...]]]]]:
    """(name, URLs, the plain SQL of the page) for every page timed."""
    mid = ids[len(ids) // 2]
    three = (ids[0], mid, ids[-1])
    count = ("SELECT count(*) FROM backtests", ())
    run = [("SELECT * FROM backtests WHERE id = ?", (mid,)),
           ("SELECT metrics FROM performance_metrics WHERE backtest_id = ?", (mid,))]
    return [
        ("runs, newest first", ["/runs"],
         [count, (f"SELECT {_COLS} {_JOIN} ORDER BY b.id DESC LIMIT 50", ())]),
        ("runs sorted by sharpe", ["/runs?sort=sharpe&dir=desc"],
         [count, (f"SELECT {_COLS} {_JOIN} ORDER BY m.sharpe_ratio DESC, b.id DESC LIMIT 50", ())]),
        ("runs filtered (strategy, symbol, dates)",
         ["/runs?strategy=Momentum&symbol=MSFT&from=2010-01-01&to=2015-12-31&sort=return"],
         [(f"SELECT count(*) FROM backtests b WHERE {_FILTER}", _FILTER_ARGS),
          (f"SELECT {_COLS} {_JOIN} WHERE {_FILTER} ORDER BY m.total_return DESC, b.id DESC LIMIT 50",
           _FILTER_ARGS)]),
        ("runs, page 150", ["/runs?page=150"],
         [count, (f"SELECT {_COLS} {_JOIN} ORDER BY b.id DESC LIMIT 50 OFFSET 7450", ())]),
        ("runs sorted by sharpe, page 150", ["/runs?sort=sharpe&dir=asc&page=150"],
         [count, (f"SELECT {_COLS} {_JOIN} ORDER BY m.sharpe_ratio, b.id LIMIT 50 OFFSET 7450", ())]),
        ("one run", [f"/runs/{mid}"],
         [*run, ("SELECT data FROM run_frames WHERE backtest_id = ? AND name IN "
                 "('trades', 'open_trades', 'equity')", (mid,))]),
        ("run report (kept after its first request)", [f"/runs/{mid}/report"],
         [*run, ("SELECT name, data FROM run_frames WHERE backtest_id = ?", (mid,))]),
        ("run report, a new run each request", [f"/runs/{i}/report" for i in ids[1:40]],
         [*run, ("SELECT name, data FROM run_frames WHERE backtest_id = ?", (mid,))]),
        ("compare 3 runs", [f"/compare?ids={ids[0]},{mid},{ids[-1]}"],
         [(f"SELECT {_COLS}, m.metrics {_JOIN} WHERE b.id IN (?, ?, ?)", three),
          ("SELECT backtest_id, ts, equity FROM equity_curve WHERE backtest_id IN (?, ?, ?) "
           "ORDER BY backtest_id, ts", three)]),
        ("optimizations", ["/optimizations"],
         [("SELECT id, strategy_name, metric, method, engine, symbols, start_date, end_date, frequency, "
           "n_sets, best, deflated_sharpe, pbo, best_run_id, created_at FROM optimizations "
           "ORDER BY id DESC LIMIT 200", ())]),
        ("optimization (heatmap, best sets)", [f"/optimizations/{opt_id}"],
         [("SELECT * FROM optimizations WHERE id = ?", (opt_id,)),
          ("SELECT id, parameters, symbols FROM backtests WHERE strategy_name = 'SmaCrossover' "
           "AND start_date = '2012-01-01' AND end_date = '2015-01-01' ORDER BY id", ())]),
        ("data (no database)", ["/data"], []),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--db", type=Path, default=None)
    args = parser.parse_args()
    db = args.db or Path(tempfile.mkdtemp(prefix="bench-dashboard-")) / "results.db"
    t0 = time.perf_counter()
    ids, opt_id = build(db, args.runs)
    print(f"database: {db} ({db.stat().st_size / 1e6:,.0f} MB, built or checked in "
          f"{time.perf_counter() - t0:.0f} s)")
    load_before = os.getloadavg()[0]

    port = _port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "backtape.cli.app", "serve", "--db", str(db), "--port",
                             str(port)], env=env, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    pages = _pages(ids, opt_id)
    rows: list[tuple[str, dict[str, float], dict[str, float]]] = []
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            for _ in range(300):
                try:
                    client.get("/static/app.js")
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            time.sleep(6)  # let the server's background warm-up (imports, first report) finish
            for name, urls, sql in pages:
                repeat = len(urls) - 1 if len(urls) > 1 else args.repeat  # several: each one new
                floor = _raw_floor(db, sql, args.repeat) if sql else {}
                rows.append((name, _times(client, urls, repeat), floor))
            static = _times(client, ["/static/app.js"], args.repeat)
            rows.append(("floor: static app.js, same server", static, {}))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    load = os.getloadavg()
    print(f"\ndashboard page latency over HTTP on 127.0.0.1, {args.runs:,} stored runs, {args.repeat} "
          f"requests per page after a first (cold) one, ms; load average {load_before:.1f} before, "
          f"{load[0]:.1f} / {load[1]:.1f} (1 / 5 min) after, on {os.cpu_count()} CPUs")
    print("srv/cpu: the server's own wall and CPU time per request (Server-Timing, p50); sql p50/p95: the "
          "page's plain SQL with the sqlite3 module, the floor")
    head = (f"{'page':<44} {'p50':>6} {'p95':>6} {'p99':>6} {'first':>7} {'srv':>6} {'cpu':>6} "
            f"{'sql p50':>7} {'sql p95':>7} {'KB':>6}  p95<{TARGET_MS:.0f}")
    print(head)
    for name, t, floor in rows:
        verdict = "" if name.startswith("floor") else ("yes" if t["p95"] < TARGET_MS else "NO")
        raw = f"{floor['p50']:7.2f} {floor['p95']:7.2f}" if floor else f"{'–':>7} {'–':>7}"
        print(f"{name:<44} {t['p50']:6.1f} {t['p95']:6.1f} {t['p99']:6.1f} {t['first']:7.1f} {t['srv']:6.1f} "
              f"{t['cpu']:6.1f} {raw} {t['kb']:6.1f}  {verdict}")


if __name__ == "__main__":
    main()
