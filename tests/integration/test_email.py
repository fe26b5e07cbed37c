"""The email channel against a real SMTP server (aiosmtpd) with TLS and AUTH."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from engine.channels.email_channel import EmailChannel
from engine.common.secret import Secret
from engine.config.model import Channel as ChannelConfig
from engine.config.model import frozen_map
from engine.errors import DeliveryError
from engine.notify.base import AlertView, Notification
from engine.plugins import registry

USER, PASSWORD = "vigil", "correct horse battery staple"
T0 = 1_790_000_000.0


# -- the server --------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    authenticated: bool


@dataclass
class Handler:
    received: list[Received] = field(default_factory=list)
    auth_attempts: list[str] = field(default_factory=list)  # mechanisms tried
    data_reply: str = "250 OK"
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address -> refusal

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        # session.ssl is set by STARTTLS only; implicit TLS shows on the transport
        tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        self.received.append(
            Received(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                msg,
                tls,
                bool(session.authenticated),
            )
        )
        return self.data_reply

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        self.auth_attempts.append(mechanism)
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == USER.encode()
            and auth_data.password == PASSWORD.encode()
        )
        return AuthResult(success=ok, handled=False)  # not handled: the server replies 535


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, made for this run."""
    d = tmp_path_factory.mktemp("tls")
    crt, key = d / "cert.pem", d / "key.pem"
    try:
        _make_cert_cryptography(crt, key)
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip(
                "needs the cryptography package or the openssl binary to make a certificate"
            )
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
                *("-subj", "/CN=localhost"),
                *("-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
                *("-keyout", str(key), "-out", str(crt)),
            ],
            check=True,
            capture_output=True,
        )
    return crt, key


def _make_cert_cryptography(crt: Path, key: Path) -> None:
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    c = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(k.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(san, critical=False)
        .sign(k, hashes.SHA256())
    )
    crt.write_bytes(c.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        k.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )


def server_ctx(cert: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*cert)
    return ctx


@dataclass
class Server:
    port: int
    handler: Handler
    ca_file: str


@pytest.fixture
def starttls_server(cert: tuple[Path, Path]) -> Iterator[Server]:
    handler = Handler()
    port = free_port()
    ctl = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_ctx(cert),
        require_starttls=True,
        authenticator=handler.authenticate,
        auth_required=True,
        auth_require_tls=True,
    )
    ctl.start()
    try:
        yield Server(port, handler, str(cert[0]))
    finally:
        ctl.stop()


@pytest.fixture
def ssl_server(cert: tuple[Path, Path]) -> Iterator[Server]:
    handler = Handler()
    port = free_port()
    ctl = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        ssl_context=server_ctx(cert),  # implicit TLS: the handshake comes first
        authenticator=handler.authenticate,
        auth_required=True,
        # aiosmtpd 1.4 counts only STARTTLS as TLS and would hide AUTH here; the
        # connection is encrypted from the first byte, which the test checks
        auth_require_tls=False,
    )
    ctl.start()
    try:
        yield Server(port, handler, str(cert[0]))
    finally:
        ctl.stop()


# -- the channel -------------------------------------------------------------------


def channel(port: int, **settings: Any) -> EmailChannel:
    base: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "username": Secret(USER),
        "password": Secret(PASSWORD),
        "from": "vigil <vigil@example.org>",
        "to": ("oncall@example.org", "Second Person <second@example.org>"),
        "cc": ("boss@example.org",),
        "timeout": "5s",
    }
    base.update(settings)
    base = {k: v for k, v in base.items() if v is not None}
    return EmailChannel.from_config(ChannelConfig("mail", "email", frozen_map(base)))


