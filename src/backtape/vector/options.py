"""``TradingOptions`` as the vectorized kernels take them, and what the kernels cannot model.

The kernels model cash, a percent commission, fixed slippage, the fill timing and whole or fractional
shares. A cost engine with spread or impact, a risk manager, leverage or a participation cap need
the event engine: ``unsupported`` names them so callers can say so (or switch engines).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..costs import Commission
from ..errors import ConfigError
from ..options import DEFAULTS, TradingOptions

if TYPE_CHECKING:
    from .engine import CostOptions


def unsupported(options: TradingOptions) -> list[str]:
    """The options set to something the vectorized engine cannot reproduce (empty: it can)."""
    out = []
    if options.costs is not None:
        out.append("costs (a TransactionCostEngine)")
    if isinstance(options.commission, Commission) and options.commission != Commission(
            percent=options.commission.percent):
        out.append("commission (a per-share or minimum Commission)")
    if options.risk is not None:
        out.append("risk (a RiskManager)")
    if options.leverage != DEFAULTS.leverage:
        out.append("leverage")
    if options.max_participation is not None:
        out.append("max_participation")
    if isinstance(options.fractional, frozenset):
        out.append("fractional (per symbol)")
    if options.finalize_trades:
        out.append("finalize_trades")
    if options.instruments:
        out.append("instruments (lot sizes and minimum order values)")
    return out


def kernel_arguments(options: TradingOptions) -> CostOptions:
    """Keyword arguments of ``simulate``/``cost_params`` for ``options`` (see ``unsupported`` first;
    ``fractional="auto"`` must be resolved with ``TradingOptions.for_symbols``)."""
    if options.fractional == "auto":
        raise ConfigError("fractional='auto' is resolved per symbol first (TradingOptions.for_symbols)")
    commission = options.commission
    if isinstance(commission, Commission):
        commission = commission.percent
    return {"cash": float(options.cash), "commission": float(commission),
            "slippage_bps": float(options.slippage_bps), "fill": options.fill,
            "fractional": bool(options.fractional)}
