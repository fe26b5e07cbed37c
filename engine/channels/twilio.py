"""`twilio`: SMS through Twilio's Messages API
(https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource).

One form-encoded POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json
per recipient in `to`, with HTTP basic auth account_sid:auth_token. `from` is a
number (From) or a messaging service SID starting with MG (MessagingServiceSid).
The body is the title and the rendered body, cut to Twilio's 1600 characters.
Twilio answers 201.

SMS has no idempotency key, so a retried notification must not text the
recipients that already got it: when a send fails part-way, the channel
remembers for PARTIAL_TTL which recipients of that notification key succeeded,
and the retry skips them. A send that reaches everybody forgets the key, so a
later repeat of the same alerts (same key) texts everybody again.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar, Self
from urllib.parse import quote

from engine.channels import preview as wire
from engine.channels.formatting import headline, summary, truncate
from engine.common.secret import Secret
from engine.config.model import Channel as ChannelConfig
from engine.config.secrets import reveal
from engine.httpclient.client import HttpChannel, HttpOptions, Settings, join
from engine.notify.base import Notification

MAX_BODY = 1600
PARTIAL_TTL = 3600.0
MAX_PARTIAL = 1024


@dataclass(frozen=True, slots=True)
class TwilioSettings:
    account_sid: str | Secret
    auth_token: str | Secret
    sender: str | Secret
    to: tuple[str | Secret, ...]
    base_url: str | Secret
    http: HttpOptions


def text(n: Notification) -> str:
    body = n.body.strip() or "\n".join(f"[{a.status}] {summary(a)}" for a in n.alerts)
    return truncate(f"{headline(n)}\n{body}", MAX_BODY)


def form(n: Notification, sender: str, recipient: str) -> dict[str, str]:
    key = "MessagingServiceSid" if sender.startswith("MG") else "From"
    return {"To": recipient, key: sender, "Body": text(n)}


class TwilioChannel(HttpChannel):
    type_name: ClassVar[str] = "twilio"

    def __init__(self, name: str, settings: TwilioSettings) -> None:
        super().__init__(
            name,
            settings.http,
            (
                settings.account_sid,
                settings.auth_token,
                settings.base_url,
                *(v for v in (settings.sender, *settings.to) if isinstance(v, Secret)),
            ),
        )
        self.settings = settings
        # notification key -> (monotonic time of the first attempt, recipients done)
        self._partial: OrderedDict[str, tuple[float, set[str]]] = OrderedDict()

    @classmethod
    def from_config(cls, config: ChannelConfig) -> Self:
        s = Settings(config)
        to = s.texts("to")
        if not to:
            raise ValueError("to: expected at least one recipient number")
        settings = TwilioSettings(
            account_sid=s.text("account_sid"),
            auth_token=s.text("auth_token"),
            sender=s.text("from"),
            to=to,
            base_url=s.url("base_url", "https://api.twilio.com"),
            http=HttpOptions.read(s),
        )
        s.done()
        return cls(config.name, settings)

    def endpoint(self) -> tuple[str, tuple[str, str]]:
        """The Messages URL (the account SID is in its path) and the Basic credentials."""
        st = self.settings
        sid = reveal(st.account_sid)
        url = join(st.base_url, f"/2010-04-01/Accounts/{quote(sid, safe='')}/Messages.json")
        return url, (sid, reveal(st.auth_token))

    def preview(self, n: Notification) -> list[wire.Wire]:
        url, auth = self.endpoint()
        sender = reveal(self.settings.sender)
        return [
            wire.http(self.http, "POST", url, form=form(n, sender, reveal(to)), auth=auth)
            for to in self.settings.to
        ]

    async def send(self, n: Notification) -> None:
        st = self.settings
        url, auth = self.endpoint()
        now = time.monotonic()
        started, done = self._partial.pop(n.key, (now, set()))
        if now - started > PARTIAL_TTL:
            started, done = now, set()
        complete = False
        try:
            for recipient in (reveal(t) for t in st.to):
                if recipient not in done:
                    await self.http.request(
                        "POST", url, form=form(n, reveal(st.sender), recipient), auth=auth
                    )
                    done.add(recipient)
            complete = True
        finally:
            if not complete and done:
                self._partial[n.key] = (started, done)
                while len(self._partial) > MAX_PARTIAL:
                    self._partial.popitem(last=False)
