"""Numba kernels for the tick hot loops: two-way merge order, Lee-Ready classification, volume bars.

Ordering key shared by every kernel: an event is keyed by ``(group, ts)``. A quote precedes a trade
only if its key is strictly smaller; on equal keys the trade comes first. That single comparison is
the tie rule of the whole package (see ``backtape.ticks.merge``): a trade is classified only against
quotes stamped strictly before it.

Per-symbol state lives in flat arrays indexed by a small integer symbol code so it can be carried
from one batch to the next (``TickClassifier``). A group or symbol input of length 1 stands for a
constant column (every row has that value), so callers need not allocate n-element fills.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _quote_first(q_grp: int, q_ts: int, t_grp: int, t_ts: int) -> bool:
    """True when the quote key sorts strictly before the trade key (ties go to the trade)."""
    return q_grp < t_grp or (q_grp == t_grp and q_ts < t_ts)


@njit(cache=True, inline="always")
def _mask(values) -> int:
    """Index mask for ``values[i & mask]``: 0 when a length-1 array stands for a constant column."""
    return 0 if values.shape[0] == 1 else -1


@njit(cache=True)
def merge_order(t_grp, t_ts, q_grp, q_ts):  # pragma: no cover - compiled
    """Positions of a stable two-way merge: ``k < nt`` is trade ``k``, else quote ``k - nt``."""
    nt = t_ts.shape[0]
    nq = q_ts.shape[0]
    tg = _mask(t_grp)
    qg = _mask(q_grp)
    out = np.empty(nt + nq, dtype=np.int64)
    i = 0
    j = 0
    k = 0
    while i < nt and j < nq:
        if _quote_first(q_grp[j & qg], q_ts[j], t_grp[i & tg], t_ts[i]):
            out[k] = nt + j
            j += 1
        else:
            out[k] = i
            i += 1
        k += 1
    while i < nt:
        out[k] = i
        i += 1
        k += 1
    while j < nq:
        out[k] = nt + j
        j += 1
        k += 1
    return out


@njit(cache=True, inline="always")
def _lee_ready(price: float, bid: float, ask: float, last: float, last_dir: int) -> tuple[np.int64, np.int64]:
    """Side of one trade and the new tick direction of its symbol.

    Tick rule: +1 on an uptick, -1 on a downtick, the last non-zero tick on a zero tick, 0 when the
    symbol has no earlier price (``last`` NaN). Quote rule (only when the prevailing quote is valid,
    i.e. ``bid > 0`` and ``ask >= bid``): above the midpoint +1, below -1, at the midpoint the tick
    rule. Written with comparisons as integers instead of branches: the outcomes are random on real
    data, so branches would be mispredicted about half the time.
    """
    tick = np.int64(price > last) - np.int64(price < last)
    tick += np.int64((tick == 0) & (last == last)) * last_dir
    mid = (bid + ask) * 0.5
    above = np.int64(price > mid) - np.int64(price < mid)
    use_quote = np.int64((bid > 0.0) & (ask >= bid) & (above != 0))
    return tick + use_quote * (above - tick), tick


@njit(cache=True)
def classify_pair(
    t_grp, t_ts, t_sym, t_price, t_size,
    q_grp, q_ts, q_sym, q_bid, q_ask,
    st_bid, st_ask, st_last, st_dir, st_cum,
    side_out, delta_out, cum_out,
):  # pragma: no cover - compiled
    """Walk trades and quotes in merged order, classify each trade and accumulate signed volume.

    Every quote of the chunk is applied (also those after the last trade) so the state is exact for
    the next chunk. ``st_*`` arrays are updated in place; results go to the ``*_out`` arrays.
    """
    nt = t_ts.shape[0]
    nq = q_ts.shape[0]
    tg, tsm, qg, qsm = _mask(t_grp), _mask(t_sym), _mask(q_grp), _mask(q_sym)
    i = 0
    j = 0
    while i < nt:
        if j < nq and _quote_first(q_grp[j & qg], q_ts[j], t_grp[i & tg], t_ts[i]):
            s = q_sym[j & qsm]
            st_bid[s] = q_bid[j]
            st_ask[s] = q_ask[j]
            j += 1
            continue
        s = t_sym[i & tsm]
        p = t_price[i]
        side, st_dir[s], delta_out[i], st_cum[s] = _trade(
            p, t_size[i], st_bid[s], st_ask[s], st_last[s], st_dir[s], st_cum[s])
        st_last[s] = p
        side_out[i] = side
        cum_out[i] = st_cum[s]
        i += 1
    while j < nq:
        s = q_sym[j & qsm]
        st_bid[s] = q_bid[j]
        st_ask[s] = q_ask[j]
        j += 1


@njit(cache=True)
def classify_run(
    t_ts, t_price, t_size, q_ts, q_bid, q_ask, s,
    st_bid, st_ask, st_last, st_dir, st_cum,
    side_out, delta_out, cum_out,
):  # pragma: no cover - compiled
    """``classify_pair`` for one symbol ``s`` and time-ordered trades and quotes (one group).

    Only the last quote strictly before each trade matters, so quotes are skipped rather than each
    written to the state, and the state stays in locals: about twice as fast as the general walk.
    """
    nt = t_ts.shape[0]
    nq = q_ts.shape[0]
    bid, ask, last, tick, cum = st_bid[s], st_ask[s], st_last[s], st_dir[s], st_cum[s]
    j = 0
    for i in range(nt):
        t = t_ts[i]
        if j < nq and q_ts[j] < t:
            j += 1
            while j < nq and q_ts[j] < t:
                j += 1
            bid = q_bid[j - 1]
            ask = q_ask[j - 1]
        p = t_price[i]
        side_out[i], tick, delta_out[i], cum = _trade(p, t_size[i], bid, ask, last, tick, cum)
        last = p
        cum_out[i] = cum
    if nq:
        bid = q_bid[nq - 1]
        ask = q_ask[nq - 1]
    st_bid[s], st_ask[s], st_last[s], st_dir[s], st_cum[s] = bid, ask, last, tick, cum


@njit(cache=True, inline="always")
def _trade(price, size, bid, ask, last, last_dir, cum):
    """Side, new tick direction, signed volume and new cumulative delta of one trade."""
    side, tick = _lee_ready(price, bid, ask, last, last_dir)
    delta = side * size
    return side, tick, delta, cum + delta


@njit(cache=True)
def volume_bar_ids(grp, size, threshold):  # pragma: no cover - compiled
    """Bar number of each trade: a bar closes at the trade that brings its volume to ``threshold``.

    ``grp`` changes start a new bar too (one symbol per bar). Returns the ids and a flag per bar
    telling whether it reached the threshold (the trailing bar of a group may not).
    """
    n = size.shape[0]
    ids = np.empty(n, dtype=np.int64)
    complete = np.zeros(n, dtype=np.bool_)
    bar = -1
    acc = 0.0
    open_bar = False
    for i in range(n):
        if not open_bar or (i > 0 and grp[i] != grp[i - 1]):
            bar += 1
            acc = 0.0
            open_bar = True
        ids[i] = bar
        acc += size[i]
        if acc >= threshold:
            complete[bar] = True
            open_bar = False
    return ids, complete[: bar + 1]
