"""``backtape data prepare``: bars of a source through ``backtape.prepare``, printed or written to a file.

The steps are those of the Python API (``Outliers``, ``MissingBars``, ``Features``), each value
checked there, so a bad one is the same one-line ``ConfigError``. Features are written as a comma list,
windows after ``=`` and separated by ``/``: ``returns,log_returns,volatility=20,rsi=14,sma=10/50``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from .._time import check_range, format_ns
from ..errors import ConfigError, NoDataError
from ..preparation import Features, MissingBars, Outliers, PreparedSource
from ._common import OPTION_HELP, console, frame_table, parse_options, state
from ._sink import FrameSink, check_output

_FLAGS = ("returns", "log_returns")
_WINDOWED = ("volatility", "zscore", "sma", "ema", "rsi", "atr")


def parse_features(text: str) -> Features:
    """``"returns,volatility=20,sma=10/50"`` as ``Features`` (``returns`` only when named)."""
    flags: dict[str, bool] = dict.fromkeys(_FLAGS, False)
    windows: dict[str, tuple[int, ...]] = {}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        name, _, value = item.partition("=")
        name = name.strip().lower()
        if name in _FLAGS and not value:
            flags[name] = True
        elif name in _WINDOWED and value:
            try:
                windows[name] = tuple(int(w) for w in value.split("/"))
            except ValueError:
                raise ConfigError(f"--features {item!r}: windows are whole numbers of bars such as "
                                  f"{name}=14 or {name}=10/50") from None
        else:
            known = ", ".join([*_FLAGS, *(f"{w}=N" for w in _WINDOWED)])
            raise ConfigError(f"--features {item!r} is not a feature; known: {known}")
    return Features(**flags, **windows)  # type: ignore[arg-type]


def prepare_command(
    ctx: typer.Context,
    symbol: str = typer.Argument(..., help="Symbol, or several separated by commas."),
    start: str = typer.Option(..., "--start", help="First ts included, e.g. 2014-06-01 (UTC)."),
    end: str = typer.Option(..., "--end", help="End of the half-open range [start, end)."),
    frequency: str = typer.Option("1d", "--frequency", "-f", help="Bar size: 1min 5min 1h 1d..."),
    source: str | None = typer.Option(None, "--source", "-s", help="Registered source; default: the "
                                      "config's data.default_source."),
    path: Path | None = typer.Option(None, "--path", help="File or folder, for the csv and parquet sources."),
    option: list[str] = typer.Option([], "--option", "-o", help=OPTION_HELP),
    missing: str | None = typer.Option(None, "--missing", help="Missing bars: leave, ffill (previous close, "
                                       "zero volume) or drop (a session's bars from its first hole on)."),
    outliers: str | None = typer.Option(None, "--outliers", help="Outlier test on returns and ranges: "
                                        "hampel or zscore."),
    window: int = typer.Option(21, "--outlier-window", help="Trailing bars of the outlier test."),
    threshold: float = typer.Option(6.0, "--outlier-threshold", help="Spreads from the centre that flag."),
    action: str = typer.Option("flag", "--outlier-action", help="flag (an 'outlier' column) or drop."),
    features: str | None = typer.Option(None, "--features", help="Comma list: returns, log_returns, "
                                        "volatility=N, zscore=N, sma=N, ema=N, rsi=N, atr=N (N/M for "
                                        "several windows)."),
    adjust: str = typer.Option("split", "--adjust", help="Prices the outliers and features see: raw, "
                               "split or total_return, as of each bar."),
    output: Path | None = typer.Option(None, "--output", help="Write every row to FILE.parquet or .csv."),
    rows: int = typer.Option(20, "--rows", "-n", help="Rows to print (first and last halves)."),
) -> None:
    """Fetch SYMBOL and prepare its bars point in time: missing bars, outliers, feature columns."""
    s_ns, e_ns = check_range(start, end)
    if output is not None:
        check_output(output)
    if missing is None and outliers is None and features is None:
        raise ConfigError("nothing to prepare: give --missing, --outliers or --features")
    ws = state(ctx).workspace()
    name = source or ws.config.data.default_source
    options = parse_options(option)
    if path is not None:
        options["path"] = str(path)
    src = PreparedSource(
        ws.source(name, **options),
        outliers=Outliers(outliers, window, threshold, action) if outliers is not None else None,  # type: ignore[arg-type]
        missing=MissingBars(missing) if missing is not None else None,  # type: ignore[arg-type]
        features=parse_features(features) if features is not None else None, adjust=adjust)
    frame = src.fetch_sync(symbol, s_ns, e_ns, frequency)
    if frame.is_empty():
        raise NoDataError(f"source {name!r} has no {frequency} bars for {symbol} in "
                          f"[{format_ns(s_ns)}, {format_ns(e_ns)})")
    if output is not None:
        with FrameSink(output) as sink:
            sink.write(frame)
    console().print(frame_table(frame, title=f"{symbol} · {frequency} prepared · source {name}",
                                max_rows=rows, caption=f"{frame.height:,} rows · times in UTC"))
    if output is not None:
        sys.stderr.write(f"wrote {frame.height:,} rows to {output}\n")
