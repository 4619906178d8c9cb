"""The event-driven engine: Strategy, Portfolio, Broker and the clock loop that drives them."""

from .broker import Bar, Broker
from .engine import BacktestEngine
from .orders import Fill, Order, OrderStatus, OrderType, TimeInForce
from .portfolio import Portfolio
from .result import BacktestResult
from .strategy import Context, Indicator, Strategy

__all__ = [
    "BacktestEngine",
    "BacktestResult",
    "Bar",
    "Broker",
    "Context",
    "Fill",
    "Indicator",
    "Order",
    "OrderStatus",
    "OrderType",
    "Portfolio",
    "Strategy",
    "TimeInForce",
]
