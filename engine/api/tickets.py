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
from collections import OrderedDict
from dataclasses import dataclass

TICKET_SECONDS = 30.0
MAX_TICKETS = 256  # outstanding; the oldest goes first


@dataclass(frozen=True, slots=True)
class Ticket:
    digest: str  # SHA-256 of the token that asked for it (api.tokens[].sha256)
    expires: float  # time.monotonic()


class Tickets:
    def __init__(self, seconds: float = TICKET_SECONDS) -> None:
        self.seconds = seconds
        self._open: OrderedDict[str, Ticket] = OrderedDict()

    def issue(self, digest: str) -> str:
        now = time.monotonic()
        while self._open and (
            len(self._open) >= MAX_TICKETS or next(iter(self._open.values())).expires <= now
        ):
            self._open.popitem(last=False)
        ticket = secrets.token_urlsafe(24)
        self._open[ticket] = Ticket(digest, now + self.seconds)
        return ticket

    def redeem(self, ticket: str) -> str | None:
        """The token digest of a valid ticket (which is used up), or None."""
        found = self._open.pop(ticket, None)
        if found is None or found.expires <= time.monotonic():
            return None
        return found.digest
