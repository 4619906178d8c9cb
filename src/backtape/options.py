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
``dividends``          ``"crsp"``         total-return dividend factor: ``"crsp"`` ``1 - d / previous
                                          close`` or ``"ratio"`` ``close_ex / (close_ex + d)``
``repeat_signals``     ``"ignore"``       an entry signal in the direction already held is ignored,
                                          or (``"reenter"``) closes the position and opens it again
``budget_scale``       1.0                all-in budgets are multiplied by this before dividing by
                                          the price (backtesting.py: ``1 - 2**-52``)
``statistics``         ``"backtape"``     metric definitions: backtape's or ``"backtesting.py"``'s
                                          (docs/metrics.md, ``backtape.peer_metrics``)
``finalize_trades``    ``False``          close every open position on the last bar as backtesting.py's
                                          ``finalize_trades=True`` does: at its open (with
                                          ``fill="close"``, the previous close); event engine only
``instruments``        ``None``           per-symbol ``Instrument`` (lot size, minimum order value);
                                          ``None``: the source's rules (CCXT markets), if any
=====================  =================  ===================================================

``conventions``: a named preset of these values that makes backtape reproduce a peer
(``TradingOptions.conventions("backtesting.py")``, ``run_backtest(..., conventions=...)``; the
``CONVENTIONS`` table). Options given beside a preset win over it.
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
DividendFormula = Literal["crsp", "ratio"]
RepeatSignals = Literal["ignore", "reenter"]
Statistics = Literal["backtape", "backtesting.py"]
#: the default commission, a fraction of traded notional (the config's ``backtesting.commission`` too)
DEFAULT_COMMISSION = 0.0
FILL_MODES: tuple[str, ...] = ("next_open", "close")
ADJUSTMENTS: tuple[str, ...] = ("raw", "split", "total_return")
DIVIDEND_FORMULAS: tuple[str, ...] = ("crsp", "ratio")
REPEAT_SIGNALS: tuple[str, ...] = ("ignore", "reenter")
STATISTICS: tuple[str, ...] = ("backtape", "backtesting.py")
#: backtesting.py's all-in order size, ``1 - sys.float_info.epsilon``: its budget scale
BACKTESTING_PY_BUDGET_SCALE = 1.0 - 2.0**-52


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
    dividends: DividendFormula = "crsp"
    repeat_signals: RepeatSignals = "ignore"
    budget_scale: float = 1.0
    statistics: Statistics = "backtape"
    finalize_trades: bool = False
    instruments: Mapping[str, Instrument] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.cash, int | float) and self.cash > 0):
            raise ConfigError(f"cash must be a positive number, got {self.cash!r}")
        if not isinstance(self.commission, Commission) and not (
                isinstance(self.commission, int | float) and 0 <= self.commission < 1):
            raise ConfigError(f"commission must be a fraction of traded notional in [0, 1) (0.001 is 0.1%) "
                              f"or a Commission (per share, per order), got {self.commission!r}")
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
        for name, allowed in (("dividends", DIVIDEND_FORMULAS), ("repeat_signals", REPEAT_SIGNALS),
                              ("statistics", STATISTICS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if not (isinstance(self.budget_scale, int | float) and 0 < self.budget_scale <= 1):
            raise ConfigError(f"budget_scale must be in (0, 1], got {self.budget_scale!r}")
        if isinstance(self.fractional, set | list | tuple):
            object.__setattr__(self, "fractional", frozenset(self.fractional))
        if not (isinstance(self.fractional, bool | frozenset) or self.fractional == "auto"):
            raise ConfigError(f"fractional must be true, false, 'auto' or a set of symbols, "
                              f"got {self.fractional!r}")
        self._check_exposure_limits()
        if self.instruments is not None and not (isinstance(self.instruments, Mapping) and all(
                isinstance(k, str) and isinstance(v, Instrument) for k, v in self.instruments.items())):
            raise ConfigError(f"instruments must map symbols to backtape.Instrument, "
                              f"got {self.instruments!r}")

    def _check_exposure_limits(self) -> None:
        """A risk limit on exposure above the leverage can never bind: most likely a percent typed as a
        fraction (``5`` for 5%), so it is refused rather than ignored."""
        if self.risk is None:
            return
        for name in ("max_position_pct", "max_gross_exposure", "max_net_exposure"):
            value = getattr(self.risk, name)
            if value is not None and value > self.leverage:
                raise ConfigError(f"risk limit {name} {value:g} is {value:.0%} of equity, more than the "
                                  f"leverage {self.leverage:g}x allows: limits are fractions (0.05 is 5%)")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of every option, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def conventions(cls, name: str, **changes: Any) -> TradingOptions:
        """The options of the preset ``name`` (a key of ``CONVENTIONS``) with ``changes`` on top.

        >>> TradingOptions.conventions("backtesting.py").repeat_signals
        'reenter'
        """
        return cls().with_conventions(name).replace(**changes)

    def with_conventions(self, name: str | None) -> TradingOptions:
        """These options with the values of the preset ``name`` (``None`` keeps them as they are)."""
        if name is None:
            return self
        preset = CONVENTIONS.get(name)
        if preset is None:
            raise ConfigError(f"unknown conventions {name!r}; use one of {', '.join(CONVENTIONS)}")
        return dataclasses.replace(self, **preset)

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


def trading_options(options: TradingOptions | None = None, /, *, conventions: str | None = None,
                    **overrides: Any) -> TradingOptions:
    """``options`` (default ``TradingOptions()``), then the preset ``conventions``, then keyword
    ``overrides`` (``None`` keeps a value)."""
    return (options or TradingOptions()).with_conventions(conventions).replace(**overrides)


def split_options(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``kwargs`` split into trading-option overrides and the rest."""
    names = set(TradingOptions.field_names())
    ours = {k: v for k, v in kwargs.items() if k in names}
    return ours, {k: v for k, v in kwargs.items() if k not in names}


CRYPTO_CALENDAR = "24/7"
"""Symbols on this calendar trade in fractions under ``fractional="auto"``."""

DEFAULTS = TradingOptions()

#: named presets: the option values that make backtape's engines reproduce a peer's conventions
#: (README "Conventions"). Only the values that differ from backtape's defaults are listed; a
#: preset sets every convention option, so switching presets never leaves one behind.
CONVENTIONS: dict[str, dict[str, Any]] = {
    "backtape": {"repeat_signals": "ignore", "budget_scale": 1.0, "statistics": "backtape",
                 "fill": "next_open", "finalize_trades": False},
    # Backtest(..., exclusive_orders=True) / position.close(); buy(): a repeated signal re-enters;
    # buy() without a size spends (1 - 2**-52) of the margin; _stats.compute_stats definitions
    "backtesting.py": {"repeat_signals": "reenter", "budget_scale": BACKTESTING_PY_BUDGET_SCALE,
                       "statistics": "backtesting.py", "fill": "next_open", "finalize_trades": False},
    # Portfolio.from_signals defaults: price=close, accumulate=False (a repeated entry is ignored),
    # size=inf divided exactly; whole shares are its size_granularity=1
    "vectorbt": {"repeat_signals": "ignore", "budget_scale": 1.0, "statistics": "backtape", "fill": "close",
                 "finalize_trades": False},
    # cerebro: market orders fill at the next open; order_target_percent divides exactly
    "backtrader": {"repeat_signals": "ignore", "budget_scale": 1.0, "statistics": "backtape",
                   "fill": "next_open", "finalize_trades": False},
}

#: walk-forward windows, in bars, when none are given: about a year of daily bars to train on and a
#: quarter to test on. ``config.optimization.walk_forward`` and ``optimization.walk_forward`` share them.
WALK_FORWARD_TRAIN = 252
WALK_FORWARD_TEST = 63

__all__ = ["ADJUSTMENTS", "BACKTESTING_PY_BUDGET_SCALE", "CONVENTIONS", "DEFAULTS", "DIVIDEND_FORMULAS",
           "FILL_MODES", "REPEAT_SIGNALS", "STATISTICS", "WALK_FORWARD_TEST", "WALK_FORWARD_TRAIN",
           "TradingOptions", "split_options", "trading_options"]
