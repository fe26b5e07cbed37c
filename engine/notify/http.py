"""The safe outgoing HTTP client every HTTP channel uses, and what they share.

    HttpOptions      timeout, deny_networks, allow_networks, read from channel settings
    NetworkPolicy    which resolved addresses may be connected to
    HttpClient       one httpx.AsyncClient per channel: vetted addresses, no redirects,
                     one deadline per request, capped response bodies, and every
                     failure turned into a DeliveryError that names no secret
    Settings         typed reads of a channel's settings, rejecting unknown keys
    HttpChannel      the small base class of the HTTP channel types
    tone, summary .. the few formatting helpers the chat channels share

Addresses: the host is resolved (loop.getaddrinfo) before connecting and the
connection is made to the vetted address itself, so a name cannot resolve to one
address when checked and to another when used (DNS rebinding). TLS still uses
the host name for SNI and certificate checks. Cloud metadata and link-local
addresses are refused always; `deny_networks` / `allow_networks` narrow further.

Secrets: error messages show URLs only as `scheme://host[:port]/…` (redact_url)
and have every secret value of the channel replaced by `***`; httpx's own
request log line goes through the same redaction (see _RedactHttpxLog).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import importlib.util
import ipaddress
import json
import logging
import math
import re
import socket
import ssl
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import httpcore
import httpx

from engine import __version__
from engine.config.model import Channel as ChannelConfig
from engine.config.secrets import Secret, reveal
from engine.errors import DeliveryError, VigilError
from engine.notify.base import AlertView, Notification
from engine.settings import MISSING, SettingsReader

__all__ = [
    "ALWAYS_REFUSED",
    "COLOURS",
    "DEFAULT_TIMEOUT",
    "MAX_BODY",
    "SEVERITY_RANK",
    "AddressRefused",
    "GuardedTransport",
    "HttpChannel",
    "HttpClient",
    "HttpOptions",
    "NetworkPolicy",
    "Reply",
    "Settings",
    "Tone",
    "alert_tone",
    "check_url",
    "classify",
    "dumps",
    "headline",
    "join",
    "never_contacted",
    "parse_retry_after",
    "redact_url",
    "summary",
    "tone",
    "truncate",
    "value_text",
]

log = logging.getLogger(__name__)

# httpcore 1.0 imports sniffio inside current_async_library(), which runs at every
# lock, event and semaphore setup: several times per request. anyio >= 4.11 no
# longer installs sniffio, and Python does not cache a failed import, so each of
# those searched all of sys.path again (about 2 ms of CPU per request, 10x httpx's
# own cost; encode/httpcore discussion #1102). A None entry makes the import fail at
# once; it only ever stands for a module that is not installed.
if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

DEFAULT_TIMEOUT = 10.0
MAX_BODY = 64 * 1024  # response bytes read; an error excerpt needs far less
MAX_EXCERPT = 200
USER_AGENT = f"vigil/{__version__}"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Never contacted, whatever the configuration says: metadata services hand out
# machine credentials, and link-local / unspecified addresses have no business
# being a notification target (0.0.0.0 reaches localhost on Linux).
ALWAYS_REFUSED: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",  # link-local: AWS, GCP, Azure, OpenStack ... metadata, ECS credentials
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "0.0.0.0/8",
        "::/128",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


# --- addresses --------------------------------------------------------------------


class AddressRefused(VigilError):
    """A request's host resolved only to addresses the policy refuses. Raised inside
    the transport; HttpClient turns it into a non-retryable DeliveryError."""


def _embedded_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (::ffff:a.b.c.d, 64:ff9b::a.b.c.d)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _forms(ip: IPAddress) -> tuple[IPAddress, ...]:
    v4 = _embedded_v4(ip)
    return (ip,) if v4 is None else (ip, v4)


def never_contacted(ip: IPAddress) -> bool:
    """A metadata, link-local or unspecified address: refused whatever the settings."""
    return any(f in n for f in _forms(ip) for n in ALWAYS_REFUSED if n.version == f.version)


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """deny wins over allow; an empty allow list allows everything not denied."""

    deny: tuple[IPNetwork, ...] = ()
    allow: tuple[IPNetwork, ...] = ()

    def refusal(self, ip: IPAddress) -> str | None:
        """Why `ip` may not be contacted, or None if it may."""
        if never_contacted(ip):
            return f"{ip} is a link-local / cloud metadata address, never contacted"
        forms = _forms(ip)
        for n in self.deny:
            if any(n.version == f.version and f in n for f in forms):
                return f"{ip} is in deny_networks ({n})"
        if self.allow and not any(
            n.version == f.version and f in n for f in forms for n in self.allow
        ):
            return f"{ip} is not in allow_networks"
        return None

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses of `host` that may be contacted, in resolver order.

        Raises AddressRefused when there are none, or when any address is a
        metadata / link-local one (a name pointing there is an attack, not a
        dual-stack accident); httpcore.ConnectError when the name does not resolve.
        """
        host = host.strip("[]")
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except (OSError, UnicodeError) as e:
            raise httpcore.ConnectError(f"cannot resolve {host}: {e}") from None
        allowed: list[str] = []
        reasons: list[str] = []
        for *_, sockaddr in infos:
            text = str(sockaddr[0])
            ip = ipaddress.ip_address(text.split("%", 1)[0])
            reason = self.refusal(ip)
            if reason is None:
                if text not in allowed:
                    allowed.append(text)
                continue
            if host != str(ip):
                reason = f"{host} resolves to {reason}"
            if never_contacted(ip):
                raise AddressRefused(f"address refused: {reason}")
            reasons.append(reason)
        if not allowed:
            raise AddressRefused(f"address refused: {'; '.join(reasons) or host}")
        return allowed


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves and vets the host, then connects to a vetted address. httpcore
    still does TLS with the host name, so SNI and certificate checks are unchanged."""

    def __init__(self, policy: NetworkPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        *others, last = await self._policy.resolve(host, port)
        for address in others:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                continue  # the next address, as a resolver-driven connect would
        return await self._inner.connect_tcp(last, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("unix sockets are not used by HTTP channels")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # loading the CA bundle takes milliseconds; one context serves every channel
    return httpx.create_ssl_context(trust_env=False)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with the vetting network backend underneath."""

    def __init__(self, policy: NetworkPolicy) -> None:
        limits = httpx.Limits(max_connections=10, max_keepalive_connections=5, keepalive_expiry=30)
        super().__init__(verify=_ssl_context(), trust_env=False, limits=limits)
        # httpx takes no network backend argument; its pool is rebuilt with ours
        # (the only private detail we rely on; the contract tests catch a change)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(policy),
        )


