"""`http`: probe URLs the way an operator checks a health endpoint.

One `httpx.AsyncClient` per collector, reused across collects (keep-alive), all
targets probed concurrently, each within `timeout`. A target that fails
(refused, timed out, TLS error) is a value, `up: false` with an `error`; the
collector itself fails only when nothing could be tried.

Settings: `url` (flat sample) or `targets: [url | {url, labels}]` (for `each`),
`method`, `headers` (values may be secrets), `body`, `expect_status` (int or
list; 200), `body_regex`, `json_path` (`$.a.b[0].c`, `$['key']`), `verify_tls`
(true), `ca_file`, `follow_redirects` (false), `max_body_bytes` (1MiB), `proxy`,
`deny_networks` / `allow_networks` (as for HTTP channels).
The environment's proxy variables and .netrc are not used (trust_env=False): a
probe should do exactly what its configuration says.

Addresses follow the one policy of engine/common/address_policy.py, the channels' own:
every connection (the first and each one a redirect leads to) resolves its host
FIRST, checks every address (cloud metadata and link-local ones are never
contacted, then deny_networks / allow_networks) and connects only to an address
that passed, through _VettedBackend, httpcore's network backend. A name that
resolves to a metadata address is refused without a TCP handshake; a URL that
names one literally is refused at load (`vigil validate`). With a proxy, the
proxy's address is what is checked (the proxy resolves the target).
"""

from __future__ import annotations

import asyncio
import calendar
import json
import re
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import httpcore
import httpx

from engine import __version__
from engine.collectors._util import Settings, seconds
from engine.collectors.base import Sample
from engine.common import json_bounded
from engine.common.address_policy import (
    AddressRefused,
    NetworkPolicy,
    Unresolved,
    literal_refusal,
    parse_networks,
)
from engine.common.matchers import MatcherError, Regex, compile_regex
from engine.common.secret import Secret
from engine.config.model import CollectorConfig
from engine.config.secrets import reveal
from engine.errors import CollectorError

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
TARGET_METRICS = frozenset(
    {"up", "status", "ok", "latency_ms", "body_match", "json_value", "tls_days_left", "error"}
)
COUNTS = frozenset({"up_count", "down_count", "ok_count"})
LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
THREAD_BODY = 64 * 1024  # bodies larger than this are checked off the event loop
MAX_ERROR = 300

JsonPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Target:
    url: str | Secret
    labels: Mapping[str, str]  # `url` (secrets shown as ***) plus the configured labels


@dataclass(frozen=True, slots=True)
class HttpSettings:
    targets: tuple[Target, ...]
    flat: bool  # configured with `url`: the target's metrics also at the top level
    method: str = "GET"
    headers: Mapping[str, str | Secret] | None = None
    body: str | Secret | None = None
    expect_status: frozenset[int] = frozenset({200})
    body_regex: Regex | None = None  # RE2: a hostile body cannot make it backtrack
    json_path: JsonPath | None = None
    json_path_text: str = ""
    verify_tls: bool = True
    ca_file: str | None = None
    follow_redirects: bool = False
    max_body_bytes: int = 1024 * 1024
    proxy: str | Secret | None = None
    policy: NetworkPolicy = field(default_factory=NetworkPolicy)


