"""Where parameter sets run: this process, a local process pool, or a Ray cluster.

* ``local`` with the vector engine: in this process; the numba kernel already spreads columns over
  ``n_jobs`` threads.
* ``local`` with the event engine (Python per bar): a pool of ``n_jobs`` worker processes (by
  default all cores, once the search has ``_POOL_MIN_SETS`` sets or more). The
  loaded arrays are written once as ``.npy`` files in a temporary folder and every worker maps
  them (``np.load(mmap_mode="r")``): no worker fetches anything.
* ``ray``: chunks become Ray tasks (see ``cluster``): the data goes once into Ray's shared-memory
  object store, failed tasks are retried, Ctrl-C cancels the rest. ``address=None`` starts a local
  instance; an address joins that cluster.

``progress(done, total)`` is called as chunks finish (sets done, sets in all).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..analytics import N_METRICS
from ..errors import ConfigError, Kept, kept_warnings, say_kept
from .cluster import CHUNKS_PER_CPU, Sink, chunked, chunks_for, map_chunks
from .data import MarketData, market_data_from
from .evaluate import EvalSpec, ParamSet, evaluate

if TYPE_CHECKING:
    from ..results.searches import SearchLog

Progress = Callable[[int, int], None]
EXECUTORS = ("local", "ray")

_WORKER_DATA: dict[str, MarketData] = {}
#: event-engine searches of at least this many sets use the process pool when n_jobs is not given
_POOL_MIN_SETS = 8
#: seconds of work between two records of an in-process search with a search log (what a kill loses)
CHECKPOINT_S = 2.0
_BROKEN = ("a worker process stopped before finishing its parameter sets: a script that optimizes in "
           "parallel must do so under `if __name__ == \"__main__\":` (each worker imports the script "
           "again), or pass n_jobs=1")


def quiet_in_worker_import() -> None:
    """A worker process importing an unguarded script reaches the script's search again: it stops
    there, before loading or warning anything, and the parent raises the error that says why."""
    if getattr(mp.current_process(), "_inheriting", False):
        raise SystemExit(1)


def _worker_init(manifest: str) -> None:
    _WORKER_DATA["data"] = market_data_from(manifest)


def _worker_call(func: Callable[..., Any], chunk: list[Any], args: tuple[Any, ...]) -> tuple[Any, Kept]:
    with kept_warnings() as kept:
        out = func(_WORKER_DATA["data"], chunk, *args)
    return out, kept


def run_sets(
    data: MarketData,
    spec: EvalSpec,
    sets: list[ParamSet],
    *,
    executor: str = "local",
    n_jobs: int | None = None,
    address: str | None = None,
    progress: Progress | None = None,
    log: SearchLog | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Metrics and block sums of every set, in the order of ``sets`` (see ``evaluate``).

    ``n_jobs`` ``None`` or ``-1`` means every core. With a search ``log`` the sets it holds are
    taken from it and the others are recorded in it as their chunks finish (so a search stopped
    half-way keeps what it did).
    """
    if n_jobs is not None and n_jobs < 0:
        n_jobs = None
    if executor not in EXECUTORS:
        raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if log is None:
        return _dispatch(data, spec, sets, executor, n_jobs, address, progress, None)
    found = log.lookup(sets, N_METRICS, spec.n_blocks)
    todo = [s for s, f in zip(sets, found, strict=True) if f is None]
    reused = len(sets) - len(todo)
    tally = None if progress is None else (lambda d, t: progress(reused + d, reused + t))
    metrics, blocks = _dispatch(data, spec, todo, executor, n_jobs, address, tally, log)
    out_m, out_b = np.empty((len(sets), N_METRICS)), np.empty((len(sets), 2, spec.n_blocks))
    missing = [i for i, f in enumerate(found) if f is None]
    out_m[missing], out_b[missing] = metrics, blocks
    for i, f in enumerate(found):
        if f is not None:
            out_m[i], out_b[i] = f
    return out_m, out_b


