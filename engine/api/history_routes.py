"""The history endpoints: episodes, counts per hour or day, the state at a time, and
one alert's timeline, all from the history index beside the journal
(engine/journal/history.py). Queries run in the index's own thread, never in the
event loop.

Times in the query string are RFC 3339 (with a zone), epoch seconds, or a duration
meaning that long ago (`24h`, `7d`). Label matchers are Alertmanager's strings,
one per `match` parameter: `match=team!=ops&match=host=~"web-.*"`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.responses import Response

from engine.api.facade import rfc3339
from engine.api.request import MAX_MATCHERS, MAX_NAME, Call, parse_time
from engine.api.responses import JSON, ApiError
from engine.common import matchers
from engine.common.durations import parse_duration
from engine.journal.history import NotReady
from engine.journal.history_query import DAY, Reader

T = TypeVar("T")

MAX_LIMIT = 10_000
MAX_BUCKETS = 10_000  # a year and more of hours
_NUMBER = re.compile(r"\d{1,12}(\.\d{1,6})?")
_TIMES = ("start", "pending_at", "firing_at", "end", "acked_at")


def _time(name: str, raw: str | None, now: float) -> float | None:
    if raw is None or raw == "":
        return None
    if _NUMBER.fullmatch(raw):
        return float(raw)
    if raw[:1].isdigit() and raw[-1:].isalpha() and len(raw) <= 20:
        try:
            return now - parse_duration(raw)
        except ValueError:
            pass
    return parse_time(name, raw)


def _limit(raw: str | None, default: int) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(422, f"limit: expected a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def _only(call: Call, allowed: tuple[str, ...]) -> None:
    for k in call.request.query_params:
        if k not in allowed:
            raise ApiError(422, f"{k[:MAX_NAME]}: unknown query parameter")


def _matchers(call: Call) -> list[matchers.Matcher]:
    texts = call.request.query_params.getlist("match")
    if len(texts) > MAX_MATCHERS:
        raise ApiError(422, f"match: at most {MAX_MATCHERS}")
    out = []
    for text in texts:
        try:
            out.append(matchers.parse(text))
        except matchers.MatcherError as e:
            raise ApiError(422, f"match: {e}") from None
    return out


def _episode(ep: dict[str, Any]) -> dict[str, Any]:
    out = dict(ep)
    for k in _TIMES:
        out[k] = rfc3339(ep[k])
    return out


async def _ask(call: Call, fn: Callable[[Reader], T]) -> T:
    index = call.facade.history_index()
    if index is None:
        raise ApiError(503, "history is not available: this daemon keeps no journal index")
    try:
        return await index.query(fn)
    except NotReady as e:
        raise ApiError(503, str(e), {"Retry-After": "2"}) from None


async def history(call: Call) -> Response:
    """Episodes overlapping [from, to], newest start first."""
    _only(call, ("rule", "match", "from", "to", "limit"))
    q = call.request.query_params
    now = time.time()
    t1, t2 = _time("from", q.get("from"), now), _time("to", q.get("to"), now)
    if t1 is not None and t2 is not None and t1 > t2:
        raise ApiError(422, "from: later than to")
    rule, ms, limit = q.get("rule") or None, _matchers(call), _limit(q.get("limit"), 100)

    def run(r: Reader) -> tuple[list[dict[str, Any]], tuple[int, str]]:
        return r.episodes(rule=rule, matchers=ms, t1=t1, t2=t2, limit=limit), r.position()

    eps, (seq, ts) = await _ask(call, run)
    return JSON(
        {
            "episodes": [_episode(e) for e in eps],
            "from": rfc3339(t1),
            "to": rfc3339(t2),
            "limit": limit,
            "truncated": len(eps) >= limit,
            "indexed": {"seq": seq, "ts": ts or None},
        }
    )


async def history_counts(call: Call) -> Response:
    """Per UTC hour or day: episodes started, firing starts, alerts firing in it."""
    _only(call, ("by", "from", "to"))
    q = call.request.query_params
    by = q.get("by") or "hour"
    if by not in ("hour", "day"):
        raise ApiError(422, f"by: expected hour or day, got {by[:40]!r}")
    now = time.time()
    width = 3600 if by == "hour" else DAY
    to = _time("to", q.get("to"), now)
    t2 = now if to is None else to
    t1 = _time("from", q.get("from"), now)
    if t1 is None:
        t1 = t2 - (DAY if by == "hour" else 30 * DAY)
    if t1 > t2:
        raise ApiError(422, "from: later than to")
    if (t2 - t1) / width > MAX_BUCKETS:
        raise ApiError(422, f"from: at most {MAX_BUCKETS} buckets of one {by}")
    buckets = await _ask(call, lambda r: r.counts(by, t1, t2))
    for b in buckets:
        b["t"] = rfc3339(b["t"])
    return JSON({"by": by, "from": rfc3339(t1), "to": rfc3339(t2), "buckets": buckets})


async def history_at(call: Call) -> Response:
    """The alerts pending or firing at time t, each with its state then."""
    _only(call, ("t", "rule", "match"))
    q = call.request.query_params
    now = time.time()
    t = _time("t", q.get("t"), now)
    at = now if t is None else t
    rule, ms = q.get("rule") or None, _matchers(call)
    alerts = await _ask(call, lambda r: r.state_at(at, rule=rule, matchers=ms))
    return JSON({"t": rfc3339(at), "alerts": [_episode(a) for a in alerts]})


async def timeline(call: Call) -> Response:
    """Every journal event of one alert (fingerprint), oldest first, and its episodes."""
    _only(call, ("limit",))
    fp = call.param("fp")
    limit = _limit(call.request.query_params.get("limit"), 1000)
    found = await _ask(call, lambda r: r.timeline(fp, limit=limit))
    if found is None:
        raise ApiError(404, f"no history for alert {fp[:64]}")
    found["episodes"] = [_episode(e) for e in found["episodes"]]
    for ev in found["events"]:
        ev["ts"] = rfc3339(ev["ts"])
    return JSON(found)
