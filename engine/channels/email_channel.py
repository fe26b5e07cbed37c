"""`email`: multipart/alternative mail (text + HTML) through SMTP.

Uses the stdlib smtplib in a worker thread, one connection per notification
(mail servers drop idle connections anyway, and nothing is left to leak).
tls: starttls (default, port 587), ssl (implicit TLS, 465) or none (25).
`timeout` bounds each network step (connect, each reply), as smtplib does.

The Message-ID is `<key@vigil>`: a re-send after a crash carries the same ID, so
threading clients show it once; `References` names the alert group, so one
group's notifications form a thread.

Failures: authentication and other 5xx replies, a refused certificate or a
server without the asked-for extension are not retryable; 4xx replies,
disconnects, timeouts and network errors are. Server replies are quoted in
messages, with any credential scrubbed; the AUTH reply is never quoted.

The SMTP host goes through the one address policy (engine/common/address_policy.py):
resolved first, its addresses checked, and the connection made to a checked
address (TLS still verifies the host name); a literal metadata / link-local
`smtp_host` is refused by `vigil validate`.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import io
import logging
import re
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any, ClassVar, Literal, Self

from engine.channels import preview as wire
from engine.common.address_policy import AddressRefused, NetworkPolicy, Unresolved, literal_refusal
from engine.common.durations import parse_duration
from engine.common.secret import Secret
from engine.config.model import Channel as ChannelConfig
from engine.config.secrets import reveal
from engine.errors import DeliveryError
from engine.notify.base import AlertView, Notification, iso

Tls = Literal["starttls", "ssl", "none"]
PORTS: dict[str, int] = {"starttls": 587, "ssl": 465, "none": 25}
_KNOWN = frozenset(
    {"smtp_host", "smtp_port", "tls", "username", "password", "from", "to", "cc"}
    | {"verify_tls", "ca_file", "timeout"}
)
DEFAULT_TIMEOUT = 30.0
AUTH_TLS = ("PLAIN", "LOGIN", "CRAM-MD5")
AUTH_PLAINTEXT = ("CRAM-MD5", "PLAIN", "LOGIN")
MAX_HTML_ALERTS = 100  # a huge group still makes a mail a client can open
COLOURS = {"info": "#2563eb", "warning": "#d97706", "critical": "#dc2626", "emergency": "#7f1d1d"}
RESOLVED_COLOUR = "#16a34a"
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]")

logger = logging.getLogger(__name__)

Text = str | Secret


@dataclass(frozen=True, slots=True)
class EmailSettings:
    smtp_host: Text
    smtp_port: int
    tls: Tls
    sender: Text
    to: tuple[Text, ...]
    cc: tuple[Text, ...] = ()
    username: Text | None = None
    password: Text | None = None
    verify_tls: bool = True
    ca_file: str | None = None
    timeout: float = DEFAULT_TIMEOUT


class EmailChannel:
    type_name: ClassVar[str] = "email"

    def __init__(self, name: str, settings: EmailSettings) -> None:
        self.name = name
        self.settings = settings
        s = settings
        self._where = f"{_shown(s.smtp_host)}:{s.smtp_port}"
        self._ctx: ssl.SSLContext | None = None
        # scrubbed from every server reply we quote
        self._secrets = [reveal(v) for v in (s.username, s.password) if v]

    @classmethod
    def from_config(cls, config: ChannelConfig) -> Self:
        s = config.settings
        unknown = sorted(set(s) - _KNOWN)
        if unknown:
            raise ValueError(f"unknown setting {unknown[0]!r} for an email channel")
        tls = s.get("tls", "starttls")
        if tls not in PORTS:
            raise ValueError(f"tls: expected starttls, ssl or none; got {tls!r}")
        port = s.get("smtp_port", PORTS[tls])
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError("smtp_port: expected a port number from 1 to 65535")
        username, password = s.get("username"), s.get("password")
        if (username is None) != (password is None):
            raise ValueError("username and password: give both or neither")
        verify = s.get("verify_tls", True)
        if not isinstance(verify, bool):
            raise ValueError("verify_tls: expected true or false")
        ca_file = s.get("ca_file")
        if ca_file is not None and not isinstance(ca_file, str):
            raise ValueError("ca_file: expected a file name")
        try:
            timeout = parse_duration(s.get("timeout", DEFAULT_TIMEOUT))
        except (ValueError, TypeError):
            raise ValueError("timeout: expected a duration such as 30s") from None
        if timeout <= 0:
            raise ValueError("timeout: must be more than 0")
        host = _text(s, "smtp_host")
        refusal = None if isinstance(host, Secret) else literal_refusal(host)
        if refusal is not None:
            raise ValueError(f"smtp_host: {refusal}")
        settings = EmailSettings(
            smtp_host=host,
            smtp_port=port,
            tls=tls,
            sender=_address(s.get("from"), "from"),
            to=_addresses(s.get("to"), "to"),
            cc=_addresses(s.get("cc", ()), "cc", allow_empty=True),
            username=None if username is None else _text(s, "username"),
            password=None if password is None else _text(s, "password"),
            verify_tls=verify,
            ca_file=ca_file,
            timeout=timeout,
        )
        return cls(config.name, settings)

    # -- payload ------------------------------------------------------------------

    def message(self, n: Notification) -> EmailMessage:
        s = self.settings
        msg = EmailMessage()
        msg["Subject"] = _one_line(n.title) or f"[{n.status.upper()}] vigil"
        msg["From"] = reveal(s.sender)
        msg["To"] = ", ".join(reveal(a) for a in s.to)
        if s.cc:
            msg["Cc"] = ", ".join(reveal(a) for a in s.cc)
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = f"<{_ID_UNSAFE.sub('-', n.key)}@vigil>"
        group = hashlib.sha256(n.group_key.encode()).hexdigest()[:32]
        msg["References"] = f"<group-{group}@vigil>"
        msg["X-Vigil-Key"] = _one_line(n.key)
        msg["X-Vigil-Status"] = n.status
        msg["X-Vigil-Channel"] = n.channel
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
        msg.set_content(n.body or _text_body(n))
        msg.add_alternative(n.html or _html_body(n), subtype="html")
        return msg

    # -- delivery -----------------------------------------------------------------

    def preview(self, n: Notification) -> list[wire.Wire]:
        """The MIME message as sent (subject, text and HTML parts) and the envelope."""
        msg = self.message(n)
        s = self.settings
        hidden = wire.secret_values(s.smtp_host, s.sender, *s.to, *s.cc)
        # an address also goes bare into the envelope (`vigil <a@b>` -> a@b)
        scrub = wire.scrubber([*hidden, *(parseaddr(v)[1] for v in hidden)])
        envelope = [("MAIL FROM", parseaddr(msg["From"])[1])]
        envelope += [("RCPT TO", r) for r in self.recipients()]
        return [
            wire.Wire(
                "smtp",
                scrub(f"smtp://{reveal(s.smtp_host)}:{s.smtp_port} ({s.tls})"),
                tuple((k, scrub(v)) for k, v in envelope),
                scrub(_flat(msg)),
            )
        ]

    def recipients(self) -> list[str]:
        return [parseaddr(reveal(a))[1] for a in (*self.settings.to, *self.settings.cc)]

    async def send(self, n: Notification) -> None:
        msg = self.message(n)
        rcpts = self.recipients()
        # resolve, check, then connect to a checked address only (no DNS rebinding)
        try:
            addresses = await POLICY.resolve(
                reveal(self.settings.smtp_host), self.settings.smtp_port
            )
        except AddressRefused as e:
            raise DeliveryError(f"{self._where}: {e}", retryable=False) from None
        except Unresolved as e:
            raise DeliveryError(f"{self._where}: {e}", retryable=True) from None
        await asyncio.to_thread(self._deliver, msg, rcpts, addresses)

    def _connect(self, addresses: list[str]) -> smtplib.SMTP:
        """A connection to the first checked address that answers; the host name
        stays the server's name for TLS (SNI and certificate check)."""
        s = self.settings
        host = reveal(s.smtp_host)
        error: OSError = OSError(f"no address for {host}")
        for address in addresses:
            try:
                if s.tls == "ssl":
                    return _PinnedSSL(
                        address, host, s.smtp_port, timeout=s.timeout, context=self._tls()
                    )
                return _Pinned(address, host, s.smtp_port, timeout=s.timeout)
            except (ssl.SSLError, smtplib.SMTPException):
                raise  # the server answered: another address of it would say the same
            except OSError as e:  # refused, unreachable, timed out: the next may answer
                error = e
        raise error

    def _deliver(self, msg: EmailMessage, rcpts: list[str], addresses: list[str]) -> None:
        s = self.settings
        smtp: smtplib.SMTP | None = None
        try:
            smtp = self._connect(addresses)
            if s.tls == "starttls":
                smtp.starttls(context=self._tls())
            if s.username is not None and s.password is not None:
                try:
                    self._login(smtp, reveal(s.username), reveal(s.password))
                except smtplib.SMTPAuthenticationError as e:
                    # the reply is not quoted: some servers echo what they were sent
                    raise DeliveryError(
                        f"{self._where}: authentication failed ({e.smtp_code})", retryable=False
                    ) from None
            refused = smtp.send_message(msg, from_addr=parseaddr(msg["From"])[1], to_addrs=rcpts)
            if refused:  # the others have it: a retry would send them a duplicate
                logger.warning(
                    "%s: %d of %d recipients refused", self.name, len(refused), len(rcpts)
                )
        except DeliveryError:
            raise
        except smtplib.SMTPRecipientsRefused as e:
            codes = sorted({code for code, _ in e.recipients.values()})
            raise DeliveryError(
                f"{self._where}: all recipients refused ({', '.join(map(str, codes))})",
                retryable=any(400 <= c < 500 for c in codes),
            ) from None
        except smtplib.SMTPResponseException as e:
            reply = self._scrub(e.smtp_error)
            raise DeliveryError(
                f"{self._where}: {e.smtp_code} {reply}", retryable=400 <= e.smtp_code < 500
            ) from None
        except smtplib.SMTPServerDisconnected as e:
            raise DeliveryError(f"{self._where}: disconnected: {e}", retryable=True) from None
        except smtplib.SMTPNotSupportedError as e:  # no STARTTLS or AUTH: configuration
            raise DeliveryError(f"{self._where}: {e}", retryable=False) from None
        except smtplib.SMTPException as e:  # e.g. no AUTH mechanism both sides know
            raise DeliveryError(f"{self._where}: {self._scrub(str(e))}", retryable=False) from None
        except ssl.SSLCertVerificationError as e:
            raise DeliveryError(
                f"{self._where}: certificate refused: {e.verify_message}", retryable=False
            ) from None
        except TimeoutError:
            raise DeliveryError(
                f"{self._where}: timed out after {s.timeout:g}s", retryable=True
            ) from None
        except OSError as e:  # refused, unreachable, DNS, TLS handshake: may pass
            raise DeliveryError(f"{self._where}: {e.strerror or e}", retryable=True) from None
        finally:
            if smtp is not None:
                _close(smtp)

    def _login(self, smtp: smtplib.SMTP, user: str, password: str) -> None:
        """One AUTH attempt with the best mechanism both sides know.

        smtplib's login() tries the next mechanism after a refusal, so a wrong
        password would count two or three failures per mail against the account
        (lockouts, fail2ban). Encrypted, PLAIN is as good as any; in the clear,
        CRAM-MD5 at least keeps the password off the wire.
        """
        smtp.ehlo_or_helo_if_needed()
        if not smtp.has_extn("auth"):
            hint = "" if self.settings.tls != "none" else " (it may want tls: starttls)"
            raise smtplib.SMTPNotSupportedError(f"server offers no AUTH{hint}")
        offered = smtp.esmtp_features["auth"].upper().split()
        order = AUTH_TLS if self.settings.tls != "none" else AUTH_PLAINTEXT
        mechanism = next((m for m in order if m in offered), None)
        if mechanism is None:
            raise smtplib.SMTPNotSupportedError(
                f"no AUTH mechanism in common; server offers {' '.join(offered)}"
            )
        smtp.user, smtp.password = user, password
        authobject = {"PLAIN": smtp.auth_plain, "LOGIN": smtp.auth_login}.get(
            mechanism, smtp.auth_cram_md5
        )
        # LOGIN without an initial response: servers disagree on how to take one
        smtp.auth(mechanism, authobject, initial_response_ok=mechanism != "LOGIN")

    def _tls(self) -> ssl.SSLContext:
        # built on first use, not in from_config: `vigil validate` on a CI box
        # without the CA file must not fail
        if self._ctx is None:
            s = self.settings
            try:
                ctx = ssl.create_default_context(cafile=s.ca_file)
            except OSError as e:
                raise DeliveryError(
                    f"ca_file {s.ca_file}: {e.strerror or e}", retryable=False
                ) from None
            if not s.verify_tls:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._ctx = ctx
        return self._ctx

    def _scrub(self, reply: bytes | str) -> str:
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = _one_line(text)
        return text if len(text) <= 200 else text[:200] + "…"

    async def aclose(self) -> None:
        pass  # no connection outlives a send


