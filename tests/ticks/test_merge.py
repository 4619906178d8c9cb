"""Time merge of trades and quotes: tie rule, multi-symbol order, streaming equals whole frame."""

from __future__ import annotations

import itertools

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from backtape.schema import conform
from backtape.ticks import MERGED_SCHEMA, iter_merged, merge_streams
from backtape.ticks.merge import _aligned_chunks


def _trades(rows):
    df = pl.DataFrame(rows, schema={"symbol": pl.String, "ts": pl.Int64, "price": pl.Float64,
                                    "size": pl.Float64}, orient="row")
    return conform(df, "trades")


def _quotes(rows):
    df = pl.DataFrame(rows, schema={"symbol": pl.String, "ts": pl.Int64, "bid": pl.Float64},
                      orient="row")
    return conform(df.with_columns(ask=pl.col("bid") + 1, bid_size=pl.lit(1.0), ask_size=pl.lit(2.0)),
                   "quotes")


def _reference_merge(trades: pl.DataFrame, quotes: pl.DataFrame) -> list[tuple]:
    """Sort events by (ts, trade before quote, input order) with Python's stable sort."""
    events = [(ts, 0, i, "trade", sym) for i, (sym, ts) in
              enumerate(trades.select("symbol", pl.col("ts").dt.epoch("ns")).rows())]
    events += [(ts, 1, i, "quote", sym) for i, (sym, ts) in
               enumerate(quotes.select("symbol", pl.col("ts").dt.epoch("ns")).rows())]
    return [(e[0], e[3], e[4], e[2]) for e in sorted(events, key=lambda e: (e[0], e[1], e[2]))]


def _as_events(merged: pl.DataFrame, trades: pl.DataFrame, quotes: pl.DataFrame) -> list[tuple]:
    """Map merged rows back to (ts ns, kind, symbol, index in the time-ordered input)."""
    ns = pl.col("ts").dt.epoch("ns")
    t_ids = {r: i for i, r in enumerate(trades.select("symbol", ns, "price", "size").rows())}
    q_ids = {r: i for i, r in enumerate(quotes.select("symbol", ns, "bid").rows())}
    out = []
    for sym, ts, kind, price, size, bid in merged.select(
        "symbol", ns, pl.col("kind").cast(pl.String), "price", "size", "bid"
    ).rows():
        idx = t_ids[(sym, ts, price, size)] if kind == "trade" else q_ids[(sym, ts, bid)]
        out.append((ts, kind, sym, idx))
    return out


def test_trade_precedes_quote_on_equal_timestamp_and_kinds_keep_input_order() -> None:
    trades = _trades([("A", 5, 1.0, 1.0), ("A", 5, 2.0, 1.0), ("A", 7, 3.0, 1.0)])
    quotes = _quotes([("A", 5, 10.0), ("A", 5, 11.0), ("A", 6, 12.0)])
    merged = merge_streams(trades, quotes)
    assert merged.schema == MERGED_SCHEMA
    assert merged.select(pl.col("kind").cast(pl.String), pl.coalesce("price", "bid")).rows() == [
        ("trade", 1.0), ("trade", 2.0), ("quote", 10.0), ("quote", 11.0), ("quote", 12.0), ("trade", 3.0)
    ]


def test_multi_symbol_merge_is_chronological() -> None:
    trades = _trades([("B", 1, 1.0, 1.0), ("A", 3, 2.0, 1.0)])
    quotes = _quotes([("A", 2, 10.0), ("B", 2, 11.0)])
    merged = merge_streams(trades, quotes)
    assert merged.select("symbol", pl.col("ts").dt.epoch("ns")).rows() == [
        ("B", 1), ("A", 2), ("B", 2), ("A", 3)
    ]


def test_streaming_holds_at_most_one_batch_per_kind() -> None:
    trades = [_trades([("A", t, 1.0, 1.0)]) for t in range(0, 100, 2)]
    quotes = [_quotes([("A", t, 1.0)]) for t in range(1, 100, 2)]
    pulled = {"t": 0, "q": 0}

    def counting(batches, key):
        for b in batches:
            pulled[key] += 1
            yield b

    emitted = {"t": 0, "q": 0}
    for t, q in _aligned_chunks(counting(trades, "t"), counting(quotes, "q")):
        emitted["t"] += t.height
        emitted["q"] += q.height
        assert pulled["t"] - emitted["t"] <= 1
        assert pulled["q"] - emitted["q"] <= 1
    assert emitted == {"t": 50, "q": 50}


_rows = st.lists(st.tuples(st.sampled_from("AB"), st.integers(0, 12), st.integers(0, 1000).map(float)),
                 max_size=30)
_cuts = st.lists(st.integers(0, 100), max_size=5)


def _batches(df: pl.DataFrame, cuts: list[int]) -> list[pl.DataFrame]:
    df = df.sort("ts", maintain_order=True)
    edges = sorted({0, df.height, *[c % (df.height + 1) for c in cuts]})
    return [df.slice(a, b - a) for a, b in itertools.pairwise(edges)]


@settings(max_examples=60, deadline=None)
@given(_rows, _rows, _cuts, _cuts)
def test_merge_matches_reference_and_streaming_matches_whole(t_rows, q_rows, t_cuts, q_cuts) -> None:
    # unique payloads so every merged row maps back to exactly one input row
    trades = _trades([(s, ts, float(i), p) for i, (s, ts, p) in enumerate(t_rows)])
    quotes = _quotes([(s, ts, float(i)) for i, (s, ts, _) in enumerate(q_rows)])
    whole = merge_streams(trades, quotes)
    t_sorted = trades.sort("ts", maintain_order=True)
    q_sorted = quotes.sort("ts", maintain_order=True)
    assert _as_events(whole, t_sorted, q_sorted) == _reference_merge(t_sorted, q_sorted)
    parts = list(iter_merged(_batches(trades, t_cuts), _batches(quotes, q_cuts)))
    streamed = pl.concat(parts) if parts else whole.clear()
    assert streamed.equals(whole)
