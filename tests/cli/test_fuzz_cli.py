"""Fuzzed command lines: any sub-command, any of its options, junk values, in any order.

The only acceptable outcomes are success, a report of problems found (exit 1 of ``validate`` and
the ``verify`` commands) or one ``error: ...`` line with a non-zero exit naming a ``BacktapeError``, a
usage mistake or a file the system refused; never ``unexpected``, a traceback or an escaped exception.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from backtape.cli import app as cli_app
from backtape.errors import BacktapeError

#: commands that start servers, run tours or open browsers: not for a fuzzer
SKIPPED = {"serve", "demo"}
#: exit 1 is these commands' "found problems" answer
REPORTING = {("validate",), ("cache", "verify"), ("bundles", "verify")}
JUNK = ["", " ", "-", "--", "0", "-1", "1e400", "nan", "inf", "99999999999999999999999", "2012-01-01",
        "2013-01-01", "2024-13-45", "2012-01-01T25:00", "1d", "1min", "0min", "1000000000min", "-5min", "abc",
        "fast=abc", "nosuch=3", "fast=5", "slow=", "=3", "sma_crossover", "x.py:S", "nope.py:Strategy",
        "../../etc/passwd", "mysql://u@h/db", "file:/tmp/x.db", "sqlite:///", "sample", "synthetic", "csv",
        "parquet", "bundle:nope", "seed=abc", "seed=7", "AAPL", "AAPL,MSFT", ",,,", "AAPL\n", "\x00", "é",
        "a\nb", "{}", "[1,", "sharpe", "grid", "1,2,3", "4096", "-999999999999"]


def _commands() -> list[tuple[tuple[str, ...], Any]]:
    """Every leaf command as (path, click command), from the CLI's own tables."""
    out: list[tuple[tuple[str, ...], Any]] = []
    for name in cli_app.COMMANDS:
        if name in SKIPPED:
            continue
        command = cli_app._load_command(name)
        subs = getattr(command, "commands", None)
        if subs:
            out += [((name, sub), cmd) for sub, cmd in sorted(subs.items())]
        else:
            out.append(((name,), command))
    return out


@functools.cache
def _options() -> dict[tuple[str, ...], list[tuple[str, bool, bool]]]:
    """Per command: (option spelling, takes a value, required) of every option; arguments are ''."""
    table: dict[tuple[str, ...], list[tuple[str, bool, bool]]] = {}
    for path, command in _commands():
        opts: list[tuple[str, bool, bool]] = []
        for param in command.params:
            if getattr(param, "param_type_name", "") == "argument":
                opts.append(("", True, bool(param.required)))
            else:
                opts += [(o, not getattr(param, "is_flag", False), bool(param.required))
                         for o in [*param.opts, *param.secondary_opts]]
        table[path] = opts
    return table


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("fuzz-files")
    good = folder / "AAPL.csv"
    good.write_text("date,open,high,low,close,volume\n2012-01-03,10,11,9,10.5,100\n2012-01-04,10,11,9,10,1\n")
    (folder / "junk.csv").write_bytes(b"\x00\xff garbage \x00" * 20)
    (folder / "ragged.csv").write_text("date,open,high\n2012-01-03,10\n,,,,,,\n")
    (folder / "strategy.py").write_text("raise RuntimeError('a strategy file that fails on import')\n")
    (folder / "empty.yaml").write_text("")
    (folder / "bad.yaml").write_text("data: [\n")
    return [str(p) for p in sorted(folder.iterdir())] + [str(folder), str(folder / "missing.csv")]


def _argv(draw: st.DrawFn, path: tuple[str, ...], values: list[str]) -> list[str]:
    value = st.one_of(st.sampled_from(values), st.text(max_size=10), st.integers().map(str))
    options = _options()[path]
    # the required ones first (mostly), so that commands often get past their usage checks
    chosen = [o for o in options if o[2] and draw(st.integers(0, 9)) < 8]
    chosen += draw(st.lists(st.sampled_from(options or [("", True, False)]), max_size=5))
    args = list(path)
    for spelling, takes, _ in chosen:
        if spelling:
            args.append(spelling)
        if takes:
            args.append(draw(value))
    if draw(st.booleans()):
        args.insert(draw(st.integers(0, len(args))), draw(st.sampled_from(["--verbose", "--log-json", "-h"])))
    return args


def _check(args: list[str], path: tuple[str, ...]) -> None:
    seen: list[BaseException | None] = []
    original = cli_app._report_error

    def spy(text: str, **kw: Any) -> None:
        seen.append(kw.get("exc"))
        original(text, **kw)

    with mock.patch.object(cli_app, "_report_error", spy):
        result = CliRunner().invoke(cli_app.app, args)
    said = (f"args {args!r}: exit {result.exit_code}\nstdout: {result.stdout[-800:]}\n"
            f"stderr: {result.stderr[-800:]}")
    assert result.exception is None or isinstance(result.exception, SystemExit), said
    assert "Traceback" not in result.stderr or "--verbose" in args, said
    if result.exit_code == 0 or (result.exit_code == 1 and path in REPORTING and not seen):
        return
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("warning: ")
             and '"level": "warning"' not in line]
    if "--verbose" not in args:
        assert len(lines) == 1, said
        if "--log-json" in args:
            assert json.loads(lines[0])["level"] == "error", said
        else:
            assert lines[0].startswith("error: "), said
    assert result.exit_code != 0 and "error: unexpected " not in result.stderr, said  # the bug marker
    assert all(exc is None or isinstance(exc, BacktapeError | OSError) for exc in seen), (said, seen)


COMMAND_PATHS = sorted(_options())
FAST = [p for p in COMMAND_PATHS if p[0] not in {"backtest", "optimize", "walkforward", "montecarlo", "calc",
                                                 "report"}]
RUNS = [p for p in COMMAND_PATHS if p not in FAST]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_data_and_maintenance_commands_fail_in_one_line(files: list[str], data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(FAST))
    _check(data.draw(st.composite(lambda draw: _argv(draw, path, JUNK + files))()), path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_run_commands_fail_in_one_line(files: list[str], data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(RUNS))
    _check(data.draw(st.composite(lambda draw: _argv(draw, path, JUNK + files))()), path)


def test_every_command_is_fuzzed() -> None:
    assert {p[0] for p in COMMAND_PATHS} == set(cli_app.COMMANDS) - SKIPPED
    assert Path(cli_app.__file__).name == "app.py"
