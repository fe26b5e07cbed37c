"""What a channel would put on the wire, rendered without sending it.

Every channel type has `preview(n) -> list[Wire]` (engine/channels/base.py): the
requests, mail, command line or file line its `send` would produce for `n`, built
by the same encode functions `send` uses, with no network, process or file side
effect. `vigil notify-test CHANNEL --preview` and `POST
/api/v1/channels/{name}/preview` show them.

Secrets are shown as `***`: each channel replaces its secret values (of a URL,
the path, query and password: engine/httpclient/redaction.py) wherever they
appear, in the target, the headers and the body; Basic credentials are never
shown, not even encoded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from engine.common.secret import Secret
from engine.config.secrets import reveal
from engine.httpclient import transport
from engine.httpclient.client import HttpClient, prepare
from engine.httpclient.redaction import scrub_terms

__all__ = ["Wire", "http", "scrubber"]

Kind = Literal["http", "smtp", "exec", "file", "log", "memory", "nft"]


@dataclass(frozen=True, slots=True)
class Wire:
    """One thing a channel would send, secrets redacted.

    kind     http | smtp | exec | file | log | memory | nft
    target   where it goes: `POST https://host/***`, `smtp://host:587`, a file path
    headers  HTTP headers as sent (aiohttp adds Host, Content-Length, Accept); for
             smtp the envelope (MAIL FROM, RCPT TO)
    body     the bytes sent, as UTF-8 text: a JSON or form body, the MIME
             message, a command's stdin, the file's line, the log lines
    argv     the command line of exec and nft
    """

    kind: Kind
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    argv: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "headers": [list(h) for h in self.headers],
            "body": self.body,
            "argv": list(self.argv),
        }


def scrubber(values: Iterable[str | Secret | None]) -> Callable[[str], str]:
    """A function replacing each of `values` (and of a URL its path, query and
    password) with ***: for channels without an HttpClient."""
    terms = scrub_terms(values)

    def scrub(text: str) -> str:
        for t in terms:
            text = text.replace(t, "***")
        return text

    return scrub


def secret_values(*values: str | Secret | None) -> list[str]:
    """The revealed values of those of `values` that are Secrets (a plain
    address or path in the config is shown as written)."""
    return [v.reveal() for v in values if isinstance(v, Secret)]


def http(
    client: HttpClient,
    method: str,
    url: str | Secret,
    *,
    payload: Any = None,
    content: bytes | None = None,
    form: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
) -> Wire:
    """The request `client.request(method, url, ...)` would send, as a Wire:
    the same header assembly and body encoding (httpclient.client.prepare)."""
    pairs, body = prepare(payload=payload, content=content, form=form, headers=headers)
    target = transport.parse_url(reveal(url))
    sent = transport.check_headers(method, pairs)
    if auth is not None or target.userinfo is not None:
        sent = {k: v for k, v in sent.items() if k.lower() != "authorization"}
        sent["Authorization"] = "Basic ***"  # base64 of the credentials: never shown
    scrub = client.scrub
    # the authority as sent (a secret's host is not hidden: redaction.scrub_terms)
    path = scrub(target.target)
    shown = target.url[: len(target.url) - len(target.target)] + ("/" if path[:1] == "*" else "")
    return Wire(
        "http",
        f"{method} {shown}{path}",
        tuple((k, scrub(v)) for k, v in sent.items()),
        scrub(body.decode("utf-8", "replace")),
    )
