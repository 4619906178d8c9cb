"""Fault campaign: SIGKILLs, concurrent ingests, damaged files and hostile inputs against backtape.

Each sub-campaign runs real processes on real files and prints a table; the goal of every count
named "wrong", "manual", "lost", "silent" or "unexpected" is 0. Rerun it any time::

    python benchmarks/fault_campaign.py all --n 100            # everything (over an hour on 2 busy cores)
    python benchmarks/fault_campaign.py kill-cache --n 100     # one sub-campaign
    python benchmarks/fault_campaign.py all --n 3 --bomb-gib 0.25 --markdown out.md

Sub-campaigns: ``kill-cache`` (a process fetching synthetic bars into a cache, SIGKILLed at a random
moment, then the same requests again), ``kill-ingest`` (``backtape ingest`` into a bundle), ``kill-results``
(a process storing backtest runs in SQLite), ``concurrent`` (4 ``backtape ingest`` processes x N rounds
into one bundle), ``corrupt`` (see ``_fault_damage.py``) and ``hostile`` (see ``_fault_hostile.py``).
Exit code 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import pickle
import random
import sqlite3
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import polars as pl

from _fault_common import (
    FREQ,
    SEED,
    Tally,
    cached,
    cli,
    close,
    kill_after,
    print_table,
    reference,
    reference_run,
    same_run,
    spawn,
    wait_for,
    worker,
)
from backtape.cache.bundles import BundleDataSource, BundleMetadata
from backtape.cache.maintenance import verify_cache
from backtape.errors import BacktapeError, BacktapeWarning

#: counts that must stay 0
BAD = ("wrong answers", "manual repairs", "manual repair", "unexpected errors", "symbols lost",
       "quality missing", "failed ingests", "silent wrong", "unexpected", "non-BacktapeError", "over 512 MiB",
       "unclear")
KILL_COLUMNS = ("kills", "finished before kill", "wrong answers", "manual repairs", "unexpected errors",
                "auto repairs", "damaged after kill")


def _span(rng: random.Random, first: dt.date, days: int, longest: int) -> tuple[str, str]:
    start = first + dt.timedelta(days=rng.randrange(days))
    return start.isoformat(), (start + dt.timedelta(days=rng.randint(3, longest))).isoformat()


def _landed(tally: Tally) -> int:
    """Kills that landed so far; a process that finished first is retried (up to 3 tries per kill)."""
    kills, missed = int(tally.counts.get("kills", 0)), int(tally.counts.get("finished before kill", 0))
    if missed > 2 * (kills + 1) + 10:
        raise RuntimeError(f"{tally.name}: {missed} processes finished before their kill; slow the worker")
    return kills


# -- SIGKILL during cache writes -----------------------------------------------------------------

def _cache_plan(rng: random.Random) -> list[list]:
    pool = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]
    return [[sorted(rng.sample(pool, rng.randint(1, 3))), *_span(rng, dt.date(2019, 1, 1), 4 * 365, 60)]
            for _ in range(6)]


def _check_requests(requests: list[list], fetch: Callable[[list[str], str, str], pl.DataFrame],
                    tally: Tally) -> None:
    """Every request answered exactly as the reference, without anyone repairing anything."""
    with tally.outcomes():
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            for symbols, start, end in requests:
                if not fetch(symbols, start, end).equals(reference(symbols, start, end)):
                    tally.add("wrong answers")
                    tally.note(f"wrong answer for {symbols} {start}..{end}")
        tally.add("auto repairs", sum(issubclass(w.category, BacktapeWarning) for w in seen))


def kill_cache(n: int, work: Path, rng: random.Random) -> Tally:
    tally = Tally("cache writes")
    cache, ready, home = work / "kill-cache", work / "ready", work / "home"

    def run(plan: list[list], delay: float | None) -> float | bool:
        ready.unlink(missing_ok=True)
        proc = spawn(worker("cache", cache, ready, json.dumps(plan)), home)
        wait_for(ready, proc)
        t0 = time.perf_counter()
        if delay is None:
            _, err = proc.communicate()
            if proc.returncode:
                raise RuntimeError(f"calibration run failed: {err[-2000:]}")
            return time.perf_counter() - t0
        return kill_after(proc, delay)

    duration = float(run(_cache_plan(rng), None))
    while _landed(tally) < n:
        plan = _cache_plan(rng)
        tally.add("kills" if run(plan, rng.uniform(0, duration)) else "finished before kill")
        tally.add("damaged after kill", len(verify_cache(cache).damaged))
        src = cached(cache)
        try:
            _check_requests(plan, lambda s, a, b: src.fetch_sync(s, a, b, FREQ), tally)  # noqa: B023
        finally:
            close(src)
    return tally


# -- SIGKILL during backtape ingest --------------------------------------------------------------

def ingest_args(bundles: Path, name: str, symbols: list[str], start: str, end: str) -> list[object]:
    """``backtape ingest synthetic`` (seed ``SEED``, 1min bars) of ``symbols`` into bundle ``name``."""
    return cli("ingest", "synthetic", "--option", f"seed={SEED}", "--symbols", ",".join(symbols), "--start",
               start, "--end", end, "--frequency", FREQ, "--bundle", name, "--bundles-dir", bundles)


def _check_bundle(bundles: Path, name: str, symbols: set[str], tally: Tally) -> None:
    """Every symbol ingested so far is listed with its quality metrics."""
    try:
        meta = BundleMetadata.load(name, bundles)
    except BacktapeError as exc:
        tally.add("manual repairs")
        tally.note(f"metadata: {exc}")
        return
    lost = sorted(symbols - set(meta.symbols))
    tally.add("symbols lost", len(lost))
    if lost:
        tally.note(f"lost {lost}")
    tally.add("quality missing", sum(1 for q in meta.per_symbol
                                     if q.symbol in symbols and not (q.rows > 0 and q.expected_sessions > 0)))


def kill_ingest(n: int, work: Path, rng: random.Random) -> Tally:
    tally = Tally("backtape ingest")
    bundles, home = work / "kill-ingest", work / "home"
    pool = [f"S{i:02d}" for i in range(10)]

    def timed(args: list[object]) -> float:
        t0 = time.perf_counter()
        proc = spawn(args, home)
        _, err = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"calibration run failed: {err[-2000:]}")
        return time.perf_counter() - t0

    started = timed(cli("ingest", "--help"))
    total = timed(ingest_args(bundles, "calibrate", pool[:3], "2022-01-01", "2022-03-01"))
    done: dict[str, set[str]] = {}
    while _landed(tally) < n:
        name = f"k{_landed(tally) // 20}"
        symbols = sorted(rng.sample(pool, 3))
        start, end = _span(rng, dt.date(2022, 1, 1), 330, 60)
        args = ingest_args(bundles, name, symbols, start, end)
        landed = kill_after(spawn(args, home), rng.uniform(started, total))
        tally.add("kills" if landed else "finished before kill")
        proc = spawn(args, home)
        _, err = proc.communicate()
        if proc.returncode:
            tally.add("manual repairs")
            tally.note(f"rerun exit {proc.returncode}: {err.strip()[-200:]}")
            continue
        done.setdefault(name, set()).update(symbols)
        bundle = BundleDataSource(name, bundles)
        _check_requests([[symbols, start, end]], lambda s, a, b: bundle.fetch_sync(s, a, b, FREQ), tally)  # noqa: B023
        _check_bundle(bundles, name, done[name], tally)
        tally.add("damaged after kill", len(verify_cache(bundles / name / "data").damaged))
    return tally


# -- SIGKILL during results writes ---------------------------------------------------------------

def kill_results(n: int, work: Path, rng: random.Random) -> Tally:
    from backtape.results import ResultsStore

    tally = Tally("results writes")
    result, loaded = reference_run(work)
    pickled, db, ready, home = work / "run.pickle", work / "kill-results.db", work / "ready", work / "home"
    pickled.write_bytes(pickle.dumps(result))
    checked = 0
    for _ in range(n):
        ready.unlink(missing_ok=True)
        proc = spawn(worker("results", db, ready, pickled), home)
        wait_for(ready, proc)
        tally.add("kills" if kill_after(proc, rng.uniform(0, 0.8)) else "finished before kill")
        with sqlite3.connect(db) as con:
            tally.add("damaged after kill", con.execute("PRAGMA integrity_check").fetchone()[0] != "ok")
        with tally.outcomes():
            store = ResultsStore(db)
            ids = store.list_runs(limit=1 << 40)["id"].to_list()
            fresh = [i for i in ids if i > checked]
            old = [i for i in ids if i <= checked]
            for run_id in fresh + rng.sample(old, min(3, len(old))):
                if not same_run(store.load_result(run_id), loaded):
                    tally.add("wrong answers")
                    tally.note(f"run {run_id} differs from the one saved")
            again = result.save(store)
            if not same_run(store.load_result(again), loaded):
                tally.add("wrong answers")
            checked = again
            store.engine.dispose()
    tally.counts["runs stored"] = checked
    return tally


# -- concurrent ingests --------------------------------------------------------------------------

def concurrent(rounds: int, work: Path, procs: int = 4) -> Tally:
    tally = Tally(f"{procs} processes x {rounds} rounds")
    bundles, home = work / "concurrent", work / "home"
    start, end = "2023-01-01", "2023-03-01"
    everything: set[str] = set()
    for r in range(rounds):
        groups = [[f"R{r}P{p}A", f"R{r}P{p}B"] for p in range(procs)]
        running = [spawn(ingest_args(bundles, "shared", g, start, end), home) for g in groups]
        for p in running:
            _, err = p.communicate()
            if p.returncode:
                tally.add("failed ingests")
                tally.note(err.strip()[-200:])
        everything.update(s for g in groups for s in g)
        tally.add("rounds")
        tally.add("ingests", procs)
        _check_bundle(bundles, "shared", everything, tally)
        try:
            present = sorted(everything & set(BundleMetadata.load("shared", bundles).symbols))
            bundle = BundleDataSource("shared", bundles)
            _check_requests([[present, start, end]], lambda s, a, b: bundle.fetch_sync(s, a, b, FREQ), tally)  # noqa: B023
        except BacktapeError as exc:
            tally.add("manual repairs")
            tally.note(str(exc)[:200])
    tally.counts["symbols"] = len(everything)
    return tally


KILLS = {"kill-cache": kill_cache, "kill-ingest": kill_ingest, "kill-results": kill_results}


# -- driver --------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    from _fault_damage import DAMAGE_COLUMNS, corrupt
    from _fault_hostile import HOSTILE_COLUMNS, hostile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("campaign", choices=["all", "kill-cache", "kill-ingest", "kill-results", "concurrent",
                                             "corrupt", "hostile"])
    parser.add_argument("--n", type=int, default=100, help="kills per kill campaign, trials per corruption "
                        "case, rounds of concurrent ingest (3 with 'all'), fuzzed CSVs / 10 (hostile)")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--bomb-gib", type=float, default=4.0, help="decompressed size of the gzip bomb")
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one, removed)")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    chosen = [args.campaign] if args.campaign != "all" else ["kill-cache", "kill-ingest", "kill-results",
                                                              "concurrent", "corrupt", "hostile"]
    tables: list[str] = []
    kills: list[Tally] = []
    with tempfile.TemporaryDirectory(prefix="backtape-faults-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        rows_seen: list[Tally] = []
        for name in chosen:
            t1 = time.perf_counter()
            if name.startswith("kill-"):
                run = KILLS[name]
                kills.append(run(args.n, work, rng))
                kills[-1].counts["seconds"] = round(time.perf_counter() - t1)
                rows_seen.append(kills[-1])
                continue
            if kills:
                tables.append(print_table("SIGKILL", (*KILL_COLUMNS, "seconds"), kills))
                kills = []
            if name == "concurrent":
                rows = [concurrent(3 if args.campaign == "all" else args.n, work)]
                tables.append(print_table("Concurrent ingest into one bundle", (
                    "rounds", "ingests", "symbols", "failed ingests", "symbols lost", "quality missing",
                    "wrong answers", "manual repairs", "unexpected errors"), rows))
            elif name == "corrupt":
                rows = corrupt(args.n, work, rng)
                tables.append(print_table("Corruption", DAMAGE_COLUMNS, rows))
            else:
                rows = hostile(args.n * 10, work, rng, bomb_gib=args.bomb_gib)
                tables.append(print_table("Hostile files", HOSTILE_COLUMNS, rows))
            rows_seen += rows
        if kills:
            tables.append(print_table("SIGKILL", (*KILL_COLUMNS, "seconds"), kills))
    missed = [f"{r.name}: {k} = {r.counts[k]}" for r in rows_seen for k in BAD if r.counts.get(k)]
    summary = f"\n{len(chosen)} sub-campaign(s) in {time.perf_counter() - t0:.0f} s; " + (
        "every goal met" if not missed else "goals missed: " + "; ".join(missed))
    print(summary)
    if args.markdown:
        args.markdown.write_text("\n".join(tables) + "\n" + summary + "\n")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
