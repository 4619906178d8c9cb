"""Settings from ``backtape.yaml`` and the environment, validated once; secrets never leave unredacted.

Where the file comes from (first match wins):

====  ======================================================================================
1     the ``path`` given to :func:`load_config` (or ``backtape --config PATH``)
2     the file named by the ``BACKTAPE_CONFIG`` environment variable
3     ``./backtape.yaml`` in the working directory
4     ``$XDG_CONFIG_HOME/backtape/backtape.yaml`` (default ``~/.config/backtape/backtape.yaml``)
====  ======================================================================================

No file at all means the defaults (the cache in ``~/.backtape/cache``, bundles in
``~/.backtape/bundles``, backtest results in ``~/.backtape/results.db``). The environment then
overrides the file: first the variables of ``ALIAS_ENV`` (``BACKTAPE_CACHE_DIR``,
``BACKTAPE_BUNDLES_DIR``, ``BACKTAPE_RESULTS_DB`` and the providers' own
``POLYGON_API_KEY``, ``APCA_API_KEY_ID``, ``APCA_API_SECRET_KEY``, ``ALPHAVANTAGE_API_KEY``...),
then ``BACKTAPE_<SECTION>__<KEY>`` (``BACKTAPE_DATA__CACHE_DIR``,
``BACKTAPE_PROVIDERS__POLYGON__REQUESTS_PER_MINUTE``). Empty variables count as unset.

Unknown keys and wrong types raise :class:`~backtape.errors.ConfigError` naming the dotted path
(``providers.polygon.requests_per_minute``) and where the value came from (file or variable).
Provider keys are ``SecretStr``: ``repr``, :meth:`Config.redacted` and every error message show
``***``, never the value; only :func:`provider_credentials` hands the plain value to an adapter.
Paths expand ``~`` and ``$VARS``; a relative path is relative to the working directory.
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    model_validator,
)

from ._secrets import register as register_secret
from .errors import ConfigError
from .options import DEFAULT_COMMISSION, DEFAULTS, WALK_FORWARD_TEST, WALK_FORWARD_TRAIN

FILE_NAME = "backtape.yaml"
CONFIG_ENV = "BACKTAPE_CONFIG"
ENV_PREFIX = "BACKTAPE_"
REDACTED = "***"

#: Variables that fill a data setting (``BACKTAPE_<SECTION>__<KEY>`` wins over them).
_DATA_ENV: dict[str, tuple[str, ...]] = {
    "BACKTAPE_CACHE_DIR": ("data", "cache_dir"),
    "BACKTAPE_BUNDLES_DIR": ("data", "bundles_dir"),
    "BACKTAPE_RESULTS_DB": ("data", "results_db"),
}


def _alias_env() -> dict[str, tuple[str, ...]]:
    """Other variables that fill a setting: the data folders and the providers' own variables.

    The providers' names come from the source registry (``SourceSpec.credentials``), the one place
    they are written. When two fill the same setting the later one here wins, so each provider's
    list is entered last-first (``POLYGON_API_KEY`` over ``MASSIVE_API_KEY``); templated names such
    as CCXT's ``{EXCHANGE}_API_KEY`` are resolved by the workspace when the exchange is known.
    """
    from .sources import registry

    out = dict(_DATA_ENV)
    for name in registry.providers():
        if name not in ProvidersConfig.model_fields:
            continue
        for param, variables in registry.spec(name).credentials.items():
            for var in reversed(variables):
                if "{" not in var:
                    out[var] = ("providers", name, param)
    return out


def _expand_path(value: Path) -> Path:
    return Path(os.path.expandvars(str(value))).expanduser()


def _expand_database(value: str) -> str:
    """A results database: an SQLAlchemy URL as given, a file path with ``~`` and ``$VARS`` expanded."""
    return value if "://" in value else str(_expand_path(Path(value)))


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


ConfigPath = Annotated[Path, AfterValidator(_expand_path)]
Database = Annotated[str, Field(min_length=1), AfterValidator(_expand_database)]
Secret = Annotated[SecretStr | None, BeforeValidator(_blank_to_none)]
PositiveFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(gt=0, le=1)]


def _home_dir(name: str) -> Path:
    """``~/.backtape/<name>``: where the cache and the bundles live unless configured."""
    return Path.home() / ".backtape" / name


class _Section(BaseModel):
    """Strict, immutable settings block: unknown keys are errors, defaults are validated too."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class DataConfig(_Section):
    """Where data lives and what the CLI uses when nothing else is said.

    ``results_db`` is the backtest results database: a SQLite file path or an SQLAlchemy URL
    (``postgresql://user@host/db``).
    """

    cache_dir: ConfigPath = Field(default_factory=lambda: _home_dir("cache"))
    bundles_dir: ConfigPath = Field(default_factory=lambda: _home_dir("bundles"))
    results_db: Database = Field(default_factory=lambda: str(_home_dir("results.db")))
    default_source: str = "sample"
    calendar: str = "XNYS"
    s3_endpoint: str | None = None
    """Object-storage endpoint for bundles on ``s3://`` (``http://127.0.0.1:9000``); AWS when unset."""


