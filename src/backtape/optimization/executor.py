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
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .cluster import CHUNKS_PER_CPU, chunked, chunks_for, map_chunks
from .data import MarketData, market_data_from
from .evaluate import EvalSpec, ParamSet, evaluate

Progress = Callable[[int, int], None]
EXECUTORS = ("local", "ray")

_WORKER_DATA: dict[str, MarketData] = {}
#: event-engine searches of at least this many sets use the process pool when n_jobs is not given
_POOL_MIN_SETS = 8


def _worker_init(manifest: str) -> None:
    _WORKER_DATA["data"] = market_data_from(manifest)


def _worker_call(func: Callable[..., Any], chunk: list[Any], args: tuple[Any, ...]) -> Any:
    return func(_WORKER_DATA["data"], chunk, *args)


def run_sets(
    data: MarketData,
    spec: EvalSpec,
    sets: list[ParamSet],
    *,
    executor: str = "local",
    n_jobs: int | None = None,
    address: str | None = None,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Metrics and block sums of every set, in the order of ``sets`` (see ``evaluate``).

    ``n_jobs`` ``None`` or ``-1`` means every core.
    """
    if n_jobs is not None and n_jobs < 0:
        n_jobs = None
    if executor not in EXECUTORS:
        raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    jobs = max(1, int(n_jobs or os.cpu_count() or 1))
    if executor == "ray":
        return _run_ray(data, spec, sets, address, progress)
    # Starting workers costs about a second each: without an explicit n_jobs, small searches stay here.
    enough = len(sets) > 1 if n_jobs else len(sets) >= _POOL_MIN_SETS
    if spec.engine == "event" and jobs > 1 and enough:
        return _run_pool(data, spec, sets, jobs, progress)
    return _run_here(data, spec, sets, jobs, progress)


def _gather(parts: dict[int, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    ordered = [parts[i] for i in sorted(parts)]
    return np.concatenate([p[0] for p in ordered]), np.concatenate([p[1] for p in ordered])


def _run_here(data: MarketData, spec: EvalSpec, sets: list[ParamSet], jobs: int,
              progress: Progress | None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(jobs, numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]
    try:
        return evaluate(data, spec, sets, progress)
    finally:
        numba.set_num_threads(before)


def _run_pool(
    data: MarketData, spec: EvalSpec, sets: list[ParamSet], jobs: int, progress: Progress | None
) -> tuple[np.ndarray, np.ndarray]:
    chunks = chunked(sets, jobs * CHUNKS_PER_CPU)
    parts = map_pool(_ray_eval, data, chunks, spec, jobs=jobs, progress=progress)
    return _gather(dict(enumerate(parts)))


def map_pool(func: Callable[..., Any], data: MarketData, chunks: list[list[Any]], *args: Any, jobs: int,
             progress: Progress | None = None) -> list[Any]:  # fmt: skip
    """``[func(data, chunk, *args) for chunk in chunks]`` on ``jobs`` local processes, in chunk order.

    ``data`` is written once as ``.npy`` files that every worker maps; ``func`` must be importable.
    """
    parts, done, total = {}, 0, sum(len(c) for c in chunks)
    with tempfile.TemporaryDirectory(prefix="backtape-opt-") as tmp:
        manifest = data.share(Path(tmp))
        # spawn: numba's thread pool must not be inherited through fork
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init,
                                 initargs=(str(manifest),)) as pool:  # fmt: skip
            futures = {pool.submit(_worker_call, func, chunk, args): i for i, chunk in enumerate(chunks)}
            for fut in as_completed(futures):
                parts[futures[fut]] = fut.result()
                done += len(chunks[futures[fut]])
                if progress is not None:
                    progress(done, total)
    return [parts[i] for i in range(len(chunks))]


def _ray_eval(data: MarketData, sets: list[ParamSet], spec: EvalSpec) -> tuple[np.ndarray, np.ndarray]:
    return evaluate(data, spec, sets)


def _run_ray(
    data: MarketData, spec: EvalSpec, sets: list[ParamSet], address: str | None, progress: Progress | None
) -> tuple[np.ndarray, np.ndarray]:
    parts = map_chunks(_ray_eval, data, chunks_for(address, sets), spec, address=address, progress=progress)
    return _gather(dict(enumerate(parts)))
