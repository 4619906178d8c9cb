"""Position sizing and risk limits: every order passes the ``RiskManager`` before the broker.

An order that breaks a limit is resized down to what the limit allows, or rejected when nothing is
left; the decision carries the reason so the engine can record it.

=====================  ==========================================================================
limit                  meaning
=====================  ==========================================================================
max_position_pct       |position value| / equity after the order, per symbol
max_portfolio_heat     sum over positions of |qty| * |price - stop| / equity (open risk to stops)
max_gross_exposure     sum |position value| / equity after the order
max_net_exposure       |sum position value| / equity after the order
max_drawdown_halt      once equity falls this far below its peak, new risk is refused for the rest
                       of the run (the engine latches the breach; reducing orders still pass)
default_stop_loss_pct  stop distance of a position that has no stop of its own: the engine's broker
                       places a protective stop order this far from the entry fill (see
                       ``backtape.engine.broker``) and sizing assumes it
=====================  ==========================================================================

Sizers turn equity and market facts into an unsigned quantity; a strategy asks for one with
``ctx.size(symbol, side, stop=...)`` or places it with ``ctx.order_sized(...)`` (whole shares unless
the asset allows fractions), where the engine supplies the equity, the latest price, the per-bar
volatility (std of the last ``volatility_window`` close-to-close returns, read point in time through
the portal) and the bars per year of the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol

from .errors import ConfigError


@dataclass(frozen=True, slots=True)
class PortfolioSnapshot:
    """What the risk manager needs to know about the account at decision time."""

    equity: float
    peak_equity: float
    positions: dict[str, float] = field(default_factory=dict)
    prices: dict[str, float] = field(default_factory=dict)
    stops: dict[str, float] = field(default_factory=dict)
    #: the drawdown halt was breached earlier in the run (the halt stays on even if equity recovers)
    halted: bool = False

    def value(self, symbol: str, quantity: float | None = None) -> float:
        qty = self.positions.get(symbol, 0.0) if quantity is None else quantity
        return qty * self.prices.get(symbol, math.nan)


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """Outcome of a check: the quantity allowed (signed) and why it differs from the request."""

    requested: float
    approved: float
    action: Literal["accept", "resize", "reject"]
    reason: str = ""


class PositionSizer(Protocol):
    """Turns equity and market facts into a target quantity (unsigned, before limits).

    ``volatility`` is the per-bar std of close-to-close returns over the last ``volatility_window``
    returns (the engine computes it only for sizers whose window is positive); ``periods_per_year``
    is the run's bars per year, for annualizing it.
    """

    volatility_window: int

    def size(self, equity: float, price: float, *, stop_price: float | None = None,
             volatility: float | None = None, periods_per_year: float | None = None) -> float: ...


@dataclass(frozen=True, slots=True)
class FixedFractional:
    """Risk ``fraction`` of equity between entry and stop: ``qty = equity * f / |price - stop|``.

    Without a stop, ``fallback_stop_pct`` of the price is the assumed distance.
    """

    fraction: float = 0.01
    fallback_stop_pct: float = 0.02
    volatility_window: ClassVar[int] = 0

    def size(self, equity: float, price: float, *, stop_price: float | None = None,
             volatility: float | None = None, periods_per_year: float | None = None) -> float:
        dist = abs(price - stop_price) if stop_price is not None else price * self.fallback_stop_pct
        return 0.0 if dist <= 0 else equity * self.fraction / dist


@dataclass(frozen=True, slots=True)
class CappedKelly:
    """Kelly fraction ``W - (1 - W) / R`` of equity (W win rate, R payoff ratio), scaled by
    ``multiplier`` (half-Kelly = 0.5) and capped at ``cap``; never negative."""

    win_rate: float
    payoff_ratio: float
    multiplier: float = 0.5
    cap: float = 0.25
    volatility_window: ClassVar[int] = 0

    def fraction(self) -> float:
        if self.payoff_ratio <= 0:
            return 0.0
        kelly = self.win_rate - (1.0 - self.win_rate) / self.payoff_ratio
        return max(0.0, min(self.cap, kelly * self.multiplier))

    def size(self, equity: float, price: float, *, stop_price: float | None = None,
             volatility: float | None = None, periods_per_year: float | None = None) -> float:
        return equity * self.fraction() / price


@dataclass(frozen=True, slots=True)
class VolatilityTarget:
    """Size so the position's annualized volatility is ``target`` of equity.

    ``volatility`` passed to :meth:`size` is the per-bar return std (over ``window`` returns in a
    backtest); it is annualized with ``periods_per_year``, else the run's bars per year, else 252
    (daily). Leverage is capped at ``max_leverage``.
    """

    target: float = 0.10
    periods_per_year: float | None = None
    max_leverage: float = 1.0
    window: int = 20

    @property
    def volatility_window(self) -> int:
        return self.window

    def size(self, equity: float, price: float, *, stop_price: float | None = None,
             volatility: float | None = None, periods_per_year: float | None = None) -> float:
        if volatility is None or not volatility > 0:
            return 0.0
        annual = volatility * math.sqrt(self.periods_per_year or periods_per_year or 252.0)
        weight = min(self.target / annual, self.max_leverage)
        return equity * weight / price


@dataclass(frozen=True)
class RiskManager:
    """Sizing plus limits. ``check(symbol, quantity, price, snapshot)`` returns a ``RiskDecision``.

    ``quantity`` is the signed order quantity; limits are fractions of equity (``None`` = off).
    """

    sizer: PositionSizer | None = None
    max_position_pct: float | None = None
    max_portfolio_heat: float | None = None
    max_gross_exposure: float | None = None
    max_net_exposure: float | None = None
    max_drawdown_halt: float | None = None
    default_stop_loss_pct: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_position_pct", "max_portfolio_heat", "max_gross_exposure", "max_net_exposure",
                     "max_drawdown_halt", "default_stop_loss_pct"):
            value = getattr(self, name)
            if value is None:
                continue
            at_most_one = name in ("max_portfolio_heat", "max_drawdown_halt", "default_stop_loss_pct")
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0
                    and (value <= 1 or not at_most_one)):
                span = "in (0, 1]" if at_most_one else "> 0"
                raise ConfigError(f"risk limit {name} must be a fraction of equity {span} (0.05 is 5%), "
                                  f"got {value!r}")

    def position_size(self, equity: float, price: float, *, side: int = 1, stop_price: float | None = None,
                      volatility: float | None = None, periods_per_year: float | None = None) -> float:
        """Unsigned target quantity from the configured sizer (``nan`` when there is none).

        Without ``stop_price`` the default stop (``default_stop_loss_pct`` on ``side``) is the
        distance the sizer sees, since that is the stop the position will get.
        """
        if self.sizer is None:
            return math.nan
        if stop_price is None:
            stop_price = self.default_stop(side, price)
        return self.sizer.size(equity, price, stop_price=stop_price, volatility=volatility,
                               periods_per_year=periods_per_year)

    def default_stop(self, side: int, price: float) -> float | None:
        """Stop price implied by ``default_stop_loss_pct`` for a new position on ``side``."""
        if self.default_stop_loss_pct is None:
            return None
        return price * (1.0 - side * self.default_stop_loss_pct)

    def halted(self, snapshot: PortfolioSnapshot) -> bool:
        """True once the drawdown from the peak reaches ``max_drawdown_halt`` (now or earlier)."""
        if self.max_drawdown_halt is None or snapshot.peak_equity <= 0:
            return False
        return snapshot.halted or 1.0 - snapshot.equity / snapshot.peak_equity >= self.max_drawdown_halt

    def check(self, symbol: str, quantity: float, price: float, snapshot: PortfolioSnapshot,
              *, stop_price: float | None = None) -> RiskDecision:
        """Largest part of the order (same sign, |approved| <= |quantity|) that keeps every limit."""
        if quantity == 0:
            return RiskDecision(0.0, 0.0, "accept")
        current = snapshot.positions.get(symbol, 0.0)
        reducing = abs(current + quantity) < abs(current) and (current + quantity) * current >= 0
        if reducing:
            return RiskDecision(quantity, quantity, "accept")
        if self.halted(snapshot):
            dd, limit = 1.0 - snapshot.equity / snapshot.peak_equity, self.max_drawdown_halt or 0.0
            when = (f"drawdown {dd:.2%} >= {limit:.2%}" if dd >= limit
                    else f"drawdown reached {limit:.2%} earlier in the run (now {dd:.2%})")
            return RiskDecision(quantity, 0.0, "reject", f"max drawdown halt: {when}")
        if snapshot.equity <= 0:
            return RiskDecision(quantity, 0.0, "reject", "equity is not positive")
        allowed, reasons = abs(quantity), []
        for limit_name, cap in self._caps(symbol, quantity, price, snapshot, stop_price):
            if cap < allowed:
                allowed = max(cap, 0.0)
                reasons.append(limit_name)
        approved = math.copysign(allowed, quantity)
        if not reasons:
            return RiskDecision(quantity, quantity, "accept")
        action: Literal["resize", "reject"] = "reject" if allowed <= 0 else "resize"
        return RiskDecision(quantity, approved if allowed > 0 else 0.0, action,
                            "limited by " + ", ".join(reasons))

    def _caps(self, symbol: str, quantity: float, price: float, snap: PortfolioSnapshot,
              stop_price: float | None) -> list[tuple[str, float]]:
        """Maximum |quantity| each active limit allows for this order (in the order's direction)."""
        eq, side = snap.equity, (1.0 if quantity > 0 else -1.0)
        current = snap.positions.get(symbol, 0.0)
        prices = dict(snap.prices, **{symbol: price})
        others = {s: q for s, q in snap.positions.items() if s != symbol}
        other_values = [q * prices.get(s, math.nan) for s, q in others.items()]
        caps: list[tuple[str, float]] = []
        if self.max_position_pct is not None:
            # |current + side*x| * price <= pct * eq
            caps.append(("max_position_pct", (self.max_position_pct * eq / price) - side * current))
        if self.max_gross_exposure is not None:
            room = self.max_gross_exposure * eq - sum(abs(v) for v in other_values)
            caps.append(("max_gross_exposure", room / price - side * current))
        if self.max_net_exposure is not None:
            net_others = sum(other_values)
            # |net_others + (current + side*x) * price| <= cap * eq, moving in direction `side`
            bound = self.max_net_exposure * eq - side * (net_others + current * price)
            caps.append(("max_net_exposure", bound / price))
        if self.max_portfolio_heat is not None:
            heat_others = sum(self._risk(s, q, prices.get(s, math.nan), snap.stops.get(s))
                              for s, q in others.items())
            stop = stop_price if stop_price is not None else snap.stops.get(symbol)
            if stop is None:
                stop = self.default_stop(int(side), price)
            per_share = abs(price - stop) if stop is not None else math.nan
            if math.isfinite(per_share) and per_share > 0:
                room = self.max_portfolio_heat * eq - heat_others
                caps.append(("max_portfolio_heat", room / per_share - side * current))
        return [(n, c) for n, c in caps if math.isfinite(c)]

    def _risk(self, symbol: str, qty: float, price: float, stop: float | None) -> float:
        if stop is None:
            stop = self.default_stop(1 if qty > 0 else -1, price)
        return 0.0 if stop is None or not math.isfinite(price) else abs(qty) * abs(price - stop)
