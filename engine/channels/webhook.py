"""`webhook`: vigil's own JSON body (SPEC.md §1), optionally HMAC-signed.

Headers: `Content-Type: application/json`, `Idempotency-Key` (the notification's
key: the same alerts in the same states give the same key, so a receiver can drop
a re-send), `User-Agent: vigil/<version>`, the configured `headers`, and with a
`secret`: `X-Vigil-Timestamp: <unix seconds>` and `X-Vigil-Signature:
sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` over the exact bytes
sent. docs/webhook-signature.md shows how a receiver verifies it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from engine.common.secret import Secret
from engine.config.model import Channel as ChannelConfig
from engine.config.secrets import reveal
from engine.httpclient.client import HttpChannel, HttpOptions, Settings, dumps
from engine.notify.base import Notification
from engine.runtime import slices

# set by vigil, after the configured headers, so configuration cannot forge them
PROTOCOL_HEADERS = ("content-type", "idempotency-key", "x-vigil-timestamp", "x-vigil-signature")
# A body is encoded this many alerts at a time, with a look at the loop's time
# slice in between: 1,000 alerts take tens of ms, which would hold up ticks.
CHUNK_ALERTS = 16
_ALERTS_KEY = b',"alerts":[]'


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    url: str | Secret
    method: str
    secret: str | Secret | None
    headers: Mapping[str, str | Secret]
    http: HttpOptions


async def encode(n: Notification) -> bytes:
    """`dumps(n.as_dict())`, byte for byte, in steps of CHUNK_ALERTS alerts within
    the loop's time slices (engine/runtime/slices.py). The alerts are spliced into the
    encoded rest: `"alerts":[]` with bare quotes can only be the key (quotes
    inside strings are escaped)."""
    head = dumps(dataclasses.replace(n, alerts=()).as_dict())
    at = head.index(_ALERTS_KEY)
    parts = [head[:at], b',"alerts":[']
    for i in range(0, len(n.alerts), CHUNK_ALERTS):
        if i:
            await slices.check()
            parts.append(b",")
        parts.append(b",".join(dumps(a.as_dict()) for a in n.alerts[i : i + CHUNK_ALERTS]))
    parts += [b"]", head[at + len(_ALERTS_KEY) :]]
    return b"".join(parts)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Vigil-Signature value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookChannel(HttpChannel):
    type_name: ClassVar[str] = "webhook"
    uses_text: ClassVar[bool] = False  # the body is the alerts as JSON, not rendered text

    def __init__(self, name: str, settings: WebhookSettings) -> None:
        super().__init__(
            name, settings.http, (settings.url, settings.secret, *settings.headers.values())
        )
        self.settings = settings

    @classmethod
    def from_config(cls, config: ChannelConfig) -> Self:
        s = Settings(config)
        headers = s.headers()
        for k in headers:
            if k.lower() in PROTOCOL_HEADERS:
                raise ValueError(f"headers.{k}: set by vigil itself; remove it")
        settings = WebhookSettings(
            url=s.url("url"),
            method=s.choice("method", ("POST", "PUT"), "POST"),
            secret=s.text("secret") if s.has("secret") else None,
            headers=headers,
            http=HttpOptions.read(s),
        )
        s.done()
        return cls(config.name, settings)

    def request_parts(
        self, n: Notification, now: float | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The exact body and headers of the request for `n`."""
        return self._signed(dumps(n.as_dict()), n, now)

    def _signed(
        self, body: bytes, n: Notification, now: float | None = None
    ) -> tuple[bytes, dict[str, str]]:
        st = self.settings
        headers = {k: reveal(v) for k, v in st.headers.items()}
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = n.key
        if st.secret is not None:
            ts = int(time.time() if now is None else now)
            headers["X-Vigil-Timestamp"] = str(ts)
            headers["X-Vigil-Signature"] = sign(reveal(st.secret), ts, body)
        return body, headers

    async def send(self, n: Notification) -> None:
        if len(n.alerts) > CHUNK_ALERTS:
            body, headers = self._signed(await encode(n), n)
        else:
            body, headers = self.request_parts(n)
        await self.http.request(
            self.settings.method, reveal(self.settings.url), content=body, headers=headers
        )
