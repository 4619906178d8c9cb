"""The results database on a real PostgreSQL server, started by this test session.

Where the server comes from, first that works:

1. ``BACKTAPE_TEST_POSTGRES_URL``: an existing server (a CI service), used as is;
2. the ``pgserver`` package (PostgreSQL binaries in a wheel; extra ``dev``), in a temporary folder;
3. PostgreSQL's own ``initdb``/``pg_ctl`` (on ``PATH`` or in ``/usr/lib/postgresql/*/bin``, e.g.
   Debian's ``postgresql`` package), on 127.0.0.1 and a free port. The server refuses to run as
   root, so as root it runs as the ``postgres`` user (else ``nobody``) in a folder that user owns.

The test is skipped, saying why, only when none of them can start a server (or ``psycopg`` is
missing).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from backtape.cli.backtest import app as backtest_app
from backtape.cli.runs import app as runs_app
from backtape.engine import run_backtest
from backtape.errors import BacktapeError
from backtape.results import ResultsStore
from backtape.results.store import _url
from backtape.workspace import Workspace

URL_ENV = "BACKTAPE_TEST_POSTGRES_URL"
#: pgserver keeps its lock under the user's runtime folder; without XDG_RUNTIME_DIR it says so
pytestmark = pytest.mark.filterwarnings("ignore:XDG_RUNTIME_DIR is not set")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_binaries() -> Path | None:
    """Folder holding ``initdb`` and ``pg_ctl`` of an installed PostgreSQL, newest first."""
    found = shutil.which("pg_ctl")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    return next((c for c in candidates if (c / "initdb").exists() and (c / "pg_ctl").exists()), None)


@contextlib.contextmanager
def _system_server(bin_dir: Path) -> Iterator[str]:
    """A throwaway cluster of the installed PostgreSQL on 127.0.0.1 (run as an unprivileged user)."""
    base = Path(tempfile.mkdtemp(prefix="backtape-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        user = next((u for u in ("postgres", "nobody") if _has_user(u)), None)
        if user is None or shutil.which("runuser") is None:
            raise RuntimeError("running as root without a postgres/nobody user or runuser")
        entry = pwd.getpwnam(user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
        prefix = ["runuser", "-u", user, "--"]
    data, port = base / "data", _free_port()
    pg_ctl = [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data)]
    try:
        subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                        "-E", "UTF8", "--no-sync"], check=True, capture_output=True, timeout=120)
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off"
        subprocess.run([*pg_ctl, "-l", str(base / "log"), "-o", options, "-w", "-t", "60", "start"],
                       check=True, capture_output=True, timeout=90)
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True, timeout=60, check=False)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@contextlib.contextmanager
def _pgserver() -> Iterator[str]:
    """A server from the ``pgserver`` wheel in a temporary folder, deleted afterwards."""
    import pgserver

    folder = Path(tempfile.mkdtemp(prefix="backtape-pgserver-"))
    srv = pgserver.get_server(folder, cleanup_mode="delete")
    try:
        yield srv.get_uri()
    finally:
        srv.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """URL of a running PostgreSQL server (module docstring), or a skip naming what was tried."""
    pytest.importorskip("psycopg", reason="the PostgreSQL driver psycopg is not installed (extra postgres)")
    if os.environ.get(URL_ENV):
        yield os.environ[URL_ENV]
        return
    tried: list[str] = []
    starters = []
    try:
        import pgserver  # noqa: F401

        starters.append(("pgserver", _pgserver))
    except ImportError:
        tried.append("pgserver is not installed")
    bin_dir = _server_binaries()
    if bin_dir is not None:
        starters.append((f"PostgreSQL in {bin_dir}", lambda: _system_server(bin_dir)))
    else:
        tried.append("no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin")
    for name, start in starters:
        stack = contextlib.ExitStack()
        try:
            url = stack.enter_context(start())
        except Exception as exc:  # a server that cannot start here: try the next way
            tried.append(f"{name} did not start ({type(exc).__name__}: {exc})")
            stack.close()
            continue
        with stack:
            yield url
        return
    pytest.skip(f"no PostgreSQL server could be started ({'; '.join(tried)}); set {URL_ENV} to use one")


def test_plain_postgresql_urls_use_psycopg_and_the_workspace_default_comes_from_the_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _url("postgresql://me@db:5432/runs") == "postgresql+psycopg://me@db:5432/runs"
    assert _url("postgres://me@db/runs") == "postgresql+psycopg://me@db/runs"
    assert _url("postgresql+psycopg2://me@db/runs") == "postgresql+psycopg2://me@db/runs"
    assert _url("sqlite:///x.db") == "sqlite:///x.db"
    monkeypatch.setenv("BACKTAPE_RESULTS_DB", str(tmp_path / "configured.db"))
    monkeypatch.delenv("BACKTAPE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert Workspace().results.url == f"sqlite:///{tmp_path / 'configured.db'}"


@pytest.mark.slow
def test_results_round_trip_on_a_real_postgresql_server(postgres_url: str, tmp_path: Path) -> None:
    store = ResultsStore(postgres_url)
    assert store.engine.dialect.name == "postgresql"
    with store.engine.begin() as conn:  # a fresh schema whatever ran before on this server
        for table in ("equity_curve", "trades", "parameters", "performance_metrics"):
            conn.execute(sa.text(f"DELETE FROM {table}"))
        conn.execute(sa.text("DELETE FROM backtests"))
    result = run_backtest("sma_crossover", "AAPL", "2012-01-01", "2015-01-01", commission=0.001,
                          params={"fast": 10, "slow": 50})
    other = run_backtest("sma_crossover", "MSFT", "2012-01-01", "2015-01-01", params={"fast": 5, "slow": 20})
    a, b = result.save(store), other.save(store)
    local = ResultsStore(tmp_path / "same.db")
    result.save(local)

    # the same run reads back identically from PostgreSQL and SQLite
    pg, lite = store.get_run(a), local.get_run(1)
    assert pg.header["parameters"] == {"fast": 10, "slow": 50, "allow_short": False}
    assert pg.header["symbols"] == ["AAPL"] and pg.header["data_fingerprint"]["source"] == "sample"
    assert pg.metrics == lite.metrics and pg.metrics["trades"] == result.metrics["trades"] > 0
    assert pg.trades.equals(lite.trades) and pg.trades["entry_time"].dtype == pl.Datetime("ns", "UTC")
    assert pg.equity.equals(lite.equity) and pg.equity.height == result.equity.height
    assert pg.header["created_at"].tzinfo is not None

    runs = store.list_runs()
    assert runs["id"].to_list() == [b, a] and runs["symbols"].to_list() == ["MSFT", "AAPL"]
    cmp = store.compare([a, b]).filter(pl.col("metric") == "final_equity")
    assert cmp[f"run_{a}"].item() == pytest.approx(result.metrics["final_equity"])
    assert cmp[f"run_{b}"].item() == pytest.approx(other.metrics["final_equity"])
    with store.engine.connect() as conn:  # plain SQL sees seed 003's tables and JSON values
        fast = conn.execute(sa.text("SELECT value FROM parameters WHERE backtest_id = :i AND name = 'fast'"),
                            {"i": a}).scalar_one()
        assert fast == 10
        assert set(sa.inspect(conn).get_table_names()) >= {"backtests", "performance_metrics", "trades",
                                                           "equity_curve", "parameters"}

    store.delete_run(a)
    with pytest.raises(BacktapeError, match=f"no backtest run with id {a}"):
        store.get_run(a)
    with store.engine.connect() as conn:
        count = "SELECT count(*) FROM {} WHERE backtest_id = :i"
        left = {t: conn.execute(sa.text(count.format(t)), {"i": a}).scalar()
                for t in ("equity_curve", "trades", "parameters", "performance_metrics")}
    assert set(left.values()) == {0} and store.list_runs()["id"].to_list() == [b]

    # the command line stores and reads runs by the same URL
    runner = CliRunner(env={"COLUMNS": "250"})
    out = runner.invoke(backtest_app, ["rsi_mean_reversion", "--symbols", "KO", "--start", "2013-01-01",
                                       "--end", "2014-01-01", "--db", postgres_url])
    assert out.exit_code == 0, out.output
    assert "stored run" in out.output and "postgresql+psycopg://" in out.output
    listed = runner.invoke(runs_app, ["list", "--db", postgres_url])
    assert listed.exit_code == 0 and "RsiMeanReversion" in listed.output and "SmaCrossover" in listed.output