class HttpConfig(_Section):
    """Connection settings of an HTTP provider, named like the adapters' keyword arguments.

    ``None`` leaves the adapter's own default (its documented base URL, rate limit and timeout).
    """

    base_url: str | None = None
    requests_per_minute: PositiveFloat | None = None
    timeout: PositiveFloat | None = None


class ProviderConfig(HttpConfig):
    """An HTTP provider with one API key (Alpha Vantage)."""

    api_key: Secret = None


class PolygonConfig(ProviderConfig):
    """Polygon.io / Massive: REST key plus the separate S3 keys of the flat files."""

    s3_endpoint: str | None = None
    s3_bucket: str | None = None
    s3_access_key_id: Secret = None
    s3_secret_access_key: Secret = None


class AlpacaConfig(ProviderConfig):
    """Alpaca market data: key id and secret key; ``feed`` is e.g. ``iex`` or ``sip``."""

    secret_key: Secret = None
    feed: str | None = None


class CCXTConfig(_Section):
    """A crypto exchange through CCXT (public market data needs no keys; CCXT paces requests itself)."""

    exchange: str | None = None
    api_key: Secret = None
    secret: Secret = None
    base_url: str | None = None
    timeout: PositiveFloat | None = None


class ProvidersConfig(_Section):
    """One block per built-in provider; each block's keys are keyword arguments of its adapter."""

    polygon: PolygonConfig = Field(default_factory=PolygonConfig)
    alpaca: AlpacaConfig = Field(default_factory=AlpacaConfig)
    alphavantage: ProviderConfig = Field(default_factory=ProviderConfig)
    yahoo: HttpConfig = Field(default_factory=HttpConfig)
    ccxt: CCXTConfig = Field(default_factory=CCXTConfig)


class BacktestingConfig(_Section):
    """Trading options of backtests and searches: the fields of ``backtape.TradingOptions``.

    Defaults are ``TradingOptions``'s own (one place); ``commission`` is a fraction of notional and
    ``slippage_bps`` a fixed adverse move, as in ``TransactionCostEngine.simple``.
    """

    cash: PositiveFloat = DEFAULTS.cash
    commission: float = Field(default=DEFAULT_COMMISSION, ge=0, lt=1)
    slippage_bps: float = Field(default=DEFAULTS.slippage_bps, ge=0)
    fill: Literal["next_open", "close"] = DEFAULTS.fill
    fractional: bool | Literal["auto"] = DEFAULTS.fractional  # type: ignore[assignment]
    leverage: PositiveFloat = DEFAULTS.leverage
    max_participation: Fraction | None = DEFAULTS.max_participation
    adjustment: Literal["raw", "split", "total_return"] = DEFAULTS.adjustment
    dividends: Literal["crsp", "ratio"] = DEFAULTS.dividends


class WalkForwardConfig(_Section):
    """Walk-forward windows, in bars (``step_size`` unset: the test window, so windows never overlap)."""

    train_periods: int = Field(default=WALK_FORWARD_TRAIN, gt=0)
    test_periods: int = Field(default=WALK_FORWARD_TEST, gt=0)
    step_size: int | None = Field(default=None, gt=0)


class OptimizationConfig(_Section):
    """Parallelism of parameter searches: ``local`` (all cores of this machine) or a ``ray`` cluster.

    ``n_jobs=-1`` means one worker per core; ``ray_address`` ``None`` starts or joins a local Ray.
    """

    n_jobs: int = Field(default=-1, ge=-1)
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    walk_forward: WalkForwardConfig = Field(default_factory=WalkForwardConfig)

    @model_validator(mode="after")
    def _jobs_not_zero(self) -> OptimizationConfig:
        if self.n_jobs == 0:
            raise ValueError("n_jobs must be -1 (all cores) or a positive count, not 0")
        return self


