"""Transaction costs: commission, spread, slippage and market impact, itemized on every fill.

A fill's *reference price* is what the fill model says (next open, close, limit price...). Costs
then move the execution price against the trader and add a cash commission:

===========  ================================================================================
component    effect
===========  ================================================================================
spread       half the bid/ask spread (from quotes when given, else a fixed width in bps)
slippage     fixed bps, or ``k`` times the bar's volatility (per-bar return std)
impact       square-root model: ``coefficient * sigma * sqrt(quantity / volume)``
commission   ``per_order + per_share * qty + percent * notional``, floored at ``minimum``
===========  ================================================================================

A buy executes at ``reference * (1 + bps / 10_000)`` with ``bps`` the sum of the three price-based
components, a sell at ``reference * (1 - bps / 10_000)`` (``backtape.fills.slipped``, the function the
vectorized engine uses); the commission is charged in cash on the execution notional. Fills that
provide liquidity (limit orders) pay slippage but neither spread nor impact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

from .fills import affordable_shares, slipped
from .fills import commission as _commission


class MarketState(NamedTuple):
    """What the cost models may look at when a fill happens.

    ``volatility`` is the standard deviation of per-bar returns; ``volume`` the bar's volume;
    ``bid``/``ask`` the prevailing quote when quotes are loaded.
    """

    price: float
    volume: float = math.nan
    volatility: float = math.nan
    bid: float = math.nan
    ask: float = math.nan


class FillCosts(NamedTuple):
    """The itemized costs of one fill, in cash (all non-negative except in odd quote states)."""

    reference_price: float
    price: float
    quantity: float
    commission: float = 0.0
    spread: float = 0.0
    slippage: float = 0.0
    impact: float = 0.0

    @property
    def total(self) -> float:
        """Commission plus the price-based costs, in cash."""
        return self.commission + self.spread + self.slippage + self.impact


@dataclass(frozen=True, slots=True)
class Commission:
    """Broker commission: ``max(minimum, per_order + per_share * |qty| + percent * notional)``.

    ``maximum`` caps it as a fraction of notional (e.g. 0.01 = 1%), as some brokers do.
    """

    per_share: float = 0.0
    per_order: float = 0.0
    percent: float = 0.0
    minimum: float = 0.0
    maximum: float | None = None

    def __post_init__(self) -> None:
        for name in ("per_share", "per_order", "percent", "minimum"):
            if getattr(self, name) < 0:
                raise ValueError(f"commission {name} must be non-negative")

    @property
    def is_simple(self) -> bool:
        """Only a percent and a per-order fee: the form ``backtape.fills`` computes in closed form."""
        return self.per_share == 0 and self.minimum == 0 and self.maximum is None

    def __call__(self, quantity: float, price: float) -> float:
        qty = abs(quantity)
        if qty == 0:
            return 0.0
        fee = _commission(qty, price, self.percent, self.per_order)
        if self.is_simple:
            return fee
        fee = max(self.minimum, fee + self.per_share * qty)
        if self.maximum is not None:
            fee = min(fee, self.maximum * qty * price)
        return fee

    def affordable(self, budget: float, price: float, fractional: bool = False) -> float:
        """Most shares whose notional plus this commission fit in ``budget`` (``fills.affordable_shares``
        for the simple form; for the others that estimate is shrunk until the fee fits as well)."""
        qty = affordable_shares(budget, price, self.percent, self.per_order, fractional)
        if self.is_simple or qty <= 0:
            return qty
        for _ in range(64):
            excess = qty * price + self(qty, price) - budget
            if excess <= 0:
                return qty
            step = excess / (price * (1.0 + self.percent) + self.per_share)
            qty = max(qty - step, 0.0) if fractional else max(qty - max(math.ceil(step), 1), 0.0)
        return qty


@dataclass(frozen=True, slots=True)
class SpreadModel:
    """Half-spread paid on every fill: from the quote when ``use_quotes`` and one is known, else
    ``bps`` (the full spread width in basis points)."""

    bps: float = 0.0
    use_quotes: bool = True

    def cost_bps(self, market: MarketState) -> float:
        """Half the spread in basis points of the price."""
        if self.use_quotes and market.bid > 0 and market.ask >= market.bid:
            mid = 0.5 * (market.bid + market.ask)
            return 0.5e4 * (market.ask - market.bid) / mid
        return 0.5 * self.bps

    def fraction(self, market: MarketState) -> float:
        return self.cost_bps(market) / 1e4


@dataclass(frozen=True, slots=True)
class SlippageModel:
    """Adverse slippage: ``bps`` basis points, plus ``volatility_multiple`` times the bar's
    return standard deviation when it is known."""

    bps: float = 0.0
    volatility_multiple: float = 0.0

    def cost_bps(self, market: MarketState) -> float:
        """Slippage in basis points (exactly ``bps`` when no volatility term applies)."""
        if self.volatility_multiple == 0 or not math.isfinite(market.volatility):
            return self.bps
        return self.bps + 1e4 * self.volatility_multiple * market.volatility

    def fraction(self, market: MarketState) -> float:
        return self.cost_bps(market) / 1e4


@dataclass(frozen=True, slots=True)
class SquareRootImpact:
    """Square-root market impact: ``coefficient * sigma * sqrt(qty / volume)``.

    ``sigma`` is the per-bar return volatility (``default_volatility`` when unknown); the
    participation ``qty / volume`` uses the fill bar's volume. Zero when volume is unknown.
    """

    coefficient: float = 0.0
    default_volatility: float = 0.02

    def cost_bps(self, quantity: float, market: MarketState) -> float:
        """Impact of trading ``quantity`` in basis points."""
        if self.coefficient == 0 or not (market.volume > 0):
            return 0.0
        sigma = market.volatility if math.isfinite(market.volatility) else self.default_volatility
        return 1e4 * self.coefficient * sigma * math.sqrt(abs(quantity) / market.volume)

    def fraction(self, quantity: float, market: MarketState) -> float:
        return self.cost_bps(quantity, market) / 1e4


@dataclass(frozen=True)
class TransactionCostEngine:
    """Combines the cost models; ``fill(side, quantity, market)`` returns itemized ``FillCosts``.

    >>> engine = TransactionCostEngine(commission=Commission(percent=0.001), slippage=SlippageModel(bps=5))
    >>> c = engine.fill(+1, 100, MarketState(price=50.0))
    >>> round(c.price, 4), round(c.commission, 4), round(c.slippage, 4)
    (50.025, 5.0025, 2.5)
    """

    commission: Commission = field(default_factory=Commission)
    spread: SpreadModel = field(default_factory=SpreadModel)
    slippage: SlippageModel = field(default_factory=SlippageModel)
    impact: SquareRootImpact = field(default_factory=SquareRootImpact)

    @classmethod
    def simple(cls, commission: float = 0.0, slippage_bps: float = 0.0) -> TransactionCostEngine:
        """Percent commission and fixed slippage: the conventions both engines share."""
        return cls(commission=Commission(percent=commission), slippage=SlippageModel(bps=slippage_bps))

    @property
    def needs_volatility(self) -> bool:
        """Whether a model reads the bar's volatility (the engine computes it only then)."""
        return self.slippage.volatility_multiple > 0 or self.impact.coefficient > 0

    def price_bps(self, side: int, quantity: float, market: MarketState, liquidity: bool = True) -> float:
        """Adverse price move of a fill in basis points (spread and impact only when taking liquidity)."""
        slip = self.slippage.cost_bps(market)
        if not liquidity:
            return slip
        return self.spread.cost_bps(market) + slip + self.impact.cost_bps(quantity, market)

    def fill(self, side: int, quantity: float, market: MarketState, liquidity: bool = True) -> FillCosts:
        """Costs of filling ``quantity`` (positive) on ``side`` (+1 buy, -1 sell) at ``market.price``.

        ``liquidity=False`` (a resting limit order) pays slippage but no spread and no impact.
        """
        if side not in (1, -1):
            raise ValueError(f"side must be +1 or -1, got {side}")
        qty = abs(quantity)
        ref = market.price
        spread = self.spread.cost_bps(market) if liquidity else 0.0
        slip = self.slippage.cost_bps(market)
        impact = self.impact.cost_bps(qty, market) if liquidity else 0.0
        price = slipped(ref, float(side), spread + slip + impact)
        notional = qty * ref * 1e-4
        return FillCosts(
            reference_price=ref,
            price=price,
            quantity=qty,
            commission=self.commission(qty, price),
            spread=notional * spread,
            slippage=notional * slip,
            impact=notional * impact,
        )
