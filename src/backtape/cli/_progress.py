"""A rich progress bar on stderr fed by the HTTP adapters' ``progress(done, total)`` callbacks.

An adapter reports ``done = 1..total`` for each fetch it makes; the cache may run several fetches at
once (one per missing gap), so the bar counts every reported chunk and grows its total whenever a
fetch announces itself (``done == 1``) instead of jumping back and forth between fetches.
"""

from __future__ import annotations

import threading
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from ..sources import registry


def reports_progress(source_name: str) -> bool:
    """Whether the named source is a network provider (the built-in ones all take ``progress=``)."""
    return source_name.lower() in registry.providers()


class FetchProgress:
    """Chunks fetched (and, for ingest, symbols done) as a transient bar on stderr.

    Use as a context manager; pass :meth:`on_chunk` as an adapter's ``progress=`` and
    :meth:`on_symbol` to ``ingest_to_bundle``. ``chunks_done``/``chunks_total`` keep the counts.
    With ``chunks=False`` (a source without chunk reports) the bar counts symbols instead;
    ``enabled=False`` shows nothing.
    """

    def __init__(self, description: str, *, chunks: bool = True, enabled: bool = True,
                 console: Console | None = None) -> None:
        self.description = description
        self.chunks = chunks
        self.chunks_done = 0
        self.chunks_total = 0
        self._lock = threading.Lock()
        columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("chunks" if chunks else "symbols"), TimeElapsedColumn())
        console = console or Console(stderr=True)
        # off a terminal a transient bar only leaves a blank line behind
        self._bar = Progress(*columns, console=console, transient=True,
                             disable=not (enabled and console.is_terminal))
        self._task: TaskID | None = None

    def __enter__(self) -> FetchProgress:
        self._bar.__enter__()
        self._task = self._bar.add_task(self.description, total=None)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._bar.__exit__(exc_type, exc, tb)

    def on_chunk(self, done: int, total: int) -> None:
        """Adapter callback: one more chunk finished (``done == 1`` starts a fetch of ``total``)."""
        with self._lock:
            if done == 1:
                self.chunks_total += total
            self.chunks_done += 1
            completed, grand_total = self.chunks_done, self.chunks_total
        if self._task is not None:
            self._bar.update(self._task, completed=completed, total=max(grand_total, completed))

    def on_symbol(self, symbol: str, done: int, total: int) -> None:
        """``ingest_to_bundle`` callback: ``symbol`` (the ``done``-th of ``total``) is in the bundle."""
        if self._task is None:
            return
        if self.chunks:
            self._bar.update(self._task, description=f"{self.description} · {done}/{total} {symbol}")
        else:
            self._bar.update(self._task, description=f"{self.description} · {symbol}", completed=done,
                             total=total)
