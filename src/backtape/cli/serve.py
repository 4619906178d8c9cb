"""``backtape serve``: the local web dashboard over the results database, the cache and the bundles."""

from __future__ import annotations

import typer

from ._state import state

HOST = typer.Option("127.0.0.1", "--host", help="address to bind (default loopback only; anything else "
                                                "exposes your results to the network)")
PORT = typer.Option(8765, "--port", "-p", min=0, max=65535, help="TCP port")
DB = typer.Option(None, "--db", help="results database path or SQLAlchemy URL "
                                     "(default: data.results_db in the config)")


def serve(ctx: typer.Context, host: str = HOST, port: int = PORT, db: str | None = DB) -> None:
    """Browse stored runs, comparisons, optimizations and data coverage in a read-only local web page."""
    from .._secrets import redact
    from ..web import require_extra
    from ..web import serve as run_server

    require_extra()
    from ..results.queries import label, open_readonly

    ws = state(ctx).workspace()
    store = open_readonly(db or ws.results_url)
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"warning: binding {host}: anyone who can reach this address can read your results",
                   err=True)
    typer.echo(f"backtape dashboard on http://{host}:{port}/ over {redact(label(store))} (Ctrl-C stops)",
               err=True)
    run_server(store, host=host, port=port, cache_dir=ws.cache_dir, bundles_dir=ws.bundles_dir)
    typer.echo("backtape dashboard stopped", err=True)
