"""Adapters: run backtrader, backtesting.py and vectorbt strategies on backtape's data layer.

Each adapter (``backtape.adapters.backtrader``, ``.backtesting_py``, ``.vectorbt``) serves bars from
a workspace source (cached, adjusted as chosen, any timeframe, several symbols) to the unmodified
peer, runs it, and turns the peer's trades and equity into a ``BacktestResult`` that can be stored,
compared and reported like any backtape run. Peers are optional extras, imported only when an
adapter runs: ``pip install 'backtape[backtrader]'`` (or ``[backtesting]``, ``[vectorbt]``).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import PeerNotInstalledError

#: peer module -> (pip extra, package name on PyPI)
PEERS: dict[str, tuple[str, str]] = {
    "backtrader": ("backtrader", "backtrader"),
    "backtesting": ("backtesting", "backtesting"),
    "vectorbt": ("vectorbt", "vectorbt"),
}

#: adapter name (as in ``backtape backtest --engine``) -> its module
ADAPTERS: dict[str, str] = {
    "backtrader": "backtape.adapters.backtrader",
    "backtesting": "backtape.adapters.backtesting_py",
    "vectorbt": "backtape.adapters.vectorbt",
}


def adapter(name: str) -> ModuleType:
    """The adapter module ``name`` (``backtrader``, ``backtesting``, ``vectorbt``); each has ``run``."""
    return importlib.import_module(ADAPTERS[name])


def require(module: str) -> ModuleType:
    """Import peer ``module`` or raise ``PeerNotInstalledError`` naming the extra that installs it."""
    extra, package = PEERS[module]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise PeerNotInstalledError(
            f"the {module} adapter needs the {package} package: pip install 'backtape[{extra}]'"
        ) from None


__all__ = ["ADAPTERS", "PEERS", "PeerNotInstalledError", "adapter", "require"]