def notification() -> Notification:
    firing = AlertView(
        fingerprint="fp1",
        rule="host_cpu_high",
        status="firing",
        severity="critical",
        labels={"host": "build-7", "note": "<script>alert(1)</script>"},
        annotations={"summary": "CPU at 93.2% on build-7 & friends"},
        value=93.2,
        starts_at=T0,
    )
    resolved = AlertView(
        fingerprint="fp2",
        rule="disk_full",
        status="resolved",
        severity="warning",
        labels={"host": "build-8"},
        annotations={"summary": "disk / at 91%"},
        value=None,
        starts_at=T0 - 600,
        ends_at=T0,
    )
    return Notification(
        channel="mail",
        group_key="{}:{rule=host_cpu_high}",
        status="firing",
        alerts=(firing, resolved),
        key="3f2a9c1d",
        title="[CRITICAL] CPU at 93.2% on build-7 — 1 firing, 1 resolved",
        body="CPU at 93.2% on build-7\n",
    )


def test_entry_point() -> None:
    assert registry.load("vigil.channels", "email") is EmailChannel
    assert EmailChannel.type_name == "email"


def test_starttls_auth_delivers_text_and_html(starttls_server: Server) -> None:
    ch = channel(starttls_server.port, ca_file=starttls_server.ca_file)
    asyncio.run(ch.send(notification()))
    [got] = starttls_server.handler.received
    assert got.tls and got.authenticated
    assert got.mail_from == "vigil@example.org"
    assert got.rcpt_tos == ["oncall@example.org", "second@example.org", "boss@example.org"]
    m = got.message
    assert m["Subject"] == "[CRITICAL] CPU at 93.2% on build-7 — 1 firing, 1 resolved"
    assert m["From"] == "vigil <vigil@example.org>"
    assert m["To"] == "oncall@example.org, Second Person <second@example.org>"
    assert m["Cc"] == "boss@example.org"
    assert m["Message-ID"] == "<3f2a9c1d@vigil>"
    assert m["X-Vigil-Key"] == "3f2a9c1d"
    assert m["X-Vigil-Status"] == "firing"
    assert m["Date"] and m["References"].startswith("<group-")
    assert "Bcc" not in m
    assert m.get_content_type() == "multipart/alternative"
    text = m.get_body(("plain",))
    html = m.get_body(("html",))
    assert text is not None and html is not None
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    assert text.get_content().replace("\r\n", "\n") == "CPU at 93.2% on build-7\n"
    page = html.get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    assert "CPU at 93.2% on build-7 &amp; friends" in page
    assert "#dc2626" in page  # the critical colour bar
    assert "#16a34a" in page  # the resolved one
    assert PASSWORD not in m.as_string()


def test_same_key_same_message_id(starttls_server: Server) -> None:
    ch = channel(starttls_server.port, ca_file=starttls_server.ca_file)
    asyncio.run(ch.send(notification()))
    asyncio.run(ch.send(notification()))
    first, second = starttls_server.handler.received
    assert first.message["Message-ID"] == second.message["Message-ID"]


def test_wrong_password_is_not_retryable_and_not_shown(starttls_server: Server) -> None:
    ch = channel(
        starttls_server.port, ca_file=starttls_server.ca_file, password=Secret("hunter2-wrong")
    )
    with pytest.raises(DeliveryError) as ei:
        asyncio.run(ch.send(notification()))
    assert ei.value.retryable is False
    assert "authentication failed (535)" in str(ei.value)
    assert "hunter2-wrong" not in str(ei.value) and USER not in str(ei.value)
    assert ei.value.__cause__ is None and ei.value.__suppress_context__
    assert starttls_server.handler.received == []
    # one attempt, not one per mechanism: failures count against the account
    assert starttls_server.handler.auth_attempts == ["PLAIN"]


def test_plain_connection_to_a_starttls_server_is_not_retryable(starttls_server: Server) -> None:
    # the server offers AUTH only after STARTTLS
    ch = channel(starttls_server.port, tls="none")
    with pytest.raises(DeliveryError, match=r"offers no AUTH \(it may want tls: starttls\)") as ei:
        asyncio.run(ch.send(notification()))
    assert ei.value.retryable is False
    # without credentials it gets as far as MAIL FROM, which says the same
    ch = channel(starttls_server.port, tls="none", username=None, password=None)
    with pytest.raises(DeliveryError, match="530 Must issue a STARTTLS command first") as ei:
        asyncio.run(ch.send(notification()))
    assert ei.value.retryable is False


