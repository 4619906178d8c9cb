"""``TradingOptions``: the one typed set of trading options both engines, optimization and the CLI take.

Every default lives here, once; the configuration's ``backtesting`` and ``risk`` sections mirror
these fields and a ``Workspace`` turns them into the options of its runs.

=====================  =================  ===================================================
option                 default            meaning
=====================  =================  ===================================================
``cash``               10,000             starting cash, in the account currency
``commission``         0.0                fraction of traded notional (or a ``Commission``)
``slippage_bps``       0.0                fixed adverse price move per fill, basis points
``costs``              ``None``           a full ``TransactionCostEngine``; replaces the two above
``fill``               ``"next_open"``    market orders fill at the next bar's open, or ``"close"``
``fractional``         ``"auto"``         fractions for symbols on a 24/7 calendar (crypto), whole shares
                                          for the rest; ``True``/``False`` for all, or a set of symbols
``leverage``           1.0                gross exposure / equity the broker allows
``max_participation``  ``None``           largest fill as a fraction of the bar's volume
``adjustment``         ``"split"``        prices strategies read: ``raw``, ``split``, ``total_return``
``latency``            0                  order latency of quote-filled runs: ns or a ``timedelta``
``risk``               ``None``           a ``RiskManager`` (sizing and limits); ``None``: no limits
``instruments``        ``None``           per-symbol ``Instrument`` (lot size, minimum order value);
                                          ``None``: the source's rules (CCXT markets), if any
=====================  =================  ===================================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from .costs import Commission, SlippageModel, TransactionCostEngine
from .errors import ConfigError
from .instruments import Instrument
from .risk import RiskManager

FillMode = Literal["next_open", "close"]
Adjustment = Literal["raw", "split", "total_return"]
#: the default commission, a fraction of traded notional (the config's ``backtesting.commission`` too)
DEFAULT_COMMISSION = 0.0
FILL_MODES: tuple[str, ...] = ("next_open", "close")
ADJUSTMENTS: tuple[str, ...] = ("raw", "split", "total_return")


@dataclass(frozen=True)
class TradingOptions:
    """How a backtest trades: cash, costs, fills, share rules, price adjustment and risk (see module).

    >>> TradingOptions(cash=100_000, commission=0.001).replace(fill="close").fill
    'close'
    """

    cash: float = 10_000.0
    commission: float | Commission = DEFAULT_COMMISSION
    slippage_bps: float = 0.0
    costs: TransactionCostEngine | None = None
    fill: FillMode = "next_open"
    fractional: bool | frozenset[str] | Literal["auto"] = "auto"
    leverage: float = 1.0
    max_participation: float | None = None
    adjustment: Adjustment = "split"
    latency: int = 0
    risk: RiskManager | None = field(default=None, compare=True)
    instruments: Mapping[str, Instrument] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.cash, int | float) and self.cash > 0):
            raise ConfigError(f"cash must be a positive number, got {self.cash!r}")
        if not isinstance(self.commission, Commission) and not (
                isinstance(self.commission, int | float) and self.commission >= 0):
            raise ConfigError(f"commission must be a fraction >= 0 or a Commission, got {self.commission!r}")
        if not (isinstance(self.slippage_bps, int | float) and self.slippage_bps >= 0):
            raise ConfigError(f"slippage_bps must be >= 0, got {self.slippage_bps!r}")
        if self.fill not in FILL_MODES:
            raise ConfigError(f"fill must be one of {', '.join(FILL_MODES)}, got {self.fill!r}")
        if self.adjustment not in ADJUSTMENTS:
            raise ConfigError(f"adjustment must be one of {', '.join(ADJUSTMENTS)}, got {self.adjustment!r}")
        if not (isinstance(self.leverage, int | float) and self.leverage > 0):
            raise ConfigError(f"leverage must be > 0, got {self.leverage!r}")
        if self.max_participation is not None and not 0 < self.max_participation <= 1:
            raise ConfigError(f"max_participation must be in (0, 1], got {self.max_participation!r}")
        if isinstance(self.latency, timedelta):
            object.__setattr__(self, "latency", self.latency // timedelta(microseconds=1) * 1000)
        if isinstance(self.latency, bool) or not isinstance(self.latency, int) or self.latency < 0:
            raise ConfigError(f"latency must be nanoseconds >= 0 or a timedelta, got {self.latency!r}")
        if isinstance(self.fractional, set | list | tuple):
            object.__setattr__(self, "fractional", frozenset(self.fractional))
        if not (isinstance(self.fractional, bool | frozenset) or self.fractional == "auto"):
            raise ConfigError(f"fractional must be true, false, 'auto' or a set of symbols, "
                              f"got {self.fractional!r}")
        if self.instruments is not None and not (isinstance(self.instruments, Mapping) and all(
                isinstance(k, str) and isinstance(v, Instrument) for k, v in self.instruments.items())):
            raise ConfigError(f"instruments must map symbols to backtape.Instrument, "
                              f"got {self.instruments!r}")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of every option, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **changes: Any) -> TradingOptions:
        """A copy with ``changes``; ``None`` values keep the current one (handy for CLI flags).

        An unknown name raises ``ConfigError`` listing the known options.
        """
        unknown = sorted(set(changes) - set(self.field_names()))
        if unknown:
            raise ConfigError(f"unknown trading option(s) {', '.join(unknown)}; "
                              f"known: {', '.join(self.field_names())}")
        given = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **given) if given else self

    def cost_engine(self) -> TransactionCostEngine:
        """The cost model of these options: ``costs`` when given, else commission plus slippage."""
        if self.costs is not None:
            return self.costs
        comm = self.commission if isinstance(self.commission, Commission) else Commission(
            percent=float(self.commission))
        return TransactionCostEngine(commission=comm, slippage=SlippageModel(bps=self.slippage_bps))

    def for_symbols(self, calendars: Mapping[str, str],
                    instruments: Mapping[str, Instrument] | None = None) -> TradingOptions:
        """These options with ``fractional="auto"`` resolved for symbols of the given calendars, and
        ``instruments`` (a source's rules) filled in when none were given."""
        out = self.with_instruments(instruments)
        if self.fractional != "auto":
            return out
        crypto = frozenset(sym for sym, cal in calendars.items() if cal == CRYPTO_CALENDAR)
        fractional: bool | frozenset[str] = True if crypto and crypto == set(calendars) else crypto or False
        return dataclasses.replace(out, fractional=fractional)

    def with_instruments(self, instruments: Mapping[str, Instrument] | None) -> TradingOptions:
        """These options with a source's ``instruments`` rules when none were given."""
        if self.instruments is not None or not instruments:
            return self
        return dataclasses.replace(self, instruments=dict(instruments))

    def describe(self) -> dict[str, Any]:
        """Plain values for storage and fingerprints (objects shown by their repr)."""
        out: dict[str, Any] = {}
        for name in self.field_names():
            value = getattr(self, name)
            if isinstance(value, frozenset):
                value = sorted(value)
            elif name == "instruments" and value is not None:
                value = {sym: dataclasses.asdict(rule) for sym, rule in sorted(value.items())}
            elif value is not None and not isinstance(value, int | float | str | bool):
                value = repr(value)
            out[name] = value
        return out


def trading_options(options: TradingOptions | None = None, /, **overrides: Any) -> TradingOptions:
    """``options`` (default ``TradingOptions()``) with keyword ``overrides`` (``None`` keeps a value)."""
    return (options or TradingOptions()).replace(**overrides)


def split_options(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``kwargs`` split into trading-option overrides and the rest."""
    names = set(TradingOptions.field_names())
    ours = {k: v for k, v in kwargs.items() if k in names}
    return ours, {k: v for k, v in kwargs.items() if k not in names}


CRYPTO_CALENDAR = "24/7"
"""Symbols on this calendar trade in fractions under ``fractional="auto"``."""

DEFAULTS = TradingOptions()

#: walk-forward windows, in bars, when none are given: about a year of daily bars to train on and a
#: quarter to test on. ``config.optimization.walk_forward`` and ``optimization.walk_forward`` share them.
WALK_FORWARD_TRAIN = 252
WALK_FORWARD_TEST = 63

__all__ = ["ADJUSTMENTS", "DEFAULTS", "FILL_MODES", "WALK_FORWARD_TEST", "WALK_FORWARD_TRAIN",
           "TradingOptions", "split_options", "trading_options"]
