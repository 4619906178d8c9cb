"""The fill model: how an order becomes a price, a quantity and a commission (both engines).

The event engine calls these functions per order as plain Python and the vectorized engine inlines
the same source in its numba loop (``jit_kernels``), so the two engines cannot drift apart.

When orders fill (per bar, in this order)
------------------------------------------
1. Market orders decided at the previous bar fill at this bar's **open** (``fill="next_open"``,
   the default). With ``fill="close"`` a market order fills at the **close of the bar that
   produced the signal** instead, right when it is decided.
2. Resting limit and stop orders (including stop-loss / take-profit / trailing exits) are checked
   against this bar's range, see the table below.
3. The account is marked to market at the close.
4. The strategy sees the completed bar and decides; its market orders go to step 1.

Across symbols, the market orders of a step fill symbol by symbol in the run's symbol order, except
that symbols whose orders **reduce** their position (to flat, to the other side, or to a smaller
target weight; ``reduces``, judged before any of the step's fills) go first. A rebalance thus sells
before it buys, and its buys are sized with the cash the sells freed, whatever the symbol order.

Price of a resting order against a bar ``(open, high, low)``
------------------------------------------------------------
===============  ===============================  ===========================================
order            fills when                       at
===============  ===============================  ===========================================
buy limit  L     ``low <= L``                     ``open`` if ``open <= L`` (gap), else ``L``
sell limit L     ``high >= L``                    ``open`` if ``open >= L`` (gap), else ``L``
buy stop   S     ``high >= S``                    ``open`` if ``open >= S`` (gap), else ``S``
sell stop  S     ``low <= S``                     ``open`` if ``open <= S`` (gap), else ``S``
===============  ===============================  ===========================================

A long position's exits are a sell stop (stop-loss, trailing stop) and a sell limit (take-profit);
a short's are the mirror buy orders. When both could fill in one bar and the open did not gap
through either, the stop is assumed to fill first (the pessimistic reading of an unknown path).

Protective exits (stop-loss, take-profit, trailing stop) are levels relative to the position's
average entry price (``entry * (1 - stop_loss)`` for a long). They are live from the entry bar
itself when the entry filled at that bar's open (the whole bar happens after the fill), otherwise
from the next bar. A trailing stop trails the best price since entry (highest high for a long),
updated only after a bar has been checked, so a bar never triggers against its own extreme.

Costs
-----
* **Slippage** moves every fill price against the trader by ``slippage_bps`` basis points:
  buys at ``price * (1 + bps / 10_000)``, sells at ``price * (1 - bps / 10_000)``. Sizing and
  commission use the slipped price.
* **Commission** per fill is ``fixed + |shares| * fill_price * rate`` (``fixed`` only on a fill of
  at least one share).

Sizing ("all-in")
-----------------
Going all-in (a target of 100% of equity) from a flat position buys or shorts the largest number of
whole shares whose price **and** commission fit in the cash:
``shares = floor((cash - fixed) / (fill_price * (1 + rate)))`` (no floor with ``fractional``). A
fraction ``f`` of equity uses ``cash * f`` in place of ``cash``. A reversal first closes the old
position completely (paying its exit commission) and then sizes the new one from the cash left.
This is the rule backtesting.py applies to ``buy()``/``sell()`` without a size (it divides the
available margin by the price plus the per-share commission and keeps the integer part; its budget
is scaled by ``1 - 2**-52``, which only matters when the quotient is an integer to the last bit).
``TradingOptions.budget_scale`` (``1 - 2**-52`` under ``conventions="backtesting.py"``) multiplies the
all-in budget before ``affordable_shares`` divides it, in both engines.

Differences from backtesting.py (0.6) worth knowing: with ``fill="close"`` it books the fill one
bar late in its equity curve (the trades and final equity agree), and an order decided on the
final bar never fills there, whereas here a close fill on the last bar does happen.

Accounting: a position's commission is paid from cash when it is filled; equity is
``cash + shares * (close - average_entry_price)``, for longs and shorts alike (shorts are carried
on margin, as in backtesting.py). A trade's P&L is ``shares * (exit - entry)`` minus the entry and
exit commissions of those shares.
"""

from __future__ import annotations

import math

from .errors import ConfigError

FILL_NEXT_OPEN = 0
FILL_CLOSE = 1
FILL_MODES = {"next_open": FILL_NEXT_OPEN, "close": FILL_CLOSE}


def fill_mode(name: str) -> int:
    """The integer code of a fill convention name (``"next_open"`` or ``"close"``)."""
    try:
        return FILL_MODES[name]
    except KeyError:
        raise ConfigError(f"fill must be one of {sorted(FILL_MODES)}, got {name!r}") from None


