"""HTTP/1.1 on the wire: keep-alive connections on asyncio Protocols, responses
parsed by httptools (llhttp, the C parser uvicorn uses). HttpClient (http.py) is
the only user; it adds the deadline, the address policy and the error messages.

    parse_url       a URL -> Target: where to connect, and the request line's target
    encode_request  method, target, headers, body -> the request's bytes
    Pool            keep-alive connections per (scheme, host, port), lent one
                    request at a time; at most 10 per origin, FIFO waiters beyond
                    that, idle ones used again for up to 30 s
    Connection      one TCP or TLS connection; `exchange` writes a request and
                    returns its Response (status, Headers, capped body)

Why not httpx: it costs 1.4-4.5 ms of CPU per request here, this about 0.1 ms
(bench/http_client.py), and a burst of 1,000 alerts to three channels has 0.5 s.

Errors (the request is never sent on the first branch; the second may pass later):

    RequestError (ValueError)   the request cannot be sent as asked
    ├── InvalidURL
    ├── UnsupportedScheme       not http:// or https://
    └── InvalidHeader           a name that is not a token, a value with CR/LF/NUL
    WireError                   the exchange failed; `kind` names how
    ├── ConnectError            resolution, TCP connect or TLS handshake
    ├── ReadError               the connection failed while the response was due
    └── ProtocolError           not an HTTP/1.1 response, or one cut short
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import re
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

import httptools

__all__ = [
    "DEFAULT_PORTS",
    "ConnectError",
    "Connection",
    "Headers",
    "InvalidHeader",
    "InvalidURL",
    "Pool",
    "ProtocolError",
    "ReadError",
    "RequestError",
    "Response",
    "Target",
    "UnsupportedScheme",
    "WireError",
    "encode_request",
    "parse_url",
]

MAX_PER_ORIGIN = 10
IDLE_EXPIRY = 30.0  # seconds an idle connection may wait to be used again
# bytes read at a time, into one buffer per connection: with a plain Protocol,
# asyncio allocates 256 KiB for every read (an mmap, mremap and munmap each)
READ_BUFFER = 16 * 1024

Resolve = Callable[[str, int], Awaitable[list[str]]]  # host, port -> addresses to try

# --- errors -----------------------------------------------------------------------


class RequestError(ValueError):
    """The request cannot be sent as asked; sending it again will not help."""


class InvalidURL(RequestError):
    pass


class UnsupportedScheme(RequestError):
    pass


class InvalidHeader(RequestError):
    pass


class WireError(Exception):
    """The exchange failed; the message names no URL path, only addresses."""

    kind: str = "failed"


class ConnectError(WireError):
    kind = "connect failed"


class ReadError(WireError):
    kind = "read failed"


class ProtocolError(WireError):
    kind = "protocol error"


# --- requests ---------------------------------------------------------------------

DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(r"[a-z0-9._~!$&'()*+,;=:-]+")  # reg-name or IP literal, lower case
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token: header names, methods
_TARGET_SAFE = "/?:@!$&'()*+,;=-._~%"  # left as they are in path and query
_NEEDS_QUOTING = re.compile(r"[^A-Za-z0-9/?:@!$&'()*+,;=\-._~%]")


@dataclass(frozen=True, slots=True)
class Target:
    """An http(s) URL taken apart for sending."""

    scheme: str  # http | https
    host: str  # lower case, IDNA-encoded, no brackets
    port: int
    target: str  # path and query as the request line carries them
    host_header: str  # host[:port], an IPv6 address in brackets
    userinfo: tuple[str, str] | None  # user:password@ of the URL, decoded

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)


@functools.lru_cache(maxsize=256)  # a channel sends to the same few URLs again and again
def parse_url(url: str) -> Target:
    """Raises InvalidURL or UnsupportedScheme; neither message repeats the URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidURL("invalid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UnsupportedScheme("only http:// and https:// URLs")
    host = parts.hostname or ""
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidURL("invalid URL") from None
    if not _HOST.fullmatch(host):
        raise InvalidURL("invalid URL")
    default = DEFAULT_PORTS[scheme]
    shown = f"[{host}]" if ":" in host else host
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if _NEEDS_QUOTING.search(target):
        target = quote(target, safe=_TARGET_SAFE)  # spaces, non-ASCII: as UTF-8 escapes
    userinfo = None
    if parts.username or parts.password:  # as httpx: an empty "@" is no credential
        userinfo = (unquote(parts.username or ""), unquote(parts.password or ""))
    return Target(
        scheme,
        host,
        default if port is None else port,
        target,
        shown if port in (None, default) else f"{shown}:{port}",
        userinfo,
    )


def encode_request(
    method: str,
    target: Target,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    auth: tuple[str, str] | None = None,
) -> bytes:
    """The request's bytes. `headers` in rising precedence: a later name replaces
    an earlier one whatever its case. Host and Content-Length are always ours;
    `auth` becomes Basic authorization. InvalidHeader names the header, never its
    value (a value may be a secret)."""
    if not _is_token(method):
        raise InvalidHeader(f"{method!r} is not an HTTP method")
    chosen: dict[str, tuple[str, str]] = {"host": ("Host", target.host_header)}
    for name, value in headers:
        chosen[name.lower()] = (name, value)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
        chosen["authorization"] = ("Authorization", f"Basic {token}")
    chosen.pop("transfer-encoding", None)  # the body is always sent whole, with its length
    chosen.pop("content-length", None)
    if body or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
        chosen["content-length"] = ("Content-Length", str(len(body)))
    parts = [method, " ", target.target, " HTTP/1.1\r\n"]
    for name, value in chosen.values():
        if not _is_token(name):
            raise InvalidHeader(f"{name!r} is not a valid header name")
        parts += (name, ": ", value, "\r\n")
    parts.append("\r\n")
    head = "".join(parts)
    # a line break in a value would end its header and start one of the value's
    # choosing: the head may hold no CR or LF but the line ends (counted at C speed)
    lines = len(chosen) + 2
    if head.count("\n") != lines or head.count("\r") != lines or "\0" in head:
        for name, value in chosen.values():
            if "\r" in value or "\n" in value or "\0" in value:
                raise InvalidHeader(f"header {name}: the value contains CR, LF or NUL")
        raise InvalidHeader("the request head contains CR, LF or NUL")
    return head.encode() + body


@functools.lru_cache(maxsize=1024)  # the same few names and methods, request after request
def _is_token(text: str) -> bool:
    return _TOKEN.fullmatch(text) is not None


# --- responses --------------------------------------------------------------------


class Headers(Mapping[str, str]):
    """A response's headers, looked up in any case; a repeated header's values are
    joined with ", " (RFC 9110 5.3), as httpx.Headers.get gave them. Decoded on
    first use: most replies are a 2xx whose headers nobody reads."""

    __slots__ = ("_map", "_raw")

    def __init__(self, raw: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self._raw = raw
        self._map: dict[str, str] | None = None

    @property
    def _decoded(self) -> dict[str, str]:
        if self._map is None:
            found: dict[str, str] = {}
            for n, v in self._raw:
                name, value = n.decode("latin-1").lower(), v.decode("latin-1")
                found[name] = f"{found[name]}, {value}" if name in found else value
            self._map = found
        return self._map

    def __getitem__(self, name: str) -> str:
        return self._decoded[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded)

    def __len__(self) -> int:
        return len(self._decoded)

    def __repr__(self) -> str:
        return f"Headers({self._decoded!r})"


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Headers
    body: bytes  # at most the limit the request was sent with


# --- one connection ---------------------------------------------------------------


class Connection(asyncio.BufferedProtocol):
    """One HTTP/1.1 connection, lent to one request at a time by the Pool.

    httptools calls the on_* methods from inside buffer_updated. Once the peer
    closes, the socket fails, or a response says so, `reusable` is False for good.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._buffer = memoryview(bytearray(READ_BUFFER))
        self.closed = False
        self.keep_alive = False
        self.exchanges = 0
        self.idle_since = 0.0
        self._start(0)

    def _start(self, limit: int, head_only: bool = False) -> None:
        self._waiter: asyncio.Future[Response] | None = None
        self._limit = limit
        self._head_only = head_only
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._headers_done = False
        self._interim = False  # a 1xx response, followed by the real one
        self._body = bytearray()
        self._capped = False
        self.received = False  # some byte of the response has arrived

    @property
    def reusable(self) -> bool:
        return self.keep_alive and not self.closed

    def exchange(
        self, request: bytes, limit: int, head_only: bool = False
    ) -> asyncio.Future[Response]:
        """Write `request`; the future is its response, with at most `limit` body
        bytes (past them the connection is closed), or a WireError. A cancelled
        exchange leaves the connection unusable: the caller closes it. (A future,
        not a coroutine: one frame less on every request.)"""
        if self.closed or self._transport is None:
            raise ReadError("connection closed")
        self._start(limit, head_only)
        self.keep_alive = False  # until this response says otherwise
        self.exchanges += 1
        self._waiter = waiter = self._loop.create_future()
        self._transport.write(request)
        return waiter

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close without flushing or waiting: the request may still be unsent."""
        self.closed = True
        if self._transport is not None:
            self._transport.abort()

    # --- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        if self._waiter is None or self._waiter.done():
            # bytes nobody asked for (a late 408, garbage): the stream is out of step
            self.close()
            return
        self.received = True
        try:
            self._parser.feed_data(self._buffer[:nbytes])  # callbacks get copies
        except httptools.HttpParserUpgrade:
            self._finish(keep_alive=False)  # a 101 we never asked for: report it, close
        except httptools.HttpParserError as e:
            self._fail(ProtocolError(" ".join(str(e).split()) or "invalid response"))
        else:
            if self._capped and not self._waiter.done():
                self._finish(keep_alive=False)  # the cap is reached: stop reading here

    def eof_received(self) -> bool:
        self._ended(None)
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended(exc)

    # --- httptools callbacks -------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._waiter is None or self._waiter.done():
            self.keep_alive = False  # a second response to one request

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._headers_done:  # not chunked trailers
            self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._headers_done or self._waiter is None or self._waiter.done():
            return
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._interim = True
            return
        self._status = status
        self._headers_done = True
        if self._head_only:
            self._finish(keep_alive=False)  # the parser would wait for the announced body

    def on_body(self, body: bytes) -> None:
        if not self._headers_done or self._capped:
            return
        room = self._limit - len(self._body)
        if len(body) > room:
            self._body += body[:room]
            self._capped = True
        else:
            self._body += body

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            self._headers = []
            return
        if self._waiter is not None and not self._waiter.done():
            self._finish(keep_alive=self._parser.should_keep_alive())

    # --- endings -------------------------------------------------------------------

    def _finish(self, keep_alive: bool) -> None:
        assert self._waiter is not None
        self.keep_alive = keep_alive and not self._capped and not self.closed
        self._waiter.set_result(Response(self._status, Headers(self._headers), bytes(self._body)))
        if not self.keep_alive:
            self.close()

    def _fail(self, error: WireError) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        self.close()

    def _ended(self, exc: Exception | None) -> None:
        """The peer closed (exc None) or the socket failed."""
        self.closed = True
        if self._waiter is None or self._waiter.done():
            return
        if exc is not None:
            self._fail(ReadError(" ".join(str(exc).split()) or type(exc).__name__))
        elif self._headers_done and not self._framed():
            self._finish(keep_alive=False)  # a body without length ends with the connection
        elif not self.received:
            self._fail(ProtocolError("server disconnected without sending a response"))
        else:
            self._fail(ProtocolError("server disconnected before the response was complete"))

    def _framed(self) -> bool:
        """The body's end is announced (Content-Length or chunked), not the close."""
        for name, value in self._headers:
            low = name.lower()
            if low == b"content-length" or (low == b"transfer-encoding" and b"chunked" in value):
                return True
        return False


# --- the pool ---------------------------------------------------------------------


@dataclass(slots=True)
class _Origin:
    """One (scheme, host, port): its idle connections and who waits for one."""

    count: int = 0  # connections open or opening, idle or lent
    idle: deque[Connection] = field(default_factory=deque)  # oldest first
    # a waiter gets a connection to use, or None: a slot to open one in
    waiters: deque[asyncio.Future[Connection | None]] = field(default_factory=deque)


class Pool:
    """Keep-alive connections of one client, owned by the event loop that opened them.

    `send` lends a connection (an idle one, else a new one, else waits in FIFO
    order for one), exchanges one request on it and takes it back if the response
    allows. A reused connection that fails before any byte of the response gets
    the request once more on a fresh connection: the server may have closed it
    just as it was reused (the requests are idempotency-keyed; httpcore does the
    same). A cancelled exchange closes its connection, never returns it.
    """

    def __init__(
        self,
        resolve: Resolve,
        ssl_context: ssl.SSLContext,
        *,
        per_origin: int = MAX_PER_ORIGIN,
        idle_expiry: float = IDLE_EXPIRY,
    ) -> None:
        self._resolve = resolve
        self._ssl = ssl_context
        self._per_origin = per_origin
        self._idle_expiry = idle_expiry
        self._origins: dict[tuple[str, str, int], _Origin] = {}
        self._open: set[Connection] = set()
        self._closed = False

    @property
    def connections(self) -> int:
        """Connections open or opening (for tests and figures)."""
        return sum(o.count for o in self._origins.values())

    async def send(
        self, target: Target, request: bytes, limit: int, head_only: bool = False
    ) -> Response:
        """Raises WireError, or what `resolve` raises."""
        origin = self._origins.get(target.key)
        if origin is None:
            origin = self._origins[target.key] = _Origin()
        for attempt in (1, 2):
            conn = await self._acquire(origin)
            if conn is None:
                try:
                    conn = await self._connect(target)
                except BaseException:
                    self._give(origin, None)
                    raise
            reused = conn.exchanges > 0
            try:
                response = await conn.exchange(request, limit, head_only)
            except WireError:
                self._discard(origin, conn)
                if reused and not conn.received and attempt == 1:
                    continue
                raise
            except BaseException:  # cancelled or timed out: the response may still come
                self._discard(origin, conn)
                raise
            if conn.reusable and not self._closed:
                conn.idle_since = time.monotonic()
                self._give(origin, conn)
            else:
                self._discard(origin, conn)
            return response
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        self._closed = True
        for conn in self._open:
            # RuntimeError: the loop that opened it has closed, and the socket with it
            with contextlib.suppress(RuntimeError):
                conn.close()
        for origin in self._origins.values():
            for waiter in origin.waiters:
                if not waiter.done():
                    waiter.set_exception(ReadError("the client was closed"))
        self._open.clear()
        self._origins.clear()

    async def _acquire(self, origin: _Origin) -> Connection | None:
        """An idle connection, or None with a slot reserved to open one."""
        now = time.monotonic()
        while origin.idle:
            if now - origin.idle[0].idle_since > self._idle_expiry:
                self._discard(origin, origin.idle.popleft(), graceful=True)
                continue
            conn = origin.idle.pop()  # the most recent: the least likely to be closed
            if conn.reusable:  # connection_lost / eof_received have run for a closed one
                return conn
            self._discard(origin, conn)
        if origin.count < self._per_origin:
            origin.count += 1
            return None
        waiter: asyncio.Future[Connection | None] = asyncio.get_running_loop().create_future()
        origin.waiters.append(waiter)
        try:
            handed = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._give(origin, waiter.result())  # handed over as we were cancelled
            else:
                with contextlib.suppress(ValueError):
                    origin.waiters.remove(waiter)
            raise
        if handed is not None and not handed.reusable:
            self._open.discard(handed)
            handed.abort()
            return None  # its slot is ours now
        return handed

    def _give(self, origin: _Origin, conn: Connection | None) -> None:
        """Pass on a connection (None: a free slot) to the first waiter, else keep it
        idle (or, a slot, free it)."""
        while origin.waiters:
            waiter = origin.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        if conn is None:
            origin.count -= 1
        else:
            origin.idle.append(conn)

    def _discard(self, origin: _Origin, conn: Connection, graceful: bool = False) -> None:
        self._open.discard(conn)
        if graceful:
            conn.close()
        else:
            conn.abort()
        self._give(origin, None)

    async def _connect(self, target: Target) -> Connection:
        """A connection to the first vetted address that accepts, TLS checked
        against the host name (SNI too), not the address."""
        addresses = await self._resolve(target.host, target.port)
        loop = asyncio.get_running_loop()
        tls = self._ssl if target.scheme == "https" else None
        failure: OSError | None = None
        for address in addresses:
            try:
                _, conn = await loop.create_connection(
                    lambda: Connection(loop),
                    address,
                    target.port,
                    ssl=tls,
                    server_hostname=target.host if tls is not None else None,
                )
            except ssl.SSLError as e:
                # the certificate or TLS is the host's, not this address's: stop here
                raise ConnectError(" ".join(str(e).split())) from None
            except OSError as e:
                failure = e  # the next address, as a resolver-driven connect would
                continue
            if self._closed:
                conn.close()
                raise ReadError("the client was closed")
            self._open.add(conn)
            return conn
        raise ConnectError(" ".join(str(failure).split()) if failure else "no address")
