"""Big genuine CSV: peak memory and time of ``read_bars`` and ``backtape validate``'s path against plain
``polars.read_csv`` of the same file (the peer: a typed parse with no validation), each in a fresh
interpreter. The file is a genuine 24/7 minute-bar CSV generated in a temporary folder.

    python benchmarks/bench_big_file.py [size_mib=1024]

Reading cannot stay below a fixed bound when its result is larger than that bound, so the figure to
watch is the overhead: peak minus the interpreter and libraries (``baseline``) minus the result
(88 bytes per canonical bar; for the peer its own typed frame, 48 bytes per row).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _big_files import (  # noqa: E402  (tests/ on the path first)
    BASELINE,
    POLARS_READ_CSV,
    READ_BARS,
    VALIDATE,
    field,
    result_mib,
    run_measured,
    write_minute_csv,
)


def main(size_mib: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "BIG_1m.csv"
        t0 = time.perf_counter()
        rows = write_minute_csv(path, size_mib << 20)
        print(f"{path.stat().st_size / 2**20:,.0f} MiB, {rows:,} minute bars written in "
              f"{time.perf_counter() - t0:.0f} s; canonical result {result_mib(rows):,.0f} MiB")
        base, _, _ = run_measured(BASELINE)
        print(f"{'case':<32}{'peak MiB':>10}{'overhead MiB':>14}{'seconds':>9}")
        for name, code in (("polars.read_csv (peer)", POLARS_READ_CSV), ("backtape read_bars", READ_BARS),
                           ("backtape validate (file_reports)", VALIDATE)):
            peak, seconds, out = run_measured(code.format(path=str(path)))
            assert field(out, "ROWS") == rows, out
            result = field(out, "RESULT_MIB") if code is POLARS_READ_CSV else result_mib(rows)
            print(f"{name:<32}{peak:>10,.0f}{peak - base - result:>14,.0f}{seconds:>9.1f}")
        print(f"(baseline: interpreter + polars + backtape.sources.files = {base:.0f} MiB)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1024)