# --- URLs, secrets and logs ---------------------------------------------------------


def redact_url(url: str | httpx.URL | Secret) -> str:
    """`scheme://host[:port]` plus `/…` when there was a path or query: tokens live
    in paths (Slack, Discord, Telegram), queries and userinfo, never in the host."""
    if isinstance(url, Secret):
        url = url.reveal()
    try:
        u = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<invalid url>"
    if not u.host:
        return "<invalid url>"
    host = f"[{u.host}]" if ":" in u.host else u.host
    out = f"{u.scheme}://{host}" + (f":{u.port}" if u.port is not None else "")
    if u.path not in ("", "/") or u.query:
        out += "/…"
    return out


class _RedactHttpxLog(logging.Filter):
    """httpx logs `HTTP Request: POST <full url>` at INFO, and httpcore logs the
    response headers at DEBUG, where a Location may repeat the URL (an http ->
    https redirect): both may hold a token, so both show URLs redacted."""

    _LOCATION = re.compile(r"(\(b'location', b')([^']*)(')", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(
                redact_url(a) if isinstance(a, httpx.URL) else a for a in record.args
            )
        elif isinstance(record.msg, str) and "b'location'" in record.msg.lower():
            record.msg = self._LOCATION.sub(
                lambda m: m.group(1) + redact_url(m.group(2)) + m.group(3), record.msg
            )
        return True


for _name in ("httpx", "httpcore.http11", "httpcore.http2"):
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, _RedactHttpxLog) for f in _logger.filters):
        _logger.addFilter(_RedactHttpxLog())


