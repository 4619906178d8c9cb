"""Reading options of the wrong shape fail when the options are built, naming the option and an
example (``timezone=Mars/Base`` passed silently for daily files, ``columns=notjson`` was an
``unexpected AttributeError``, ``names=a,b`` was split into characters)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from backtape.cli.app import app
from backtape.errors import ConfigError
from backtape.sources.files import FileOptions, read_bars


@pytest.mark.parametrize(("options", "message"), [
    ({"timezone": "Mars/Base"}, "option timezone='Mars/Base' is not a time zone"),
    ({"columns": "notjson"}, "option columns must map file column names to canonical names"),
    ({"columns": {"Date": 1}}, "option columns must map"),
    ({"names": [1, 2]}, "option names must be column names"),
    ({"separator": ";;"}, "option separator must be one character"),
    ({"has_header": "maybe"}, "option has_header must be true or false"),
    ({"keep_extra": 1}, "option keep_extra must be true or false"),
])
def test_wrong_shapes_are_named(options, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        FileOptions.from_kwargs(options)


def test_names_and_a_tab_as_typed_on_the_command_line(tmp_path: Path) -> None:
    opts = FileOptions.from_kwargs({"names": "Date,Open,High,Low,Close,Volume", "separator": "\\t"})
    assert opts.names == ("Date", "Open", "High", "Low", "Close", "Volume") and opts.separator == "\t"
    path = tmp_path / "KO.tsv"
    path.write_text("2024-01-02\t1\t2\t0.5\t1.5\t100\n2024-01-03\t1\t2\t0.5\t1.6\t100\n")
    bars = read_bars(path, has_header=False, names="Date,Open,High,Low,Close,Volume", separator="\\t")
    assert bars["close"].to_list() == [1.5, 1.6]


def test_validate_says_it_in_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "SPY.csv").write_text("Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,0.5,1.5,100\n")
    result = CliRunner().invoke(app, ["validate", "SPY.csv", "-o", "columns=notjson"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "unexpected" not in lines[0], result.output
    assert lines[0].startswith("error: option columns must map"), result.output