class RiskConfig(_Section):
    """Limits of ``backtape.risk.RiskManager``, as fractions of equity; ``None`` switches one off.

    ``RiskManager(**config.risk.model_dump())`` builds the manager (without a sizer).
    """

    max_position_pct: PositiveFloat | None = None
    max_portfolio_heat: Fraction | None = None
    max_gross_exposure: PositiveFloat | None = None
    max_net_exposure: PositiveFloat | None = None
    max_drawdown_halt: Fraction | None = None
    default_stop_loss_pct: Fraction | None = None


class Config(_Section):
    """The effective configuration: file values, then environment overrides, then defaults."""

    data: DataConfig = Field(default_factory=DataConfig)
    providers: ProvidersConfig = Field(default_factory=ProvidersConfig)
    backtesting: BacktestingConfig = Field(default_factory=BacktestingConfig)
    optimization: OptimizationConfig = Field(default_factory=OptimizationConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)

    _file: Path | None = PrivateAttr(default=None)
    _env_overrides: tuple[str, ...] = PrivateAttr(default=())

    @property
    def file(self) -> Path | None:
        """The file this configuration was read from (``None``: defaults and environment only)."""
        return self._file

    @property
    def env_overrides(self) -> tuple[str, ...]:
        """Names (never values) of the environment variables that changed a setting."""
        return self._env_overrides

    def redacted(self) -> dict[str, Any]:
        """Plain dict of every setting, secrets shown as ``***`` (unset ones as ``None``)."""
        return _redact(self)