def _scrub_terms(values: Iterable[str | Secret | None]) -> tuple[str, ...]:
    """The strings to hide from messages: each secret value; of a URL, its path,
    query and password (a receiver may echo them in an error body), not its host."""
    terms: set[str] = set()
    for v in values:
        text = "" if v is None else reveal(v)
        url = None
        if "://" in text:
            with contextlib.suppress(httpx.InvalidURL, ValueError):
                url = httpx.URL(text)
        if url is None:
            terms.add(text)
        else:
            raw_path = url.raw_path.split(b"?", 1)[0].decode("ascii", "replace")
            terms.update((url.path, raw_path, url.query.decode(), url.password or ""))
    # hiding "ab" or "/" everywhere would garble messages, not protect anything
    return tuple(sorted((t for t in terms if len(t) > 3), key=len, reverse=True))


# --- responses ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """A response: status, headers and up to MAX_BODY bytes of the body."""

    status: int
    headers: httpx.Headers
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
    try:
        reason = httpx.codes.get_reason_phrase(status)
    except ValueError:
        reason = ""
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


def _describe(e: httpx.HTTPError) -> str:
    kinds: dict[type[httpx.HTTPError], str] = {
        httpx.ConnectTimeout: "connect timeout",
        httpx.ReadTimeout: "read timeout",
        httpx.WriteTimeout: "write timeout",
        httpx.PoolTimeout: "pool timeout",
        httpx.ConnectError: "connect failed",
        httpx.ReadError: "read failed",
        httpx.WriteError: "write failed",
        httpx.RemoteProtocolError: "protocol error",
        httpx.LocalProtocolError: "protocol error",
        httpx.UnsupportedProtocol: "unsupported protocol",
    }
    kind = kinds.get(type(e), type(e).__name__)
    detail = " ".join(str(e).split())
    return f"{kind}: {detail}" if detail else kind


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


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON; values JSON cannot hold become strings."""
    try:
        text = json.dumps(
            obj, default=_default, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    except ValueError:
        text = json.dumps(_finite(obj), default=_default, ensure_ascii=False, separators=(",", ":"))
    return text.encode()


# --- the client ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """The settings every HTTP channel has: `timeout`, `deny_networks`, `allow_networks`."""

    timeout: float = DEFAULT_TIMEOUT
    policy: NetworkPolicy = NetworkPolicy()

    @classmethod
    def read(cls, s: Settings) -> HttpOptions:
        timeout = s.duration("timeout", DEFAULT_TIMEOUT)
        if timeout <= 0:
            raise ValueError("timeout: must be more than 0s")
        return cls(
            timeout, NetworkPolicy(s.networks("deny_networks"), s.networks("allow_networks"))
        )


class HttpClient:
    """One channel's HTTP client.

    `request` sends one request within `timeout` (resolution, connect, send and
    reading the capped body together) and returns the Reply of a 2xx response;
    anything else raises DeliveryError (see classify); with check=False it
    returns every reply it got and the caller classifies. The client is created on
    first use in the running loop and owned here: `aclose` releases it.
    """

    def __init__(self, options: HttpOptions, secrets: Iterable[str | Secret | None] = ()) -> None:
        self.options = options
        self._scrub_with = _scrub_terms(secrets)
        # loads the CA bundle (tens of ms) now, when channels are built at start or
        # reload, rather than in the middle of the first notification burst
        _ssl_context()
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _get(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        # pooled connections belong to the loop that opened them
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(
                transport=GuardedTransport(self.options.policy),
                # the asyncio deadline in request() is the real, total budget;
                # httpx's per-phase timeouts only back it up
                timeout=httpx.Timeout(self.options.timeout + 1.0),
                follow_redirects=False,
                trust_env=False,
                # identity: a compressed body could inflate far past the capped read
                headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            )
            self._loop = loop
        return self._client

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
        where = f"{method} {redact_url(url)}"
        send_headers = dict(headers or {})
        if payload is not None:
            content = dumps(payload)
            send_headers.setdefault("Content-Type", "application/json")
        start = time.monotonic()
        try:
            async with asyncio.timeout(self.options.timeout):
                async with self._get().stream(
                    method, url, content=content, data=form, headers=send_headers, auth=auth
                ) as response:
                    body = await _read_capped(response)
                    reply = Reply(response.status_code, response.headers, body)
        except TimeoutError:
            raise self.error(
                f"{where}: timed out after {self.options.timeout:g}s", retryable=True
            ) from None
        except AddressRefused as e:
            raise self.error(f"{where}: {e}", retryable=False) from None
        except httpx.InvalidURL:
            raise self.error(f"{where}: invalid URL", retryable=False) from None
        except httpx.UnsupportedProtocol:
            raise self.error(f"{where}: only http:// and https:// URLs", retryable=False) from None
        except httpx.HTTPError as e:
            raise self.error(f"{where}: {_describe(e)}", retryable=True) from None
        log.debug("%s -> HTTP %d in %.0f ms", where, reply.status, (time.monotonic() - start) * 1e3)
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
        client, self._client = self._client, None
        if client is not None:
            # RuntimeError: it was opened on a loop that has since closed
            with contextlib.suppress(RuntimeError):
                await client.aclose()


async def _read_capped(response: httpx.Response, limit: int = MAX_BODY) -> bytes:
    # past the limit we stop; leaving the stream unread closes the connection
    buf = bytearray()
    async for chunk in response.aiter_bytes():
        buf += chunk
        if len(buf) >= limit:
            return bytes(buf[:limit])
    return bytes(buf)


# --- settings -----------------------------------------------------------------------

_MISSING: Any = MISSING  # the reader's own sentinel: `get` tells it apart
# keys the loader keeps for itself; tolerated if a caller leaves them in settings
_COMMON = frozenset({"name", "type", "rate_limit", "templates"})


class Settings(SettingsReader):
    """A channel's settings (see engine/settings.py), plus URLs, headers, networks.
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
        values = self.get(key, ())
        if not isinstance(values, list | tuple):
            raise ValueError(f"{key}: expected a list of networks such as 10.0.0.0/8")
        out: list[IPNetwork] = []
        for i, v in enumerate(values):
            try:
                out.append(ipaddress.ip_network(str(v), strict=False))
            except ValueError:
                raise ValueError(f"{key}[{i}]: {v!r} is not a network such as 10.0.0.0/8") from None
        return tuple(out)


