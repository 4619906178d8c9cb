"""Time merge of trades and quotes: one chronological event stream, whole-frame or streamed.

Tie rule
--------
Events are ordered by ``ts``. When a trade and a quote share a timestamp **the trade comes first**:
a quote stamped at the same instant as a trade is treated as the book's reaction to it (Databento's
MBP-1 feed, for one, stamps the fill and the resulting book change with the same ``ts_event``), so it
must not be used to judge that trade. Within one kind the input order (the exchange sequence) is kept.
Classification (``backtape.ticks.classify``) follows the same rule, so a consumer that applies quotes
as they arrive in the merged stream sees exactly the quotes the classifier used: those strictly
before each trade.

Streaming
---------
``iter_merged`` consumes two iterables of time-ordered batches (each batch sorted by ``ts``, each
batch starting no earlier than the previous one ended) and yields merged batches. It holds at most
one pending batch per kind: an event is released as soon as no future event can sort before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

import numpy as np
import polars as pl

from ..errors import DataValidationError
from ..schema import QUOTE_SCHEMA, TRADE_SCHEMA, TS, TickKind, conform, empty
from . import _kernels

KIND = pl.Enum(["trade", "quote"])

#: The merged stream: every trade and quote column, ``kind`` tells which one a row is.
MERGED_SCHEMA = pl.Schema({"symbol": pl.String(), "ts": TS, "kind": KIND,
                           **{k: v for k, v in TRADE_SCHEMA.items() if k not in ("symbol", "ts")},
                           **{k: v for k, v in QUOTE_SCHEMA.items() if k not in ("symbol", "ts")}})

_NEVER = np.iinfo(np.int64).max


def _ts_ns(df: pl.DataFrame) -> np.ndarray:
    """The ``ts`` column as an int64 nanosecond numpy array (zero-copy when possible)."""
    return df.get_column("ts").to_physical().to_numpy()


def _prepare(df: pl.DataFrame, kind: TickKind, *, where: str = "") -> pl.DataFrame:
    """Conform ``df`` to the canonical ``kind`` schema without reordering and reject null times."""
    out = conform(df, kind, sort=False)
    nulls = out.get_column("ts").null_count()
    if nulls:
        row = out.get_column("ts").is_null().arg_max()
        raise DataValidationError(
            f"{kind}{where}: {nulls} row(s) without a timestamp (first at row {row})",
            [{"rule": "null_ts", "row": row}],
        )
    return out


def _time_ordered(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` in chronological order; a stable sort keeps the input order of equal timestamps."""
    if df.get_column("ts").is_sorted():
        return df
    return df.sort("ts", maintain_order=True)


def _stack(trades: pl.DataFrame, quotes: pl.DataFrame) -> pl.DataFrame:
    """Trades then quotes in one frame of ``MERGED_SCHEMA`` (null where a column does not apply)."""
    parts = [
        trades.with_columns(pl.lit("trade", dtype=KIND).alias("kind")),
        quotes.with_columns(pl.lit("quote", dtype=KIND).alias("kind")),
    ]
    stacked = pl.concat(parts, how="diagonal")
    return stacked.select(
        pl.col(c).cast(t) if c in stacked.columns else pl.lit(None, dtype=t).alias(c)
        for c, t in MERGED_SCHEMA.items()
    )


def _merge_sorted(trades: pl.DataFrame, quotes: pl.DataFrame) -> pl.DataFrame:
    """Merge two chronological frames with the trade-first tie rule."""
    t_ts, q_ts = _ts_ns(trades), _ts_ns(quotes)
    order = _kernels.merge_order(np.zeros(t_ts.shape[0], np.int64), t_ts,
                                 np.zeros(q_ts.shape[0], np.int64), q_ts)
    return _stack(trades, quotes).select(pl.all().gather(order))


def merge_streams(trades: pl.DataFrame, quotes: pl.DataFrame) -> pl.DataFrame:
    """All trades and quotes of both frames (any symbols) in one chronological ``MERGED_SCHEMA`` frame.

    Equal timestamps: trades before quotes, then input order (see the module docstring).
    """
    trades = _time_ordered(_prepare(trades, "trades"))
    quotes = _time_ordered(_prepare(quotes, "quotes"))
    return _merge_sorted(trades, quotes)


