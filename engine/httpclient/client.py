"""The safe outgoing HTTP client every HTTP channel uses, and what they share.

    HttpOptions      timeout, deny_networks, allow_networks, read from channel settings
    NetworkPolicy    which resolved addresses may be connected to
    HttpClient       one connection pool per channel (transport.py: aiohttp, through
                     the channel's or the environment's proxy): vetted addresses,
                     no redirects, one deadline per request, capped response
                     bodies, and every failure turned into a DeliveryError that
                     names no secret
    Settings         typed reads of a channel's settings, rejecting unknown keys
    HttpChannel      the small base class of the HTTP channel types

The formatting helpers the chat channels share (tone, summary, headline, ...)
are in engine/channels/formatting.py; URL and secret redaction, with the httpx
log filter, in redaction.py.

Addresses (engine/common/address_policy.py, shared with the http collector): the host is
resolved (loop.getaddrinfo, in aiohttp's resolver hook) before connecting and
the connection is made to the vetted address itself, so a name cannot resolve to one address when checked and
to another when used (DNS rebinding). TLS still uses the host name for SNI and
certificate checks. Cloud metadata and link-local addresses are refused always
(a URL that names one literally already at load); `deny_networks` /
`allow_networks` narrow further.

Secrets (redaction.py): error messages show URLs only as `scheme://host[:port]/…` (redact_url)
and have every secret value of the channel replaced by `***`. The request log
line (`HTTP Request: POST <url> "HTTP/1.1 200 OK"`, logger `httpx`, as under
httpx) shows the URL redacted; httpx's own lines, from the http collector, go
through the same redaction (redaction._RedactHttpxLog, installed when this module is imported).
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import logging
import math
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar
from urllib.parse import urlencode

import certifi

from engine import __version__
from engine.common import address_policy
from engine.common.address_policy import (
    ALWAYS_REFUSED,
    AddressRefused,
    IPNetwork,
    Unresolved,
    literal_refusal,
    never_contacted,
    parse_networks,
)
from engine.common.json_text import make_encoder
from engine.common.secret import Secret
from engine.config.model import Channel as ChannelConfig
from engine.config.secrets import reveal
from engine.config.settings import MISSING, SettingsReader
from engine.errors import DeliveryError
from engine.httpclient import proxies, transport
from engine.httpclient.redaction import redact_url, scrub_terms

__all__ = [
    "ALWAYS_REFUSED",
    "DEFAULT_TIMEOUT",
    "MAX_BODY",
    "AddressRefused",
    "HttpChannel",
    "HttpClient",
    "HttpOptions",
    "NetworkPolicy",
    "Reply",
    "Settings",
    "check_url",
    "classify",
    "dumps",
    "join",
    "never_contacted",
    "parse_retry_after",
    "prepare",
]

# each request at debug level (a burst is thousands; the journal records outcomes)
log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
MAX_BODY = 64 * 1024  # response bytes read; an error excerpt needs far less
MAX_EXCERPT = 200
USER_AGENT = f"vigil/{__version__}"

# --- addresses: the one policy, shared with the http collector (engine/common/address_policy.py)


@dataclass(frozen=True, slots=True)
class NetworkPolicy(address_policy.NetworkPolicy):
    """The shared policy; a name that does not resolve fails as transport.ConnectError,
    like every other connect failure of a channel."""

    async def resolve(self, host: str, port: int) -> list[str]:
        try:
            return await address_policy.NetworkPolicy.resolve(self, host, port)
        except Unresolved as e:
            raise transport.ConnectError(str(e)) from None


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # the CA bundle httpx used (certifi's), so trust is what it was; loading it
    # takes milliseconds, and one context serves every channel
    return ssl.create_default_context(cafile=certifi.where())


# --- responses ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """A response: status, headers and up to MAX_BODY bytes of the body."""

    status: int
    headers: transport.Headers  # case-insensitive; repeated headers joined with ", "
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            return None

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # an HTTP date is GMT by definition
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _excerpt(body: bytes) -> str:
    text = " ".join(body.decode("utf-8", "replace").split())
    return text if len(text) <= MAX_EXCERPT else text[:MAX_EXCERPT] + "…"


def classify(method: str, url: str, reply: Reply) -> DeliveryError | None:
    """None for 2xx; otherwise the DeliveryError the status calls for.

    429 and 5xx may pass: retryable, with Retry-After. 3xx is not followed: a
    webhook that moved must be reconfigured, and following would let a receiver
    send us (and the channel's secrets) elsewhere. Other 4xx will fail again.
    """
    status = reply.status
    if 200 <= status < 300:
        return None
    where = f"{method} {redact_url(url)}"
    reason = _reason(status)
    head = f"{where}: HTTP {status}{' ' + reason if reason else ''}"
    detail = _excerpt(reply.body)
    if 300 <= status < 400:
        location = reply.headers.get("location")
        target = f" to {redact_url(location)}" if location else ""
        return DeliveryError(
            f"{head}: redirect{target} not followed; configure the final URL", retryable=False
        )
    msg = f"{head}: {detail}" if detail else head
    if status == 429 or status >= 500:
        return DeliveryError(
            msg, retryable=True, retry_after=parse_retry_after(reply.headers.get("retry-after"))
        )
    return DeliveryError(msg, retryable=False)


def _describe(e: transport.WireError) -> str:
    """`connect failed: ...`, `read failed: ...` or `protocol error: ...`."""
    detail = " ".join(str(e).split())
    return f"{e.kind}: {detail}" if detail else e.kind


def _default(o: Any) -> Any:
    if isinstance(o, Secret):
        return "***"
    if isinstance(o, Mapping):
        return dict(o)
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    return str(o)


def _finite(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)  # NaN / Infinity are not JSON
    if isinstance(o, Mapping):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_finite(v) for v in o]
    return o


# the C encoder itself: json.dumps() builds a JSONEncoder for every request body
_encode = make_encoder(ensure_ascii=False, default=_default, allow_nan=False)


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON; values JSON cannot hold become strings."""
    try:
        text = _encode(obj)
    except ValueError:
        text = _encode(_finite(obj))
    return text.encode()


# --- the client ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """The settings every HTTP channel has: `timeout`, `deny_networks`,
    `allow_networks` and `proxy` (None: the environment's HTTPS_PROXY /
    HTTP_PROXY / NO_PROXY; "none": never a proxy; else the proxy's URL)."""

    timeout: float = DEFAULT_TIMEOUT
    policy: NetworkPolicy = NetworkPolicy()
    proxy: str | Secret | None = None

    @classmethod
    def read(cls, s: Settings) -> HttpOptions:
        timeout = s.duration("timeout", DEFAULT_TIMEOUT)
        if timeout <= 0:
            raise ValueError("timeout: must be more than 0s")
        proxy = s.text("proxy") if s.has("proxy") else None
        if proxy is not None and reveal(proxy) != proxies.DIRECT:
            try:
                proxies.check_proxy_url(reveal(proxy))
            except ValueError as e:
                shown = "(a secret)" if isinstance(proxy, Secret) else redact_url(proxy)
                raise ValueError(f"proxy: {shown}: {e} (or none)") from None
        return cls(
            timeout,
            NetworkPolicy(s.networks("deny_networks"), s.networks("allow_networks")),
            proxy,
        )


class HttpClient:
    """One channel's HTTP client.

    `request` sends one request within `timeout` (resolution, connect, send and
    reading the capped body together) and returns the Reply of a 2xx response;
    anything else raises DeliveryError (see classify); with check=False it
    returns every reply it got and the caller classifies. Its connections
    (transport.Transport, on aiohttp) are opened on first use in the running
    loop and owned here: `aclose` closes them.
    """

    def __init__(
        self,
        options: HttpOptions,
        secrets: Iterable[str | Secret | None] = (),
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.options = options
        proxy = None if options.proxy is None else reveal(options.proxy)
        chosen = proxies.Proxies(proxy)
        self._scrub_with = scrub_terms((*secrets, proxy, *chosen.secrets()))
        # loads the CA bundle (tens of ms) now, when channels are built at start or
        # reload, rather than in the middle of the first notification burst
        self._transport = transport.Transport(
            options.policy.resolve, ssl_context or _ssl_context(), chosen
        )

    def scrub(self, text: str) -> str:
        for term in self._scrub_with:
            text = text.replace(term, "***")
        return text

    def error(
        self, message: str, *, retryable: bool, retry_after: float | None = None
    ) -> DeliveryError:
        """A DeliveryError with the channel's secrets removed from the message."""
        return DeliveryError(self.scrub(message), retryable=retryable, retry_after=retry_after)

    async def request(
        self,
        method: str,
        url: str,
        *,
        payload: Any = None,
        content: bytes | None = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        check: bool = True,
    ) -> Reply:
        send_headers, body = prepare(payload=payload, content=content, form=form, headers=headers)
        start = time.monotonic()
        try:
            target = transport.parse_url(url)
            send = transport.check_headers(method, send_headers)
            async with asyncio.timeout(self.options.timeout):
                response = await self._transport.send(
                    method, target, send, body, auth or target.userinfo, MAX_BODY
                )
        except TimeoutError:
            raise self.error(
                f"{_where(method, url)}: timed out after {self.options.timeout:g}s", retryable=True
            ) from None
        except (AddressRefused, transport.RequestError) as e:
            raise self.error(f"{_where(method, url)}: {e}", retryable=False) from None
        except transport.WireError as e:
            raise self.error(f"{_where(method, url)}: {_describe(e)}", retryable=True) from None
        reply = Reply(response.status, response.headers, response.body)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s -> HTTP %d in %.0f ms",
                _where(method, url),
                reply.status,
                (time.monotonic() - start) * 1e3,
            )
        if check:
            self.check(method, url, reply)
        return reply

    def check(self, method: str, url: str, reply: Reply) -> None:
        """Raise the DeliveryError for a reply that is not 2xx (`request` does
        this unless called with check=False, for services whose error bodies
        say more than the status)."""
        err = classify(method, url, reply)
        if err is not None:
            raise self.error(str(err), retryable=err.retryable, retry_after=err.retry_after)

    async def aclose(self) -> None:
        await self._transport.aclose()


def prepare(
    *,
    payload: Any = None,
    content: bytes | None = None,
    form: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[list[tuple[str, str]], bytes]:
    """The headers (lowest precedence first) and the body bytes of a request, as
    `HttpClient.request` sends them; a channel's preview shows the same."""
    # the caller's headers replace these (identity: a compressed body could
    # inflate far past the capped read)
    send_headers = [("User-Agent", USER_AGENT), ("Accept-Encoding", "identity")]
    if payload is not None:
        content = dumps(payload)
        send_headers.append(("Content-Type", "application/json"))
    elif content is None and form is not None:
        content = urlencode(form).encode()
        send_headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    if headers:
        send_headers.extend(headers.items())
    return send_headers, content or b""


def _where(method: str, url: str) -> str:
    # built only for a message: redacting costs a URL parse
    return f"{method} {redact_url(url)}"


# --- settings -----------------------------------------------------------------------

_MISSING: Any = MISSING  # the reader's own sentinel: `get` tells it apart
# keys the loader keeps for itself; tolerated if a caller leaves them in settings
_COMMON = frozenset({"name", "type", "rate_limit", "templates"})


class Settings(SettingsReader):
    """A channel's settings (see engine/config/settings.py), plus URLs, headers, networks.
    Text settings of channels must not be empty."""

    def __init__(self, config: ChannelConfig) -> None:
        super().__init__(f"a {config.type} channel", config.settings, _COMMON)
        self.type_name = config.type

    def text(self, key: str, default: Any = _MISSING) -> str | Secret:
        v = self.get(key, default)
        if not isinstance(v, str | Secret) or not reveal(v):
            raise ValueError(f"{key}: expected a non-empty string")
        return v

    def optional(self, key: str) -> str | None:
        return self.string(key) if self.has(key) else None

    def url(self, key: str, default: Any = _MISSING) -> str | Secret:
        """An http(s) URL with a host; the message shows a secret one as ***."""
        return check_url(self.text(key, default), key)

    def urls(self, key: str) -> tuple[str | Secret, ...]:
        """A non-empty list of http(s) URLs."""
        v = self.texts(key)
        if not v:
            raise ValueError(f"{key}: expected at least one URL")
        return tuple(check_url(u, f"{key}[{i}]") for i, u in enumerate(v))

    def texts(self, key: str, default: Any = _MISSING) -> tuple[str | Secret, ...]:
        v = self.get(key, default)
        if not isinstance(v, list | tuple) or not all(
            isinstance(i, str | Secret) and reveal(i) for i in v
        ):
            raise ValueError(f"{key}: expected a list of non-empty strings")
        return tuple(v)

    def headers(self, key: str = "headers") -> Mapping[str, str | Secret]:
        v = self.get(key, {})
        if not isinstance(v, Mapping):
            raise ValueError(f"{key}: expected a mapping of header name to value")
        for k, val in v.items():
            if not isinstance(k, str) or not k or any(c in k for c in " :\r\n\t"):
                raise ValueError(f"{key}: {k!r} is not a valid header name")
            if not isinstance(val, str | Secret) or any(c in reveal(val) for c in "\r\n"):
                raise ValueError(f"{key}.{k}: expected a one-line string")
        return dict(v)

    def networks(self, key: str) -> tuple[IPNetwork, ...]:
        return parse_networks(self.get(key, ()), key)


def check_url(value: str | Secret, where: str) -> str | Secret:
    """`value` if it is an http(s) URL with a host; ValueError naming `where`."""
    shown = "(a secret)" if isinstance(value, Secret) else redact_url(value)
    try:
        target = transport.parse_url(reveal(value))
    except transport.UnsupportedScheme:
        raise ValueError(
            f"{where}: {shown}: expected an http:// or https:// URL with a host"
        ) from None
    except (transport.InvalidURL, TypeError):
        raise ValueError(f"{where}: {shown} is not a valid URL") from None
    refusal = literal_refusal(target.host)
    if refusal is not None:  # would be refused at every send: say so at load
        raise ValueError(f"{where}: {shown}: {refusal}")
    return value


def join(base: str | Secret, path: str) -> str:
    """`base` (revealed, without trailing slash) + `path`, for base_url settings."""
    return reveal(base).rstrip("/") + path


# --- the channels' common shape ------------------------------------------------------


class HttpChannel:
    """What the HTTP channel types share: a name, an HttpClient, `aclose`.

    Subclasses parse settings in `from_config`, build the payload and call
    `self.http.request`; they never retry or sleep (notify/retry.py does).
    """

    type_name: ClassVar[str]
    # the channel can close what it opened (an incident, an alert), so it also
    # gets resolved notifications for silenced or acknowledged alerts
    closes_incidents: ClassVar[bool] = False
    # the channel reads the notification's rendered title/body/html; False lets the
    # pipeline skip rendering templates for it (a burst renders thousands)
    uses_text: ClassVar[bool] = True
    # notifications sent at once (the dispatcher's sender tasks): each waits a
    # round trip, and a burst of a thousand groups must not queue behind one
    # another; below the client's 10 connections per host
    concurrency: ClassVar[int] = 8

    def __init__(
        self, name: str, options: HttpOptions, secrets: Iterable[str | Secret | None]
    ) -> None:
        self.name = name
        self.http = HttpClient(options, secrets)

    async def aclose(self) -> None:
        await self.http.aclose()
