"""The event-driven engine: Strategy, Portfolio, Broker and the clock loop that drives them."""

from .broker import Bar, Broker
from .builtins import StrategyFactory, sma_crossover
from .engine import BacktestEngine
from .orders import Fill, Order, OrderStatus, OrderType, TimeInForce
from .portfolio import Portfolio
from .result import BacktestResult
from .run import run_backtest
from .strategy import Context, Indicator, Strategy
from .ticks import Quote, Trade

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
    "Quote",
    "Strategy",
    "StrategyFactory",
    "TimeInForce",
    "Trade",
    "run_backtest",
    "sma_crossover",
]
