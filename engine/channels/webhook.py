"""`webhook`: vigil's own JSON body (SPEC.md §1), optionally HMAC-signed.

Headers: `Content-Type: application/json`, `Idempotency-Key` (the notification's
key: the same alerts in the same states give the same key, so a receiver can drop
a re-send), `User-Agent: vigil/<version>`, the configured `headers`, and with a
`secret`: `X-Vigil-Timestamp: <unix seconds>` and `X-Vigil-Signature:
sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` over the exact bytes
sent. docs/webhook-signature.md shows how a receiver verifies it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from engine.channels import preview as wire
from engine.common.secret import Secret
from engine.config.model import Channel as ChannelConfig
from engine.config.secrets import reveal
from engine.httpclient.client import HttpChannel, HttpOptions, Settings, dumps
from engine.notify.base import Notification

# set by vigil, after the configured headers, so configuration cannot forge them
PROTOCOL_HEADERS = ("content-type", "idempotency-key", "x-vigil-timestamp", "x-vigil-signature")


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    url: str | Secret
    method: str
    secret: str | Secret | None
    headers: Mapping[str, str | Secret]
    http: HttpOptions


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
        """The exact body and headers of the request for `n`. Encoded in one piece,
        also for a thousand alerts: channels send from the sender process, whose
        loop runs no evaluation ticks."""
        body = dumps(n.as_dict())
        st = self.settings
        headers = {k: reveal(v) for k, v in st.headers.items()}
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = n.key
        if st.secret is not None:
            ts = int(time.time() if now is None else now)
            headers["X-Vigil-Timestamp"] = str(ts)
            headers["X-Vigil-Signature"] = sign(reveal(st.secret), ts, body)
        return body, headers

    def preview(self, n: Notification) -> list[wire.Wire]:
        body, headers = self.request_parts(n)
        st = self.settings
        return [wire.http(self.http, st.method, st.url, content=body, headers=headers)]

    async def send(self, n: Notification) -> None:
        body, headers = self.request_parts(n)
        await self.http.request(
            self.settings.method, reveal(self.settings.url), content=body, headers=headers
        )
