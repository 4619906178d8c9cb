"""Integrity of stored runs: every row of a run is hashed when it is saved and checked when it is read.

SQLite keeps no checksums of its own, so two flipped bytes in a results file can turn a stored Sharpe
ratio into another number; with the run's digest a damaged run is an error naming it instead. A
file damaged beyond reading (truncated, overwritten, a malformed page) becomes the same kind of error.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import xxhash

from .._panics import quiet_panics
from ..errors import BacktapeError


def run_digest(tables: Mapping[str, Sequence[Sequence[Any]]]) -> str:
    """xxh3-64 (hex) of a run's rows, table by table, as the database returns them."""
    h = xxhash.xxh3_64()
    for name in sorted(tables):
        h.update(f"\x1e{name}\x1f".encode())
        for row in tables[name]:
            h.update(repr(tuple(row)).encode())
            h.update(b"\x1d")
    return h.hexdigest()


def damaged_run(url: str, run_id: int) -> BacktapeError:
    return BacktapeError(f"run {run_id} in {url} is damaged: its rows no longer match the checksum saved "
                         f"with them; run the backtest again (ResultsStore.delete_run({run_id}) removes the "
                         "damaged one)")


@contextmanager
def reading(url: str) -> Iterator[None]:
    """Errors of a results file that cannot be read (bad pages, broken JSON or Parquet inside) become
    one ``BacktapeError`` naming the file."""
    import polars as pl
    import sqlalchemy as sa

    try:
        with quiet_panics():
            yield
    except BacktapeError:
        raise
    except (sa.exc.SQLAlchemyError, pl.exceptions.PolarsError, pl.exceptions.PanicException, ValueError,
            OSError) as exc:
        raise BacktapeError(f"results database {url} is damaged or unreadable ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:160]}); restore it from a backup") from exc