def test_self_signed_certificate_is_refused_by_default(starttls_server: Server) -> None:
    ch = channel(starttls_server.port)  # no ca_file: the system store does not know it
    with pytest.raises(DeliveryError, match="certificate refused") as ei:
        asyncio.run(ch.send(notification()))
    assert ei.value.retryable is False
    assert starttls_server.handler.received == []


def test_verify_tls_false_accepts_it(starttls_server: Server) -> None:
    asyncio.run(channel(starttls_server.port, verify_tls=False).send(notification()))
    assert len(starttls_server.handler.received) == 1


@pytest.mark.parametrize(
    ("reply", "retryable"), [("451 4.3.0 try later", True), ("554 5.7.1 spam", False)]
)
def test_data_reply_classification(starttls_server: Server, reply: str, retryable: bool) -> None:
    starttls_server.handler.data_reply = reply
    ch = channel(starttls_server.port, ca_file=starttls_server.ca_file)
    with pytest.raises(DeliveryError, match=reply.split()[0]) as ei:
        asyncio.run(ch.send(notification()))
    assert ei.value.retryable is retryable


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls(ssl_server: Server) -> None:
    ch = channel(ssl_server.port, tls="ssl", ca_file=ssl_server.ca_file)
    asyncio.run(ch.send(notification()))
    [got] = ssl_server.handler.received
    assert got.authenticated and got.tls
    assert got.message["Message-ID"] == "<3f2a9c1d@vigil>"


@pytest.mark.parametrize(
    ("code", "retryable"), [("450 4.2.1 busy", True), ("550 5.1.1 unknown", False)]
)
def test_all_recipients_refused(starttls_server: Server, code: str, retryable: bool) -> None:
    for a in ("oncall@example.org", "second@example.org", "boss@example.org"):
        starttls_server.handler.rcpt_replies[a] = code
    ch = channel(starttls_server.port, ca_file=starttls_server.ca_file)
    with pytest.raises(DeliveryError, match=rf"all recipients refused \({code[:3]}\)") as ei:
        asyncio.run(ch.send(notification()))
    assert ei.value.retryable is retryable


def test_some_recipients_refused_is_delivered(
    starttls_server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    # the others have it: failing would make a retry send them a duplicate
    starttls_server.handler.rcpt_replies["boss@example.org"] = "550 5.1.1 unknown"
    ch = channel(starttls_server.port, ca_file=starttls_server.ca_file)
    with caplog.at_level(logging.WARNING):
        asyncio.run(ch.send(notification()))
    [got] = starttls_server.handler.received
    assert got.rcpt_tos == ["oncall@example.org", "second@example.org"]
    assert "1 of 3 recipients refused" in caplog.text


def test_server_down_is_retryable() -> None:
    ch = channel(free_port())  # nothing listens there
    with pytest.raises(DeliveryError) as ei:
        asyncio.run(ch.send(notification()))
    assert ei.value.retryable is True
    assert PASSWORD not in str(ei.value)


def test_silent_server_times_out_retryably() -> None:
    with socket.socket() as s:  # accepts the connection (backlog) but never greets
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        ch = channel(s.getsockname()[1], timeout="300ms")
        with pytest.raises(DeliveryError, match="timed out") as ei:
            asyncio.run(ch.send(notification()))
    assert ei.value.retryable is True


def test_default_ports() -> None:
    assert channel(None).settings.smtp_port == 587
    assert channel(None, tls="ssl").settings.smtp_port == 465
    assert channel(None, tls="none").settings.smtp_port == 25


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"password": None}, "give both or neither"),
        ({"tls": "smtps"}, "tls: expected starttls, ssl or none"),
        ({"to": ("not an address",)}, r"to\[0\]: 'not an address' is not a mail address"),
        ({"to": (Secret("nobody"),)}, r"to\[0\]: '\*\*\*' is not a mail address"),
        ({"to": ()}, "to: expected a list of mail addresses"),
        ({"timeout": "soon"}, "timeout: expected a duration"),
        ({"smtp_port": 70000}, "smtp_port: expected a port"),
        ({"bcc": ("x@example.org",)}, "unknown setting 'bcc'"),
    ],
)
def test_bad_settings(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        channel(587, **settings)
