"""A Polygon/Massive REST replay: aggregates, trades v3, quotes v3, splits, dividends.

Aggregates of any minute or hour multiplier are built from the minute bars (windows aligned on
the epoch, as Polygon aligns them), weekly ones from the daily bars (weeks start Sunday 00:00 New
York); a window is served when it overlaps the ``from``/``to`` range.

Speaks the wire format of ``shared/providers.md`` §1: ``t`` in Unix ms (bar start; daily bars at
midnight New York), ``next_url`` absolute on ``https://api.massive.com`` carrying only ``cursor``,
no ``results`` key on an empty page, exact int64 nanosecond stamps, trades/quotes newest first
unless ``order=asc``, and the ``status``/``error`` error bodies.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from zoneinfo import ZoneInfo

import numpy as np
from provider_replay import Reply, Request, price_path, session_minutes

PROD = "https://api.massive.com"
KEY = "pk_TESTKEY_9f3b2c1d"
NY = ZoneInfo("America/New_York")


def _cursor(state: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode()


def _uncursor(text: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(text.encode()))


def _ms_or_date(text: str, *, end: bool) -> int:
    """A path ``from``/``to`` (ms or YYYY-MM-DD in New York) as inclusive ms bounds."""
    if text.isdigit():
        return int(text)
    day = dt.date.fromisoformat(text)
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=NY)
    ms = int(midnight.timestamp() * 1000)
    return ms + 86_400_000 - 1 if end else ms


class PolygonFake:
    """Holds per-symbol minute bars, daily bars, trades and quotes; ``__call__`` is the route."""

    def __init__(self, symbols=("AAPL", "MSFT"), start="2024-01-02", end="2024-01-06", *,
                 page_size: int = 100, key: str = KEY, ignore_order: bool = False,
                 ticks: bool = True) -> None:
        self.key = key
        self.page_size = page_size
        self.ignore_order = ignore_order
        minutes = session_minutes(start, end)
        self.minute: dict[str, list[dict]] = {}
        self.daily: dict[str, list[dict]] = {}
        self.trades: dict[str, list[dict]] = {}
        self.quotes: dict[str, list[dict]] = {}
        for sym in symbols:
            px = price_path(sym, len(minutes))
            self.minute[sym] = [
                {"v": float(100 + i % 7) + (0.5 if i % 3 == 0 else 0.0), "vw": float(px[i]),
                 "o": float(px[i]), "c": float(px[i]), "h": float(px[i]) + 0.05, "l": float(px[i]) - 0.05,
                 "t": int(t // 1_000_000), "n": 3 + i % 5}
                for i, t in enumerate(minutes)
            ]
            days = sorted({dt.datetime.fromtimestamp(t / 1e9, NY).date() for t in minutes})
            self.daily[sym] = [
                {"v": 1.5e7 + i, "vw": 100.0 + i, "o": 100.0 + i, "c": 101.0 + i, "h": 102.0 + i,
                 "l": 99.0 + i, "n": 1000 + i,
                 "t": int(dt.datetime(d.year, d.month, d.day, tzinfo=NY).timestamp() * 1000)}
                for i, d in enumerate(days)
            ]
            if not ticks:  # bars only: cheaper fakes for long ranges
                continue
            # two trades per minute with exact, odd nanosecond stamps (not float-representable)
            self.trades[sym] = [
                {"conditions": [12, 41] if k else [37], "exchange": 11 + k, "id": f"{sym}-{i}-{k}",
                 "participant_timestamp": int(t) + 15_577_088 + k, "price": float(px[i]) + k / 100,
                 "sequence_number": 2 * i + k, "sip_timestamp": int(t) + 16_036_581 + 7 * k,
                 "size": 100.0 if k else 2.5, "tape": 3}
                for i, t in enumerate(minutes) for k in (0, 1)
            ]
            self.quotes[sym] = [
                {"ask_exchange": 12, "ask_price": float(px[i]) + 0.01, "ask_size": 3.0, "bid_exchange": 11,
                 "bid_price": float(px[i]) - 0.01, "bid_size": 60.0, "conditions": [1],
                 "participant_timestamp": int(t) + 65_321_207, "sequence_number": i,
                 "sip_timestamp": int(t) + 65_700_423, "tape": 3}
                for i, t in enumerate(minutes)
            ]
        self.splits = {"AAPL": [{"execution_date": "2024-01-04", "split_from": 1, "split_to": 4,
                                 "ticker": "AAPL", "id": "E1"}]}
        self.dividends = {"AAPL": [{"cash_amount": 0.24, "ex_dividend_date": "2024-01-03",
                                    "pay_date": "2024-02-15", "ticker": "AAPL", "dividend_type": "CD"}]}

    # -- routing --------------------------------------------------------------------------------
    def __call__(self, req: Request) -> Reply:
        auth = req.headers.get("Authorization") or req.headers.get("authorization")
        given = auth.removeprefix("Bearer ") if auth else req.query.get("apiKey")
        if not given:
            return Reply(401, {"status": "ERROR", "request_id": "r1", "error": "API Key was not provided"})
        if given != self.key:
            return Reply(401, {"status": "ERROR", "request_id": "r2", "error": "Unknown API Key"})
        parts = req.path.strip("/").split("/")
        if parts[:3] == ["v2", "aggs", "ticker"]:
            return self._aggs(req, parts)
        if parts[0] == "v3" and parts[1] in ("trades", "quotes"):
            return self._ticks(req, parts[1], parts[2])
        if parts[:2] == ["v3", "reference"]:
            return self._reference(req, parts[2])
        return Reply(404, {"status": "NOT_FOUND", "request_id": "r3", "message": "Not Found"})

    def _page(self, req: Request, rows: list[dict], state: dict, extra: dict) -> Reply:
        offset = state.get("offset", 0)
        size = min(self.page_size, int(state.get("limit", self.page_size)))
        chunk = rows[offset:offset + size]
        body = {"status": "OK", "request_id": "req", **extra}
        if chunk:
            body["results"] = chunk
            body["resultsCount"] = len(chunk)
        if offset + size < len(rows):
            nxt = dict(state, offset=offset + size)
            body["next_url"] = f"{PROD}{req.path}?cursor={_cursor(nxt)}"
        return Reply(200, body)

    def _state(self, req: Request, defaults: dict) -> dict:
        if "cursor" in req.query:
            return _uncursor(req.query["cursor"])
        return {**defaults, **{k: v for k, v in req.query.items() if k != "apiKey"}}

    def _aggs(self, req: Request, parts: list[str]) -> Reply:
        ticker, mult, span, frm, to = parts[3], int(parts[5]), parts[6], parts[7], parts[8]
        state = self._state(req, {"adjusted": "true", "sort": "asc", "limit": 5000})
        lo, hi = _ms_or_date(frm, end=False), _ms_or_date(to, end=True)
        if span == "day" and mult == 1:
            rows = [r for r in self.daily.get(ticker, []) if lo <= r["t"] <= hi]
        elif span in ("minute", "hour"):
            width = mult * (60_000 if span == "minute" else 3_600_000)
            rows = _overlapping(_bucket(self.minute.get(ticker, []), lambda t: t - t % width), width, lo, hi)
        elif span == "week" and mult == 1:
            rows = _overlapping(_bucket(self.daily.get(ticker, []), _sunday_ms), 7 * 86_400_000, lo, hi)
        else:
            return Reply(400, {"status": "ERROR", "request_id": "x", "error": "fake serves minute, hour, "
                                                                            "1 day and 1 week"})
        if state.get("adjusted") == "true":
            rows = [dict(r, o=r["o"] / 4, c=r["c"] / 4, h=r["h"] / 4, l=r["l"] / 4) for r in rows]
        extra = {"ticker": ticker, "adjusted": state.get("adjusted") == "true", "queryCount": len(rows),
                 "count": len(rows)}
        return self._page(req, rows, state, extra)

    def _ticks(self, req: Request, kind: str, ticker: str) -> Reply:
        state = self._state(req, {"order": "desc", "limit": 1000})
        rows = (self.trades if kind == "trades" else self.quotes).get(ticker, [])
        gte, lt = int(state.get("timestamp.gte", 0)), int(state.get("timestamp.lt", 2**63 - 1))
        rows = [r for r in rows if gte <= r["sip_timestamp"] < lt]
        if state.get("order") != "asc" or self.ignore_order:
            rows = rows[::-1]
        return self._page(req, rows, state, {})

    def _reference(self, req: Request, what: str) -> Reply:
        state = self._state(req, {"limit": 10})
        source, field = ((self.splits, "execution_date") if what == "splits"
                         else (self.dividends, "ex_dividend_date"))
        rows = [r for r in source.get(state.get("ticker", ""), [])
                if state.get(f"{field}.gte", "") <= r[field] < state.get(f"{field}.lt", "9999")]
        return self._page(req, rows, state, {})


def _sunday_ms(t_ms: int) -> int:
    """Start of the week holding ``t_ms``: Sunday 00:00 New York, how Polygon stamps weekly bars."""
    day = dt.datetime.fromtimestamp(t_ms / 1000, NY).date()
    sunday = day - dt.timedelta(days=(day.weekday() + 1) % 7)
    return int(dt.datetime(sunday.year, sunday.month, sunday.day, tzinfo=NY).timestamp() * 1000)


def _bucket(rows: list[dict], window_start) -> list[dict]:
    """Aggregate base bars into the windows ``window_start(t)`` names (volume-weighted ``vw``)."""
    groups: dict[int, list[dict]] = {}
    for r in rows:
        groups.setdefault(window_start(r["t"]), []).append(r)
    out = []
    for t, g in sorted(groups.items()):
        volume = sum(r["v"] for r in g)
        out.append({"v": volume, "vw": round(sum(r["vw"] * r["v"] for r in g) / volume, 4),
                    "o": g[0]["o"], "c": g[-1]["c"], "h": max(r["h"] for r in g), "l": min(r["l"] for r in g),
                    "t": t, "n": sum(r["n"] for r in g)})
    return out


def _overlapping(rows: list[dict], width_ms: int, lo: int, hi: int) -> list[dict]:
    """Windows ``[t, t + width)`` that overlap the inclusive range ``[lo, hi]``."""
    return [r for r in rows if r["t"] <= hi and r["t"] + width_ms > lo]


def expected_minutes(fake: PolygonFake, sym: str) -> np.ndarray:
    return np.array([r["t"] for r in fake.minute[sym]], dtype=np.int64) * 1_000_000
