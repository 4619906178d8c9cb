"""The README's worked strategy runs as written and its comment's figures are the run's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from _isolation import isolate
from backtape.formatting import metric

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_strategy_runs_and_says_true(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch, tmp_path)
    text = README.read_text(encoding="utf-8")
    section = text.split("## A strategy of your own", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
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