class _VettedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses the policy let
    through: the host is resolved here, before any connection, and the TCP
    connection goes to a vetted address (TLS still checks the host name)."""

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
        try:
            addresses = await self._policy.resolve(host, port)
        except Unresolved as e:
            raise httpcore.ConnectError(str(e)) from None
        failure: Exception | None = None
        for address in addresses:  # in resolver order, as a resolving connect would
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                failure = e
        assert failure is not None  # resolve returns at least one address
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not probed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class HttpCollector:
    type_name: ClassVar[str] = "http"

    def __init__(self, config: CollectorConfig, settings: HttpSettings) -> None:
        self.name = config.name
        self.interval = config.interval
        self.timeout = config.timeout
        self.settings = settings
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @classmethod
    def from_config(cls, config: CollectorConfig) -> Self:
        s = Settings(cls.type_name, config.settings)
        has_url, has_targets = s.has("url"), s.has("targets")
        if has_url == has_targets:
            raise ValueError("set either url or targets (a list of {url, labels})")
        if has_url:
            targets: tuple[Target, ...] = (_target(s.text("url"), {}, "url"),)
        else:
            raw = s.get("targets")
            if not isinstance(raw, list | tuple) or not raw:
                raise ValueError("targets: expected a non-empty list of {url, labels}")
            targets = tuple(_parse_target(t, f"targets[{i}]") for i, t in enumerate(raw))
            seen: dict[tuple[tuple[str, str], ...], int] = {}
            for i, t in enumerate(targets):
                key = tuple(sorted(t.labels.items()))
                if key in seen:
                    raise ValueError(
                        f"targets[{i}]: same labels as targets[{seen[key]}]; "
                        "give them different urls or labels"
                    )
                seen[key] = i
        method = s.string("method", "GET").upper()
        if method not in METHODS:
            raise ValueError(f"method: expected one of {', '.join(METHODS)}; got {method!r}")
        headers: dict[str, str | Secret] = {}
        for k, v in s.mapping("headers", {}).items():
            if not isinstance(k, str) or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", k):
                raise ValueError(f"headers: {k!r} is not a valid header name")
            if not isinstance(v, str | Secret):
                raise ValueError(f"headers.{k}: expected a string; quote numbers like '5'")
            if isinstance(v, str) and (not v.isascii() or "\n" in v or "\r" in v):
                raise ValueError(f"headers.{k}: must be ASCII on one line")
            headers[k] = v
        json_path_text = s.string("json_path", "")
        regex = s.string("body_regex", "")
        try:
            compiled = compile_regex(regex) if regex else None
        except MatcherError as e:
            raise ValueError(f"body_regex: not a valid regular expression: {e}") from None
        proxy = s.text("proxy") if s.has("proxy") else None
        if proxy is not None:
            _check_url(proxy, "proxy")
        policy = NetworkPolicy(
            parse_networks(s.get("deny_networks", ()), "deny_networks"),
            parse_networks(s.get("allow_networks", ()), "allow_networks"),
        )
        settings = HttpSettings(
            targets=targets,
            flat=has_url,
            method=method,
            headers=headers or None,
            body=s.text("body") if s.has("body") else None,
            expect_status=_statuses(s.get("expect_status", 200)),
            body_regex=compiled,
            json_path=parse_json_path(json_path_text) if json_path_text else None,
            json_path_text=json_path_text,
            verify_tls=s.flag("verify_tls", True),
            ca_file=s.string("ca_file") if s.has("ca_file") else None,
            follow_redirects=s.flag("follow_redirects", False),
            max_body_bytes=s.size("max_body_bytes", 1024 * 1024),
            proxy=proxy,
            policy=policy,
        )
        s.done()
        return cls(config, settings)

    @classmethod
    def metric_names(cls, config: CollectorConfig) -> frozenset[str]:
        names = {"targets"} | COUNTS
        if "url" in config.settings:
            names |= TARGET_METRICS
        return frozenset(names)

    async def collect(self, now: float) -> Sample:
        client = await self._get_client()
        results = await asyncio.gather(*(self._probe(client, t) for t in self.settings.targets))
        sample: dict[str, Any] = {}
        if self.settings.flat:
            sample.update((k, v) for k, v in results[0].items() if k != "labels")
        sample["targets"] = results
        sample["up_count"] = sum(1 for r in results if r["up"])
        sample["down_count"] = len(results) - sample["up_count"]
        sample["ok_count"] = sum(1 for r in results if r["ok"])
        return sample

    async def aclose(self) -> None:
        self._closed = True
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def _get_client(self) -> httpx.AsyncClient:
        if self._closed:
            raise CollectorError("collector is closed")
        loop = asyncio.get_running_loop()
        # connections belong to the loop that opened them; a new loop needs a new pool
        if self._client is None or self._loop is not loop:
            # loading the CA bundle takes 50-100 ms: not on the event loop
            client = await asyncio.to_thread(self._new_client)
            if self._client is not None and self._loop is loop:  # a concurrent collect won
                await client.aclose()
                return self._client
            self._client, self._loop = client, loop
        return self._client

    def _new_client(self) -> httpx.AsyncClient:
        st = self.settings
        verify: ssl.SSLContext | bool = st.verify_tls
        if st.verify_tls and st.ca_file:
            try:
                verify = ssl.create_default_context(cafile=st.ca_file)
            except (OSError, ssl.SSLError) as e:
                raise CollectorError(f"ca_file {st.ca_file}: {e}") from None
        transport = httpx.AsyncHTTPTransport(
            verify=verify,
            trust_env=False,
            proxy=reveal(st.proxy) if st.proxy is not None else None,
        )
        # httpx has no parameter for httpcore's network backend; its pool (direct
        # or through a proxy) keeps the one every connection is opened with here.
        pool = transport._pool
        if not isinstance(getattr(pool, "_network_backend", None), httpcore.AsyncNetworkBackend):
            raise CollectorError("httpcore changed: cannot vet the addresses probes connect to")
        pool._network_backend = _VettedBackend(st.policy)
        return httpx.AsyncClient(
            transport=transport,
            follow_redirects=st.follow_redirects,
            # the asyncio deadline in _probe is the real, total budget; httpx's
            # per-phase timeouts are only a fallback behind it
            timeout=httpx.Timeout(self.timeout + 1.0),
            trust_env=False,
            headers={"User-Agent": f"vigil/{__version__}", "Accept-Encoding": "identity"},
        )

    async def _probe(self, client: httpx.AsyncClient, target: Target) -> dict[str, Any]:
        st = self.settings
        result: dict[str, Any] = {
            "labels": dict(target.labels),
            "up": False,
            "status": None,
            "ok": False,
            "latency_ms": None,
            "body_match": None,
            "json_value": None,
            "tls_days_left": None,
            "error": None,
        }
        headers = {k: reveal(v) for k, v in (st.headers or {}).items()}
        start = time.perf_counter()
        try:
            async with (
                asyncio.timeout(self.timeout),
                client.stream(
                    st.method,
                    reveal(target.url),
                    headers=headers,
                    content=reveal(st.body) if st.body is not None else None,
                ) as response,
            ):
                result["tls_days_left"] = _tls_days_left(response)
                body, truncated = await _read_body(response, st.max_body_bytes)
        except TimeoutError:
            result["error"] = f"timed out after {seconds(self.timeout)}"
            return result
        except AddressRefused as e:  # nothing was sent: not even a TCP handshake
            result["error"] = self._scrub(str(e))
            return result
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as e:
            result["error"] = self._scrub(_describe(e))
            return result
        except UnicodeEncodeError:  # its message would quote the character, maybe a secret's
            result["error"] = "a header value is not ASCII"
            return result
        result["latency_ms"] = round((time.perf_counter() - start) * 1000.0, 3)
        result["up"] = True
        result["status"] = response.status_code
        problems = []
        if response.status_code not in st.expect_status:
            expected = ", ".join(str(c) for c in sorted(st.expect_status))
            problems.append(f"status {response.status_code}, expected {expected}")
        if st.body_regex is not None or st.json_path is not None:
            charset = response.charset_encoding or "utf-8"
            if len(body) > THREAD_BODY:
                checked = await asyncio.to_thread(self._check_body, body, charset, truncated)
            else:
                checked = self._check_body(body, charset, truncated)
            result["body_match"], result["json_value"], more = checked
            problems += more
        result["ok"] = not problems
        result["error"] = "; ".join(problems) or None
        return result

    def _check_body(
        self, body: bytes, charset: str, truncated: bool
    ) -> tuple[bool | None, Any, list[str]]:
        """(body_match, json_value, problems) for the configured body checks."""
        st = self.settings
        match: bool | None = None
        value: Any = None
        problems = []
        if st.body_regex is not None:
            try:
                text = body.decode(charset, "replace")
            except LookupError:  # a charset Python does not know
                text = body.decode("utf-8", "replace")
            match = st.body_regex.search(text)
            if not match:
                problems.append(f"body does not match {st.body_regex.pattern!r}")
        if st.json_path is not None:
            if truncated:
                problems.append(f"body larger than max_body_bytes ({st.max_body_bytes})")
            else:
                try:
                    data = json_bounded.loads(body)  # deep parts null, not an error
                except ValueError:
                    problems.append("body is not JSON")
                else:
                    found, value = json_path_get(data, st.json_path)
                    if not found:
                        problems.append(f"{st.json_path_text} not found in the body")
        return match, value, problems

    def _scrub(self, text: str) -> str:
        """The message without any secret in it, also as Python shows it in a repr."""
        st = self.settings
        values = (*(t.url for t in st.targets), *(st.headers or {}).values(), st.body, st.proxy)
        forms = set()
        for v in values:
            if isinstance(v, Secret) and v.reveal():
                raw = v.reveal()
                forms |= {raw, repr(raw)[1:-1], repr(raw.encode())[2:-1]}
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, "***")
        return text if len(text) <= MAX_ERROR else text[:MAX_ERROR] + "…"


# --- settings ---------------------------------------------------------------------


def _parse_target(raw: Any, where: str) -> Target:
    if isinstance(raw, str | Secret):
        return _target(raw, {}, where)
    if not isinstance(raw, Mapping) or "url" not in raw:
        raise ValueError(f"{where}: expected a url or a mapping with url and labels")
    extra = set(raw) - {"url", "labels"}
    if extra:
        raise ValueError(f"{where}: unknown key {sorted(extra)[0]!r}; known: url, labels")
    url = raw["url"]
    if not isinstance(url, str | Secret):
        raise ValueError(f"{where}.url: expected a string")
    labels = raw.get("labels", {})
    if not isinstance(labels, Mapping):
        raise ValueError(f"{where}.labels: expected a mapping of label name to value")
    out: dict[str, str] = {}
    for k, v in labels.items():
        if not isinstance(k, str) or not LABEL_NAME.fullmatch(k):
            raise ValueError(f"{where}.labels: {k!r} is not a label name ([A-Za-z_][A-Za-z0-9_]*)")
        if k == "url":
            raise ValueError(f"{where}.labels.url: set by the collector from the target's url")
        if isinstance(v, Secret):
            raise ValueError(f"{where}.labels.{k}: labels cannot be secrets")
        if isinstance(v, Mapping | list | tuple) or v is None:
            raise ValueError(f"{where}.labels.{k}: expected a string")
        out[k] = v if isinstance(v, str) else json.dumps(v)  # 8080 -> "8080", true -> "true"
    return _target(url, out, f"{where}.url")


def _target(url: str | Secret, labels: dict[str, str], where: str) -> Target:
    parsed = _check_url(url, where)
    shown = "***" if isinstance(url, Secret) else _mask_password(url, parsed)
    return Target(url, {"url": shown, **labels})


def _check_url(url: str | Secret, where: str) -> httpx.URL:
    what = f"{where} (a secret)" if isinstance(url, Secret) else f"{where} {url!r}"
    try:
        parsed = httpx.URL(reveal(url))
    except (httpx.InvalidURL, TypeError, ValueError):
        raise ValueError(f"{what} is not a valid URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{what}: expected an http:// or https:// URL with a host")
    refusal = literal_refusal(parsed.host)
    if refusal is not None:  # would be refused at every probe: say so at load
        raise ValueError(f"{what}: {refusal}")
    return parsed


def _mask_password(url: str, parsed: httpx.URL) -> str:
    # labels travel to chat channels and logs; a password in the url stays here
    if not parsed.password:
        return url
    scheme, rest = url.split("://", 1)
    authority, slash, path = rest.partition("/")
    userinfo, _, host = authority.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}{slash}{path}"


def _statuses(value: Any) -> frozenset[int]:
    values = value if isinstance(value, list | tuple) else [value]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or not 100 <= v <= 599:
            raise ValueError(f"expect_status: expected HTTP status codes such as 200; got {v!r}")
    if not values:
        raise ValueError("expect_status: must not be empty")
    return frozenset(values)


_STEP = re.compile(
    r"""\.(?P<name>[A-Za-z_$][\w$-]*)|\[(?P<index>-?\d+)\]|\[(?:'(?P<sq>[^']*)'|"(?P<dq>[^"]*)")\]"""
)


