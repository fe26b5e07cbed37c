"""A bounded fan-out of the daemon's journaled events to live subscribers (the
API's server-sent events stream, GET /api/v1/events).

The publisher is the daemon's one event path, so publishing never waits: each
subscriber has a bounded queue, and one that falls behind (a slow or stalled
browser) is dropped, its queue closed, instead of holding the loop or growing
without bound. A dropped subscriber reconnects and reads the state afresh.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

QUEUE_LIMIT = 1000  # events a subscriber may lag behind before it is dropped
MAX_SUBSCRIBERS = 64  # live streams at once; one more is refused (the API answers 503)


class Subscription:
    """One subscriber's queue. `get()` waits for the next batch; None once the
    subscription is closed (dropped for lagging, or the fan-out closed)."""

    __slots__ = ("_fanout", "_queue", "_wake", "closed", "dropped")

    def __init__(self, fanout: Fanout) -> None:
        self._fanout = fanout
        self._queue: deque[dict[str, Any]] = deque()
        self._wake = asyncio.Event()
        self.closed = False
        self.dropped = False  # closed because it fell QUEUE_LIMIT events behind

    def _put(self, events: list[dict[str, Any]], limit: int) -> None:
        if len(self._queue) + len(events) > limit:
            self.dropped = True
            self.close()
            return
        self._queue.extend(events)
        self._wake.set()

    async def get(self, timeout: float | None = None) -> list[dict[str, Any]] | None:
        """Every event queued so far (oldest first); [] when `timeout` passed with
        nothing new; None when closed."""
        if not self._queue and not self.closed:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                return []
        if self.closed and not self._queue:
            return None
        out = list(self._queue)
        self._queue.clear()
        self._wake.clear()
        return out

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.dropped:  # what it lagged on is stale: it reads the state afresh
                self._queue.clear()
            self._fanout._subs.discard(self)
            self._wake.set()


class Fanout:
    """Publishes summaries of events to every open Subscription, never waiting."""

    def __init__(self, limit: int = QUEUE_LIMIT, max_subscribers: int = MAX_SUBSCRIBERS) -> None:
        self.limit = limit
        self.max_subscribers = max_subscribers
        self._subs: set[Subscription] = set()
        self.dropped = 0  # subscribers dropped for lagging, since start

    def __len__(self) -> int:
        return len(self._subs)

    def subscribe(self) -> Subscription | None:
        """A new subscription, or None when MAX_SUBSCRIBERS are open."""
        if len(self._subs) >= self.max_subscribers:
            return None
        sub = Subscription(self)
        self._subs.add(sub)
        return sub

    def publish(self, events: Iterable[Mapping[str, Any]]) -> None:
        if not self._subs:  # the usual case: nobody watching costs one test
            return
        batch = [summary(ev) for ev in events]
        if not batch:
            return
        for sub in list(self._subs):
            sub._put(batch, self.limit)
            if sub.dropped:
                self.dropped += 1

    def close(self) -> None:
        """End every subscription (the daemon stops: streams end, not hang)."""
        for sub in list(self._subs):
            sub.close()


def summary(ev: Mapping[str, Any]) -> dict[str, Any]:
    """What a stream says of an event: its kind, sequence, time and what it is
    about. Enough for a client to know what to read again; the details stay
    behind the API's own endpoints (and their roles)."""
    out: dict[str, Any] = {"event": ev.get("event")}
    for key in ("seq", "ts", "alert", "id", "rule", "severity", "action"):
        v = ev.get(key)
        if v is not None:
            out[key] = v
    alerts = ev.get("alerts")
    if isinstance(alerts, list):
        out["alerts"] = len(alerts)
    return out
