"""The ``DataSource`` contract every provider implements, and the registry that names them.

A source answers half-open ranges ``[start, end)`` on the bar start ``ts`` and always returns the
canonical schemas of ``backtape.schema`` (UTC nanoseconds, sorted by ``(symbol, ts)``). Sources are
async because most are network clients; ``fetch_sync`` and friends wrap them for plain scripts and
notebooks.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from .._async import run_sync
from .._time import TimeLike, check_range
from ..errors import ConfigError, SourceNotFoundError, UnsupportedDataError
from ..instruments import Instrument
from ..schema import empty
from ..timeframes import Timeframe

ANY_FREQUENCY: tuple[str, ...] = ("*",)


@dataclass(frozen=True)
class SourceCapabilities:
    """What a source can deliver: kinds of data, bar frequencies, and related facts.

    ``frequencies`` lists the native bar sizes (``("*",)`` when any size is served natively).
    ``adjusted`` says whether bar prices come back split/dividend adjusted (backtape prefers raw).
    """

    kinds: frozenset[str] = frozenset({"bars"})
    frequencies: tuple[str, ...] = ("1d",)
    corporate_actions: bool = False
    adjusted: bool = False
    live: bool = False

    def supports_frequency(self, frequency: str | Timeframe) -> bool:
        if self.frequencies == ANY_FREQUENCY:
            return True
        tf = Timeframe.parse(frequency)
        return any(Timeframe.parse(f) == tf for f in self.frequencies)


@dataclass(frozen=True)
class DataSourceMetadata:
    """Provenance of a source: what it is, where it reads from, which calendar its sessions follow.

    Never holds secrets: ``details`` is for redacted, user-displayable facts only.
    """

    name: str
    source_type: str
    description: str
    calendar: str
    capabilities: SourceCapabilities
    details: dict[str, Any] = field(default_factory=dict)


class DataSource(abc.ABC):
    """Base class of every market-data source (local files, samples, synthetic, HTTP providers).

    Subclasses implement :meth:`fetch` and :meth:`get_metadata`, and override :meth:`fetch_trades`,
    :meth:`fetch_quotes` and :meth:`fetch_corporate_actions` when they can. ``start``/``end`` may be
    any time-like value; the range is half-open and must be non-empty.
    """

    #: registry name, e.g. ``"csv"``, ``"sample"``, ``"polygon"``
    name: str = "source"
    #: True for network providers: rate-limited, their answers can change, cached by default
    remote: bool = False

    @abc.abstractmethod
    async def fetch(
        self, symbols: list[str], start: TimeLike, end: TimeLike, frequency: str | Timeframe = "1d"
    ) -> pl.DataFrame:
        """Canonical bars for ``symbols`` with ``start <= ts < end`` at ``frequency``."""

    async def fetch_trades(self, symbols: list[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        """Canonical trades with ``start <= ts < end``; raises when the source has none."""
        raise UnsupportedDataError(f"source {self.name!r} does not provide trades")

    async def fetch_quotes(self, symbols: list[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        """Canonical NBBO quotes with ``start <= ts < end``; raises when the source has none."""
        raise UnsupportedDataError(f"source {self.name!r} does not provide quotes")

    async def fetch_corporate_actions(
        self, symbols: list[str], start: TimeLike, end: TimeLike
    ) -> pl.DataFrame:
        """Splits and dividends with ex-date in ``[start, end)``; empty when the source has none."""
        check_range(start, end)
        return empty("actions")

    @abc.abstractmethod
    def get_metadata(self) -> DataSourceMetadata:
        """Provenance and capabilities of this source."""

    @property
    def capabilities(self) -> SourceCapabilities:
        return self.get_metadata().capabilities

    @property
    def calendar(self) -> str:
        """Name of the exchange calendar this source's sessions follow."""
        return self.get_metadata().calendar

    def calendar_of(self, symbol: str) -> str:
        """Exchange calendar of ``symbol``'s sessions; the source's calendar unless it knows better."""
        return self.calendar

    def frequency_of(self, symbol: str) -> Timeframe | None:
        """Native bar size of ``symbol`` when the source knows it per symbol, else ``None``."""
        return None

    def instruments(self, symbols: Sequence[str]) -> dict[str, Instrument]:
        """Lot size and minimum order value of those ``symbols`` the source knows rules for
        (``backtape.instruments``); none by default."""
        return {}

    def supports_live(self) -> bool:
        """Whether the source can stream live data (none of the built-ins do yet)."""
        return self.capabilities.live

    def cache_identity(self) -> str:
        """A stable, secret-free string naming what this source returns, for cache keys.

        Two sources with the same identity must return the same data for the same request.
        """
        return self.name

    async def fetch_kind(
        self, kind: str, symbols: list[str], start: TimeLike, end: TimeLike, frequency: str | Timeframe = "1d"
    ) -> pl.DataFrame:
        """Dispatch on ``kind`` (``bars``, ``trades``, ``quotes``, ``actions``)."""
        if kind == "bars":
            return await self.fetch(symbols, start, end, frequency)
        if kind == "trades":
            return await self.fetch_trades(symbols, start, end)
        if kind == "quotes":
            return await self.fetch_quotes(symbols, start, end)
        if kind == "actions":
            return await self.fetch_corporate_actions(symbols, start, end)
        raise UnsupportedDataError(f"unknown data kind {kind!r}; use bars, trades, quotes or actions")

    def fetch_sync(
        self, symbols: list[str] | str, start: TimeLike, end: TimeLike, frequency: str | Timeframe = "1d"
    ) -> pl.DataFrame:
        """Synchronous :meth:`fetch`, safe inside Jupyter."""
        return run_sync(self.fetch(_as_list(symbols), start, end, frequency))

    def fetch_kind_sync(
        self, kind: str, symbols: list[str] | str, start: TimeLike, end: TimeLike,
        frequency: str | Timeframe = "1d",
    ) -> pl.DataFrame:
        """Synchronous :meth:`fetch_kind`."""
        return run_sync(self.fetch_kind(kind, _as_list(symbols), start, end, frequency))

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most sources hold nothing
        """Release network clients or file handles; a no-op for most sources."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _as_list(symbols: list[str] | str | Iterable[str]) -> list[str]:
    if isinstance(symbols, str):
        return [s.strip() for s in symbols.split(",") if s.strip()]
    return list(symbols)


SourceFactory = Callable[..., DataSource]


@dataclass(frozen=True)
class SourceSpec:
    """A registered source: how to build it and what it declares before it is built.

    ``credentials`` maps each keyword argument that carries a key or a provider setting to the
    environment variables that may supply it, first one winning (``{"api_key": ("POLYGON_API_KEY",
    "MASSIVE_API_KEY")}``). The configuration reads those variables; the adapter never does.
    """

    name: str
    factory: SourceFactory
    description: str = ""
    remote: bool = False
    credentials: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def check_options(name: str, factory: Callable[..., Any], options: Mapping[str, Any]) -> None:
    """Raise ``ConfigError`` when ``options`` miss an argument ``factory`` needs or name one it lacks
    (the user's mistake; a ``TypeError`` raised inside a source is a bug and passes through)."""
    import inspect

    try:
        inspect.signature(factory).bind(**options)
    except TypeError as exc:
        raise ConfigError(f"source {name!r}: {exc} (options are given as --option NAME=VALUE or keyword "
                          "arguments, e.g. path=...)") from exc


class DataSourceRegistry:
    """Names to source specs. ``get_source(name, **options)`` builds a source from explicit options.

    Factories are registered explicitly (no import side effects) and may import lazily, so that a
    provider's optional dependencies load only when that provider is used. The registry is the one
    answer to "which sources are network providers" and "which variables hold their keys".
    """

    def __init__(self) -> None:
        self._specs: dict[str, SourceSpec] = {}

    def register(self, name: str, factory: SourceFactory, description: str = "", *, replace: bool = False,
                 remote: bool = False, credentials: Mapping[str, tuple[str, ...]] | None = None) -> None:
        """Register ``factory`` (a class or callable returning a ``DataSource``) under ``name``."""
        key = name.lower()
        if key in self._specs and not replace:
            raise ValueError(f"a data source named {name!r} is already registered")
        self._specs[key] = SourceSpec(key, factory, description, remote, dict(credentials or {}))

    def unregister(self, name: str) -> None:
        """Forget the source registered as ``name`` (unknown names are ignored)."""
        self._specs.pop(name.lower(), None)

    def spec(self, name: str) -> SourceSpec:
        """The registration of ``name``; unknown names raise ``SourceNotFoundError`` listing the known."""
        key = name.lower()
        if key not in self._specs:
            known = ", ".join(sorted(self._specs)) or "none"
            raise SourceNotFoundError(f"unknown data source {name!r}; registered sources: {known}")
        return self._specs[key]

    def get_source(self, name: str, **options: Any) -> DataSource:
        """Build the source registered as ``name`` with ``options`` as keyword arguments."""
        spec = self.spec(name)
        check_options(spec.name, spec.factory, options)
        return spec.factory(**options)

    def providers(self) -> list[str]:
        """Names of the registered network providers (remote sources), sorted."""
        return sorted(k for k, spec in self._specs.items() if spec.remote)

    def list(self) -> list[tuple[str, str]]:
        """``(name, description)`` of every registered source, sorted by name."""
        return sorted((k, spec.description) for k, spec in self._specs.items())

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._specs