def parse_json_path(text: str) -> JsonPath:
    """Steps of the JSONPath subset `$.a.b[0].c`, `$['a key'][-1]`; ValueError if
    the text is outside it."""
    if not text.startswith("$"):
        raise ValueError(f"json_path: {text!r} must start with $ (as in $.status)")
    steps: list[str | int] = []
    pos = 1
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None:
            raise ValueError(
                f"json_path: cannot read {text[pos:]!r} in {text!r}; "
                "supported: $.key, $.list[0], $['key with spaces']"
            )
        if m.group("index") is not None:
            steps.append(int(m.group("index")))
        else:
            steps.append(
                next(g for g in (m.group("name"), m.group("sq"), m.group("dq")) if g is not None)
            )
        pos = m.end()
    return tuple(steps)


def json_path_get(data: Any, path: JsonPath) -> tuple[bool, Any]:
    """(found, value) for `path` in parsed JSON."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(data, list) or not -len(data) <= step < len(data):
                return False, None
            data = data[step]
        else:
            if not isinstance(data, dict) or step not in data:
                return False, None
            data = data[step]
    return True, data


# --- probing ----------------------------------------------------------------------


async def _read_body(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """The body, up to `limit` bytes; (body, truncated). Past the limit we stop
    reading, and the connection is closed rather than drained."""
    buf = bytearray()
    async for chunk in response.aiter_bytes():
        buf += chunk
        if len(buf) > limit:
            return bytes(buf[:limit]), True
    return bytes(buf), False


def _tls_days_left(response: httpx.Response) -> float | None:
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    ssl_object = stream.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    # the binary form is there even with verify_tls: false, where the dict form is empty
    der = ssl_object.getpeercert(binary_form=True)
    not_after = cert_not_after(der) if der else None
    if not_after is None:
        return None
    return round((not_after - time.time()) / 86400.0, 3)


def cert_not_after(der: bytes) -> float | None:
    """notAfter (epoch seconds) of a DER certificate, read with a minimal DER walk:
    Certificate > tbsCertificate > [version] serial signature issuer validity."""

    def tlv(pos: int) -> tuple[int, int, int]:  # (tag, content start, content end)
        tag, length = der[pos], der[pos + 1]
        pos += 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(der[pos : pos + n], "big")
            pos += n
        return tag, pos, pos + length

    try:
        _, pos, _ = tlv(0)  # Certificate
        _, pos, _ = tlv(pos)  # tbsCertificate
        tag, _, end = tlv(pos)
        if tag == 0xA0:  # explicit version
            pos = end
        for _ in range(3):  # serialNumber, signature, issuer
            _, _, pos = tlv(pos)
        _, pos, _ = tlv(pos)  # validity
        _, _, pos = tlv(pos)  # notBefore
        tag, start, end = tlv(pos)  # notAfter
        text = der[start:end].decode("ascii").rstrip("Z")
        if tag == 0x17:  # UTCTime: YYMMDDHHMMSS, years 1950-2049
            year = int(text[:2])
            text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
        elif tag != 0x18:  # not GeneralizedTime either
            return None
        t = time.strptime(text[:14], "%Y%m%d%H%M%S")
    except (IndexError, ValueError, UnicodeDecodeError):
        return None
    return float(calendar.timegm(t))


def _describe(e: Exception) -> str:
    kinds: dict[type[Exception], str] = {
        httpx.ConnectTimeout: "connect timeout",
        httpx.ReadTimeout: "read timeout",
        httpx.WriteTimeout: "write timeout",
        httpx.PoolTimeout: "pool timeout",
        httpx.ConnectError: "connect failed",
        httpx.ReadError: "read failed",
        httpx.WriteError: "write failed",
        httpx.RemoteProtocolError: "protocol error",
        httpx.TooManyRedirects: "too many redirects",
        httpx.ProxyError: "proxy error",
    }
    kind = kinds.get(type(e), type(e).__name__)
    detail = str(e).strip()
    return f"{kind}: {detail}" if detail else kind
