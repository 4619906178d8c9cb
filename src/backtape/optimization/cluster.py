"""Parameter sets on a Ray cluster: connect, ship the data once, chunk, retry, cancel.

* ``connect(address)``: joins the cluster at ``address`` (``"127.0.0.1:6379"``, ``"ray://..."``) or,
  without one, starts a private local instance (``address="local"``); an existing connection is reused.
* The driver resolved the data through its workspace; ``ray.put`` stores the ``MarketData`` (numpy
  arrays, pickled out of band) once in the object store. Each node pulls it once and its workers map
  it read-only without copying, so no worker ever calls a data source.
* Sets go out in about ``CHUNKS_PER_CPU`` chunks per cluster CPU, so every worker stays busy while
  results stream back (``ray.wait``) and a lost chunk costs little; a task whose worker or node dies is
  retried (``max_retries``) and evaluation is deterministic, so the table equals a local run.
* Ctrl-C (``KeyboardInterrupt``) on the driver cancels every outstanding task before it propagates.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError

#: chunks per cluster CPU: enough to balance uneven chunks and to make a retried chunk cheap
CHUNKS_PER_CPU = 4
#: times a task is retried after its worker process or node died
MAX_RETRIES = 3

Progress = Callable[[int, int], None]


def ray_available() -> bool:
    """Whether the ``ray`` extra is installed."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def connect(address: str | None = None) -> Any:
    """The ``ray`` module, connected to ``address`` (or to a new local instance when ``None``)."""
    if not ray_available():
        raise ConfigError("executor='ray' needs the ray extra: pip install 'backtape[ray]'")
    import ray

    if not ray.is_initialized():
        src = str(Path(__file__).resolve().parents[2])
        # workers on this machine import backtape from the driver's checkout; elsewhere it is installed
        path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
        ray.init(address=address or "local", ignore_reinit_error=True, log_to_driver=False,
                 configure_logging=False, runtime_env={"env_vars": {"PYTHONPATH": path}})  # fmt: skip
    return ray


def cluster_cpus(ray: Any) -> int:
    """CPUs the cluster offers right now (at least one)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def chunked(items: Sequence[Any], n_chunks: int) -> list[list[Any]]:
    """``items`` cut into at most ``n_chunks`` consecutive chunks of near-equal size."""
    size = max(1, -(-len(items) // max(1, n_chunks)))
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def map_chunks(
    func: Callable[..., Any],
    shared: Any,
    chunks: list[list[Any]],
    *args: Any,
    address: str | None = None,
    progress: Progress | None = None,
    max_retries: int = MAX_RETRIES,
) -> list[Any]:
    """``[func(shared, chunk, *args) for chunk in chunks]`` as Ray tasks, in chunk order.

    ``shared`` goes once into the object store; ``progress(items done, items in all)`` follows the
    results as they arrive.
    """
    ray = connect(address)
    task = ray.remote(max_retries=max_retries, retry_exceptions=False)(func)
    ref = ray.put(shared)
    pending = {task.remote(ref, chunk, *args): i for i, chunk in enumerate(chunks)}
    parts: dict[int, Any] = {}
    done, total = 0, sum(len(c) for c in chunks)
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for r in ready:
                i = pending.pop(r)
                parts[i] = ray.get(r)
                done += len(chunks[i])
                if progress is not None:
                    progress(done, total)
    except BaseException:
        for r in pending:
            ray.cancel(r, force=True)
        raise
    finally:
        del ref
    return [parts[i] for i in range(len(chunks))]


def chunks_for(ray_address: str | None, items: Sequence[Any]) -> list[list[Any]]:
    """``items`` in chunks for the cluster at ``ray_address``: ``CHUNKS_PER_CPU`` per CPU."""
    return chunked(items, cluster_cpus(connect(ray_address)) * CHUNKS_PER_CPU)
