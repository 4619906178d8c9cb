"""The numba simulation loop shared by ``simulate`` and the parameter sweeps.

One column is one independent account trading one price column. Its decisions come either from
entry/exit signal arrays, from target-position arrays, or (for streaming sweeps) from the crossover
of two rows of a moving-average matrix, so that a sweep never materializes signal arrays. Fills,
costs and sizing are those of ``backtape.fills``; metrics are accumulated with
``backtape.analytics`` while the loop runs.

Layout: every 2-D array is C-ordered **columns x bars** (the transpose of the public bars x
columns), so one column's bars are contiguous and every entry point compiles one signature.
Per-column parameters live in one float64 row (``P_*`` slots) for the same reason.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..analytics import (
    N_METRICS,
    acc_bar,
    acc_finalize,
    acc_flat,
    acc_new,
    acc_notional,
    acc_open,
    acc_trade,
    bar_state,
    store_bar_state,
)  # fmt: skip
from ..fills import (
    FILL_NEXT_OPEN,
    affordable_shares,
    commission,
    jit_kernels,
    limit_fill_price,
    slipped,
    stop_fill_price,
)

jit_kernels()

P_CASH, P_RATE, P_FIXED, P_SLIP, P_SIZE, P_SIZE_TYPE, P_FRACTIONAL = range(7)
P_SL, P_TP, P_TRAIL, P_FILL, P_ALLOW_SHORT, P_PPY = range(7, 13)
N_PARAMS = 13

SIZE_PERCENT, SIZE_SHARES, SIZE_VALUE = 0, 1, 2
MODE_SIGNALS, MODE_TARGETS, MODE_CROSS = 0, 1, 2

REASONS = ("signal", "stop_loss", "take_profit", "trailing_stop", "open", "liquidation")
# Float codes (they are stored in the float64 trade records): numba would compile a separate copy
# of every helper for each distinct integer literal passed down the call chain.
REASON_SIGNAL, REASON_STOP_LOSS, REASON_TAKE_PROFIT, REASON_TRAILING, REASON_OPEN, REASON_LIQUIDATION = (
    float(r) for r in range(len(REASONS))
)

# Trade record fields (float64 matrix columns).
T_COL, T_ENTRY_IDX, T_EXIT_IDX, T_ENTRY_PRICE, T_EXIT_PRICE, T_SIZE, T_PNL, T_COMM, T_REASON = range(9)
N_TRADE_FIELDS = 9

# Account state slots.
_CASH, _POS, _AVG, _ENTRY_IDX, _ENTRY_COMM, _EXTREME, _STOPS_FROM, _NTR = range(8)
_N_STATE = 8


@njit(cache=True, error_model="numpy")
def all_valid(x):
    """Whether every value of a columns x bars array is finite and positive (vectorizable: no early exit)."""
    ok = True
    for j in range(x.shape[0]):
        for i in range(x.shape[1]):
            v = x[j, i]
            ok &= (v > 0.0) & (v < np.inf)
    return ok


@njit(cache=True, error_model="numpy")
def first_invalid(x):
    """(column, bar) of the first non-finite or non-positive value of a columns x bars array, or (-1, -1)."""
    for j in range(x.shape[0]):
        for i in range(x.shape[1]):
            v = x[j, i]
            if not (v > 0.0 and v < np.inf):
                return j, i
    return -1, -1


@njit(cache=True, error_model="numpy")
def _record(tr_out, start, st, col, exit_idx, exit_price, size, pnl, comm, reason):
    if tr_out.shape[0] > 0:
        k = start + int(st[_NTR])
        tr_out[k, T_COL] = col
        tr_out[k, T_ENTRY_IDX] = st[_ENTRY_IDX]
        tr_out[k, T_EXIT_IDX] = exit_idx
        tr_out[k, T_ENTRY_PRICE] = st[_AVG]
        tr_out[k, T_EXIT_PRICE] = exit_price
        tr_out[k, T_SIZE] = size
        tr_out[k, T_PNL] = pnl
        tr_out[k, T_COMM] = comm
        tr_out[k, T_REASON] = reason
    st[_NTR] += 1.0


@njit(cache=True, error_model="numpy")
def _reduce(st, p, acc, qty, raw_price, i, reason, col, tr_out, start):
    """Close ``qty`` shares of the position at ``raw_price`` (slippage applied here)."""
    pos = st[_POS]
    side = 1.0 if pos > 0 else -1.0
    price = slipped(raw_price, -side, p[P_SLIP])
    closed = side * qty
    exit_comm = commission(qty, price, p[P_RATE], p[P_FIXED])
    entry_comm = st[_ENTRY_COMM] * (qty / abs(pos))
    gross = closed * (price - st[_AVG])
    st[_CASH] += gross - exit_comm
    pnl = gross - (entry_comm + exit_comm)
    acc_trade(acc, pnl, qty * st[_AVG])
    acc_notional(acc, qty * price)
    _record(tr_out, start, st, col, i, price, closed, pnl, entry_comm + exit_comm, reason)
    st[_POS] = pos - closed
    st[_ENTRY_COMM] -= entry_comm
    if st[_POS] == 0.0:
        st[_AVG] = 0.0
        st[_ENTRY_COMM] = 0.0
        st[_ENTRY_IDX] = -1.0


@njit(cache=True, error_model="numpy")
def _execute(st, p, acc, target, raw_price, i, stops_from, col, tr_out, start):
    """Move the position toward ``target`` (units of the size type) with a market fill."""
    pos = st[_POS]
    if pos != 0.0 and (target == 0.0 or (pos > 0) != (target > 0)):
        _reduce(st, p, acc, abs(pos), raw_price, i, REASON_SIGNAL, col, tr_out, start)
        pos = 0.0
    if target == 0.0:
        return
    side = 1.0 if target > 0 else -1.0
    price = slipped(raw_price, side, p[P_SLIP])
    fractional = p[P_FRACTIONAL] != 0.0
    equity = st[_CASH] + pos * (raw_price - st[_AVG])
    size_type = int(p[P_SIZE_TYPE])
    if size_type == SIZE_PERCENT:
        want = affordable_shares(equity * abs(target), price, p[P_RATE], p[P_FIXED], fractional)
    else:
        want = abs(target) if size_type == SIZE_SHARES else abs(target) / price
        if not fractional:
            want = np.floor(want)
    held = abs(pos)
    delta = want - held
    if delta < 0.0:
        _reduce(st, p, acc, -delta, raw_price, i, REASON_SIGNAL, col, tr_out, start)
        return
    free = equity - held * raw_price
    delta = min(delta, affordable_shares(free, price, p[P_RATE], p[P_FIXED], fractional))
    if delta <= 0.0:
        return
    comm = commission(delta, price, p[P_RATE], p[P_FIXED])
    st[_CASH] -= comm
    st[_ENTRY_COMM] += comm
    acc_notional(acc, delta * price)
    if pos == 0.0:
        st[_ENTRY_IDX] = i
        st[_AVG] = price
        st[_EXTREME] = price
        st[_STOPS_FROM] = stops_from
        st[_POS] = side * delta
    else:
        new_pos = pos + side * delta
        st[_AVG] = (pos * st[_AVG] + side * delta * price) / new_pos
        st[_POS] = new_pos


@njit(cache=True, error_model="numpy")
def _check_stops(st, p, acc, o, h, lo, i, col, tr_out, start):
    """Exit on stop-loss, trailing stop or take-profit touched in bar ``i``; else track extremes."""
    pos = st[_POS]
    long = pos > 0
    side = 1.0 if long else -1.0
    avg = st[_AVG]
    inf = np.inf
    stop = -side * inf
    reason = REASON_STOP_LOSS
    if p[P_SL] > 0:
        stop = avg * (1.0 - side * p[P_SL])
    if p[P_TRAIL] > 0:
        trail = st[_EXTREME] * (1.0 - side * p[P_TRAIL])
        if (long and trail > stop) or (not long and trail < stop):
            stop = trail
            reason = REASON_TRAILING
    take = avg * (1.0 + side * p[P_TP]) if p[P_TP] > 0 else side * inf
    stop_px = stop_fill_price(o, h, lo, stop, -side)
    take_px = limit_fill_price(o, h, lo, take, -side)
    if stop_px == o or (stop_px == stop_px and take_px != o):
        _reduce(st, p, acc, abs(pos), stop_px, i, reason, col, tr_out, start)
    elif take_px == take_px:
        _reduce(st, p, acc, abs(pos), take_px, i, REASON_TAKE_PROFIT, col, tr_out, start)
    elif long:
        st[_EXTREME] = max(st[_EXTREME], h)
    else:
        st[_EXTREME] = min(st[_EXTREME], lo)


@njit(cache=True, error_model="numpy")
def _signal_target(pos, long_entry, long_exit, short_entry, short_exit, size):
    """Target implied by this bar's signals (NaN: no action). Entries take precedence over exits."""
    if long_entry and pos <= 0:
        return size
    if short_entry and pos >= 0:
        return -size
    if (long_exit and pos > 0) or (short_exit and pos < 0):
        return 0.0
    return np.nan


