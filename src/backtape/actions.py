"""When the engines apply a corporate action: both apply it at the first clock step at or after its
ex-date open (the end of the bar holding it), and within that step:

=================================  ============================================================
action                             when, at that step
=================================  ============================================================
split                              before the bars ending there are matched (a bar holding a
                                   split is on its post-split basis: ``portal.views``)
dividend going ex at a bar's open  before the bars are matched (daily and intraday bars)
dividend going ex inside a bar     after its open and intrabar fills, before ``on_bar`` and close
(weeks, months: ``dividend_in``)   fills; per post-split share when a split of the same bar
                                   came after it
=================================  ============================================================
"""

from __future__ import annotations

import numpy as np

from .aggregation import session_bins
from .calendars import TradingCalendar
from .timeframes import Timeframe

Action = tuple[int, str, str, float]


def place_actions(actions: list[Action], calendar: TradingCalendar, tf: Timeframe) -> list[Action]:
    """``actions`` (sorted by ex-date) with each dividend that goes ex inside a bar of ``tf`` (after
    its first session) renamed ``dividend_in`` and put per share of the basis the bar trades on."""
    if not actions or tf.is_intraday or tf == Timeframe(1, "d"):
        return actions
    ex = np.array([a[0] for a in actions], dtype=np.int64)
    starts, _, _ = session_bins(calendar, ex, tf, include_outside=True)
    out = []
    for i, (t, sym, kind, value) in enumerate(actions):
        if kind == "dividend" and starts[i] < t:
            later = [a[3] for k, a in enumerate(actions) if k > i and a[1] == sym and a[2] == "split"
                     and starts[k] == starts[i] and a[3] > 0]
            out.append((t, sym, "dividend_in", value / float(np.prod(later)) if later else value))
        else:
            out.append((t, sym, kind, value))
    return out
