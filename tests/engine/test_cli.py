"""``backtape backtest`` and ``backtape runs`` through typer's CliRunner, on a temporary database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from _isolation import isolate
from backtape.cli.backtest import app as backtest_app
from backtape.cli.runs import app as runs_app
from backtape.engine import StrategyFactory
from backtape.results import ResultsStore

runner = CliRunner(env={"COLUMNS": "250"})


@pytest.fixture(autouse=True)
def _no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Defaults come from the configuration: keep the machine's own files and variables out."""
    isolate(monkeypatch, tmp_path)

USER_STRATEGY = '''
from backtape.engine import Strategy

class BuyAndHold(Strategy):
    params = {"fraction": 1.0}

    def on_bar(self, ctx):
        if not ctx.position():
            ctx.order_target_percent(ctx.symbols[0], self.fraction)
'''


def _backtest(db: Path, *args: str) -> str:
    result = runner.invoke(backtest_app, [*args, "--db", str(db)])
    assert result.exit_code == 0, result.output
    return result.output


def test_backtest_builtin_and_user_file_are_stored_and_listed(tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    out = _backtest(db, "sma_crossover", "--symbols", "AAPL", "--start", "2012-01-01", "--end", "2015-01-01",
                    "--param", "fast=10", "--param", "slow=50", "--commission", "0.001")
    assert "final equity" in out and "stored run 1" in out
    user = tmp_path / "mine.py"
    user.write_text(USER_STRATEGY)
    out = _backtest(db, f"{user}:BuyAndHold", "--symbols", "MSFT", "--start", "2013-01-01",
                    "--end", "2014-01-01", "--param", "fraction=0.5", "--fill", "close")
    assert "stored run 2" in out
    store = ResultsStore(db)
    rec = store.get_run(1)
    assert rec.header["parameters"] == {"fast": 10, "slow": 50, "allow_short": False}
    assert rec.trades.height == rec.metrics["closed_trades"] > 0
    fp = rec.header["data_fingerprint"]
    assert fp["source"] == "sample" and fp["symbols"] == ["AAPL"] and fp["package_version"]
    listed = runner.invoke(runs_app, ["list", "--db", str(db)])
    assert listed.exit_code == 0 and "SmaCrossover" in listed.output and "BuyAndHold" in listed.output
    shown = runner.invoke(runs_app, ["show", "1", "--db", str(db)])
    assert shown.exit_code == 0 and "Sharpe" in shown.output and "AAPL" in shown.output
    compared = runner.invoke(runs_app, ["compare", "1", "2", "--db", str(db)])
    assert compared.exit_code == 0 and "run 1" in compared.output and "run 2" in compared.output


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    from backtape.cli.app import app as root

    bad = runner.invoke(root, ["backtest", "nope", "--symbols", "AAPL", "--start", "2012-01-01",
                               "--end", "2013-01-01", "--db", str(db)])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: ") and "unknown strategy 'nope'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    missing = runner.invoke(root, ["runs", "show", "42", "--db", str(db)])
    assert missing.exit_code == 2 and "no backtest run with id 42" in missing.stderr
    bad_param = runner.invoke(backtest_app, ["sma_crossover", "--symbols", "AAPL", "--start", "2012-01-01",
                                             "--end", "2013-01-01", "--param", "fast", "--db", str(db)])
    assert bad_param.exit_code != 0


QUOTE_TAKER = '''
from backtape.engine import Strategy
from backtape.portal import DataRequirement

class QuoteTaker(Strategy):
    """Buys one unit at the first quote and sells it at the 200th (fills against quotes)."""

    def get_data_requirements(self):
        return [DataRequirement("quotes", self.frequency)]

    def initialize(self, ctx):
        self.seen = 0

    def on_quote(self, ctx, quote):
        self.seen += 1
        if self.seen == 1:
            ctx.buy("BTCUSDT", 1)
        elif self.seen == 200:
            ctx.close("BTCUSDT")
'''


def _root(*args: str) -> Any:
    from backtape.cli.app import app as root

    return runner.invoke(root, list(args))


def test_defaults_come_from_the_config_and_flags_override_them(tmp_path: Path) -> None:
    db = tmp_path / "from-config.db"
    cfg = tmp_path / "backtape.yaml"
    cfg.write_text(f"data:\n  results_db: {db}\nbacktesting:\n  cash: 5000\n  commission: 0.001\n"
                   "risk:\n  max_position_pct: 0.5\n")
    args = ["sma_crossover", "--symbols", "AAPL", "--start", "2012-01-01", "--end", "2015-01-01"]
    first = _root("--config", str(cfg), "backtest", *args)
    assert first.exit_code == 0, first.output
    assert "limited by max_position_pct" in first.output and f"in sqlite:///{db}" in first.output
    second = _root("--config", str(cfg), "backtest", *args, "--cash", "20000", "--max-position-pct", "1.0",
                   "--stop-loss-pct", "0.05", "--commission", "0")
    assert second.exit_code == 0, second.output
    store = ResultsStore(db)
    one, two = store.get_run(1), store.get_run(2)
    assert one.header["cash"] == 5000.0 and one.metrics["commission"] > 0
    assert two.header["cash"] == 20_000.0 and two.metrics["commission"] == 0.0
    # at most half of equity in the first run: its first entry is worth <= 2,500 at the fill
    entry = one.trades.row(0, named=True)
    assert entry["quantity"] * entry["entry_price"] <= 0.5 * 5000 * 1.01
    listed = _root("--config", str(cfg), "runs", "list")
    assert listed.exit_code == 0 and "SmaCrossover" in listed.output


def test_list_names_the_registered_strategies() -> None:
    out = runner.invoke(backtest_app, ["--list"])
    assert out.exit_code == 0 and out.output.split() == StrategyFactory.list_available()
    assert "sma_crossover" in out.output.split()


def test_risk_flags_are_validated_and_merged_with_the_config() -> None:
    from backtape.cli.backtest import _risk_manager
    from backtape.config import RiskConfig

    config = RiskConfig(max_position_pct=0.2, max_drawdown_halt=0.3)
    rm = _risk_manager(config, {"default_stop_loss_pct": 0.05, "max_position_pct": None})
    assert rm is not None
    assert (rm.max_position_pct, rm.max_drawdown_halt, rm.default_stop_loss_pct) == (0.2, 0.3, 0.05)
    assert _risk_manager(RiskConfig(), {"max_position_pct": None}) is None
    with pytest.raises(typer.BadParameter, match=r"risk\.default_stop_loss_pct: .*(got 2\.0)"):
        _risk_manager(RiskConfig(), {"default_stop_loss_pct": 2.0})


def test_latency_of_a_quote_run(tmp_path: Path) -> None:
    from backtape.cli.backtest import _parse_latency

    parsed = [_parse_latency(t) for t in ("0", "250ms", "50us", "1s", "7ns")]
    assert parsed == [0, 250_000_000, 50_000, 10**9, 7]
    user = tmp_path / "taker.py"
    user.write_text(QUOTE_TAKER)
    db = tmp_path / "q.db"
    common = [f"{user}:QuoteTaker", "--symbols", "BTCUSDT", "--start", "2024-08-08T23:54:00Z",
              "--end", "2024-08-09T00:00:02Z", "--frequency", "1min", "--cash", "100000"]
    _backtest(db, *common)
    _backtest(db, *common, "--latency", "500ms")
    store = ResultsStore(db)
    now, late = store.get_run(1).trades.row(0, named=True), store.get_run(2).trades.row(0, named=True)
    # an order arrives (and, the book being quoted, fills) at placement + latency
    assert (late["entry_time"] - now["entry_time"]).total_seconds() == pytest.approx(0.5)
    bad = _root("backtest", *common, "--latency", "soon", "--no-store")
    assert bad.exit_code == 2 and "cannot read duration 'soon'" in bad.stderr


def test_log_json_emits_the_run_events(tmp_path: Path) -> None:
    from backtape._logging import configure_logging

    try:
        result = _root("--log-json", "backtest", "sma_crossover", "--symbols", "AAPL", "--start",
                       "2012-01-01", "--end", "2013-01-01", "--param", "fast=5", "--param", "slow=20",
                       "--db", str(tmp_path / "r.db"))
    finally:
        configure_logging()  # the handler pointed at the runner's stream
    assert result.exit_code == 0, result.output
    events = {e["event"]: e for e in map(json.loads, result.stderr.splitlines()) if "event" in e}
    start, done = events["backtest.start"], events["backtest.complete"]
    assert start["level"] == "info" and start["logger"] == "backtape.backtest"
    assert start["strategy"] == "SmaCrossover" and start["parameters"] == {"fast": 5, "slow": 20,
                                                                            "allow_short": False}
    assert start["symbols"] == ["AAPL"] and start["start"].startswith("2012-01-01")
    stored = ResultsStore(tmp_path / "r.db").get_run(1)
    assert done["final_equity"] == pytest.approx(stored.metrics["final_equity"])
    assert done["trades"] == stored.metrics["trades"] and done["duration_s"] > 0
    assert done["end"].startswith("2013-01-01") and "max_drawdown" in done
