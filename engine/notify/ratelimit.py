"""A channel's rate limit (`rate_limit: {max, per}`): at most `max` notifications
in any `per` seconds; what comes over it is held and goes out as one digest
once the window has room. Separate because it is the pipeline's last stage and
keeps state of its own (the send times, the held notifications, the digests
sent for them) that no other policy reads.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping

from engine.config.model import RateLimit
from engine.notify.base import Notification
from engine.notify.digest import make_digest
from engine.notify.hold import FREE, Hold

__all__ = ["RateLimiter", "window_hold"]


def window_hold(limit: RateLimit, sent: Iterable[float], held: int, now: float) -> Hold:
    """The rate limit's "why not now" for a channel that sent at `sent` (epoch
    seconds) and holds `held` notifications: held ("rate_limited") while it
    holds some or `max` went out in the last `per` seconds; next_at: when the
    oldest of those leaves the window (the held ones then go out, as one
    digest when more than one). detail: {"recent": sends in the window, "held"}."""
    recent = sorted(t for t in sent if now - limit.per < t <= now)
    full = len(recent) >= limit.max
    if not held and not full:
        return FREE
    nxt = recent[len(recent) - limit.max] + limit.per if full else now
    return Hold(True, "rate_limited", nxt, {"recent": len(recent), "held": held})


class RateLimiter:
    """The rate limits of all channels. `wake(at, channel)` asks to be called
    back (release()) when a held channel's window has room."""

    def __init__(self, wake: Callable[[float, str], None]) -> None:
        self.limits: dict[str, RateLimit] = {}
        self._wake = wake
        self._sent: dict[str, deque[float]] = {}
        self._held: dict[str, list[Notification]] = {}
        self._digests: dict[str, list[Notification]] = {}

    def configure(self, limits: Mapping[str, RateLimit]) -> None:
        """The limits of a new config; what is held and sent stays."""
        self.limits = dict(limits)

    def offer(self, n: Notification, now: float, out: list[Notification]) -> None:
        """Send `n` (append it to `out`) if the limit allows, else hold it."""
        if n.channel not in self.limits:
            out.append(n)
            return
        held = self._held.setdefault(n.channel, [])
        if not held and self._admit(n.channel, now):
            out.append(n)
            return
        held.append(n)
        self.release(n.channel, now, out)

    def _admit(self, channel: str, now: float) -> bool:
        rl = self.limits[channel]
        sent = self._sent.setdefault(channel, deque())
        while sent and sent[0] <= now - rl.per:
            sent.popleft()
        h = window_hold(rl, sent, 0, now)
        if not h.held:
            sent.append(now)
            return True
        assert h.next_at is not None  # a full window always ends
        self._wake(h.next_at, channel)
        return False

    def hold(self, channel: str, now: float) -> Hold:
        """`channel`'s rate limit as window_hold() sees it now (FREE: no limit)."""
        rl = self.limits.get(channel)
        if rl is None:
            return FREE
        return window_hold(rl, self._sent.get(channel, ()), len(self._held.get(channel, ())), now)

    def release(self, channel: str, now: float, out: list[Notification]) -> None:
        """What `channel` holds, if its window has room: as itself when one, else
        as one digest."""
        held = self._held.get(channel)
        if not held or channel not in self.limits or not self._admit(channel, now):
            return
        self._held[channel] = []
        if len(held) == 1:
            out.append(held[0])  # one held message is better sent as itself
            return
        d = make_digest(channel, held, "the rate limit")
        self._digests[d.key] = held
        out.append(d)

    def holds(self, channel: str) -> bool:
        """Whether `channel` holds anything (a wake-up for it still matters)."""
        return bool(self._held.get(channel))

    def digested(self, key: str) -> list[Notification]:
        """The notifications the digest with this key stood for (once)."""
        return self._digests.pop(key, [])

    def shift(self, step: float) -> None:
        """The wall clock stepped: the windows keep their distance from now."""
        for channel, sent in self._sent.items():
            self._sent[channel] = deque((t + step for t in sent), maxlen=sent.maxlen)
