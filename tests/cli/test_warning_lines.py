"""Every backtape warning the CLI prints is one ``warning: ...`` line, file-quality ones included (they
were raw Python warnings with a source file, line number and source line)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from backtape.errors import BacktapeWarning, _one_line_warning
from backtape.validation import DataQualityWarning

CSV = """ts,open,high,low,close
2024-01-05 20:00:00,1.1,1.2,1.0,1.1
2024-01-05 21:00:00,1.1,1.2,1.0,1.1
2024-01-05 22:00:00,1.1,1.2,1.0,1.1
2024-01-07 22:00:00,1.1,1.2,1.0,1.1
2024-01-07 23:00:00,1.1,1.2,1.0,1.1
"""


def test_quality_warnings_are_backtape_warnings_on_one_line() -> None:
    assert issubclass(DataQualityWarning, BacktapeWarning)
    text = _one_line_warning(DataQualityWarning("dropped 2 rows\n  line 3 ...\n  line 4 ..."),
                             DataQualityWarning, "parse.py", 148)
    assert text == "warning: dropped 2 rows; line 3 ...; line 4 ...\n"


def test_cli_prints_a_dropped_row_as_one_warning_line(tmp_path: Path) -> None:
    path = tmp_path / "EURUSD.csv"
    path.write_text(CSV)
    args = [sys.executable, "-m", "backtape", "data", "show", "EURUSD", "--source", "csv",
            "--path", str(path),
            "-o", "calendar=fx", "-o", "timezone=UTC", "-o", "on_invalid=drop", "-f", "1h",
            "--start", "2024-01-01", "--end", "2024-01-09"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert lines and all(ln.startswith("warning: ") for ln in lines), done.stderr
    assert "outside_session" in lines[0] and ".py:" not in done.stderr
