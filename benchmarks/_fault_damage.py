"""Corruption sub-campaign: damage one file of a cache, a bundle or a results database, then use it.

Each trial copies a pristine artefact, damages one of its files (``damage``) and does what a user
would do next. The outcome is one of: ``repaired`` (noticed and, for data that can be fetched again,
answered exactly after the automatic refetch or the documented repair), ``detected`` (a clear
``BacktapeError`` naming the damage), ``harmless`` (the bytes changed nothing that is read: the answer
is exactly the pristine one), ``silent wrong`` (a different answer and no error: the one outcome that
must never happen) or ``unexpected`` (an exception that is not a ``BacktapeError``).
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from _fault_common import FREQ, Tally, cached, close, reference, reference_run, same_run, source
from backtape.cache.bundles import BundleDataSource, BundleMetadata, ingest_to_bundle
from backtape.cache.maintenance import verify_cache
from backtape.errors import BacktapeError, BacktapeWarning

DAMAGES = ("truncate", "zero", "garbage", "delete", "flip")
DAMAGE_COLUMNS = ("trials", "detected", "repaired", "manual repair", "harmless", "silent wrong", "unexpected")
SYMBOLS, START, END = ["AAA", "BBB"], "2022-01-01", "2022-07-01"


def damage(path: Path, how: str, rng: random.Random) -> None:
    """Truncate at a random length, zero, overwrite with random bytes, delete, or flip two adjacent
    bytes at a random offset of ``path``."""
    data = bytearray(path.read_bytes())
    if how == "truncate":
        path.write_bytes(data[:rng.randrange(len(data))])
    elif how == "zero":
        path.write_bytes(bytes(len(data)))
    elif how == "garbage":
        path.write_bytes(rng.randbytes(len(data)))
    elif how == "delete":
        path.unlink()
    else:
        at = rng.randrange(len(data) - 1)
        data[at] ^= rng.randint(1, 255)
        data[at + 1] ^= rng.randint(1, 255)
        path.write_bytes(bytes(data))


@dataclass(frozen=True)
class Target:
    """A kind of file: how to build its pristine folder, which files to damage, how to use it."""

    name: str
    build: Callable[[Path], None]
    victims: Callable[[Path], list[Path]]
    check: Callable[[Path], str]


def _answer(read: Callable[[], bool], repair: Callable[[], None] | None, noticed: bool = False) -> str:
    """Outcome of ``read`` (True: the exact answer), with ``repair`` run once when an error says so."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            correct = read()
        except BacktapeError:
            if repair is None:
                return "detected"
            try:
                repair()
                return "repaired" if read() else "manual repair"
            except BacktapeError:
                return "manual repair"
    noticed = noticed or any(issubclass(w.category, BacktapeWarning) for w in seen)
    if correct:
        return "repaired" if noticed else "harmless"
    return "silent wrong"


def _verify_flags(folder: Path) -> bool:
    try:
        return bool(verify_cache(folder).damaged)
    except BacktapeError:
        return True


# -- the cache: partition files and the index --------------------------------------------------

def _build_cache(folder: Path) -> None:
    src = cached(folder)
    src.fetch_sync(SYMBOLS, START, END, FREQ)
    close(src)
    with sqlite3.connect(folder / "index.sqlite") as con:  # as after a clean exit: the WAL folded in
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _check_cache(folder: Path) -> str:
    flagged = _verify_flags(folder)
    truth = reference(SYMBOLS, START, END)

    def read() -> bool:
        src = cached(folder)
        try:
            return src.fetch_sync(SYMBOLS, START, END, FREQ).equals(truth)
        finally:
            close(src)

    outcome = _answer(read, None, flagged)
    return "manual repair" if outcome == "detected" else outcome  # the data can always be fetched again


# -- bundles: data files and metadata -----------------------------------------------------------

def _ingest(folder: Path) -> BundleMetadata:
    return ingest_to_bundle("b", SYMBOLS, START, END, FREQ, source=source(), bundles_dir=folder)


def _check_bundle_data(folder: Path) -> str:
    truth = reference(SYMBOLS, START, END)
    flagged = _verify_flags(folder / "b" / "data")
    return _answer(lambda: BundleDataSource("b", folder).fetch_sync(SYMBOLS, START, END, FREQ).equals(truth),
                   lambda: _ingest(folder), flagged)


def _comparable(meta: BundleMetadata) -> BundleMetadata:
    return replace(meta, ingestion_time=None, path=Path())


def _check_bundle_metadata(folder: Path) -> str:
    pristine = _comparable(BundleMetadata.load("b", folder.parent / "pristine-bundle-metadata"))
    return _answer(lambda: _comparable(BundleMetadata.load("b", folder)) == pristine, lambda: _ingest(folder))


# -- the results database -----------------------------------------------------------------------

_RUNS: dict[str, object] = {}


def _build_results(folder: Path) -> None:
    from backtape.results import ResultsStore

    result, _RUNS["loaded"] = reference_run(folder)
    store = ResultsStore(folder / "results.db")
    for _ in range(3):
        result.save(store)
    store.engine.dispose()
    (folder / "reference.db").unlink()


def _check_results(folder: Path) -> str:
    from backtape.results import ResultsStore

    def read() -> bool:
        store = ResultsStore(folder / "results.db")
        try:
            return all(same_run(store.load_result(i), _RUNS["loaded"]) for i in (1, 2, 3))
        finally:
            store.engine.dispose()

    return _answer(read, None)


def _parquet(sub: str) -> Callable[[Path], list[Path]]:
    return lambda folder: sorted(p for p in (folder / sub).rglob("*.parquet") if "quarantine" not in p.parts)


TARGETS = (
    Target("cache partition", _build_cache, _parquet("bars"), _check_cache),
    Target("cache index", _build_cache, lambda f: [f / "index.sqlite"], _check_cache),
    Target("bundle data file", _ingest, _parquet("b/data/bars"), _check_bundle_data),
    Target("bundle metadata", _ingest, lambda f: [f / "b" / "metadata.parquet"], _check_bundle_metadata),
    Target("results database", _build_results, lambda f: [f / "results.db"], _check_results),
)


def corrupt(n: int, work: Path, rng: random.Random) -> list[Tally]:
    """``n`` trials of each random damage (truncate, flip; garbage n/10) and one of each fixed one."""
    rows = []
    base = work / "corrupt"
    for target in TARGETS:
        pristine = base / f"pristine-{target.name.replace(' ', '-')}"
        shutil.rmtree(pristine, ignore_errors=True)
        pristine.mkdir(parents=True)
        target.build(pristine)
        for how in DAMAGES:
            tally = Tally(f"{target.name}: {how}")
            trials = {"truncate": n, "flip": n, "garbage": max(1, n // 10)}.get(how, 1)
            for _ in range(trials):
                trial = base / "trial"
                shutil.rmtree(trial, ignore_errors=True)
                shutil.copytree(pristine, trial)
                damage(rng.choice(target.victims(trial)), how, rng)
                try:
                    outcome = target.check(trial)
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as exc:  # Exception and panics of native code (pyo3 PanicException)
                    outcome = "unexpected"
                    tally.note(f"{type(exc).__name__}: {str(exc)[:160]}")
                tally.add("trials")
                tally.add(outcome)
                if outcome in ("repaired", "manual repair"):
                    tally.add("detected")
            rows.append(tally)
    return rows
