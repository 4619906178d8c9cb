"""``backtape ingest`` and ``backtape bundles``: build incremental bundles and look inside them."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from .._paths import expand_path
from ..cache.bundles import BundleMetadata, ingest_to_bundle, list_bundles
from ..formatting import data_size
from ._common import OPTION_HELP, parse_options, state
from ._progress import FetchProgress, reports_progress
from ._tables import new_table

app = typer.Typer(help="List and inspect data bundles.", no_args_is_help=True)

BUNDLES_DIR = typer.Option(None, "--bundles-dir",
                           help="bundles folder (default: the config's data.bundles_dir, "
                                "$BACKTAPE_BUNDLES_DIR or ~/.backtape/bundles)")


def ingest(
    ctx: typer.Context,
    source: str = typer.Argument(..., help="registered data source name, e.g. sample, synthetic, polygon"),
    symbols: str = typer.Option(..., "--symbols", help="comma-separated symbols, e.g. AAPL,MSFT"),
    start: str = typer.Option(..., "--start", help="range start (ISO date or time, UTC)"),
    end: str = typer.Option(..., "--end", help="range end, exclusive"),
    frequency: str = typer.Option("1d", "--frequency", help="bar size, e.g. 1min, 5min, 1h, 1d"),
    bundle: str = typer.Option(..., "--bundle", help="bundle name"),
    bundles_dir: Path | None = BUNDLES_DIR,
    option: list[str] = typer.Option([], "--option", "-o", help=OPTION_HELP),
) -> None:
    """Fetch bars into a bundle; running it again with a longer range fetches only the new part.

    Provider sources take their keys and base URL from the configuration (``providers.<name>``);
    ``--option`` overrides any adapter argument (e.g. ``auth=query``, ``feed=sip``).
    """
    ws = state(ctx).workspace()
    names = [s.strip() for s in symbols.split(",") if s.strip()]
    options = parse_options(option)
    chunked = reports_progress(source)
    with FetchProgress(f"ingest {bundle}", chunks=chunked) as progress:
        if chunked:
            options.setdefault("progress", progress.on_chunk)
        src = ws.source(source, cache=False, **options)
        meta = ingest_to_bundle(bundle, names, start, end, frequency, source=src,
                                bundles_dir=_folder(ctx, bundles_dir),
                                progress=progress.on_symbol)
    Console(soft_wrap=True).print(  # one line: a wrapped path cannot be pasted
        f"bundle {meta.name}: {len(meta.symbols)} symbol(s), {meta.row_count:,} rows, "
        f"{data_size(meta.size_bytes)}, quality {meta.quality_score:.3f}, "
        f"missing {meta.missing_data_pct:.2f}% -> {meta.path}")


app.command("ingest")(ingest)


def _folder(ctx: typer.Context, bundles_dir: Path | None) -> Path:
    """``--bundles-dir``, else the workspace's (``data.bundles_dir`` of the configuration)."""
    return expand_path(bundles_dir) if bundles_dir is not None else state(ctx).workspace().bundles_dir


@app.command("list")
def list_(ctx: typer.Context, bundles_dir: Path | None = BUNDLES_DIR) -> None:
    """Every bundle with its range, frequency, size and quality."""
    console = Console()
    folder = _folder(ctx, bundles_dir)
    bundles = list_bundles(folder)
    if not bundles:
        console.print(f"no bundles in {folder}")
        return
    table = new_table(f"bundles in {folder}")
    table.add_column("name", ratio=1, overflow="fold", min_width=8)
    table.add_column("source", ratio=1, overflow="fold", min_width=6)
    for col in ("bars", "symbols", "start", "end", "rows", "size", "quality"):
        table.add_column(col, no_wrap=True, justify="left" if col in ("bars", "start", "end") else "right")
    for m in bundles:
        table.add_row(m.name, m.source_type, m.frequency, str(len(m.symbols)), f"{m.start:%Y-%m-%d}",
                      f"{m.end:%Y-%m-%d}", f"{m.row_count:,}", data_size(m.size_bytes),
                      f"{m.quality_score:.3f}")
    console.print(table)


