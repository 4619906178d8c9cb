"""The numba loop of the multi-asset vector engine: one cash account, many symbols, the event engine's rules.

Per clock step ``k`` (the same steps, in the same order, as ``backtape.engine.engine``):

1. corporate actions with ``act_step == k`` apply (splits scale the share count and the last
   price, cash dividends credit ``shares * amount``), but a dividend going ex inside a bar of several
   sessions (``ACT_DIVIDEND_IN``, ``backtape.actions.place_actions``) waits for step 2's fills;
2. with ``fill="next_open"``, the orders decided at an earlier step fill at the open of each
   symbol's bar, sized like ``Broker._execute_target``: first the orders that reduce a position, then
   the others, each group in column order (``fills.reduces``: a rebalance sells before it buys);
3. every symbol with a bar is marked at its close;
4. the decision of the step (a target weight, or signals turned into one) is taken; with
   ``fill="close"`` it fills at once at the close, in the same order.

Arrays are C-ordered **steps x symbols** (the loop walks a step's symbols); a NaN open means the
symbol has no bar at that step (its order keeps waiting). Fill records: step, symbol, signed
quantity, price, reference, commission. Refusal records (a target order that buys nothing, as the
broker's ``rejections``): step, symbol, signed units the budget alone buys, target, equity, margin
room left, the slipped price and the number of fills before it (``fills.target_refusal`` words it).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..fills import DUST, affordable_shares, jit_kernels, reduces, slipped

jit_kernels()

P_CASH, P_RATE, P_FIXED, P_SLIP, P_FRACTIONAL, P_FILL_CLOSE, P_BUDGET, P_REENTER = range(8)
N_PARAMS = 8
MODE_TARGETS, MODE_SIGNALS = 0, 1
ACT_SPLIT, ACT_DIVIDEND, ACT_DIVIDEND_IN = 0, 1, 2
F_STEP, F_SYM, F_QTY, F_PRICE, F_REF, F_COMM = range(6)
N_FILL_FIELDS = 6
R_STEP, R_SYM, R_WANTED, R_TARGET, R_EQUITY, R_ROOM, R_PRICE, R_AFTER = range(8)
N_REFUSAL_FIELDS = 8


@njit(cache=True, error_model="numpy")
def _book(j, qty, ref, k, p, pos, last, cash, fills, n_fills, traded):
    """Book one fill of ``qty`` (signed) shares of ``j`` at reference ``ref``; returns the new cash."""
    side = 1.0 if qty > 0 else -1.0
    price = slipped(ref, side, p[P_SLIP])
    comm = p[P_FIXED] + abs(qty) * price * p[P_RATE]
    cash -= qty * price + comm
    new = pos[j] + qty
    pos[j] = 0.0 if abs(new) < 1e-12 else new
    if last[j] == 0.0:  # never marked yet: valued at its first fill, as Portfolio.apply_fill does
        last[j] = price
    traded[k] += abs(qty) * price
    if fills.shape[0] > 0:
        r = n_fills[0]
        fills[r, F_STEP] = k
        fills[r, F_SYM] = j
        fills[r, F_QTY] = qty
        fills[r, F_PRICE] = price
        fills[r, F_REF] = ref
        fills[r, F_COMM] = comm
    n_fills[0] += 1
    return cash


@njit(cache=True, error_model="numpy")
def _others(j, pos, last):
    """Net and gross value of every position but ``j``'s at the last marks."""
    net, gross = 0.0, 0.0
    for s in range(pos.shape[0]):
        q = pos[s]
        if q != 0.0 and s != j:
            net += q * last[s]
            gross += abs(q) * last[s]
    return net, gross


