"""Subprocess entry points of the fault campaign (each a real process the campaign may SIGKILL).

    python _fault_worker.py cache CACHE READY PLAN      fetch every [symbols, start, end] of PLAN (JSON)
    python _fault_worker.py results DB READY PICKLE     save the pickled BacktestResult again and again
    python _fault_worker.py fuzz OUT FOLDER             read_bars and `backtape validate` on every file
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import re
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path


def peak_mib() -> float:
    """This process's own peak resident memory (VmHWM; ru_maxrss would include the forking parent)."""
    match = re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text())
    return int(match[1]) / 1024 if match else float("nan")


def _cache(cache: str, ready: str, plan: str) -> int:
    from _fault_common import cached

    src = cached(Path(cache))
    Path(ready).write_text("ready")
    for symbols, start, end in json.loads(plan):
        src.fetch_sync(symbols, start, end, "1min")
    return 0


def _results(db: str, ready: str, pickled: str) -> int:
    from backtape.results import ResultsStore

    result = pickle.loads(Path(pickled).read_bytes())
    store = ResultsStore(db)
    Path(ready).write_text("ready")
    for _ in range(100_000):
        result.save(store)
    return 0


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """``backtape ARGS`` in this process: exit code, stdout, stderr (an escaping exception: code -1)."""
    from backtape.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # Exception and panics of native code (pyo3 PanicException)
            code, err = -1, io.StringIO(f"escaped {type(exc).__name__}: {exc}")
    return code, out.getvalue(), err.getvalue()


def clear_error(code: int, stderr: str) -> bool:
    """A finished command: success, problems found (1) or one ``error:`` line that is not ``unexpected``."""
    if code in (0, 1) and "Traceback" not in stderr:
        return True
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("warning:")]
    return code > 0 and len(lines) == 1 and lines[0].startswith("error: ") and "unexpected" not in lines[0]


def _fuzz(out: str, folder: str) -> int:
    from backtape.errors import BacktapeError
    from backtape.sources.files import read_bars

    t0 = time.perf_counter()
    tally = {"files": 0, "read_ok": 0, "read_backtape_error": 0, "read_other": 0, "validate_clear": 0,
             "validate_other": 0}
    examples: list[str] = []
    messages: list[str] = []  # what the first file gave, as a user sees it
    for path in sorted(Path(folder).iterdir()):
        tally["files"] += 1
        first = tally["files"] == 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                read_bars(path, calendar="24/7")
                tally["read_ok"] += 1
            except BacktapeError as exc:
                tally["read_backtape_error"] += 1
                if first:
                    messages.append(f"read_bars: {type(exc).__name__}: {str(exc)[:200]}")
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # Exception and panics of native code (pyo3 PanicException)
                tally["read_other"] += 1
                examples.append(f"read_bars {path.name}: {type(exc).__name__}: {str(exc)[:160]}")
            code, stdout, stderr = run_cli(["validate", str(path)])
        if first:
            messages.append(f"validate: exit {code}: {(stderr or stdout).strip()[:200]}")
        if clear_error(code, stderr):
            tally["validate_clear"] += 1
        else:
            tally["validate_other"] += 1
            examples.append(f"validate {path.name}: exit {code}: {stderr.strip()[:160]}")
    Path(out).write_text(json.dumps({**tally, "seconds": time.perf_counter() - t0, "peak_mib": peak_mib(),
                                     "examples": examples[:8], "messages": messages}))
    return 0


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    modes: dict[str, Callable[..., int]] = {"cache": _cache, "results": _results, "fuzz": _fuzz}
    sys.exit(modes[mode](*rest))
