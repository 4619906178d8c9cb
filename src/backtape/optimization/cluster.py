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
* ``local_cluster(nodes=2)`` starts a real multi-node cluster on 127.0.0.1 (``ray start`` processes)
  for tests and benchmarks, and stops exactly its own processes afterwards; ``add_node`` joins one
  more, which ``Node.stop`` removes (all its processes killed at once, as when a machine is lost).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ..errors import ConfigError, Kept, kept_warnings, say_kept

#: chunks per cluster CPU: enough to balance uneven chunks and to make a retried chunk cheap
CHUNKS_PER_CPU = 4
#: times a task is retried after its worker process or node died
MAX_RETRIES = 3

Progress = Callable[[int, int], None]
#: receives each chunk's result as it arrives: ``sink(chunk index, result)``
Sink = Callable[[int, Any], None]


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
    sink: Sink | None = None,
) -> list[Any]:
    """``[func(shared, chunk, *args) for chunk in chunks]`` as Ray tasks, in chunk order.

    ``shared`` goes once into the object store; ``progress(items done, items in all)`` follows the
    results as they arrive, and ``sink(chunk index, result)`` receives each one then.
    """
    ray = connect(address)
    task = ray.remote(max_retries=max_retries, retry_exceptions=False)(_kept_call).options(
        name=getattr(func, "__name__", "chunk"))  # named as func in ray's dashboard and process titles
    ref = ray.put(shared)
    pending = {task.remote(func, ref, chunk, *args): i for i, chunk in enumerate(chunks)}
    parts: dict[int, Any] = {}
    done, total = 0, sum(len(c) for c in chunks)
    kept: dict[int, Kept] = {}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for r in ready:
                i = pending.pop(r)
                parts[i], said = ray.get(r)
                kept[i] = said
                if sink is not None:
                    sink(i, parts[i])
                done += len(chunks[i])
                if progress is not None:
                    progress(done, total)
    except BaseException:
        for r in pending:
            ray.cancel(r, force=True)
        raise
    finally:
        del ref
        say_kept(w for i in sorted(kept) for w in kept[i])  # in chunk order, not arrival
    return [parts[i] for i in range(len(chunks))]


def _kept_call(func: Callable[..., Any], shared: Any, chunk: list[Any], *args: Any) -> tuple[Any, Kept]:
    """``func(shared, chunk, *args)`` in a task, with the warnings it raised (``errors.kept_warnings``)."""
    with kept_warnings() as kept:
        out = func(shared, chunk, *args)
    return out, kept


def chunks_for(ray_address: str | None, items: Sequence[Any]) -> list[list[Any]]:
    """``items`` in chunks for the cluster at ``ray_address``: ``CHUNKS_PER_CPU`` per CPU."""
    return chunked(items, cluster_cpus(connect(ray_address)) * CHUNKS_PER_CPU)


@contextmanager
def local_cluster(nodes: int = 2, cpus: int = 1, object_store_bytes: int = 100_000_000,
                  pythonpath: Sequence[str] = ()) -> Iterator[str]:  # fmt: skip
    """The ``host:port`` of ``nodes`` Ray nodes (``ray start``, ``cpus`` each) on 127.0.0.1.

    Each node runs in its own session; on exit every process of those sessions (GCS, raylets,
    workers) is terminated, so nothing else on the machine is touched (unlike ``ray stop``).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    address = f"127.0.0.1:{port}"
    temp = Path(tempfile.mkdtemp(prefix="bt-ray-"))  # its own session files, not /tmp/ray's
    head = _ray_start(["--head", f"--port={port}", "--include-dashboard=false"], cpus, object_store_bytes,
                      pythonpath, temp)  # fmt: skip
    procs = [head]
    try:
        deadline = time.monotonic() + 60
        while not _listening(port):
            if time.monotonic() > deadline or head.poll() is not None:
                raise RuntimeError(f"the Ray head node did not start on {address}")
            time.sleep(0.2)
        procs += [_ray_start([f"--address={address}"], cpus, object_store_bytes, pythonpath, temp)
                  for _ in range(nodes - 1)]  # fmt: skip
        yield address
    finally:
        _stop_sessions({p.pid for p in procs})
        for p in procs:
            p.wait(timeout=30)
        # what ``ray stop`` does: forget the address, so a later ``ray.init()`` does not look for it
        for folder in (temp, Path(tempfile.gettempdir()) / "ray"):
            current = folder / "ray_current_cluster"
            if current.is_file() and current.read_text().strip().endswith(f":{port}"):
                current.unlink()
        shutil.rmtree(temp, ignore_errors=True)


class Node:
    """One extra ``ray start`` node in its own session (``add_node``); ``stop`` removes it."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc

    @property
    def session(self) -> int:
        """The session id shared by the node's raylet, object store and workers."""
        return self.proc.pid

    def pids(self) -> list[int]:
        """Processes of this node running now."""
        return [pid for pid in _pids() if _sid(pid) == self.session]

    def stop(self, kill: bool = True) -> None:
        """Remove the node: every process of it SIGKILLed at once (a lost machine), or SIGTERM first."""
        _stop_sessions({self.session}, (signal.SIGKILL,) if kill else (signal.SIGTERM, signal.SIGKILL))
        self.proc.wait(timeout=30)


@contextmanager
def add_node(address: str, cpus: int = 1, object_store_bytes: int = 100_000_000,
             pythonpath: Sequence[str] = ()) -> Iterator[Node]:  # fmt: skip
    """Another node joining the local cluster at ``address`` (``local_cluster``); stopped on exit."""
    node = Node(_ray_start([f"--address={address}"], cpus, object_store_bytes, pythonpath, None))
    try:
        yield node
    finally:
        node.stop(kill=False)


def _ray_start(args: list[str], cpus: int, object_store_bytes: int, pythonpath: Sequence[str],
               temp: Path | None) -> subprocess.Popen[bytes]:  # fmt: skip
    """``ray start --block`` with ``args`` on 127.0.0.1, in a new session (its processes share its id)."""
    path = [str(Path(__file__).resolve().parents[2]), *pythonpath]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
           "PYTHONPATH": os.pathsep.join(path)}  # fmt: skip
    env.pop("RAY_ADDRESS", None)
    common = [f"--num-cpus={cpus}", f"--object-store-memory={object_store_bytes}", "--disable-usage-stats",
              "--node-ip-address=127.0.0.1", *([f"--temp-dir={temp}"] if temp else [])]  # fmt: skip
    ray_bin = str(Path(sys.executable).with_name("ray"))
    return subprocess.Popen([ray_bin, "start", "--block", *args, *common], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _stop_sessions(sessions: set[int], signals: Sequence[int] = (signal.SIGTERM, signal.SIGKILL)) -> None:
    """``signals`` in turn (the next after 10 s) to every process whose session id is in ``sessions``."""
    for sig in signals:
        left = [pid for pid in _pids() if _sid(pid) in sessions]
        for pid in left:
            with suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while left and time.monotonic() < deadline:
            left = [pid for pid in left if _sid(pid) in sessions]
            time.sleep(0.1)


def _pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _sid(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except (ProcessLookupError, PermissionError):
        return None
