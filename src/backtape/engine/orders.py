"""Orders and fills: the vocabulary shared by strategies, the broker and the portfolio.

``quantity`` is signed (+ buy, - sell). An order with ``target_percent`` set is sized at fill
time from the equity and the fill price (all-in style), so the size uses the price it executes at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(StrEnum):
    DAY = "day"  # expires at the close of the session it was placed in
    GTC = "gtc"  # good till cancelled


class OrderStatus(StrEnum):
    OPEN = "open"
    FILLED = "filled"
    PARTIAL = "partial"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"


@dataclass(eq=False, slots=True)
class Order:
    """One instruction to the broker. Children (bracket legs) activate when the parent fills."""

    symbol: str
    quantity: float
    type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    stop_price: float | None = None
    tif: TimeInForce = TimeInForce.GTC
    target_percent: float | None = None
    tag: str = ""
    id: int = 0  # numbered by the broker when submitted: 1, 2, ... in each run
    created_at: int = 0
    status: OrderStatus = OrderStatus.OPEN
    filled: float = 0.0
    triggered: bool = False
    reason: str = ""
    parent_id: int | None = None
    oco_id: int | None = None
    children: list[Order] = field(default_factory=list)
    session_close: int | None = None

    @property
    def side(self) -> int:
        return 1 if self.quantity > 0 else -1

    @property
    def remaining(self) -> float:
        return self.quantity - self.filled

    @property
    def limit(self) -> float:
        """The limit price of a limit or stop-limit order (an order of another type has none)."""
        if self.limit_price is None:
            raise ValueError(f"order {self.id} ({self.type}) has no limit price")
        return self.limit_price

    @property
    def stop(self) -> float:
        """The stop price of a stop or stop-limit order (an order of another type has none)."""
        if self.stop_price is None:
            raise ValueError(f"order {self.id} ({self.type}) has no stop price")
        return self.stop_price

    @property
    def is_active(self) -> bool:
        return self.status in (OrderStatus.OPEN, OrderStatus.PARTIAL)

    def as_row(self) -> dict:
        return {
            "id": self.id, "symbol": self.symbol, "type": str(self.type), "quantity": self.quantity,
            "filled": self.filled, "limit_price": self.limit_price, "stop_price": self.stop_price,
            "tif": str(self.tif), "status": str(self.status), "created_at": self.created_at,
            "parent_id": self.parent_id, "tag": self.tag, "reason": self.reason,
        }


class Fill(NamedTuple):
    """An execution: signed quantity at ``price`` (costs included), with costs itemized in cash."""

    order_id: int
    symbol: str
    ts: int
    quantity: float
    price: float
    reference_price: float
    commission: float
    spread: float
    slippage: float
    impact: float
    tag: str = ""

    @property
    def side(self) -> int:
        return 1 if self.quantity > 0 else -1
