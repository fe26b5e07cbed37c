"""The Channel protocol: what the dispatcher and the senders ask of a channel type."""

from __future__ import annotations

from typing import ClassVar, Protocol, Self

from engine.channels.preview import Wire
from engine.config.model import Channel as ChannelConfig
from engine.notify.base import Notification


class Channel(Protocol):
    """A notification channel type.

    `from_config` parses the channel's settings (already schema-checked; secrets are
    `Secret`s: call `reveal()` only where the value goes on the wire) into typed,
    frozen settings, raising ValueError for what the schema cannot express.

    `send` delivers one Notification or raises DeliveryError: `retryable=True` for
    failures a retry may fix (timeouts, connection errors, HTTP 5xx and 429 with
    `retry_after` from Retry-After), `retryable=False` for the rest (HTTP 4xx, bad
    payload). It never retries itself, never sleeps for backoff, and never puts a
    secret into the error message. The channel owns its clients (an HttpClient,
    an SMTP connection) and releases them in `aclose`.

    Optional class attributes the dispatcher reads: `concurrency` (how many
    notifications it sends at once, default 1: a channel keeping one connection,
    such as SMTP, must not be entered twice), `uses_text` (False: title/body are
    not rendered for it), `closes_incidents` (it also gets resolves of silenced
    or acknowledged alerts).
    """

    type_name: ClassVar[str]
    name: str

    @classmethod
    def from_config(cls, config: ChannelConfig) -> Self: ...

    async def send(self, n: Notification) -> None: ...

    def preview(self, n: Notification) -> list[Wire]:
        """What `send(n)` would put on the wire (requests, mail, command line),
        built by the same encode code, secrets as ***, without sending anything
        (engine/channels/preview.py). A plugin type without it cannot be
        previewed; `vigil notify-test --preview` says so."""
        ...

    async def aclose(self) -> None: ...