@njit(cache=True, error_model="numpy")
def _target(j, target, ref, k, p, pos, last, cash, fills, n_fills, traded, reopen, refusals, n_refused):
    """Move ``j`` to ``target`` of equity (``Broker._execute_target`` at leverage 1); returns the cash.
    ``reopen``: close a position on the target's side first (a repeated signal, ``repeat_signals``).
    An order that neither closes nor buys anything from flat is refused (a record in ``refusals``)."""
    held = pos[j]
    closed = False
    if held != 0.0 and (target == 0.0 or (held > 0) != (target > 0) or reopen):
        cash = _book(j, -held, ref, k, p, pos, last, cash, fills, n_fills, traded)
        held = pos[j]
        closed = True
    if target == 0.0:
        return cash
    side = 1.0 if target > 0 else -1.0
    price = slipped(ref, side, p[P_SLIP])
    frac = p[P_FRACTIONAL] != 0.0
    net, gross = _others(j, pos, last)
    equity = cash + held * ref + net
    budget = equity * abs(target) * p[P_BUDGET]
    delta = affordable_shares(budget, price, p[P_RATE], p[P_FIXED], frac) - abs(held)
    if abs(delta) <= DUST * abs(held):
        delta = 0.0
    if delta < 0.0:
        return _book(j, side * delta, ref, k, p, pos, last, cash, fills, n_fills, traded)
    room = equity - abs(held) * ref - gross
    wanted = delta
    delta = min(delta, affordable_shares(room, price, p[P_RATE], p[P_FIXED], frac))
    if delta <= DUST * max(abs(held), wanted):  # the margin room leaves float noise at most
        delta = 0.0
    if delta > 0.0:
        cash = _book(j, side * delta, ref, k, p, pos, last, cash, fills, n_fills, traded)
    elif not closed and held == 0.0:
        if refusals.shape[0] > 0:
            r = n_refused[0]
            refusals[r, R_STEP] = k
            refusals[r, R_SYM] = j
            refusals[r, R_WANTED] = side * wanted
            refusals[r, R_TARGET] = target
            refusals[r, R_EQUITY] = equity
            refusals[r, R_ROOM] = room
            refusals[r, R_PRICE] = price
            refusals[r, R_AFTER] = n_fills[0]
        n_refused[0] += 1
    return cash


@njit(cache=True, error_model="numpy")
def _fill_step(px, k, p, pos, last, cash, pending, reopen, first, fills, n_fills, traded, refusals,
               n_refused):  # fmt: skip
    """Fill the pending orders of the symbols with a price at step ``k`` (``px``: opens or closes):
    those that reduce a position (judged before any of them fills) first; returns the cash."""
    n_sym = pos.shape[0]
    budget = p[P_BUDGET]
    for j in range(n_sym):
        t = pending[j]
        first[j] = False
        if t == t and px[k, j] == px[k, j] and pos[j] != 0.0:
            net, _ = _others(j, pos, last)
            held = pos[j]
            first[j] = reopen[j] or reduces(held, t, cash + held * px[k, j] + net, px[k, j], budget)
    for phase in range(2):
        for j in range(n_sym):
            t = pending[j]
            if t == t and px[k, j] == px[k, j] and first[j] == (phase == 0):
                cash = _target(j, t, px[k, j], k, p, pos, last, cash, fills, n_fills, traded, reopen[j],
                               refusals, n_refused)
                pending[j] = np.nan
                reopen[j] = False
    return cash


@njit(cache=True, error_model="numpy")
def _decide_signals(k, pos, le, lx, se, sx, size, pending, reopen, reenter):
    """Turn step ``k``'s signals into target weights in ``pending`` (entries win when not on that side;
    on that side, ``reenter`` marks ``reopen``: close and open again, else the signal is ignored)."""
    per_step = size.shape[0] > 1
    for j in range(pos.shape[0]):
        held = pos[j]
        w = size[k, j] if per_step else size[0, j]
        if le[k, j] and (held <= 0 or reenter):
            pending[j] = w
            reopen[j] = held > 0
        elif se[k, j] and (held >= 0 or reenter):
            pending[j] = -w
            reopen[j] = held < 0
        elif (lx[k, j] and held > 0) or (sx[k, j] and held < 0):
            pending[j] = 0.0


@njit(cache=True, error_model="numpy")
def run_portfolio(o, c, mode, tg, le, lx, se, sx, size, act_step, act_sym, act_kind, act_value, p,
                  equity, exposed, traded, fills, refusals):  # fmt: skip
    """Simulate the account over every step; returns the numbers of fills and of refusals (module doc)."""
    n, n_sym = c.shape
    pos = np.zeros(n_sym)
    last = np.zeros(n_sym)
    pending = np.full(n_sym, np.nan)
    reopen = np.zeros(n_sym, dtype=np.bool_)
    first = np.zeros(n_sym, dtype=np.bool_)
    reenter = p[P_REENTER] != 0.0
    cash = p[P_CASH]
    at_close = p[P_FILL_CLOSE] != 0.0
    n_fills = np.zeros(1, dtype=np.int64)
    n_refused = np.zeros(1, dtype=np.int64)
    a = 0
    n_act = act_step.shape[0]
    for k in range(n):
        a_0 = a
        while a < n_act and act_step[a] <= k:
            j = act_sym[a]
            if act_kind[a] == ACT_SPLIT:
                v = act_value[a]
                if v > 0.0 and v != 1.0:
                    pos[j] *= v
                    last[j] /= v
            elif act_kind[a] == ACT_DIVIDEND:
                cash += pos[j] * act_value[a]
            a += 1
        if not at_close:
            cash = _fill_step(o, k, p, pos, last, cash, pending, reopen, first, fills, n_fills, traded,
                              refusals, n_refused)
        for i in range(a_0, a):  # dividends going ex inside the bar: on what its fills left
            if act_kind[i] == ACT_DIVIDEND_IN:
                cash += pos[act_sym[i]] * act_value[i]
        for j in range(n_sym):
            if c[k, j] == c[k, j]:
                last[j] = c[k, j]
        if mode == MODE_TARGETS:
            for j in range(n_sym):
                t = tg[k, j]
                if t == t:
                    pending[j] = t
        else:
            _decide_signals(k, pos, le, lx, se, sx, size, pending, reopen, reenter)
        if at_close:
            cash = _fill_step(c, k, p, pos, last, cash, pending, reopen, first, fills, n_fills, traded,
                              refusals, n_refused)
        eq = cash
        held = False
        for j in range(n_sym):
            if pos[j] != 0.0:
                eq += pos[j] * last[j]
                held = True
        equity[k] = eq
        exposed[k] = held
    return n_fills[0], n_refused[0]


