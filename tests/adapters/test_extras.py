"""Optional extras: a missing peer is a one-line error naming the extra; import backtape stays light;
``backtape backtest --engine`` runs a peer strategy file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from backtape.adapters import ADAPTERS, PeerNotInstalledError, adapter, require
from backtape.errors import BacktapeError

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize(("name", "peer", "extra"), [("backtrader", "backtrader", "backtrader"),
                                                     ("backtesting", "backtesting", "backtesting"),
                                                     ("vectorbt", "vectorbt", "vectorbt")])
def test_missing_peer_names_the_extra(ws, goog, monkeypatch, name: str, peer: str, extra: str) -> None:
    monkeypatch.setitem(sys.modules, peer, None)  # as if the package were not installed
    with pytest.raises(PeerNotInstalledError) as info:
        adapter(name).run(object, "GOOG", "2010-01-01", "2011-01-01", source=goog, workspace=ws)
    text = str(info.value)
    assert "\n" not in text and f"pip install 'backtape[{extra}]'" in text
    assert isinstance(info.value, BacktapeError) and isinstance(info.value, ImportError)


def test_require_returns_the_peer() -> None:
    pytest.importorskip("backtesting")
    assert require("backtesting").__name__ == "backtesting"
    assert set(ADAPTERS) == {"backtrader", "backtesting", "vectorbt"}


def test_import_backtape_and_adapters_stays_light() -> None:
    code = ("import sys, backtape, backtape.adapters; heavy = {'backtrader', 'backtesting', 'vectorbt', "
            "'polars', 'numpy', 'numba', 'pandas'} & set(sys.modules); print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT / "src")})
    assert out.stdout.strip() == "[]"


STRATEGY = '''
    import backtrader as bt


    class Cross(bt.Strategy):
        params = (("fast", 10), ("slow", 30))

        def __init__(self):
            self.cross = bt.ind.CrossOver(bt.ind.SMA(period=self.p.fast), bt.ind.SMA(period=self.p.slow))

        def next(self):
            if self.cross > 0:
                self.order_target_percent(target=0.9)
            elif self.cross < 0:
                self.close()
'''


def test_cli_backtest_engine_backtrader(tmp_path: Path) -> None:
    pytest.importorskip("backtrader")
    strategy = tmp_path / "cross.py"
    strategy.write_text(textwrap.dedent(STRATEGY), encoding="utf-8")
    config = tmp_path / "backtape.yaml"
    config.write_text(f"data:\n  cache_dir: {tmp_path / 'cache'}\n  bundles_dir: {tmp_path / 'bundles'}\n"
                      f"  results_db: {tmp_path / 'results.db'}\n", encoding="utf-8")
    args = [sys.executable, "-m", "backtape.cli.app", "--config", str(config), "backtest",
            f"{strategy}:Cross",
            "--engine", "backtrader", "-s", "AAPL", "--start", "2012-01-01", "--end", "2015-01-01",
            "--source", "sample", "--cash", "100000", "--commission", "0.001", "-p", "fast=5"]
    env = {"PYTHONPATH": f"{ROOT / 'src'}", "HOME": str(tmp_path), "COLUMNS": "200"}
    out = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Cross (backtrader) on AAPL 1d" in out.stdout and "stored run 1" in out.stdout
    from backtape.results import ResultsStore

    run = ResultsStore(str(tmp_path / "results.db")).load_result(1)
    assert run.parameters == {"fast": 5} and run.fingerprint["engine"] == "backtrader"
    assert run.trades.height > 0
