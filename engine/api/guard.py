"""The API's HTTP protocol: uvicorn's httptools protocol with limits on what a
client may hold of the daemon before it has sent a whole request.

Most of the API needs no token, so a client need not be trusted to be quick or
small. uvicorn's own limits do not cover it: a connection that sends nothing, or
a header a byte at a time, is kept forever, and every connection counts toward
`limit_concurrency`, so 300 idle sockets made /health answer 503; and httptools
buffers a header of any size (four 32 MB headers took ~200 MB). So:

* a request (headers and body) must arrive within REQUEST_SECONDS of the
  connection or of the previous response, else the connection is closed;
* headers larger than MAX_HEADER_BYTES or more than MAX_HEADERS fields are
  refused with 431 and the connection closed, before more of them is buffered;
* a client holds at most PER_CLIENT connections and all clients MAX_CONNECTIONS:
  a new connection over either limit closes the oldest connection of that
  client (or of the client holding most) that is idle or still sending its
  request, never one whose request is being answered. A flood of idle or
  half-sent sockets therefore costs the flood its own oldest sockets, and
  /health, /ready and everyone else keep getting answers.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import Counter
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from engine.errors import VigilError

log = logging.getLogger("vigil.api")

REQUEST_SECONDS = 10.0
MAX_HEADER_BYTES = 64 * 1024  # request line and headers, as nginx's 4 x 16k buffers
MAX_HEADERS = 100
PER_CLIENT = 64


def _max_connections() -> int:
    """Well below the descriptor limit: the journal, sockets to receivers and
    collectors need theirs, and an accept failing with EMFILE stalls accepting."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1024
    return max(32, min(1024, soft // 4))


MAX_CONNECTIONS = _max_connections()


class _Refused(VigilError):
    """Raised in a parser callback to stop parsing a request refused mid-way."""


class GuardedHttpTools(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._since = 0.0  # when this connection began waiting for its current request
        self._awaiting = True  # reading a request: no request of it is being answered
        self._header_bytes = 0
        self._headers_done = False
        self._header_count = 0
        self._header_size = 0
        self._refusal: tuple[int, str] | None = None
        self._deadline: asyncio.TimerHandle | None = None

    # -- connections ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait_for_request()
        self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _host(self) -> str:
        return self.client[0] if self.client else ""

    def _evictable(self) -> bool:
        """Idle, or still sending its request: nothing of it is being answered."""
        return self._awaiting and not self.pipeline and not self.transport.is_closing()

    def _make_room(self) -> None:
        conns = [
            c
            for c in self.connections
            if isinstance(c, GuardedHttpTools) and not c.transport.is_closing()
        ]
        per_host = Counter(c._host() for c in conns)
        host = self._host()
        if per_host[host] > PER_CLIENT:
            self._evict_oldest(host, conns)
        if len(conns) > MAX_CONNECTIONS:
            self._evict_oldest(per_host.most_common(1)[0][0], conns)

    def _evict_oldest(self, host: str, conns: list[GuardedHttpTools]) -> None:
        old = [c for c in conns if c is not self and c._host() == host and c._evictable()]
        if not old:
            # every other connection of it is being answered: this one waits its turn
            # by not being served at all
            self._reply_and_close(503, "too many connections from this client")
            return
        min(old, key=lambda c: c._since).transport.close()

    # -- the request deadline --------------------------------------------------------
    def _wait_for_request(self) -> None:
        self._cancel_deadline()
        self._awaiting = True
        self._since = self.loop.time()
        self._deadline = self.loop.call_later(REQUEST_SECONDS, self._too_slow)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self._awaiting and not self.transport.is_closing():
            # headers never finished: say so; a body stalled mid-way: just close
            if not self._headers_done:
                self._reply_and_close(408, "request not received in time")
            else:
                self.transport.close()

    # -- requests ---------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        # uvicorn's, with the size check and the refusals' own status
        self._unset_keepalive_if_required()
        if not self._headers_done:
            self._header_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            status, message = self._refusal or (400, "invalid HTTP request")
            self._reply_and_close(status, message)
            return
        if not self._headers_done and self._header_bytes > MAX_HEADER_BYTES:
            self._reply_and_close(431, f"request headers larger than {MAX_HEADER_BYTES} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0
        self._header_size = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        # counted here too: headers that arrive whole in one read are never
        # incomplete after it, so data_received's check does not see them
        self._header_count += 1
        self._header_size += len(name) + len(value) + 4
        if self._header_count > MAX_HEADERS:
            self._refusal = (431, f"more than {MAX_HEADERS} header fields")
            raise _Refused
        if self._header_size > MAX_HEADER_BYTES:
            self._refusal = (431, f"request headers larger than {MAX_HEADER_BYTES} bytes")
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._headers_done = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        # answered before its body was read (413): the next request's deadline stands
        answered = self.cycle is not None and self.cycle.response_complete
        super().on_message_complete()
        self._headers_done = False
        self._header_bytes = 0
        if not answered:
            self._awaiting = False  # being answered now: the deadline no longer applies
            self._cancel_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self._wait_for_request()

    def _reply_and_close(self, status: int, message: str) -> None:
        log.debug("refused a request from %s: %d %s", self._host(), status, message)
        body = message.encode()
        self.transport.write(
            b"".join(
                (
                    STATUS_LINE[status],
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: %d\r\n" % len(body),
                    b"connection: close\r\n\r\n",
                    body,
                )
            )
        )
        self.transport.close()