@njit(cache=True, error_model="numpy")
def fifo_trades(fills, n_fills, act_step, act_sym, act_kind, act_value, n_sym, last_close):
    """FIFO lots of the fills, as ``Portfolio`` books them: (pnl, size, entry price) per closed lot,
    and the P&L of each lot still open, marked at ``last_close`` (per symbol) net of its entry
    commission, as ``Portfolio.open_trades``.

    Splits (applied before the fills of their step, and after the last fill up to the end) scale the
    open lots. Lots are a linked list per symbol over one slot per fill (a fill opens at most one lot).
    """
    qty = np.zeros(n_fills)
    price = np.zeros(n_fills)
    comm_unit = np.zeros(n_fills)
    side = np.zeros(n_fills)
    nxt = np.full(n_fills, -1, dtype=np.int64)
    head = np.full(n_sym, -1, dtype=np.int64)
    tail = np.full(n_sym, -1, dtype=np.int64)
    pnl = np.empty(2 * n_fills + 1)
    size = np.empty(2 * n_fills + 1)
    entry = np.empty(2 * n_fills + 1)
    n_out = 0
    a = 0
    for f in range(n_fills):
        step = fills[f, F_STEP]
        a = _split_lots(a, step, act_step, act_sym, act_kind, act_value, head, nxt, qty, price, comm_unit)
        j = int(fills[f, F_SYM])
        q, px = fills[f, F_QTY], fills[f, F_PRICE]
        s = 1.0 if q > 0 else -1.0
        cu = fills[f, F_COMM] / abs(q)
        remaining = abs(q)
        while remaining > 1e-12 and head[j] >= 0 and side[head[j]] != s:
            lot = head[j]
            take = min(qty[lot], remaining)
            pnl[n_out] = side[lot] * (px - price[lot]) * take - (comm_unit[lot] + cu) * take
            size[n_out] = take
            entry[n_out] = price[lot]
            n_out += 1
            qty[lot] -= take
            remaining -= take
            if qty[lot] <= 1e-12:
                head[j] = nxt[lot]
                if head[j] < 0:
                    tail[j] = -1
        if remaining > 1e-12:
            qty[f], price[f], comm_unit[f], side[f] = remaining, px, cu, s
            if tail[j] >= 0:
                nxt[tail[j]] = f
            else:
                head[j] = f
            tail[j] = f
    _split_lots(a, np.inf, act_step, act_sym, act_kind, act_value, head, nxt, qty, price, comm_unit)
    open_pnl = np.empty(n_fills)
    n_open = 0
    for j in range(n_sym):
        lot = head[j]
        while lot >= 0:
            gross = side[lot] * (last_close[j] - price[lot]) * qty[lot]
            open_pnl[n_open] = gross - comm_unit[lot] * qty[lot]
            n_open += 1
            lot = nxt[lot]
    return pnl[:n_out], size[:n_out], entry[:n_out], open_pnl[:n_open]


@njit(cache=True)
def _split_lots(a, step, act_step, act_sym, act_kind, act_value, head, nxt, qty, price, comm_unit):
    """Apply the splits of the actions from ``a`` up to ``step`` to the open lots; the next action."""
    while a < act_step.shape[0] and act_step[a] <= step:
        if act_kind[a] == ACT_SPLIT and act_value[a] > 0.0 and act_value[a] != 1.0:
            v = act_value[a]
            lot = head[act_sym[a]]
            while lot >= 0:
                qty[lot] *= v
                price[lot] /= v
                comm_unit[lot] /= v
                lot = nxt[lot]
        a += 1
    return a