def slipped(price: float, side: float, slippage_bps: float) -> float:
    """Fill price after adverse slippage; ``side`` is +1 for a buy and -1 for a sell."""
    return price * (1.0 + side * slippage_bps * 1e-4)


def commission(shares: float, price: float, rate: float, fixed: float) -> float:
    """Commission of one fill: ``fixed + |shares| * price * rate`` (zero for an empty fill)."""
    if shares == 0.0:
        return 0.0
    return fixed + abs(shares) * price * rate


#: a move toward a target smaller than this fraction of the position is no trade: with fractional
#: shares ``budget / price - held`` is float noise (1e-15 shares) when the position is at its target
DUST = 1e-9


def affordable_shares(budget: float, price: float, rate: float, fixed: float, fractional: bool) -> float:
    """Most shares whose cost plus commission fit in ``budget`` (whole unless ``fractional``)."""
    available = budget - fixed
    if available <= 0.0 or price <= 0.0:
        return 0.0
    unit = price + price * rate
    if fractional:
        return available / unit
    return available // unit


def reduces(held: float, target: float, equity: float, price: float, budget_scale: float) -> bool:
    """Whether a target order (``target`` of ``equity``) makes the position ``held`` smaller: to flat,
    to the other side, or to fewer units worth than ``held`` at ``price``. At each step both engines
    fill the orders that reduce a position first, so a rebalance frees cash before it spends it."""
    if held == 0.0:
        return False
    if target == 0.0 or (held > 0.0) != (target > 0.0):
        return True
    return abs(target) * equity * budget_scale < abs(held) * price


#: how a user turns fractional trading on, from Python or the CLI's config
FRACTIONAL_HINT = " (set fractional=True, or backtesting.fractional in the config, to trade fractions)"


def wanted_units(wanted: float, equity: float, target: float, price: float, budget_scale: float) -> float:
    """Units a refused target order asked for (unsigned): what its budget buys whole, or, when that is
    none, the fraction of a unit it buys (0.21 of a bitcoin)."""
    return wanted if wanted > 0 else equity * abs(target) * budget_scale / price


def target_refusal(symbol: str, target: float, wanted: float, equity: float, room: float, price: float,
                   *, leverage: float = 1.0, fractional: bool = False, lot: float | None = None) -> str:
    """Why a target order (``target`` of ``equity``) bought nothing; both engines word it alike.

    ``wanted`` is what the budget alone buys (units): when positive, the margin ``room`` left is what
    refused it; otherwise the budget buys less than one unit (or lot) at the slipped ``price``.
    """
    weight = f"{abs(target):.0%} of equity"
    if wanted > 0:
        return (f"no margin left for {wanted:g} {symbol} ({weight}): {leverage:g}x equity {equity:,.2f} "
                f"less {leverage * equity - room:,.2f} held leaves {max(room, 0.0):,.2f}")
    unit = f"lot ({lot:g})" if lot else "unit" if fractional else "whole unit"
    hint = "" if fractional or lot else FRACTIONAL_HINT
    return f"{equity * abs(target):,.2f} ({weight}) buys no {unit} of {symbol} at {price:,.2f}{hint}"


def _touch(open_: float, high: float, low: float, level: float, rising: bool) -> float:
    """Price at which a bar first reaches ``level`` from below (rising) or above, or NaN."""
    if rising:
        if open_ >= level:
            return open_
        return level if high >= level else math.nan
    if open_ <= level:
        return open_
    return level if low <= level else math.nan


def limit_fill_price(open_: float, high: float, low: float, level: float, side: float) -> float:
    """Fill price of a limit order (``side`` +1 buy, -1 sell) on one bar, or NaN if untouched."""
    return _touch(open_, high, low, level, side < 0)


def stop_fill_price(open_: float, high: float, low: float, level: float, side: float) -> float:
    """Fill price of a stop order (``side`` +1 buy, -1 sell) on one bar, or NaN if not triggered."""
    return _touch(open_, high, low, level, side > 0)


KERNELS = (slipped, commission, affordable_shares, reduces, _touch, limit_fill_price, stop_fill_price)
"""Plain Python for the event engine (no numba start-up); ``jit_kernels()`` makes them callable
from numba code too (``register_jitable``), so both engines run the same source."""


_jitted: list[bool] = []


def jit_kernels() -> None:
    """Let numba kernels call the fill functions (once per process; imports numba)."""
    if _jitted:
        return
    from numba.extending import register_jitable

    for fn in KERNELS:
        register_jitable(fn)
    _jitted.append(True)
