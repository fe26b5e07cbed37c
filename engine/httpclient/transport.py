"""Outgoing HTTP on aiohttp: the connection pool, TLS and proxies of HttpClient
(client.py, the only user; it adds the deadline and the error messages).

    parse_url       a URL -> Target, or InvalidURL / UnsupportedScheme (no URL in
                    the message: it may hold a token)
    check_headers   a method and headers that cannot smuggle a second header line
    (proxies.py     which proxy a URL goes through)
    Transport       one aiohttp session per event loop: at most 10 connections per
                    origin, idle ones used again for up to 30 s, no redirects
                    followed, no cookies, bodies read up to a cap

Addresses: aiohttp's connector asks PolicyResolver (aio_hooks.py) for a host's
addresses, and that is the one address policy (engine/common/address_policy.py): it resolves first,
checks every address and returns only those that pass, so the connector never
opens a TCP connection to a refused one. aiohttp skips the resolver for an IP
literal, so Transport checks a literal host itself before sending. Through a
proxy, the proxy's own address is what is connected to and checked; the proxy
resolves the target's name, so for names deny_networks / allow_networks cannot
be enforced here (a literal target address still is).

Errors (the request is never sent on the first branch; the second may pass later):

    RequestError (ValueError)   the request cannot be sent as asked
    ├── InvalidURL
    ├── UnsupportedScheme       not http:// or https://
    └── InvalidHeader           a name that is not a token, a value with CR/LF/NUL
    WireError                   the exchange failed; `kind` names how
    ├── ConnectError            resolution, TCP connect, proxy or TLS handshake
    ├── ReadError               the connection failed while the response was due
    └── ProtocolError           not an HTTP/1.1 response, or one cut short
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import ssl
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from engine.common.address_policy import literal_ip
from engine.errors import HttpError
from engine.httpclient.proxies import Proxies, basic_auth

if TYPE_CHECKING:
    # imported when the first request is sent (engine/httpclient/aio_hooks.py): the
    # main process and `vigil validate` build channels but never send, and
    # aiohttp takes ~100 ms to import
    import aiohttp
    from yarl import URL

__all__ = [
    "DEFAULT_PORTS",
    "ConnectError",
    "Headers",
    "InvalidHeader",
    "InvalidURL",
    "ProtocolError",
    "ReadError",
    "RequestError",
    "Response",
    "Target",
    "Transport",
    "UnsupportedScheme",
    "WireError",
    "check_headers",
    "parse_url",
]

MAX_PER_ORIGIN = 10
IDLE_EXPIRY = 30.0  # seconds an idle connection may wait to be used again

Resolve = Callable[[str, int], Awaitable[list[str]]]  # host, port -> addresses to try

# --- errors -----------------------------------------------------------------------


class RequestError(HttpError, ValueError):
    """The request cannot be sent as asked; sending it again will not help."""


class InvalidURL(RequestError):
    pass


class UnsupportedScheme(RequestError):
    pass


class InvalidHeader(RequestError):
    pass


class WireError(HttpError):
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
    userinfo: tuple[str, str] | None  # user:password@ of the URL, decoded
    url: str  # what aiohttp is given, escaped: no userinfo (sent as Basic auth instead)


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
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if _NEEDS_QUOTING.search(target):
        target = quote(target, safe=_TARGET_SAFE)  # spaces, non-ASCII: as UTF-8 escapes
    shown = f"[{host}]" if ":" in host else host
    authority = shown if port in (None, default) else f"{shown}:{port}"
    sent = f"{scheme}://{authority}{target}"
    userinfo = None
    if parts.username or parts.password:  # as httpx: an empty "@" is no credential
        userinfo = (unquote(parts.username or ""), unquote(parts.password or ""))
    return Target(scheme, host, default if port is None else port, target, userinfo, sent)


def check_headers(method: str, headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The headers to send, a later name replacing an earlier one whatever its
    case; Content-Length and Transfer-Encoding are aiohttp's (the body is sent
    whole). InvalidHeader names the header, never its value (it may be a secret)."""
    if not _is_token(method):
        raise InvalidHeader(f"{method!r} is not an HTTP method")
    chosen: dict[str, tuple[str, str]] = {}
    for name, value in headers:
        if not _is_token(name):
            raise InvalidHeader(f"{name!r} is not a valid header name")
        if "\r" in value or "\n" in value or "\0" in value:
            raise InvalidHeader(f"header {name}: the value contains CR, LF or NUL")
        chosen[name.lower()] = (name, value)
    chosen.pop("transfer-encoding", None)
    chosen.pop("content-length", None)
    return dict(chosen.values())


@functools.lru_cache(maxsize=1024)  # the same few names and methods, request after request
def _is_token(text: str) -> bool:
    return _TOKEN.fullmatch(text) is not None


# --- responses --------------------------------------------------------------------


class Headers(Mapping[str, str]):
    """A response's headers, looked up in any case; a repeated header's values are
    joined with ", " (RFC 9110 5.3). Decoded on first use: most replies are a 2xx
    whose headers nobody reads."""

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


# --- the transport ------------------------------------------------------------------


_NO_BODY = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})