def _dispatch(data: MarketData, spec: EvalSpec, sets: list[ParamSet], executor: str, n_jobs: int | None,
              address: str | None, progress: Progress | None,
              log: SearchLog | None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``sets`` evaluated where ``executor`` and ``n_jobs`` say; each finished chunk goes to ``log``."""
    if not sets:
        return np.empty((0, N_METRICS)), np.empty((0, 2, spec.n_blocks))
    jobs = max(1, int(n_jobs or os.cpu_count() or 1))
    if executor == "ray":
        chunks = chunks_for(address, sets)
        parts = map_chunks(_ray_eval, data, chunks, spec, address=address, progress=progress,
                           sink=_recorder(log, chunks))  # fmt: skip
        return _gather(dict(enumerate(parts)))
    # Starting workers costs about a second each: without an explicit n_jobs, small searches stay here.
    enough = len(sets) > 1 if n_jobs else len(sets) >= _POOL_MIN_SETS
    if spec.engine == "event" and jobs > 1 and enough:
        chunks = chunked(sets, jobs * CHUNKS_PER_CPU)
        parts = map_pool(_ray_eval, data, chunks, spec, jobs=jobs, progress=progress,
                         sink=_recorder(log, chunks))  # fmt: skip
        return _gather(dict(enumerate(parts)))
    return _run_here(data, spec, sets, jobs, progress, log)


def _recorder(log: SearchLog | None, chunks: list[list[ParamSet]]) -> Sink | None:
    """A sink writing each finished chunk's sets into ``log``."""
    if log is None:
        return None
    return lambda i, part: log.record(chunks[i], *part)


def _gather(parts: dict[int, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    ordered = [parts[i] for i in sorted(parts)]
    return np.concatenate([p[0] for p in ordered]), np.concatenate([p[1] for p in ordered])


def _run_here(data: MarketData, spec: EvalSpec, sets: list[ParamSet], jobs: int,
              progress: Progress | None, log: SearchLog | None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """In this process; with a ``log``, in chunks of about ``CHECKPOINT_S`` seconds, each recorded."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(jobs, numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]
    try:
        with kept_warnings() as kept:
            return _chunks_here(data, spec, sets, progress, log)
    finally:
        numba.set_num_threads(before)
        say_kept(kept)


def _chunks_here(data: MarketData, spec: EvalSpec, sets: list[ParamSet], progress: Progress | None,
                 log: SearchLog | None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    if log is None:
        return evaluate(data, spec, sets, progress)
    parts, lo, size = {}, 0, 1
    while lo < len(sets):
        chunk, t0 = sets[lo : lo + size], time.perf_counter()
        tally = None if progress is None else partial(_shifted, progress, lo, len(sets))
        parts[lo] = evaluate(data, spec, chunk, tally)
        log.record(chunk, *parts[lo])
        lo += len(chunk)
        size = max(1, int(CHECKPOINT_S * len(chunk) / max(time.perf_counter() - t0, 1e-6)))
    return _gather(parts)


def _shifted(progress: Progress, offset: int, total: int, done: int, _of: int) -> None:
    progress(offset + done, total)


def map_pool(func: Callable[..., Any], data: MarketData, chunks: list[list[Any]], *args: Any, jobs: int,
             progress: Progress | None = None, sink: Sink | None = None) -> list[Any]:  # fmt: skip
    """``[func(data, chunk, *args) for chunk in chunks]`` on ``jobs`` local processes, in chunk order.

    ``data`` is written once as ``.npy`` files that every worker maps; ``func`` must be importable.
    ``sink(chunk index, result)`` receives each result as it arrives; an exception (Ctrl-C)
    cancels the chunks not started.
    """
    quiet_in_worker_import()
    parts, done, total = {}, 0, sum(len(c) for c in chunks)
    kept: dict[int, Kept] = {}
    with tempfile.TemporaryDirectory(prefix="backtape-opt-") as tmp:
        manifest = data.share(Path(tmp))
        # spawn: numba's thread pool must not be inherited through fork
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init,
                                 initargs=(str(manifest),)) as pool:  # fmt: skip
            futures = {pool.submit(_worker_call, func, chunk, args): i for i, chunk in enumerate(chunks)}
            try:
                for fut in as_completed(futures):
                    i = futures[fut]
                    parts[i], said = fut.result()
                    kept[i] = said
                    if sink is not None:
                        sink(i, parts[i])
                    done += len(chunks[i])
                    if progress is not None:
                        progress(done, total)
            except BrokenProcessPool:
                raise ConfigError(_BROKEN) from None
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            finally:
                say_kept(w for i in sorted(kept) for w in kept[i])  # in chunk order, not arrival
    return [parts[i] for i in range(len(chunks))]


def _ray_eval(data: MarketData, sets: list[ParamSet], spec: EvalSpec) -> tuple[np.ndarray, np.ndarray]:
    return evaluate(data, spec, sets)