@njit(cache=True, error_model="numpy")
def _crossed(f0, s0, f1, s1):
    """Whether line f crossed line s (either way) between two bars."""
    return (f0 < s0 and f1 > s1) or (f0 > s0 and f1 < s1)


@njit(cache=True, error_model="numpy")
def _cross_target(pos, f0, s0, f1, s1, size, allow_short):
    """Target of the crossover rule: long on fast crossing above slow, flat (or short) below."""
    up = f0 < s0 and f1 > s1
    down = f0 > s0 and f1 < s1
    return _signal_target(pos, up, down, down and allow_short, up and allow_short, size)


@njit(cache=True, error_model="numpy")
def simulate_column(
    o, h, lo, c, pc, le, lx, se, sx, tg, ma, fi, si, mode, p, col, eq_out, tr_out, start, m_out,
    bounds, blocks,
):  # fmt: skip
    """Run one column over all bars; returns the number of trade records (closed and open).

    With a non-empty ``bounds`` (block starts over the returns, then their count), the sums of the
    per-bar returns ``E_i / E_{i-1} - 1`` and of their squares per block go to ``blocks[col]``
    (what CSCV and the Deflated Sharpe need, without keeping the equity curve).
    """
    n = c.shape[1]
    st = np.zeros(_N_STATE)
    st[_CASH] = p[P_CASH]
    st[_ENTRY_IDX] = -1.0
    acc = acc_new()
    stops = p[P_SL] > 0 or p[P_TP] > 0 or p[P_TRAIL] > 0
    at_open = int(p[P_FILL]) == FILL_NEXT_OPEN
    size = p[P_SIZE]
    short = p[P_ALLOW_SHORT] != 0.0
    write_eq = eq_out.shape[0] > 0
    # The account lives in ``st`` for the (rare) fill helpers; the bar loop works on local copies
    # (cash, pos, avg) refreshed after each helper call, which keeps the common path in registers.
    cash, pos, avg = st[_CASH], 0.0, 0.0
    pending = np.nan
    dead = False
    bars = bar_state(acc)
    track = bounds.shape[0] > 0
    blk, s1, s2, prev_eq = 0, 0.0, 0.0, p[P_CASH]
    quiet = mode == MODE_CROSS and not stops and not write_eq
    i = 0
    while i < n:
        if dead:
            bars = acc_bar(bars, 0.0, False)
            if write_eq:
                eq_out[col, i] = 0.0
            i += 1
            continue
        if pending == pending:
            _execute(st, p, acc, pending, o[pc, i], i, i, col, tr_out, start)
            cash, pos, avg = st[_CASH], st[_POS], st[_AVG]
            pending = np.nan
        if stops and pos != 0.0 and i >= st[_STOPS_FROM]:
            _check_stops(st, p, acc, o[pc, i], h[pc, i], lo[pc, i], i, col, tr_out, start)
            cash, pos, avg = st[_CASH], st[_POS], st[_AVG]
        if mode == MODE_TARGETS:
            target = tg[col, i]
        elif mode == MODE_SIGNALS:
            target = _signal_target(pos, le[col, i], lx[col, i], se[col, i], sx[col, i], size)
        elif i > 0:
            target = _cross_target(pos, ma[fi, i - 1], ma[si, i - 1], ma[fi, i], ma[si, i], size, short)
        else:
            target = np.nan
        if target == target:
            if at_open:
                pending = target
            else:
                _execute(st, p, acc, target, c[pc, i], i, i + 1, col, tr_out, start)
                cash, pos, avg = st[_CASH], st[_POS], st[_AVG]
        equity = cash + pos * (c[pc, i] - avg)
        if equity <= 0.0:
            if pos != 0.0:
                _reduce(st, p, acc, abs(pos), c[pc, i], i, REASON_LIQUIDATION, col, tr_out, start)
                pos = 0.0
            equity = 0.0
            dead = True
        bars = acc_bar(bars, equity, pos != 0.0)
        if write_eq:
            eq_out[col, i] = equity
        if track and i > 0:
            while i - 1 >= bounds[blk + 1]:
                blocks[col, 0, blk] += s1
                blocks[col, 1, blk] += s2
                blk, s1, s2 = blk + 1, 0.0, 0.0
            r = equity / prev_eq - 1.0 if prev_eq > 0.0 else 0.0
            s1 += r
            s2 += r * r
        prev_eq = equity
        i += 1
        if mode == MODE_SIGNALS and pos == 0.0 and not dead and pending != pending:
            # Flat: only entries act, so the bars up to the next entry signal just repeat the equity.
            start_i = i
            while i < n and not (le[col, i] or se[col, i]):
                i += 1
            if i > start_i:
                bars = acc_flat(bars, i - start_i)
                if write_eq:
                    eq_out[col, start_i:i] = equity
        if quiet and not dead and pending != pending:
            # Crossover sweep without stops: the bars before the next cross place no order, so
            # they only need marking (flat: not even that). The cross bar itself goes round again.
            start_i = i
            fast, slow, close = ma[fi], ma[si], c[pc]
            fast0, slow0 = fast[i - 1], slow[i - 1]
            if pos == 0.0:
                while i < n:
                    fast1, slow1 = fast[i], slow[i]
                    if _crossed(fast0, slow0, fast1, slow1):
                        break
                    fast0, slow0 = fast1, slow1
                    i += 1
                if i > start_i:
                    bars = acc_flat(bars, i - start_i)
            else:
                while i < n:
                    fast1, slow1 = fast[i], slow[i]
                    if _crossed(fast0, slow0, fast1, slow1):
                        break
                    fast0, slow0 = fast1, slow1
                    equity = cash + pos * (close[i] - avg)
                    if equity <= 0.0:
                        break
                    bars = acc_bar(bars, equity, True)
                    if track:
                        while i - 1 >= bounds[blk + 1]:
                            blocks[col, 0, blk] += s1
                            blocks[col, 1, blk] += s2
                            blk, s1, s2 = blk + 1, 0.0, 0.0
                        r = equity / prev_eq - 1.0 if prev_eq > 0.0 else 0.0
                        s1 += r
                        s2 += r * r
                    prev_eq = equity
                    i += 1
    if track:
        blocks[col, 0, blk] += s1
        blocks[col, 1, blk] += s2
    if st[_POS] != 0.0:
        last = c[pc, n - 1]
        pnl = st[_POS] * (last - st[_AVG]) - st[_ENTRY_COMM]
        _record(tr_out, start, st, col, n - 1, last, st[_POS], pnl, st[_ENTRY_COMM], REASON_OPEN)
        acc_open(acc, pnl)
    store_bar_state(acc, bars)
    acc_finalize(acc, p[P_PPY], m_out[col])
    return int(st[_NTR])


