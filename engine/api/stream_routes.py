"""The live event stream: GET /api/v1/events as server-sent events.

Each event the daemon journals is sent, as it is folded into the state, as a
short summary (engine/runtime/fanout.py's `summary`: kind, seq, time, the alert
or silence it is about); a client reads the details from the other endpoints.
A client that falls behind is sent `event: dropped` and the stream ends: it
reconnects and reads the state afresh, and the daemon never waits for it.

Viewer role; at most MAX_STREAMS_PER_TOKEN streams per token (429 beyond) and
fanout.MAX_SUBSCRIBERS in all (503). A browser's EventSource cannot send
headers, so besides `Authorization: Bearer` the stream takes `?ticket=` from
POST /api/v1/events/ticket (single use, 30 s; see tickets.py for why not a cookie).
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import Response, StreamingResponse

from engine.api.auth import Principal, Unauthorized, authenticate, token_digest
from engine.api.request import Call
from engine.api.responses import JSON, ApiError, encode
from engine.api.tickets import TICKET_SECONDS
from engine.runtime.fanout import Subscription

# each event's frame, encoded once for all streams: the fan-out hands every
# subscriber the same summary dicts, and encoding them again per stream cost the
# loop 1-1.5 ms per stream for a burst of 200 events (bench/console.py). Held by
# the summary itself (kept alive here, so its id is not reused), oldest dropped.
_FRAMES: dict[int, tuple[dict[str, Any], bytes]] = {}
_FRAMES_MAX = 4096
HEARTBEAT_SECONDS = 15.0  # a comment line: proxies keep the connection, dead tokens are seen
RETRY_MS = 3000  # what EventSource waits before reconnecting by itself
# one token's streams at once (of fanout.MAX_SUBSCRIBERS in all): a client that
# opens streams in a loop cannot take every one and leave the others the 60 s poll,
# while a wall of screens sharing one viewer token (20 tabs) still follows live
MAX_STREAMS_PER_TOKEN = 32


async def events_ticket(call: Call) -> Response:
    """A single-use ticket for GET /api/v1/events?ticket=... (EventSource sends no headers)."""
    f = await call.fields()
    f.done()
    header = call.request.headers.get("authorization") or ""
    digest = token_digest(header.strip().partition(" ")[2].strip())
    ticket = call.state.tickets.issue(digest)
    await call.audit("events_ticket", {"result": "ok"})  # who follows the daemon live
    return JSON({"ticket": ticket, "expires_in": TICKET_SECONDS}, 201)


def _holder(call: Call, digest: str) -> Principal | None:
    """Who holds the token of `digest` now (a reload may have removed it)."""
    found = None
    for t in call.state.api.tokens:
        if hmac.compare_digest(digest, t.sha256.lower()):
            found = Principal(t.name, t.role)
    return found


async def events(call: Call) -> Response:
    q = call.request.query_params
    for k in q:
        if k != "ticket":
            raise ApiError(422, f"{k[:60]}: unknown query parameter")
    ticket = q.get("ticket")
    header = call.request.headers.get("authorization")
    if ticket is not None:
        # used up only once the stream is served: a stream refused for the limits
        # below leaves the ticket valid, to be tried again
        digest = call.state.tickets.holder(ticket)
        who = _holder(call, digest) if digest is not None else None
        if digest is None or who is None:
            raise ApiError(401, "ticket unknown, used or expired; ask POST /api/v1/events/ticket")
    else:
        try:
            who = authenticate(header, call.state.api.tokens)
        except Unauthorized as e:
            raise ApiError(401, e.message, {"WWW-Authenticate": e.challenge}) from None
        digest = token_digest((header or "").strip().partition(" ")[2].strip())
    mine = {s for s in call.state.streams.get(digest, ()) if not s.closed}
    if len(mine) >= MAX_STREAMS_PER_TOKEN:
        raise ApiError(
            429, f"this token has {MAX_STREAMS_PER_TOKEN} live event streams open; close one"
        )
    sub = call.facade.stream.subscribe()
    if sub is None:
        raise ApiError(503, "too many live event streams open; try again later")
    if ticket is not None:
        call.state.tickets.redeem(ticket)  # no await since holder(): still valid
    mine.add(sub)
    call.state.streams[digest] = mine
    return StreamingResponse(
        _stream(call, sub, digest),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(call: Call, sub: Subscription, digest: str) -> AsyncIterator[bytes]:
    try:
        yield f"retry: {RETRY_MS}\n: vigil events\n\n".encode()
        while True:
            batch = await sub.get(HEARTBEAT_SECONDS)
            if batch is None:
                if sub.dropped:
                    yield b'event: dropped\ndata: {"reason": "the client fell behind"}\n\n'
                return
            if not batch:
                if _holder(call, digest) is None:  # token removed by a reload
                    yield b'event: dropped\ndata: {"reason": "token no longer configured"}\n\n'
                    return
                yield b": keepalive\n\n"
                continue
            yield b"".join([_frame(ev) for ev in batch])
    finally:
        sub.close()


def _frame(ev: dict[str, Any]) -> bytes:
    """`id: <seq>` and `data: <json>` of one event, encoded once for every stream."""
    hit = _FRAMES.get(id(ev))
    if hit is not None and hit[0] is ev:
        return hit[1]
    seq = ev.get("seq")
    frame = (b"id: %d\n" % seq if isinstance(seq, int) else b"") + b"data: " + encode(ev) + b"\n\n"
    if len(_FRAMES) >= _FRAMES_MAX:
        del _FRAMES[next(iter(_FRAMES))]  # the oldest (dicts keep their order)
    _FRAMES[id(ev)] = (ev, frame)
    return frame