def _checked_batches(batches: Iterable[pl.DataFrame], kind: TickKind) -> Iterator[pl.DataFrame]:
    """Non-empty conformed batches, verified to be in time order within and across batches.

    No reference to a yielded batch is kept while the next one is produced (hence no ``enumerate``,
    whose result tuple would hold it), so at most one batch per kind is alive.
    """
    last: int | None = None
    n = -1
    for batch in batches:
        n += 1
        if batch.height:
            batch, last = _checked(batch, kind, n, last)
            yield batch
        del batch


def _checked(batch: pl.DataFrame, kind: TickKind, n: int, last: int | None) -> tuple[pl.DataFrame, int]:
    """Batch ``n`` conformed and checked to be time-ordered and to start at or after ``last``."""
    batch = _prepare(batch, kind, where=f" batch {n}")
    ts = _ts_ns(batch)
    if not batch.get_column("ts").is_sorted():
        row = int(np.argmax(np.diff(ts) < 0)) + 1
        raise DataValidationError(
            f"{kind} batch {n}: not in time order at row {row} "
            f"(ts {batch['ts'][row]} after {batch['ts'][row - 1]})",
            [{"rule": "unsorted", "row": row}],
        )
    if last is not None and ts[0] < last:
        raise DataValidationError(
            f"{kind} batch {n}: starts at {batch['ts'][0]}, before the previous batch ended "
            f"({pl.Series([last]).cast(TS)[0]}); batches must be time-ordered",
            [{"rule": "unsorted", "row": 0}],
        )
    return batch, int(ts[-1])


def _aligned_chunks(
    trade_batches: Iterable[pl.DataFrame], quote_batches: Iterable[pl.DataFrame]
) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    """Pairs ``(trades, quotes)`` whose merges, concatenated in order, give the global merge.

    A trade is released once a quote at or after its time has been seen (or quotes are exhausted);
    a quote once a trade strictly after it has been seen (or trades are exhausted). After each pair
    one of the two buffers is empty, so at most one batch per kind is held.
    """
    t_it = _checked_batches(trade_batches, "trades")
    q_it = _checked_batches(quote_batches, "quotes")
    t_buf: pl.DataFrame | None = None
    q_buf: pl.DataFrame | None = None
    t_done = q_done = False
    while True:
        if t_buf is None and not t_done:
            t_buf = next(t_it, None)
            t_done = t_buf is None
        if q_buf is None and not q_done:
            q_buf = next(q_it, None)
            q_done = q_buf is None
        if t_buf is None and q_buf is None:
            return
        t_hi = _NEVER if t_done or t_buf is None else int(_ts_ns(t_buf)[-1])
        q_hi = _NEVER if q_done or q_buf is None else int(_ts_ns(q_buf)[-1])
        t_out, t_buf = _split(t_buf, q_hi, "trades")
        q_out, q_buf = _split(q_buf, t_hi, "quotes")
        yield t_out, q_out
        del t_out, q_out  # released chunks must not outlive the consumer's use of them


def _split(buf: pl.DataFrame | None, bound: int,
           kind: TickKind) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Rows of ``buf`` that may be released against ``bound`` and the rest (None when nothing is left).

    Trades are released up to and including ``bound`` (a quote at the same time sorts after them),
    quotes strictly before it (a trade at the same time sorts before them).
    """
    if buf is None:
        return empty(kind), None
    side: Literal["left", "right"] = "right" if kind == "trades" else "left"
    cut = int(np.searchsorted(_ts_ns(buf), bound, side=side))
    if cut >= buf.height:
        return buf, None
    return buf.slice(0, cut), buf.slice(cut)


def iter_merged(
    trade_batches: Iterable[pl.DataFrame], quote_batches: Iterable[pl.DataFrame]
) -> Iterator[pl.DataFrame]:
    """Stream the merge of time-ordered trade and quote batches as ``MERGED_SCHEMA`` batches.

    Concatenating the yielded batches equals ``merge_streams`` on the concatenated inputs.
    """
    for trades, quotes in _aligned_chunks(trade_batches, quote_batches):
        yield _merge_sorted(trades, quotes)
