"""A provider's instrument rules (lot size, minimum order value) kept beside its cached bars.

Rules are asked of the provider once per symbol and kept in ``<cache>/instruments/<identity>.json``
(a symbol the provider has no rules for is kept as ``null``), so a run served from the cache makes
no request for them either. Deleting the file (or the cache folder) has them asked again.
"""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import BacktapeError
from ..instruments import Instrument
from .store import encode_component


class InstrumentBook:
    """Cached ``DataSource.instruments`` answers of one source identity."""

    def __init__(self, cache_dir: Path, identity: str) -> None:
        self.path = cache_dir / "instruments" / f"{encode_component(identity)}.json"

    def get(self, symbols: Sequence[str],
            fetch: Callable[[list[str]], dict[str, Instrument]]) -> dict[str, Instrument]:
        """The rules of ``symbols``, asking ``fetch`` only for those never asked before."""
        known = self._load()
        missing = [s for s in dict.fromkeys(symbols) if s not in known]
        if missing:
            fetched = fetch(missing)
            for sym in missing:
                found = fetched.get(sym)
                known[sym] = None if found is None else dataclasses.asdict(found)
            self._save(known)
        return {s: Instrument(**rule) for s in symbols if (rule := known.get(s))}

    def _load(self) -> dict[str, dict[str, float | None] | None]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # none yet, or unreadable: asked again and rewritten
        if not isinstance(data, dict):
            return {}
        return {sym: rule for sym, rule in data.items() if rule is None or _valid(rule)}

    def _save(self, known: dict[str, dict[str, float | None] | None]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_text(json.dumps(known, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)


def _valid(rule: object) -> bool:
    """Whether a stored entry makes an ``Instrument`` (a damaged one is asked again)."""
    try:
        Instrument(**rule)  # type: ignore[arg-type]
    except (TypeError, ValueError, BacktapeError):  # damaged: ask the provider again
        return False
    return True
