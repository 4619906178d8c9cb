"""Export a run's frames (trades, orders, fills, equity, ...) to CSV or Parquet files.

``export_frames(result.frames(), ["trades"], "trades.csv")`` writes one file;
``export_frames(frames, ["trades", "fills"], "out/")`` writes ``out/trades.csv`` and
``out/fills.csv`` (``fmt="parquet"`` for Parquet). Times stay UTC: Parquet keeps
``Datetime("ns", "UTC")``, CSV writes ISO 8601 with a ``Z`` suffix (read back with
``read_frame``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from ..errors import BacktapeError

#: what ``backtape runs export`` writes when ``--what`` is not given: the positions still open at
#: the end too, so the trades written add up to the run's trade count and final equity
DEFAULT_FRAMES = ("trades", "open_trades", "orders", "fills", "equity")
FORMATS = (".csv", ".parquet")
_CSV_TIME = "%Y-%m-%dT%H:%M:%S%.fZ"
_ISO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"


class ExportError(BacktapeError):
    """An export target or frame name is not usable."""


def export_frames(frames: Mapping[str, pl.DataFrame], what: Sequence[str], target: str | Path,
                  fmt: str = "csv") -> list[Path]:
    """Write the frames named ``what`` to ``target``: a ``.csv``/``.parquet`` file when one frame is
    asked for, else a folder (created) holding ``NAME.csv`` or ``NAME.parquet`` per frame."""
    unknown = [w for w in what if w not in frames]
    if unknown:
        raise ExportError(f"no frame {', '.join(map(repr, unknown))} in this run; it has "
                          f"{', '.join(sorted(frames))}")
    if not what:
        raise ExportError("name at least one frame to export, e.g. trades")
    path = Path(target)
    suffix = path.suffix.lower()
    if suffix:
        if path.is_dir():
            raise ExportError(f"{path} is a folder; give a file name such as {path / ('trades' + suffix)}, "
                              "or name the folder without an extension")
        if suffix not in FORMATS:
            raise ExportError(f"{path}: write .csv or .parquet (or give a folder), got {suffix!r}")
        if len(what) != 1:
            raise ExportError(f"{path} is one file but {len(what)} frames were asked for "
                              f"({', '.join(what)}); give a folder instead")
        write_frame(frames[what[0]], path)
        return [path]
    ext = "." + fmt.lower().lstrip(".")
    if ext not in FORMATS:
        raise ExportError(f"format must be csv or parquet, got {fmt!r}")
    written = []
    for name in what:
        out = path / f"{name}{ext}"
        write_frame(frames[name], out)
        written.append(out)
    return written


def write_frame(df: pl.DataFrame, path: Path) -> None:
    """``df`` as Parquet or CSV by the file's extension (parent folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".parquet":
        df.write_parquet(path)
    else:
        df.write_csv(path, datetime_format=_CSV_TIME)


def read_frame(path: str | Path, schema: Mapping[str, pl.DataType] | None = None) -> pl.DataFrame:
    """An exported frame read back, with its times as ``Datetime("ns", "UTC")``. A CSV file does not
    hold its column types: ``schema`` (e.g. ``result.orders.schema``) restores those of columns that
    are entirely empty or ambiguous."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        return pl.read_parquet(path)
    hints = {k: v for k, v in (schema or {}).items() if not isinstance(v, pl.Datetime)}
    df = pl.read_csv(path, infer_schema_length=None, schema_overrides=hints)
    times = [name for name, dtype in df.schema.items() if dtype == pl.String and name not in hints
             and df[name].null_count() < df.height and df[name].drop_nulls().str.contains(_ISO).all()]
    return df.with_columns(pl.col(times).str.to_datetime(_CSV_TIME, time_unit="ns", time_zone="UTC"))
