"""``backtape serve`` as a person runs it: a real subprocess, loopback only, stopped with Ctrl-C."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from .conftest import SRC, DashWorkspace, start_server, stop_server


def test_serve_answers_on_loopback_and_stops_cleanly_on_ctrl_c(dash_ws: DashWorkspace) -> None:
    proc, base = start_server(dash_ws)
    try:
        page = httpx.get(f"{base}/runs", timeout=10)
        assert page.status_code == 200 and "SmaCrossover" in page.text
        assert httpx.post(f"{base}/runs", timeout=10).status_code == 405
        foreign = httpx.get(f"{base}/runs", headers={"Host": "attacker.example"}, timeout=10)
        assert foreign.status_code == 400  # DNS rebinding: only loopback host names are served
        bound = {"127.0.0.1"} if Path("/proc/net/tcp").exists() else set()  # only loopback listens
        assert _listening_addresses(int(base.rsplit(":", 1)[1])) == bound
    finally:
        code, err = stop_server(proc)
    assert code == 0, err
    assert "Traceback" not in err and "http://127.0.0.1:" in err
    assert err.strip().endswith("backtape dashboard stopped")


def _listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses a socket listens on at ``port`` (Linux ``/proc/net/tcp``; empty elsewhere)."""
    table = Path("/proc/net/tcp")
    if not table.exists():
        return set()
    found = set()
    for line in table.read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def test_serve_without_its_extra_says_which_extra_to_install(dash_ws: DashWorkspace) -> None:
    script = ("import sys; sys.modules['starlette'] = None; sys.modules['uvicorn'] = None\n"
              "from backtape.cli.app import main; main()")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", script, "--config", str(dash_ws.config), "serve"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    expected = "error: backtape serve needs starlette, uvicorn: pip install 'backtape[serve]'"
    assert done.stderr.strip() == expected


def test_serve_reports_a_missing_database_in_one_line(dash_ws: DashWorkspace) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-m", "backtape.cli.app", "--config", str(dash_ws.config), "serve",
                           "--db", str(dash_ws.db.parent / "nothing.db")],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.startswith("error: no results database at")
    assert len(done.stderr.strip().splitlines()) == 1
