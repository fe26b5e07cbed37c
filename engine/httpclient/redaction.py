"""Secret redaction: what of a URL or a secret value may appear in messages and logs.

    redact_url       a URL as `scheme://host[:port]` plus `/…`: tokens live in paths,
                     queries and userinfo, never in the host
    scrub_terms      the strings a channel's error messages must not show (its secret
                     values; of a URL, its path, query and password)
    _RedactHttpxLog  installed on the `httpx` and `httpcore` loggers on import, so their
                     request lines and Location headers show URLs redacted

Separate from client.py because hiding secrets is its own concern, with its own
import-time side effect (the log filter): the HTTP client uses it, it does not
need the HTTP client.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from engine.common.secret import Secret
from engine.config.secrets import reveal
from engine.httpclient import transport

__all__ = ["redact_url", "scrub_terms"]


def redact_url(url: str | Secret) -> str:
    """`scheme://host[:port]` plus `/…` when there was a path or query: tokens live
    in paths (Slack, Discord, Telegram), queries and userinfo, never in the host."""
    if isinstance(url, Secret):
        url = url.reveal()
    try:
        u = urlsplit(str(url))  # str(): httpx.URL arguments of httpx's log lines
        port = u.port
    except (TypeError, ValueError):
        return "<invalid url>"
    if not u.scheme or not u.hostname:
        return "<invalid url>"
    host = f"[{u.hostname}]" if ":" in u.hostname else u.hostname
    out = f"{u.scheme}://{host}"
    if port is not None and port != transport.DEFAULT_PORTS.get(u.scheme):
        out += f":{port}"
    if u.path not in ("", "/") or u.query:
        out += "/…"
    return out


class _RedactHttpxLog(logging.Filter):
    """httpx logs `HTTP Request: POST <full url>` at INFO, and httpcore logs the
    response headers at DEBUG, where a Location may repeat the URL (an http ->
    https redirect): both may hold a token, so both show URLs redacted."""

    _LOCATION = re.compile(r"(\(b'location', b')([^']*)(')", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(_is_httpx_url(a) for a in record.args):
            record.args = tuple(redact_url(str(a)) if _is_httpx_url(a) else a for a in record.args)
        elif isinstance(record.msg, str) and "b'location'" in record.msg.lower():
            record.msg = self._LOCATION.sub(
                lambda m: m.group(1) + redact_url(m.group(2)) + m.group(3), record.msg
            )
        return True


def _is_httpx_url(o: object) -> bool:
    # by name: importing httpx here would cost every channel ~0.3 s of start-up
    t = type(o)
    return t.__name__ == "URL" and t.__module__.partition(".")[0] == "httpx"


for _name in ("httpx", "httpcore.http11", "httpcore.http2"):
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, _RedactHttpxLog) for f in _logger.filters):
        _logger.addFilter(_RedactHttpxLog())


def scrub_terms(values: Iterable[str | Secret | None]) -> tuple[str, ...]:
    """The strings to hide from messages: each secret value; of a URL, its path,
    query and password (a receiver may echo them in an error body), not its host."""
    terms: set[str] = set()
    for v in values:
        text = "" if v is None else reveal(v)
        u = None
        if "://" in text:
            with contextlib.suppress(ValueError):
                u = urlsplit(text)
        if u is None:
            terms.add(text)
        else:
            # as written, decoded, and as the request line carried them (escaped)
            try:
                sent = transport.parse_url(text).target
            except transport.RequestError:
                sent = ""
            path, _, query = sent.partition("?")
            password = u.password or ""
            terms.update((u.path, unquote(u.path), u.query, path, query))
            terms.update((password, unquote(password)))
    # hiding "ab" or "/" everywhere would garble messages, not protect anything
    return tuple(sorted((t for t in terms if len(t) > 3), key=len, reverse=True))
