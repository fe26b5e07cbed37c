"""Short-lived, single-use tickets for the live event stream.

A browser's EventSource cannot send an Authorization header, so the console
first asks for a ticket with its bearer token (POST /api/v1/events/ticket) and
opens GET /api/v1/events?ticket=... with it. A ticket rather than a cookie:
a cookie would be sent by the browser with every request, writes included,
which opens the API to cross-site request forgery and would have to be
guarded everywhere; and the token itself never goes in a URL (URLs end up in
logs and history). A ticket is good for TICKET_SECONDS, once, and only while
the token that asked for it is still configured (a reload may remove it).
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

TICKET_SECONDS = 30.0
MAX_TICKETS = 256  # outstanding in all; the oldest goes first
# outstanding per token: asking for more pushes out that token's own oldest, so
# one token asking in a loop cannot void the tickets other tokens just got
MAX_PER_TOKEN = 32  # as many as its streams: 20 tabs of one token loading at once


@dataclass(frozen=True, slots=True)
class Ticket:
    digest: str  # SHA-256 of the token that asked for it (api.tokens[].sha256)
    expires: float  # time.monotonic()


class Tickets:
    def __init__(self, seconds: float = TICKET_SECONDS) -> None:
        self.seconds = seconds
        self._open: OrderedDict[str, Ticket] = OrderedDict()  # oldest first
        self._mine: dict[str, deque[str]] = {}  # token digest -> its tickets, oldest first

    def issue(self, digest: str) -> str:
        now = time.monotonic()
        while self._open and next(iter(self._open.values())).expires <= now:
            self._open.popitem(last=False)
        for d in list(self._mine):  # forget the used and expired (as many as tokens)
            self._mine[d] = deque(t for t in self._mine[d] if t in self._open)
            if not self._mine[d]:
                del self._mine[d]
        mine = self._mine.setdefault(digest, deque())
        while len(mine) >= MAX_PER_TOKEN:
            self._open.pop(mine.popleft(), None)
        while len(self._open) >= MAX_TICKETS:  # many tokens at once
            self._open.popitem(last=False)
        ticket = secrets.token_urlsafe(24)
        self._open[ticket] = Ticket(digest, now + self.seconds)
        mine.append(ticket)
        return ticket

    def holder(self, ticket: str) -> str | None:
        """The token digest of a valid ticket, which stays valid (redeem uses it up)."""
        found = self._open.get(ticket)
        return found.digest if found is not None and found.expires > time.monotonic() else None

    def redeem(self, ticket: str) -> str | None:
        """The token digest of a valid ticket (which is used up), or None."""
        found = self._open.pop(ticket, None)
        if found is None or found.expires <= time.monotonic():
            return None
        return found.digest
