"""``backtape serve``: a local, read-only web dashboard over the results database and the data.

Needs the ``serve`` extra (Starlette, uvicorn, Jinja2, plotly). :func:`create_app` builds the ASGI
app; :func:`serve` runs it with uvicorn on 127.0.0.1 until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import importlib.util
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BacktapeError

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["create_app", "require_extra", "serve"]

_NEEDS = ("starlette", "uvicorn", "jinja2", "plotly")


def require_extra() -> None:
    """Raise one ``BacktapeError`` naming the ``serve`` extra when a package it needs is missing."""
    missing = [name for name in _NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        raise BacktapeError(f"backtape serve needs {', '.join(missing)}: pip install 'backtape[serve]'")


def create_app(results: Any, **kwargs: Any) -> Starlette:
    """The dashboard's ASGI app (see ``backtape.web.app.create_app``)."""
    require_extra()
    from .app import create_app as build

    return build(results, **kwargs)


def serve(results: Any, *, host: str = "127.0.0.1", port: int = 8765, cache_dir: Path | None = None,
          bundles_dir: Path | None = None, log_level: str = "warning") -> None:
    """Serve the dashboard until Ctrl-C (or SIGTERM), which stops it cleanly: uvicorn finishes the
    requests in flight, then re-raises the signal, which here means a normal return."""
    require_extra()
    import uvicorn

    from .app import LOOPBACK_HOSTS

    allowed = LOOPBACK_HOSTS if host in LOOPBACK_HOSTS else None
    app = create_app(results, cache_dir=cache_dir, bundles_dir=bundles_dir, allowed_hosts=allowed)
    threading.Thread(target=_warm_up, args=(app,), name="backtape-serve-warm-up", daemon=True).start()
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                            server_header=False, lifespan="off")
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:
        return


def _warm_up(app: Starlette) -> None:
    """``Dashboard.warm_up``, where a failure (a database without runs' frames, say) only means the
    first page a person opens does the same work itself."""
    with contextlib.suppress(Exception):
        app.state.dashboard.warm_up()
