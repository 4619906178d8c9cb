"""The README's worked strategy runs as written and its comment's figures are the run's."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import backtape
from backtape.formatting import metric

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_strategy_runs_and_says_true(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from backtape.config import ALIAS_ENV, CONFIG_ENV, ENV_PREFIX

    for name in list(os.environ):
        if name.startswith(ENV_PREFIX) or name in ALIAS_ENV or name == CONFIG_ENV:
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    text = README.read_text(encoding="utf-8")
    section = text.split("## A strategy of your own", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    if not hasattr(backtape.BacktestResult, "report"):  # the HTML report arrives with the reports work
        code = "\n".join(line for line in code.splitlines() if ".report(" not in line)
    scope: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), scope)
    result = scope["result"]
    m = result.metrics  # type: ignore[attr-defined]
    pattern = r"# headline figures: (\S+) against buy & hold (\S+), (\d+) trades \((\d+) open\)"
    claim = re.search(pattern, code)
    assert claim is not None
    assert claim.groups() == (metric("total_return", m["total_return"]), metric("buy_hold_return",
                              m["buy_hold_return"]), str(m["trades"]), str(m["open_trades"]))
    assert [c for c in result.records.columns if c != "ts"] == [  # type: ignore[attr-defined]
        "mom_AAPL", "mom_MSFT", "mom_KO", "mom_IBM"]