@njit(cache=True, parallel=True, error_model="numpy")
def run_columns(
    o, h, lo, c, le, lx, se, sx, tg, ma, fi, si, mode, params, n_cols, eq_out, tr_out, offsets, bounds, blocks
):
    """Simulate ``n_cols`` columns in parallel; returns (metrics matrix, trade records per column)."""
    metrics = np.empty((n_cols, N_METRICS))
    counts = np.zeros(n_cols, dtype=np.int64)
    for j in prange(n_cols):
        col = np.int64(j)
        pc = col if c.shape[0] > 1 else np.int64(0)
        prow = params[col] if params.shape[0] > 1 else params[0]
        f = fi[col] if fi.shape[0] > 0 else np.int64(0)
        s = si[col] if si.shape[0] > 0 else np.int64(0)
        start = offsets[col] if offsets.shape[0] > 0 else np.int64(0)
        # One call per mode with the mode as a literal: numba compiles a specialized loop for each
        # (a runtime mode switch inside the bar loop costs about 5x).
        if mode == MODE_CROSS:
            counts[col] = simulate_column(o, h, lo, c, pc, le, lx, se, sx, tg, ma, f, s, MODE_CROSS,
                                          prow, col, eq_out, tr_out, start, metrics, bounds, blocks)
        elif mode == MODE_SIGNALS:
            counts[col] = simulate_column(o, h, lo, c, pc, le, lx, se, sx, tg, ma, f, s, MODE_SIGNALS,
                                          prow, col, eq_out, tr_out, start, metrics, bounds, blocks)
        else:
            counts[col] = simulate_column(o, h, lo, c, pc, le, lx, se, sx, tg, ma, f, s, MODE_TARGETS,
                                          prow, col, eq_out, tr_out, start, metrics, bounds, blocks)
    return metrics, counts