@app.command("show")
def show(ctx: typer.Context, name: str = typer.Argument(..., help="bundle name"),
         bundles_dir: Path | None = BUNDLES_DIR) -> None:
    """A bundle's metadata and per-symbol quality (missing sessions, invalid OHLC rows)."""
    console = Console()
    m = BundleMetadata.load(name, _folder(ctx, bundles_dir))
    facts = Table(show_header=False, title=f"bundle {m.name}")
    for label, value in (("path", str(m.path)), ("source", f"{m.source_type} ({m.source_identity})"),
                         ("frequency", m.frequency), ("calendar", m.calendar), ("adjustment", m.adjustment),
                         ("range", f"{m.start:%Y-%m-%d %H:%M} .. {m.end:%Y-%m-%d %H:%M} UTC"),
                         ("ingested", f"{m.ingestion_time:%Y-%m-%d %H:%M:%S} UTC"),
                         ("rows", f"{m.row_count:,}"),
                         ("size", data_size(m.size_bytes)), ("quality score", f"{m.quality_score:.4f}"),
                         ("missing data", f"{m.missing_data_pct:.2f}%"), ("schema", m.schema_version)):
        facts.add_row(label, value)
    console.print(facts)
    per = Table(title="per symbol")
    for col in ("symbol", "rows", "sessions", "missing", "ohlc violations", "first missing"):
        per.add_column(col)
    for q in m.per_symbol:
        first = ", ".join(f"{d:%Y-%m-%d}" for d in q.missing_sessions[:3])
        more = f" (+{len(q.missing_sessions) - 3})" if len(q.missing_sessions) > 3 else ""
        per.add_row(q.symbol, f"{q.rows:,}", str(q.expected_sessions), str(len(q.missing_sessions)),
                    str(q.ohlc_violations), first + more)
    console.print(per)


@app.command("verify")
def verify(ctx: typer.Context, name: str = typer.Argument(..., help="bundle name"),
           bundles_dir: Path | None = BUNDLES_DIR) -> None:
    """Check a bundle's metadata and every data file's checksum; exit 1 when something is damaged."""
    from ..cache.maintenance import verify_cache

    console = Console(soft_wrap=True)
    meta = BundleMetadata.load(name, _folder(ctx, bundles_dir))
    report = verify_cache(meta.path / "data")
    for e in report.damaged:
        console.print(f"damaged: {e.path} ({e.key.symbol}, {e.rows:,} rows)")
    if report.damaged:
        console.print(f"bundle {name!r}: {len(report.damaged)} of {report.checked:,} file(s) damaged; ingest "
                      f"those symbols again (backtape bundles ingest {name} ...) to restore them")
        raise typer.Exit(1)
    console.print(f"bundle {name!r}: metadata and {report.checked:,} file(s) intact")


@app.command("push")
def push(ctx: typer.Context, name: str = typer.Argument(..., help="bundle name"),
         url: str = typer.Argument(..., help="object storage location, e.g. s3://bucket/prefix"),
         replace: bool = typer.Option(False, "--replace", help="overwrite a bundle already at URL/NAME"),
         bundles_dir: Path | None = BUNDLES_DIR) -> None:
    """Upload a bundle to URL/NAME with a manifest of checksums (credentials: AWS_* variables,
    endpoint: data.s3_endpoint or AWS_ENDPOINT_URL)."""
    from ..cache.remote_bundles import push_bundle

    ws = state(ctx).workspace()
    manifest = push_bundle(name, url, bundles_dir=_folder(ctx, bundles_dir), replace=replace,
                           storage_options=ws.storage_options())
    size = sum(f.size for f in manifest.files)
    Console(soft_wrap=True).print(f"bundle {name}: {len(manifest.files)} file(s), {data_size(size)} -> "
                                  f"{url.rstrip('/')}/{name}")


@app.command("pull")
def pull(ctx: typer.Context, url: str = typer.Argument(..., help="remote bundle, e.g. s3://bucket/prefix/NAME"),
         name: str | None = typer.Option(None, "--name", help="local bundle name (default: the remote's)"),
         bundles_dir: Path | None = BUNDLES_DIR) -> None:
    """Download a bundle, verifying every file's checksum; nothing is left behind if it fails."""
    from ..cache.remote_bundles import pull_bundle

    ws = state(ctx).workspace()
    meta = pull_bundle(url, bundles_dir=_folder(ctx, bundles_dir), name=name,
                       storage_options=ws.storage_options())
    Console(soft_wrap=True).print(f"bundle {meta.name}: {len(meta.symbols)} symbol(s), {meta.row_count:,} "
                                  f"rows, {data_size(meta.size_bytes)} <- {url} -> {meta.path}")
