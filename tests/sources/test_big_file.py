"""A genuine ~200 MB minute CSV is read and validated in block-bounded memory (slow: minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from _big_files import (
    BASELINE,
    POLARS_READ_CSV,
    READ_BARS,
    VALIDATE,
    field,
    result_mib,
    run_measured,
    write_minute_csv,
)

#: what reading may use beyond the interpreter, the libraries and the canonical result itself
OVERHEAD_MIB = 192


@pytest.mark.slow
def test_a_200_mb_csv_reads_and_validates_with_bounded_overhead(tmp_path: Path) -> None:
    path = tmp_path / "BIG_1m.csv"
    rows = write_minute_csv(path, 200 << 20)
    assert path.stat().st_size > 190 << 20
    base, _, _ = run_measured(BASELINE)
    bound = base + result_mib(rows) + OVERHEAD_MIB
    peak, seconds, out = run_measured(READ_BARS.format(path=str(path)))
    assert field(out, "ROWS") == rows
    checked, _, out = run_measured(VALIDATE.format(path=str(path)))
    assert field(out, "ROWS") == rows and "OK True" in out
    peer, peer_seconds, _ = run_measured(POLARS_READ_CSV.format(path=str(path)))
    print(f"read_bars {peak:.0f} MiB {seconds:.1f} s, validate {checked:.0f} MiB, polars.read_csv "
          f"{peer:.0f} MiB {peer_seconds:.1f} s, bound {bound:.0f} MiB (result {result_mib(rows):.0f} MiB)")
    assert peak < bound and checked < bound
    assert peak < 2 * peer  # the text never exists whole: not much above a plain typed parse
