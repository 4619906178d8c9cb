"""A search warns once for all its runs: each kind of warning one line, whether the sets ran here or in
worker processes (they hand their warnings back), and a script without a ``__main__`` guard gets one
error that says what to do instead of a broken pool."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import pytest

import backtape as bt
from backtape.engine import Strategy


class AboveMean(Strategy):
    """Half in each symbol while it closes above its ``n``-bar mean (event form only)."""

    params: ClassVar[dict[str, Any]] = {"n": 10}

    @property
    def warmup(self) -> int:  # type: ignore[override]
        return int(self.n)

    def on_bar(self, ctx: Any) -> None:
        for sym in ctx.symbols:
            above = ctx.spot(sym) > ctx.history(sym, self.n).mean()
            ctx.order_target_percent(sym, 0.5 if above else 0.0)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_each_kind_of_warning_is_said_once_for_the_search(n_jobs: int,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("backtape.errors._SAID", set())
    with pytest.warns(bt.BacktapeWarning) as caught:
        res = bt.optimize(AboveMean, {"n": [5, 10, 20, 30]}, "AAPL,KO", "2011-01-01", "2013-01-01",
                          n_jobs=n_jobs)
    assert res.table.height == 4 and res.engine == "event"
    said = [str(w.message) for w in caught]
    assert len(said) == len(set(said)), said
    warmup = [s for s in said if "bars of 1d history" in s]
    assert warmup == ["AboveMean needs 5 bars of 1d history; the data has them from 2012-01-09T21:00:00Z on, "
                      "so on_bar is first called then (and 3 more like it)"], said
    assert sum("bars cover less" in s for s in said) == 1
    assert sum("on the event engine" in s for s in said) == 1


def test_a_script_without_a_main_guard_gets_one_error_saying_what_to_do(tmp_path: Path) -> None:
    script = tmp_path / "search.py"
    script.write_text(textwrap.dedent("""
        import backtape as bt
        from test_search_warnings import AboveMean

        bt.optimize(AboveMean, {"n": [5, 10, 20]}, "AAPL", "2012-01-01", "2013-01-01", n_jobs=2)
    """))
    tests = Path(__file__).parent
    env = {"PYTHONPATH": f"{tests}{':'}{tests.parent.parent / 'src'}", "PATH": "/usr/bin:/bin",
           "BACKTAPE_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          env=env, cwd=tmp_path)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("backtape.errors.ConfigError: a worker process stopped before finishing")
    assert 'if __name__ == "__main__":' in last and "n_jobs=1" in last
    assert done.stderr.count("warning: optimizing AboveMean on the event engine") == 1  # not once per worker