class Transport:
    """One client's connections, in one aiohttp session per event loop (a pooled
    connection belongs to the loop that opened it).

    A reused connection that fails before the response gets the request once
    more on a fresh connection: the server may have closed it just as it was
    reused (the requests are idempotency-keyed; aiohttp does this by itself for
    idempotent methods only). A cancelled request closes its connection.
    """

    def __init__(
        self,
        resolve: Resolve,
        ssl_context: ssl.SSLContext,
        proxies: Proxies,
        *,
        per_origin: int = MAX_PER_ORIGIN,
        idle_expiry: float = IDLE_EXPIRY,
    ) -> None:
        self._resolve = resolve
        self._ssl = ssl_context
        self.proxies = proxies
        self._per_origin = per_origin
        self._idle_expiry = idle_expiry
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._urls: dict[str, URL] = {}  # parsed once: a channel sends to few URLs
        self._hosts_checked: set[tuple[str, int]] = set()  # literals passed, names

    def _get(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop:
            from engine.httpclient import aio_hooks

            if self._session is not None:
                self._drop(self._session)
            self._session = aio_hooks.new_session(
                self._resolve, self._ssl, self._per_origin, self._idle_expiry
            )
            self._loop = loop
        return self._session

    @staticmethod
    def _drop(session: aiohttp.ClientSession) -> None:
        # its loop has gone, and its sockets with it: let go without awaiting
        connector = session.connector
        session.detach()
        if connector is not None:
            with contextlib.suppress(RuntimeError):
                connector._close()

    async def send(
        self,
        method: str,
        target: Target,
        headers: dict[str, str],
        body: bytes,
        auth: tuple[str, str] | None,
        limit: int,
    ) -> Response:
        """Raises WireError, RequestError, or what `resolve` raises."""
        proxy = self.proxies.choose(target.scheme, target.host, target.port)
        # aiohttp connects to an IP literal without asking the resolver: checked here
        await self._check_literal(target.host, target.port)
        if proxy is not None:
            await self._check_literal(proxy.host, proxy.port)
        session = self._get()
        import aiohttp

        from engine.httpclient.aio_hooks import REUSED

        if auth is not None:
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            headers["Authorization"] = basic_auth(*auth)
        url = self._urls.get(target.url)
        if url is None:
            from yarl import URL

            # encoded: yarl would otherwise re-quote the query (%2F -> /), and a
            # signed URL's query must reach the server byte for byte
            url = self._urls[target.url] = URL(target.url, encoded=True)
        data = body if body or method not in _NO_BODY else None
        for attempt in (1, 2):
            REUSED.set(False)
            try:
                resp = await session.request(
                    method,
                    url,
                    headers=headers,
                    data=data,
                    allow_redirects=False,
                    proxy=proxy.url if proxy is not None else None,
                    proxy_headers=proxy.headers if proxy is not None else None,
                )
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as e:
                if isinstance(e, aiohttp.ClientConnectorError) or not REUSED.get() or attempt == 2:
                    raise _wire_error(e) from None
                continue
            except aiohttp.InvalidURL:
                raise InvalidURL("invalid URL") from None
            except aiohttp.ClientError as e:
                raise _wire_error(e) from None
            except ValueError as e:  # aiohttp's own refusals of a URL or header
                raise InvalidHeader(" ".join(str(e).split())) from None
            return await _read(resp, limit)
        raise AssertionError("unreachable")

    async def _check_literal(self, host: str, port: int) -> None:
        """AddressRefused for a literal address the policy refuses (a name is
        checked by PolicyResolver, each time it is resolved)."""
        if (host, port) in self._hosts_checked:
            return
        if literal_ip(host) is not None:
            await self._resolve(host, port)  # raises AddressRefused
        self._hosts_checked.add((host, port))

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            with contextlib.suppress(RuntimeError):  # its loop has closed, its sockets too
                await session.close()


async def _read(resp: aiohttp.ClientResponse, limit: int) -> Response:
    """The response with up to `limit` body bytes; past them its connection is closed."""
    import aiohttp

    body = bytearray()
    try:
        while len(body) < limit:
            chunk = await resp.content.read(limit - len(body))
            if not chunk:
                break
            body += chunk
    except aiohttp.ClientError as e:
        resp.close()
        raise _wire_error(e) from None
    except BaseException:
        resp.close()  # cancelled or timed out: the rest may still come
        raise
    if resp.content.at_eof():
        resp.release()
    else:
        resp.close()  # the cap is reached: stop reading here
    return Response(resp.status, Headers(resp.raw_headers), bytes(body))


def _wire_error(e: aiohttp.ClientError) -> WireError:
    import aiohttp

    if isinstance(e, aiohttp.ClientConnectorCertificateError):
        return ConnectError(_one_line(e.certificate_error))
    if isinstance(e, aiohttp.ClientConnectorError):
        return ConnectError(_one_line(e.os_error))
    if isinstance(e, aiohttp.ClientHttpProxyError):
        return ConnectError(f"the proxy answered HTTP {e.status} {e.message}".strip())
    if isinstance(e, aiohttp.ClientSSLError):
        return ConnectError(_one_line(e))
    if isinstance(e, aiohttp.ServerDisconnectedError):
        return ProtocolError("server disconnected without sending a response")
    if isinstance(e, aiohttp.ClientPayloadError):
        return ProtocolError("server disconnected before the response was complete")
    if isinstance(e, aiohttp.ClientResponseError):
        return ProtocolError(_one_line(e.message) or "invalid response")
    if isinstance(e, aiohttp.ClientOSError):
        return ReadError(_one_line(e))
    return WireError(_one_line(e))


def _one_line(e: Any) -> str:
    return " ".join(str(e).split()) or type(e).__name__
