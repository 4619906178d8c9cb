"""Shared parts of the fault campaign (``fault_campaign.py``): the synthetic reference data, isolated
subprocesses, SIGKILL at a random moment and the result tables.

Every answer is checked against ``SyntheticDataSource(seed=SEED)`` read directly: the same seed,
symbol and time always give the same bars, so a reference frame needs no stored copy.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from backtape._async import run_sync
from backtape.cache import CachedDataSource, NeverStalePolicy
from backtape.sources.synthetic import SyntheticDataSource

if TYPE_CHECKING:
    from backtape.engine.result import BacktestResult

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SEED = 7
FREQ = "1min"


def env(home: Path) -> dict[str, str]:
    """Environment of a campaign subprocess: this checkout's code, no user configuration."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BACKTAPE_", "POLYGON_", "ALPACA_"))}
    home.mkdir(parents=True, exist_ok=True)
    return {**clean, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(HERE)])}


def spawn(args: Sequence[object], home: Path, **kw: object) -> subprocess.Popen:
    """``python ARGS`` in a clean environment (cwd ``home``), output captured."""
    return subprocess.Popen([sys.executable, *map(str, args)], env=env(home), cwd=home,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)  # type: ignore[call-overload]


def cli(*args: object) -> list[object]:
    """Arguments of ``python -m backtape.cli.app ARGS`` (the real command line)."""
    return ["-m", "backtape.cli.app", *args]


def worker(*args: object) -> list[object]:
    """Arguments of one ``_fault_worker.py`` mode."""
    return [HERE / "_fault_worker.py", *args]


def kill_after(proc: subprocess.Popen, delay: float) -> bool:
    """SIGKILL ``proc`` after ``delay`` seconds; False when it had already finished (no kill landed)."""
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        time.sleep(min(0.005, max(0.0, deadline - time.monotonic())))
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    return True


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Wait until ``proc`` creates ``path`` (its ready marker)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited early ({proc.returncode}): {proc.communicate()[1][-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError("worker never became ready")
        time.sleep(0.005)


def source() -> SyntheticDataSource:
    return SyntheticDataSource(seed=SEED)


def reference(symbols: Sequence[str], start: str, end: str) -> pl.DataFrame:
    """The true bars: the synthetic source read directly."""
    return source().fetch_sync(list(symbols), start, end, FREQ)


def cached(cache_dir: Path) -> CachedDataSource:
    """The synthetic source behind a cache in ``cache_dir`` (every range immutable, no memory tier)."""
    return CachedDataSource(source(), cache_dir=cache_dir, memory_bytes=0,
                            freshness_policy=NeverStalePolicy())


def close(src: CachedDataSource) -> None:
    run_sync(src.aclose())


@dataclass
class Tally:
    """Counts of one sub-campaign row, printed as one table line; ``notes`` keeps a few examples."""

    name: str
    counts: dict[str, int | float | str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = int(self.counts.get(key, 0)) + n

    def note(self, text: str) -> None:
        if len(self.notes) < 5 and text not in self.notes:
            self.notes.append(text)

    @contextlib.contextmanager
    def outcomes(self) -> Iterator[None]:
        """Count what escapes the block: a ``BacktapeError`` is a manual repair, anything else
        (panics of native code included) an unexpected error; Ctrl-C and exits pass through."""
        from backtape.errors import BacktapeError

        try:
            yield
        except BacktapeError as exc:
            self.add("manual repairs")
            self.note(f"{type(exc).__name__}: {str(exc)[:200]}")
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # Exception and panics of native code (pyo3 PanicException)
            self.add("unexpected errors")
            self.note(f"{type(exc).__name__}: {str(exc)[:200]}")


def print_table(title: str, columns: Sequence[str], rows: Sequence[Tally]) -> str:
    """A plain-text table (also valid Markdown) of ``rows``; printed and returned."""
    head = ["", *columns]
    body = [[r.name, *(str(r.counts.get(c, 0)) for c in columns)] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    text = "\n".join([f"\n### {title}\n", line(head), line(["-" * w for w in widths]), *map(line, body)])
    for r in rows:
        text += "".join(f"\n  {r.name}: {n}" for n in r.notes)
    print(text, flush=True)
    return text


def reference_run(work: Path) -> tuple[BacktestResult, BacktestResult]:
    """A real backtest on synthetic daily bars, as stored and loaded back (the comparison form)."""
    from backtape import Workspace
    from backtape.config import Config
    from backtape.results import ResultsStore

    result = Workspace(Config()).run_backtest("sma_crossover", "ACME", "2020-01-01", "2023-01-01", "1d",
                                              source=source(), store=False)
    store = ResultsStore(work / "reference.db")
    loaded = store.load_result(result.save(store))
    store.engine.dispose()
    return result, loaded


def same_run(a: BacktestResult, b: BacktestResult) -> bool:
    """Two loaded runs hold the same header, metrics and frames."""
    fa, fb = a.frames(), b.frames()
    return ((a.strategy, a.parameters, a.symbols, a.start, a.end, a.frequency, a.metrics)
            == (b.strategy, b.parameters, b.symbols, b.start, b.end, b.frequency, b.metrics)
            and fa.keys() == fb.keys() and all(fa[k].equals(fb[k]) for k in fa))