POLICY = NetworkPolicy()


class _Pinned(smtplib.SMTP):
    """SMTP that connects to one checked address whatever host name it is given
    (which it keeps for STARTTLS's certificate check)."""

    def __init__(self, address: str, host: str, port: int, **kwargs: Any) -> None:
        self.address = address  # before connecting, which __init__ does
        super().__init__(host, port, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # smtplib's hook for opening the socket (not in its type stubs)
        sock: socket.socket = super()._get_socket(self.address, port, timeout)  # type: ignore[misc]
        return sock


class _PinnedSSL(smtplib.SMTP_SSL):
    """SMTP_SSL that connects to one checked address; TLS checks the host name."""

    def __init__(self, address: str, host: str, port: int, **kwargs: Any) -> None:
        self.address = address
        super().__init__(host, port, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # smtplib's hook for opening the socket (not in its type stubs)
        sock: socket.socket = super()._get_socket(self.address, port, timeout)  # type: ignore[misc]
        return sock


def _close(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()  # the server is gone already; just drop the socket


# -- settings helpers -------------------------------------------------------------


def _flat(msg: EmailMessage) -> str:
    """The message as smtplib's send_message puts it on the wire (CRLF lines)."""
    out = io.BytesIO()
    BytesGenerator(out).flatten(msg, linesep="\r\n")
    return out.getvalue().decode("utf-8", "replace")


def _shown(v: Text) -> str:
    return "***" if isinstance(v, Secret) else v


def _text(s: Any, key: str) -> Text:
    v = s.get(key)
    if not isinstance(v, str | Secret) or not reveal(v):
        raise ValueError(f"{key}: expected a non-empty string")
    return v


def _address(v: Any, key: str) -> Text:
    if not isinstance(v, str | Secret):
        raise ValueError(f"{key}: expected a mail address such as oncall@example.org")
    text = reveal(v)
    addr = parseaddr(text)[1]
    if "@" not in addr or "\n" in text or "\r" in text:
        raise ValueError(f"{key}: {_shown(v)!r} is not a mail address such as oncall@example.org")
    return v


def _addresses(v: Any, key: str, *, allow_empty: bool = False) -> tuple[Text, ...]:
    if isinstance(v, str | Secret):
        v = (v,)  # one address written without brackets
    if not isinstance(v, list | tuple) or (not v and not allow_empty):
        raise ValueError(f"{key}: expected a list of mail addresses")
    return tuple(_address(a, f"{key}[{i}]") for i, a in enumerate(v))


# -- bodies -------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _summary(a: AlertView) -> str:
    return a.annotations.get("summary") or a.annotations.get("description") or a.rule


def _text_body(n: Notification) -> str:
    lines = [n.title, ""]
    for a in n.alerts:
        lines.append(f"[{a.status.upper()}] {a.severity} {a.rule}: {_summary(a)}")
        lines.extend(f"    {k}={v}" for k, v in sorted(a.labels.items()))
        if a.value is not None:
            lines.append(f"    value={a.value}")
        lines.append(
            f"    since {iso(a.starts_at)}" + (f" until {iso(a.ends_at)}" if a.ends_at else "")
        )
    return "\n".join(lines) + "\n"


def _html_body(n: Notification) -> str:
    e = html.escape
    rows = []
    for a in n.alerts[:MAX_HTML_ALERTS]:
        colour = RESOLVED_COLOUR if a.status == "resolved" else COLOURS.get(a.severity, "#6b7280")
        labels = " ".join(
            f'<span style="display:inline-block;background:#f3f4f6;border-radius:3px;'
            f'padding:1px 6px;margin:1px;font-family:monospace;font-size:12px">'
            f"{e(k)}={e(str(v))}</span>"
            for k, v in sorted(a.labels.items())
        )
        value = "" if a.value is None else e(str(a.value))
        rows.append(
            f'<tr><td style="width:6px;background:{colour}"></td>'
            f'<td style="padding:8px 12px;border-bottom:1px solid #e5e7eb;vertical-align:top">'
            f'<div style="font-weight:bold;color:{colour}">{e(a.status.upper())} · {e(a.severity)}</div>'
            f'<div style="font-weight:bold">{e(a.rule)}</div>'
            f"<div>{e(_summary(a))}</div><div>{labels}</div></td>"
            f'<td style="padding:8px 12px;border-bottom:1px solid #e5e7eb;vertical-align:top;'
            f'white-space:nowrap;color:#4b5563;font-size:12px">'
            f"{value}<br>{e(iso(a.starts_at) or '')}"
            f"{'<br>ended ' + e(iso(a.ends_at) or '') if a.ends_at else ''}</td></tr>"
        )
    more = len(n.alerts) - MAX_HTML_ALERTS
    if more > 0:
        rows.append(
            f'<tr><td></td><td colspan="2" style="padding:8px 12px">… and {more} more</td></tr>'
        )
    return (
        '<!DOCTYPE html><html><body style="margin:0;padding:16px;background:#f9fafb;'
        'font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;color:#111827">'
        f'<h2 style="font-size:16px;margin:0 0 12px">{e(n.title)}</h2>'
        '<table cellspacing="0" cellpadding="0" style="border-collapse:collapse;width:100%;'
        'max-width:800px;background:#ffffff;border:1px solid #e5e7eb">'
        f"{''.join(rows)}</table>"
        '<p style="color:#6b7280;font-size:12px">Sent by vigil</p></body></html>'
    )
