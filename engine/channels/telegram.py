"""`telegram`: a Telegram bot's sendMessage (https://core.telegram.org/bots/api#sendmessage).

POST {base_url}/bot<token>/sendMessage with chat_id, text and parse_mode
(default HTML). The title is bold; the rendered body follows, or the alerts'
summaries when the body is empty. Text is escaped for the parse mode, so a
label such as `<b>` or `_x_` shows as written. Telegram allows 4096 characters
of visible text; longer bodies are cut before escaping.

Telegram answers `{"ok": true, ...}`; `{"ok": false, "error_code", "description"}`
is a failure even with status 200, and a 429 says how long to wait in
`parameters.retry_after`. The token is in the URL path: messages show the URL
as `https://api.telegram.org/…` and the token as ***.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

from engine.channels import preview as wire
from engine.channels.formatting import headline, summary, truncate
from engine.common.secret import Secret
from engine.config.model import Channel as ChannelConfig
from engine.config.secrets import reveal
from engine.httpclient.client import (
    HttpChannel,
    HttpOptions,
    Reply,
    Settings,
    join,
    parse_retry_after,
)
from engine.httpclient.redaction import redact_url
from engine.notify.base import Notification

ParseMode = Literal["HTML", "MarkdownV2", "Markdown"]
MODES: dict[str, ParseMode] = {"HTML": "HTML", "MarkdownV2": "MarkdownV2", "Markdown": "Markdown"}
MAX_TEXT = 4096
_MD2 = re.compile(r"([_*\[\]()~`>#+\-=|{}.!\\])")
_MD1 = re.compile(r"([_*`\[])")


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    bot_token: str | Secret
    chat_id: str | int
    base_url: str | Secret
    parse_mode: ParseMode
    http: HttpOptions


def escape(text: str, mode: ParseMode) -> str:
    if mode == "HTML":
        return html.escape(text, quote=False)
    if mode == "MarkdownV2":
        return _MD2.sub(r"\\\1", text)
    return _MD1.sub(r"\\\1", text)


def bold(text: str, mode: ParseMode) -> str:
    return f"<b>{text}</b>" if mode == "HTML" else f"*{text}*"


def message(n: Notification, mode: ParseMode) -> str:
    title = truncate(headline(n), 256)
    body = n.body.strip() or "\n".join(f"• [{a.status}] {summary(a)}" for a in n.alerts)
    body = truncate(body, MAX_TEXT - len(title) - 1)  # visible characters, before escaping
    return f"{bold(escape(title, mode), mode)}\n{escape(body, mode)}"


def payload(n: Notification, chat_id: str | int, mode: ParseMode) -> dict[str, Any]:
    return {
        "chat_id": chat_id,
        "text": message(n, mode),
        "parse_mode": mode,
        "disable_web_page_preview": True,
    }


class TelegramChannel(HttpChannel):
    type_name: ClassVar[str] = "telegram"

    def __init__(self, name: str, settings: TelegramSettings) -> None:
        super().__init__(name, settings.http, (settings.bot_token, settings.base_url))
        self.settings = settings

    @classmethod
    def from_config(cls, config: ChannelConfig) -> Self:
        s = Settings(config)
        chat_id = s.get("chat_id")
        if isinstance(chat_id, Secret):
            chat_id = reveal(chat_id)
        if isinstance(chat_id, bool) or not isinstance(chat_id, str | int) or chat_id == "":
            raise ValueError("chat_id: expected a chat id (-1001234567890) or @channelname")
        mode = MODES[s.choice("parse_mode", tuple(MODES), "HTML")]
        settings = TelegramSettings(
            bot_token=s.text("bot_token"),
            chat_id=chat_id,
            base_url=s.url("base_url", "https://api.telegram.org"),
            parse_mode=mode,
            http=HttpOptions.read(s),
        )
        s.done()
        return cls(config.name, settings)

    def request(self, n: Notification) -> tuple[str, dict[str, Any]]:
        """The sendMessage URL (the token is in its path) and the body for `n`."""
        st = self.settings
        url = join(st.base_url, f"/bot{reveal(st.bot_token)}/sendMessage")
        return url, payload(n, st.chat_id, st.parse_mode)

    def preview(self, n: Notification) -> list[wire.Wire]:
        url, body = self.request(n)
        return [wire.http(self.http, "POST", url, payload=body)]

    async def send(self, n: Notification) -> None:
        url, body = self.request(n)
        reply = await self.http.request("POST", url, payload=body, check=False)
        data = reply.json()
        if 200 <= reply.status < 300 and isinstance(data, dict) and data.get("ok") is True:
            return
        if not isinstance(data, dict) or "ok" not in data:
            self.http.check("POST", url, reply)  # not Telegram's JSON: judge by status
            raise self.http.error(
                f"POST {redact_url(url)}: HTTP {reply.status} without Telegram's ok field",
                retryable=False,
            )
        raise self._failure(url, reply, data)

    def _failure(self, url: str, reply: Reply, data: dict[str, Any]) -> Exception:
        code = data.get("error_code")
        code = code if isinstance(code, int) else reply.status
        params = data.get("parameters")
        retry_after = params.get("retry_after") if isinstance(params, dict) else None
        if not isinstance(retry_after, int | float) or isinstance(retry_after, bool):
            retry_after = parse_retry_after(reply.headers.get("retry-after"))
        description = truncate(str(data.get("description", "no description")), 200)
        return self.http.error(
            f"POST {redact_url(url)}: Telegram error {code}: {description}",
            retryable=code == 429 or code >= 500,
            retry_after=float(retry_after) if retry_after is not None else None,
        )