def _redact(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {name: _redact(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, Path):
        return str(value)
    return value


#: every variable besides ``BACKTAPE_<SECTION>__<KEY>`` that fills a setting (see ``_alias_env``)
ALIAS_ENV: dict[str, tuple[str, ...]] = _alias_env()


# -- locating and reading ------------------------------------------------------------------------


def _user_config_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or "~/.config"
    return Path(base).expanduser() / "backtape" / FILE_NAME


def locate_config(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The configuration file that :func:`load_config` would read, or ``None`` for defaults."""
    if path is not None:
        if not isinstance(path, str | os.PathLike):
            raise ConfigError(f"config must be the path of a backtape.yaml file, got {path!r} "
                              f"({type(path).__name__})")
        explicit = Path(path).expanduser()
        if explicit.is_dir():
            raise ConfigError(f"config {explicit} is a folder; give the path of its backtape.yaml file "
                              f"(e.g. {explicit / FILE_NAME})")
        if not explicit.is_file():
            raise ConfigError(f"config file not found: {explicit}")
        return explicit
    from_env = os.environ.get(CONFIG_ENV, "").strip()
    if from_env:
        named = Path(from_env).expanduser()
        if not named.is_file():
            raise ConfigError(f"config file not found: {named} (named by {CONFIG_ENV})")
        return named
    for candidate in (Path.cwd() / FILE_NAME, _user_config_file()):
        if candidate.is_file():
            return candidate
    return None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"config file {path}: {problem}{where}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"config file {path}: expected a mapping of sections (data, providers, backtesting, "
            f"optimization, risk), got {type(raw).__name__}"
        )
    return raw


def _relevant_env(environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Non-empty variables that override settings, sorted by name."""
    items = [
        (k, v) for k, v in environ.items()
        if v.strip() and (k in ALIAS_ENV or (k.startswith(ENV_PREFIX) and "__" in k))
    ]
    return tuple(sorted(items))


def _env_path(name: str) -> tuple[str, ...]:
    if name in ALIAS_ENV:
        return ALIAS_ENV[name]
    parts = tuple(p.lower() for p in name[len(ENV_PREFIX):].split("__"))
    if any(not p for p in parts) or len(parts) < 2:
        raise ConfigError(
            f"environment variable {name}: write BACKTAPE_<SECTION>__<KEY>, e.g. BACKTAPE_DATA__CACHE_DIR"
        )
    return parts


def _apply_env(raw: dict[str, Any], env: tuple[tuple[str, str], ...]) -> dict[tuple[str, ...], str]:
    """Set each override into ``raw`` (in place); returns path -> variable name, for messages."""
    origins: dict[tuple[str, ...], str] = {}
    # aliases first, in ALIAS_ENV order, so the BACKTAPE_<SECTION>__<KEY> form wins over them
    order = {name: i for i, name in enumerate(ALIAS_ENV)}
    for name, value in sorted(env, key=lambda kv: (kv[0] not in order, order.get(kv[0], 0), kv[0])):
        path = _env_path(name)
        node = raw
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                break  # the file has a scalar here; validation reports it
            node = child
        else:
            node[path[-1]] = value
            origins[path] = f"environment variable {name}"
    return origins


# -- validation errors as one readable line ------------------------------------------------------


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Config
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _is_secret(loc: tuple[Any, ...]) -> bool:
    parent = _model_at(loc[:-1]) if loc else None
    field = parent.model_fields.get(str(loc[-1])) if parent else None
    return field is not None and "SecretStr" in str(field.annotation)


def _origin(loc: tuple[str, ...], origins: dict[tuple[str, ...], str], file: Path | None) -> str:
    for n in range(len(loc), 0, -1):
        if loc[:n] in origins:
            return origins[loc[:n]]
    return f"config file {file}" if file else "defaults"


def _describe(error: Any, origins: dict[tuple[str, ...], str], file: Path | None) -> str:
    loc = tuple(str(p) for p in error["loc"])
    dotted = ".".join(loc) or "(top level)"
    where = _origin(loc, origins, file)
    if error["type"] == "extra_forbidden":
        parent = _model_at(loc[:-1])
        known = list(parent.model_fields) if parent else []
        close = difflib.get_close_matches(loc[-1], known, n=1)
        hint = f"; did you mean {'.'.join((*loc[:-1], close[0]))!r}?" if close else ""
        options = f" (known: {', '.join(known)})" if known and not close else ""
        return f"unknown key {dotted!r} in {where}{hint}{options}"
    message = error["msg"]
    if _is_secret(loc):
        detail = " (value hidden; quote it in YAML)"
    elif isinstance(error.get("input"), str | int | float | bool):
        detail = f" (got {error['input']!r})"
    else:
        detail = ""
    return f"{dotted}: {message}{detail}, in {where}"


def _validate(raw: dict[str, Any], origins: dict[tuple[str, ...], str], file: Path | None) -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = [_describe(e, origins, file) for e in exc.errors(include_url=False)]
        raise ConfigError("; ".join(problems)) from None


# -- public entry points -------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _load(file: Path | None, stamp: int | None, environ: tuple[tuple[str, str], ...]) -> Config:
    # ``environ`` is the whole environment: defaults and ``$VAR``/``~`` expansion depend on it too
    env = _relevant_env(dict(environ))
    raw = _read_file(file) if file is not None else {}
    origins = _apply_env(raw, env)
    config = _validate(raw, origins, file)
    config._file = file
    config._env_overrides = tuple(name for name, _ in env)
    for provider in ProvidersConfig.model_fields:
        section = getattr(config.providers, provider)
        for field in type(section).model_fields:
            value = getattr(section, field)
            if isinstance(value, SecretStr):
                register_secret(value.get_secret_value())
    return config


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """The effective configuration (see the module docstring for the lookup order).

    Cached per file, its modification time and the environment, so calling it repeatedly is cheap
    and still sees edits.
    """
    file = locate_config(path)
    stamp = file.stat().st_mtime_ns if file is not None else None
    environ = tuple(sorted(os.environ.items()))
    return _load(file.resolve() if file is not None else None, stamp, environ)


def provider_credentials(name: str, config: Config | None = None) -> dict[str, Any]:
    """Settings of provider ``name`` as keyword arguments, secrets revealed, unset ones omitted.

    For adapters only, e.g. ``PolygonDataSource(**provider_credentials("polygon"))`` with
    ``{"api_key": "...", "requests_per_minute": 5.0}``.
    """
    cfg = config if config is not None else load_config()
    key = name.lower()
    section = getattr(cfg.providers, key, None) if key in ProvidersConfig.model_fields else None
    if section is None:
        known = ", ".join(ProvidersConfig.model_fields)
        raise ConfigError(f"no provider named {name!r} in the configuration; known: {known}")
    out: dict[str, Any] = {}
    for field in type(section).model_fields:
        value = getattr(section, field)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is not None:
            out[field] = value
    return out


__all__ = [
    "ALIAS_ENV",
    "AlpacaConfig",
    "BacktestingConfig",
    "CCXTConfig",
    "Config",
    "DataConfig",
    "HttpConfig",
    "OptimizationConfig",
    "PolygonConfig",
    "ProviderConfig",
    "ProvidersConfig",
    "RiskConfig",
    "WalkForwardConfig",
    "load_config",
    "locate_config",
    "provider_credentials",
]