def check_url(value: str | Secret, where: str) -> str | Secret:
    """`value` if it is an http(s) URL with a host; ValueError naming `where`."""
    shown = "(a secret)" if isinstance(value, Secret) else redact_url(value)
    try:
        parsed = httpx.URL(reveal(value))
    except (httpx.InvalidURL, TypeError, ValueError):
        raise ValueError(f"{where}: {shown} is not a valid URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{where}: {shown}: expected an http:// or https:// URL with a host")
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

    def __init__(
        self, name: str, options: HttpOptions, secrets: Iterable[str | Secret | None]
    ) -> None:
        self.name = name
        self.http = HttpClient(options, secrets)

    async def aclose(self) -> None:
        await self.http.aclose()


# --- formatting the chat channels share -------------------------------------------------

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2, "emergency": 3}
COLOURS = {
    "info": "#439FE0",
    "warning": "#FFA500",
    "critical": "#E01E5A",
    "emergency": "#8B0000",
    "resolved": "#2EB67D",
}
Tone = Literal["info", "warning", "critical", "emergency", "resolved"]
_TONES: dict[str, Tone] = {
    "info": "info",
    "warning": "warning",
    "critical": "critical",
    "emergency": "emergency",
}


def alert_tone(a: AlertView) -> Tone:
    """`resolved`, or the alert's severity (an unknown one counts as warning)."""
    return "resolved" if a.status == "resolved" else _TONES.get(a.severity, "warning")


def tone(n: Notification) -> Tone:
    """`resolved` when nothing fires, else the highest firing severity."""
    firing = n.firing
    if not firing:
        return "resolved"
    return alert_tone(max(firing, key=lambda a: SEVERITY_RANK.get(a.severity, 1)))


def summary(a: AlertView) -> str:
    """The alert's one-line headline: its summary annotation, else rule and labels."""
    s = a.annotations.get("summary")
    if s:
        return s
    labels = ", ".join(f"{k}={v}" for k, v in a.labels.items() if k not in ("rule", "severity"))
    return f"{a.rule} ({labels})" if labels else a.rule


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def value_text(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def headline(n: Notification) -> str:
    """The notification's title; a plain one when the template rendered nothing
    (services refuse an empty title)."""
    if n.title.strip():
        return n.title.strip()
    rules = sorted({a.rule for a in n.alerts})
    what = ", ".join(rules[:3]) + (" …" if len(rules) > 3 else "")
    return f"[{n.status.upper()}] {what}" if what else f"vigil {n.kind}"
