"""``Workspace``: the one composition root. It reads the configuration once and hands out wired parts.

Everything below it (sources, cache, portal, engines, optimization, results) takes explicit
arguments; only the workspace (and the CLI that builds one) reads ``backtape.yaml`` and the
environment. What it owns and what it hands out:

=======================  ==========================================================================
part                     from the configuration
=======================  ==========================================================================
``ws.source(name)``      the registered source with its provider keys and settings; a network
                         provider (``remote``) behind the on-disk cache in ``data.cache_dir`` with
                         the default read-ahead policy (``cache=False`` opts out); ``"bundle:NAME"``
                         reads a bundle, ``"bundle:s3://bucket/prefix/NAME"`` one on object storage
``ws.storage_options()`` object-storage credentials and endpoint (``AWS_*``, ``data.s3_endpoint``)
``ws.portal(...)``       a ``DataPortal`` over such a source
``ws.options``           the ``TradingOptions`` of ``backtesting`` and ``risk``
``ws.results``           the ``ResultsStore`` at ``data.results_db``
``ws.bundles``           ``list``/``show``/``ingest``/``source`` over ``data.bundles_dir``
``ws.run_backtest`` ...  runs with all of the above (``optimize``, ``walk_forward``, ``monte_carlo``)
=======================  ==========================================================================

>>> ws = Workspace()                                                        # doctest: +SKIP
>>> result = ws.run_backtest("sma_crossover", "AAPL", "2012-01-01", "2015-01-01")   # doctest: +SKIP
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from ._paths import expand_path
from ._symbols import symbol_list
from ._time import TimeLike
from .config import Config, ProvidersConfig, load_config, provider_credentials
from .errors import ConfigError
from .options import Adjustment, TradingOptions, trading_options
from .sources import get_source, registry
from .sources.base import DataSource

if TYPE_CHECKING:
    import polars as pl

    from .cache.bundles import BundleMetadata
    from .engine.result import BacktestResult
    from .engine.strategy import Strategy
    from .optimization import MonteCarloResult, OptimizationResult, WalkForwardResult
    from .portal import DataPortal
    from .results import ResultsStore

Progress = Callable[[int, int], None]
#: the cache's read-ahead in a workspace: a miss reads to the end of its year (daily) or month
DEFAULT_READ_AHEAD: Final = "period"
#: where runs are stored: ``True`` the workspace's database, a store, a path or URL, ``None``/``False`` none
StoreLike: TypeAlias = "ResultsStore | str | Path | bool | None"


class Workspace:
    """Configuration, cache, bundles, results and credentials, wired once (see the module doc).

    ``config`` is a ``Config``, a path to a ``backtape.yaml``, or ``None`` for the documented lookup
    (``$BACKTAPE_CONFIG``, ``./backtape.yaml``, ``~/.config/backtape/backtape.yaml``, then defaults).
    """

    def __init__(self, config: Config | str | os.PathLike[str] | None = None) -> None:
        self.config: Config = config if isinstance(config, Config) else load_config(config)
        data = self.config.data
        self.cache_dir: Path = expand_path(data.cache_dir)
        self.bundles_dir: Path = expand_path(data.bundles_dir)
        self.results_url: str = data.results_db
        self.options: TradingOptions = options_from_config(self.config)
        self._cached: dict[tuple[str, str], DataSource] = {}
        self._results: ResultsStore | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        origin = self.config.file or "defaults"
        return f"Workspace(config={str(origin)!r}, cache_dir={str(self.cache_dir)!r})"

    # -- data ------------------------------------------------------------------------------------
    def credentials(self, name: str, **options: Any) -> dict[str, Any]:
        """Keyword arguments of provider ``name``: its config block, then templated variables
        (CCXT's ``<EXCHANGE>_API_KEY``), then ``options`` (explicit ones win)."""
        key = name.lower()
        if key not in ProvidersConfig.model_fields:
            return dict(options)
        settings = provider_credentials(key, self.config)
        given = {**settings, **options}
        context = {k.upper(): v.upper() for k, v in given.items() if isinstance(v, str)}
        for param, variables in registry.spec(key).credentials.items():
            if param in settings or param in options:
                continue
            for var in variables:
                if "{" not in var:
                    continue
                try:
                    value = os.environ.get(var.format(**context), "")
                except KeyError:
                    continue
                if value.strip():
                    settings[param] = value
                    break
        return {**settings, **options}

    def source(self, source: DataSource | str | None = None, *, cache: bool | None = None,
               **options: Any) -> DataSource:
        """A fully wired source: a registered name (``data.default_source`` when ``None``), a
        ``"bundle:NAME"``, or a ``DataSource`` instance.

        ``cache=None`` puts remote providers behind the cache and leaves local sources as they are;
        ``True``/``False`` force it. The same name and options share one cached source per workspace.
        """
        if isinstance(source, DataSource):
            return self._behind_cache(source) if (cache if cache is not None else source.remote) else source
        if source is not None and not isinstance(source, str):
            raise ConfigError(f"source must be a registered name such as 'sample' or a DataSource, got "
                              f"{source!r} ({type(source).__name__})")
        name = (source or self.config.data.default_source).strip()
        if name.lower().startswith("bundle:"):
            return self.bundles.source(name.split(":", 1)[1])
        spec = registry.spec(name)
        use_cache = spec.remote if cache is None else cache
        if not use_cache:
            return get_source(spec.name, **self.credentials(spec.name, **options))
        token = (spec.name, repr(sorted(options.items())))
        with self._lock:
            if token not in self._cached:
                built = get_source(spec.name, **self.credentials(spec.name, **options))
                self._cached[token] = self._behind_cache(built)
            return self._cached[token]

    def storage_options(self) -> dict[str, Any]:
        """Object-storage settings for pyarrow's ``S3FileSystem``: keys from the standard ``AWS_*``
        variables (none: pyarrow's own credential chain), the endpoint from ``data.s3_endpoint`` or
        ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``."""
        env = os.environ
        found = {"access_key": env.get("AWS_ACCESS_KEY_ID"), "secret_key": env.get("AWS_SECRET_ACCESS_KEY"),
                 "session_token": env.get("AWS_SESSION_TOKEN"),
                 "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
                 "endpoint_override": (self.config.data.s3_endpoint or env.get("AWS_ENDPOINT_URL_S3")
                                       or env.get("AWS_ENDPOINT_URL"))}
        return {k: v.strip() for k, v in found.items() if v and v.strip()}

    def _behind_cache(self, source: DataSource) -> DataSource:
        from .cache import CachedDataSource

        if isinstance(source, CachedDataSource):
            return source
        return CachedDataSource(source, cache_dir=self.cache_dir, read_ahead_bars=DEFAULT_READ_AHEAD)

    def portal(self, source: DataSource | str | None = None, *, adjustment: Adjustment | None = None,
               calendar: str | None = None) -> DataPortal:
        """A ``DataPortal`` over ``ws.source(source)``, prices adjusted as the options say."""
        from .portal import DataPortal

        return DataPortal(self.source(source), calendar=calendar,
                          adjustment=adjustment or self.options.adjustment, dividends=self.options.dividends)

    @property
    def results(self) -> ResultsStore:
        """The results database (``data.results_db``), opened on first use."""
        if self._results is None:
            from .results import ResultsStore

            self._results = ResultsStore(self.results_url)
        return self._results

    def store(self, store: StoreLike) -> ResultsStore | None:
        """``True`` -> ``ws.results``; a store, path or URL -> that store; ``None``/``False`` -> none."""
        if store is None or store is False:
            return None
        if store is True:
            return self.results
        from .results import ResultsStore

        return store if isinstance(store, ResultsStore) else ResultsStore(store)

    @property
    def bundles(self) -> Bundles:
        """The bundles in ``data.bundles_dir``."""
        return Bundles(self)

    # -- runs ------------------------------------------------------------------------------------
    def trading_options(self, options: TradingOptions | None = None, *, conventions: str | None = None,
                        **overrides: Any) -> TradingOptions:
        """``options`` (default: the configured ones), the preset ``conventions``, keyword ``overrides``."""
        return trading_options(options or self.options, conventions=conventions, **overrides)

    def run_backtest(self, strategy: Strategy | type[Strategy] | str, symbols: Sequence[str] | str,
                     start: TimeLike, end: TimeLike, frequency: str = "1d",
                     source: DataSource | str | None = None,
                     options: TradingOptions | None = None, *, params: dict[str, Any] | None = None,
                     engine: str = "event", store: StoreLike = None, progress: Progress | None = None,
                     conventions: str | None = None, **overrides: Any) -> BacktestResult:
        """Backtest ``strategy`` with this workspace's source, options and (``store=True``) database.

        Arguments as ``backtape.engine.run_backtest``; ``source`` defaults to ``data.default_source``.
        """
        from .engine.run import run_backtest

        return run_backtest(strategy, symbol_list(symbols), start, end, frequency, self.source(source),
                            self.trading_options(options, conventions=conventions, **overrides),
                            params=params, engine=engine,
                            store=self.store(store), progress=progress)

    def optimize(self, strategy: Any, grid: Mapping[str, Iterable[Any]], symbols: Sequence[str] | str,
                 start: TimeLike, end: TimeLike, frequency: str = "1d",
                 source: DataSource | str | None = None, metric: str = "sharpe", engine: str = "vector",
                 executor: str | None = None, *,
                 n_jobs: int | None = None, address: str | None = None, store: StoreLike = None,
                 options: TradingOptions | None = None, **kwargs: Any) -> OptimizationResult:
        """``backtape.optimization.optimize`` with this workspace's source, options, executor settings
        (``optimization``) and (``store=True``) database; other keywords pass through."""
        from .optimization import optimize

        trading, rest = _split(kwargs)
        opt = self.config.optimization
        return optimize(strategy, grid, symbols, start, end, frequency, self.source(source), metric, engine,
                        executor or opt.executor, n_jobs=opt.n_jobs if n_jobs is None else n_jobs,
                        address=self.ray_address(address), store=self.store(store),
                        options=self.trading_options(options, **trading), **rest)

    def walk_forward(self, strategy: Any, grid: Mapping[str, Iterable[Any]], symbols: Sequence[str] | str,
                     start: TimeLike, end: TimeLike, train_periods: int | None = None,
                     test_periods: int | None = None, step_size: int | None = None, anchored: bool = False,
                     metric: str = "sharpe", *, source: DataSource | str | None = None,
                     options: TradingOptions | None = None, **kwargs: Any) -> WalkForwardResult:
        """``backtape.optimization.walk_forward`` with windows from ``optimization.walk_forward``."""
        from .optimization import walk_forward

        trading, rest = _split(kwargs)
        opt = self.config.optimization
        wf = opt.walk_forward
        rest.setdefault("executor", opt.executor)
        rest.setdefault("n_jobs", opt.n_jobs)
        rest["address"] = self.ray_address(rest.get("address"))
        # None takes the configured window; 0 is the caller's own value (refused), not "default"
        train = wf.train_periods if train_periods is None else train_periods
        test = wf.test_periods if test_periods is None else test_periods
        step = wf.step_size if step_size is None else step_size
        return walk_forward(strategy, grid, symbols, start, end, train, test, step, anchored, metric,
                            source=self.source(source), options=self.trading_options(options, **trading),
                            **rest)

    def run_many(self, strategies: Any, symbols: Sequence[str] | str, params: Any = None, *,
                 start: TimeLike, end: TimeLike, frequency: str = "1d",
                 source: DataSource | str | None = None, executor: str | None = None,
                 n_jobs: int | None = None, address: str | None = None, store: StoreLike = None,
                 batch: str | None = None, progress: Progress | None = None,
                 options: TradingOptions | None = None, **overrides: Any) -> pl.DataFrame:
        """Event backtests of every strategy x symbol x parameter set (``params``: a grid or a list of
        sets) on local processes or Ray: one row of metrics each; with ``store`` every worker stores
        its runs (once each, even when a task is retried)."""
        from .optimization.data import load_market_data
        from .optimization.evaluate import EvalSpec
        from .optimization.many import jobs_of, run_many

        jobs = jobs_of(strategies, symbols, params)
        warmup = max(EvalSpec(j.strategy).warmup(dict(j.params)) for j in jobs)
        opts = self.trading_options(options, **overrides)
        data = load_market_data(sorted({j.symbol for j in jobs}), start, end, frequency, self.source(source),
                                warmup=warmup, adjustment=opts.adjustment,
                                dividends=opts.dividends)  # fmt: skip
        results = self.store(store)
        opt = self.config.optimization
        return run_many(jobs, data, opts, executor=executor or opt.executor,
                        n_jobs=opt.n_jobs if n_jobs is None else n_jobs, address=self.ray_address(address),
                        store_url=None if results is None else results.engine.url.render_as_string(False),
                        batch=batch, progress=progress)  # fmt: skip

    def ray_address(self, address: str | None = None) -> str | None:
        """The Ray cluster to use: ``address``, else ``optimization.ray_address``, else ``RAY_ADDRESS``;
        ``None`` means a local instance."""
        return address or self.config.optimization.ray_address or os.environ.get("RAY_ADDRESS") or None

    def monte_carlo(self, run: Any, n_simulations: int = 1000, method: str = "reshuffle", *,
                    store: StoreLike = True, executor: str | None = None, address: str | None = None,
                    **kwargs: Any) -> MonteCarloResult:
        """``backtape.optimization.monte_carlo`` of a result or a stored run id (in ``ws.results``),
        on the configured executor (``optimization``)."""
        from .optimization import monte_carlo

        return monte_carlo(run, n_simulations, method, store=self.store(store),
                           executor=executor or self.config.optimization.executor,
                           address=self.ray_address(address), **kwargs)  # fmt: skip


class Bundles:
    """Named Parquet snapshots in a workspace's ``data.bundles_dir``."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.folder = workspace.bundles_dir

    def list(self) -> list[BundleMetadata]:
        """Metadata of every bundle, by name."""
        from .cache.bundles import list_bundles

        return list_bundles(self.folder)

    def show(self, name: str) -> BundleMetadata:
        """Metadata of bundle ``name``."""
        from .cache.bundles import BundleMetadata

        return BundleMetadata.load(name, self.folder)

    def source(self, name: str) -> DataSource:
        """Bundle ``name`` read as a ``DataSource``; an ``s3://bucket/prefix/NAME`` URL is read from
        object storage with the workspace's ``storage_options()``."""
        if "://" in name:
            from .cache.remote_bundles import RemoteBundleDataSource

            return RemoteBundleDataSource(name, self.workspace.storage_options())
        from .cache.bundles import BundleDataSource

        return BundleDataSource(name, self.folder)

    def push(self, name: str, url: str, *, replace: bool = False) -> Any:
        """Upload bundle ``name`` to ``url/name`` (``s3://bucket/prefix``); returns its manifest."""
        from .cache.remote_bundles import push_bundle

        return push_bundle(name, url, bundles_dir=self.folder, replace=replace,
                           storage_options=self.workspace.storage_options())

    def pull(self, url: str, name: str | None = None) -> BundleMetadata:
        """Download the bundle at ``url`` (``s3://bucket/prefix/NAME``) as ``name`` (default: its own)."""
        from .cache.remote_bundles import pull_bundle

        return pull_bundle(url, bundles_dir=self.folder, name=name,
                           storage_options=self.workspace.storage_options())

    def ingest(self, name: str, symbols: Iterable[str] | str, start: TimeLike, end: TimeLike,
               frequency: str = "1d", source: DataSource | str | None = None,
               progress: Callable[[str, int, int], None] | None = None, **options: Any) -> BundleMetadata:
        """Fetch ``symbols`` from ``source`` (wired as ``ws.source``) into bundle ``name``."""
        from .cache.bundles import ingest_to_bundle

        src = self.workspace.source(source, **options)
        return ingest_to_bundle(name, symbols, start, end, frequency, source=src, bundles_dir=self.folder,
                                progress=progress)


def options_from_config(config: Config) -> TradingOptions:
    """The ``TradingOptions`` of a configuration's ``backtesting`` and ``risk`` sections."""
    from .risk import RiskManager

    limits = {k: v for k, v in config.risk.model_dump().items() if v is not None}
    bt = config.backtesting
    return TradingOptions(cash=bt.cash, commission=bt.commission, slippage_bps=bt.slippage_bps,
                          fill=bt.fill, fractional=bt.fractional, leverage=bt.leverage,
                          max_participation=bt.max_participation, adjustment=bt.adjustment,
                          dividends=bt.dividends,
                          risk=RiskManager(**limits) if limits else None)


def _split(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    from .options import split_options

    return split_options(kwargs)


_default: tuple[Config, Workspace] | None = None
_default_lock = threading.Lock()


def default_workspace() -> Workspace:
    """The workspace of the documented configuration lookup, rebuilt when that configuration changes."""
    global _default
    config = load_config()
    with _default_lock:
        if _default is None or _default[0] is not config:
            _default = (config, Workspace(config))
        return _default[1]


def _module_level(name: str) -> Callable[..., Any]:
    method = getattr(Workspace, name)

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(default_workspace(), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    head = f"``Workspace.{name}`` on the default workspace (the documented configuration lookup).\n\n"
    call.__doc__ = head + (method.__doc__ or "")
    return call


run_backtest = _module_level("run_backtest")
optimize = _module_level("optimize")
walk_forward = _module_level("walk_forward")
monte_carlo = _module_level("monte_carlo")


def source(name: DataSource | str | None = None, *, cache: bool | None = None, **options: Any) -> DataSource:
    """``Workspace.source`` on the default workspace: keys from the configuration, providers cached."""
    return default_workspace().source(name, cache=cache, **options)


__all__ = ["Bundles", "Workspace", "default_workspace", "options_from_config"]

