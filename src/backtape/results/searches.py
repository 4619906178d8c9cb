"""A parameter search's progress in the results database, so that an interrupted one can resume.

``optimize(..., store=...)`` registers its search (``searches``: what it is, as canonical JSON and its
hash) before evaluating anything and writes every finished parameter set (``search_trials``: its
metrics row and CSCV block sums as float64 bytes, exact to the bit) as chunks finish. A search
stopped by Ctrl-C (status ``interrupted``) or a killed driver (left ``running``) is continued by
``optimize(..., resume=ID)`` (or ``resume=True``: the newest unfinished search of the same
description): only the sets not stored are evaluated, so the final table equals an uninterrupted
run's. A finished search links to its ``optimizations`` row (the whole table) and drops its trials.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any

import numpy as np
import sqlalchemy as sa

from ..errors import BacktapeError
from .queries import canonical
from .store import ResultsStore, _clean, _inserted_id, _metadata

_searches = sa.Table(
    "searches", _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("spec_hash", sa.String(64), nullable=False, index=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("optimization_id", sa.Integer, sa.ForeignKey("optimizations.id", ondelete="SET NULL")),
    sa.Column("sets", sa.Integer),  # sets evaluated, once completed (its trials are then dropped)
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

_trials = sa.Table(
    "search_trials", _metadata,
    sa.Column("search_id", sa.Integer, sa.ForeignKey("searches.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("set_key", sa.String(64), primary_key=True),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("metrics", sa.LargeBinary, nullable=False),
    sa.Column("blocks", sa.LargeBinary, nullable=False),
)

UNFINISHED = ("running", "interrupted")


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SearchLog:
    """One registered search: the sets already evaluated (``lookup``) and a sink for new ones."""

    def __init__(self, store: ResultsStore, search_id: int, done: dict[str, tuple[bytes, bytes]]) -> None:
        self.store, self.id, self._done = store, search_id, done
        #: sets taken from the database / evaluated and recorded by this process
        self.reused = 0
        self.recorded = 0

    @classmethod
    def open(cls, store: ResultsStore, spec: Mapping[str, Any],
             resume: int | bool | None = None) -> SearchLog:  # fmt: skip
        """Register a new search described by ``spec``, or (``resume``) continue a stored one.

        ``resume=ID`` continues search ``ID`` (it must describe the same search and be unfinished);
        ``resume=True`` the newest unfinished search with the same description, or a new one.
        """
        text = json.dumps(_clean(dict(spec)), sort_keys=True, default=str)
        digest = _hash(text)
        with store.engine.begin() as conn:
            row = None
            if resume is True:
                row = conn.execute(sa.select(_searches).where(
                    _searches.c.spec_hash == digest, _searches.c.status.in_(UNFINISHED)
                ).order_by(_searches.c.id.desc())).first()  # fmt: skip
            elif resume:
                row = conn.execute(sa.select(_searches).where(_searches.c.id == int(resume))).first()
                _check_resumable(row, int(resume), digest, json.loads(text), store.url)
            if row is None:
                search_id = _inserted_id(conn.execute(_searches.insert().values(
                    spec_hash=digest, spec=json.loads(text), status="running", created_at=_now(),
                    updated_at=_now())))  # fmt: skip
                return cls(store, search_id, {})
            conn.execute(_searches.update().where(_searches.c.id == row.id).values(
                status="running", updated_at=_now()))  # fmt: skip
            q = sa.select(_trials.c.set_key, _trials.c.metrics, _trials.c.blocks).where(
                _trials.c.search_id == row.id)
            done = {r.set_key: (bytes(r.metrics), bytes(r.blocks)) for r in conn.execute(q)}
        return cls(store, int(row.id), done)

    @staticmethod
    def key(params: Mapping[str, Any]) -> str:
        """The stored key of a parameter set (its canonical JSON, hashed)."""
        return _hash(canonical(dict(params)))

    def lookup(self, sets: Sequence[Mapping[str, Any]], n_metrics: int,
               n_blocks: int) -> list[tuple[np.ndarray, np.ndarray] | None]:  # fmt: skip
        """Per set its stored (metrics row, block sums), or ``None`` when it still has to run."""
        out: list[tuple[np.ndarray, np.ndarray] | None] = []
        for s in sets:
            found = self._done.get(self.key(s))
            if found is None:
                out.append(None)
                continue
            metrics = np.frombuffer(found[0], dtype=np.float64)
            blocks = np.frombuffer(found[1], dtype=np.float64)
            if metrics.size != n_metrics or blocks.size != 2 * n_blocks:
                raise BacktapeError(f"search {self.id} in {self.store.url} stored set {dict(s)} with another "
                                    "layout (another backtape version?); start a new search")  # fmt: skip
            out.append((metrics, blocks.reshape(2, n_blocks)))
            self.reused += 1
        return out

    def record(self, sets: Sequence[Mapping[str, Any]], metrics: np.ndarray, blocks: np.ndarray) -> None:
        """Store finished sets (one transaction; sets stored before are left as they are)."""
        rows = []
        for s, m, b in zip(sets, metrics, blocks, strict=True):
            key = self.key(s)
            if key in self._done:
                continue
            pair = (np.ascontiguousarray(m, dtype=np.float64).tobytes(),
                    np.ascontiguousarray(b, dtype=np.float64).tobytes())  # fmt: skip
            self._done[key] = pair
            rows.append({"search_id": self.id, "set_key": key, "params": _clean(dict(s)),
                         "metrics": pair[0], "blocks": pair[1]})  # fmt: skip
        if not rows:
            return
        try:
            with self.store.engine.begin() as conn:
                conn.execute(_trials.insert(), rows)
                conn.execute(_searches.update().where(_searches.c.id == self.id).values(updated_at=_now()))
        except sa.exc.IntegrityError:  # another driver resuming the same search stored some of them
            for row in rows:
                with suppress(sa.exc.IntegrityError), self.store.engine.begin() as conn:
                    conn.execute(_trials.insert(), [row])
        self.recorded += len(rows)

    def finish(self, optimization_id: int | None) -> None:
        """Mark the search completed, linked to its stored optimization (which holds the whole table),
        and drop its per-set records."""
        with self.store.engine.begin() as conn:
            conn.execute(_trials.delete().where(_trials.c.search_id == self.id))
            conn.execute(_searches.update().where(_searches.c.id == self.id).values(
                status="completed", optimization_id=optimization_id, sets=len(self._done),
                updated_at=_now()))  # fmt: skip

    def interrupted(self) -> None:
        """Mark the search interrupted (Ctrl-C): ``resume`` continues it."""
        with self.store.engine.begin() as conn:
            conn.execute(_searches.update().where(_searches.c.id == self.id).values(
                status="interrupted", updated_at=_now()))  # fmt: skip


def _check_resumable(row: Any, search_id: int, digest: str, spec: dict[str, Any], url: str) -> None:
    if row is None:
        raise BacktapeError(f"no parameter search with id {search_id} in {url} to resume "
                            "(see searches(store) for the stored ones)")  # fmt: skip
    if row.status not in UNFINISHED:
        raise BacktapeError(f"search {search_id} is {row.status} (optimization {row.optimization_id}); "
                            "there is nothing to resume")  # fmt: skip
    if row.spec_hash != digest:
        diff = sorted(k for k in set(spec) | set(row.spec) if spec.get(k) != row.spec.get(k))
        raise BacktapeError(f"search {search_id} was started with other {', '.join(diff)}: resume it with "
                            "the same strategy, grid, data, options and search settings")  # fmt: skip


def searches(store: ResultsStore, limit: int = 50) -> list[dict[str, Any]]:
    """Stored searches, newest first: id, status, sets done, optimization id and description."""
    s, t = _searches.c, _trials.c
    done = sa.select(sa.func.count()).where(t.search_id == s.id).scalar_subquery()
    q = sa.select(s.id, s.status, sa.func.coalesce(s.sets, done).label("sets_done"), s.optimization_id,
                  s.spec, s.created_at, s.updated_at).order_by(s.id.desc()).limit(limit)  # fmt: skip
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]
