"""Every channel type's `preview` is what its `send` puts on the wire, secrets as ***,
and previewing sends nothing.

Each test previews a notification, checks that nothing arrived (the real local
receiver, SMTP server, file or command saw nothing), then sends the same
notification through the same channel and compares the preview with what really
arrived: the HTTP receivers of tests/integration/receivers.py (every HTTP type,
with the contract test's settings), aiosmtpd for email, a real process for exec
and for the ban channel's nft, a real file, a real stream.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import re
import socket
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from engine.channels.memory import MemoryChannel
from engine.channels.preview import Wire
from engine.channels.webhook import sign
from engine.common.secret import Secret
from engine.config.model import Channel as ChannelConfig
from engine.config.model import frozen_map
from engine.plugins import registry
from tests.integration.receivers import Receiver, Recorded
from tests.integration.test_channel_contract import CASES, SECRET, Case, N, make, send_once

# the other secret values of the contract's cases: none may show in a preview
OTHER_SECRETS = ("hmac-key-1", "twilio-auth-token-9", "u-key-1")
# what aiohttp adds to every request itself (the preview lists what vigil sets)
TRANSPORT_HEADERS = {"host", "content-length", "accept"}


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def build(type_: str, name: str = "c", **settings: Any) -> Any:
    cls = registry.load("vigil.channels", type_)
    return cls.from_config(ChannelConfig(name, type_, frozen_map(settings)))


def shown(wires: list[Wire]) -> str:
    return json.dumps([w.as_dict() for w in wires])


# -- HTTP: every type against a real receiver -------------------------------------------


@pytest.fixture(scope="module")
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture(params=CASES, ids=str)
def case(request: pytest.FixtureRequest, rx: Receiver) -> Case:
    c: Case = request.param  # the contract test's cases, each with its success reply
    rx.reset(c.ok)
    return c


def test_every_channel_type_can_preview() -> None:
    for t in registry.channel_types():
        assert callable(getattr(registry.load("vigil.channels", t), "preview", None)), t


def _stable(case: Case, body: str) -> str:
    """The body without what depends on the second it was encoded in."""
    if case.type != "alertmanager":
        return body
    alerts = json.loads(body)
    for a in alerts:  # a firing alert's endsAt is now + resolve_timeout
        a.pop("endsAt", None)
    return json.dumps(alerts)


def _same_request(case: Case, ch: Any, w: Wire, r: Recorded, base: str) -> None:
    scrub = ch.http.scrub
    method, _, url = w.target.partition(" ")
    assert (w.kind, method) == ("http", r.method)
    path = scrub(r.path + (f"?{r.query}" if r.query else ""))
    assert url == base + ("/" if path.startswith("*") else "") + path
    assert _stable(case, w.body) == _stable(case, scrub(r.body.decode()))
    headers = dict(w.headers)
    assert {k.lower() for k in headers} == set(r.headers) - TRANSPORT_HEADERS
    for k, v in headers.items():
        got = r.headers[k.lower()]
        if v == "Basic ***":
            assert got.startswith("Basic ")  # twilio's SID and token, alertmanager's userinfo
        elif k in ("X-Vigil-Timestamp", "X-Vigil-Signature"):
            continue  # the second it was signed in: checked below
        else:
            assert v == scrub(got), k
    if "X-Vigil-Signature" in headers:  # the preview's signature is right for its body
        ts = int(headers["X-Vigil-Timestamp"])
        assert headers["X-Vigil-Signature"] == sign("hmac-key-1", ts, w.body.encode())


def test_http_preview_is_what_the_send_puts_on_the_wire(case: Case, rx: Receiver) -> None:
    ch = make(case, rx.url)
    wires = ch.preview(N)
    assert rx.requests == []  # the preview made no request
    assert run(send_once(ch, N)) is None
    got = rx.requests
    assert len(wires) == len(got) == case.per_send
    for w, r in zip(wires, got, strict=True):
        _same_request(case, ch, w, r, rx.url)


def test_http_preview_shows_no_secret(case: Case, rx: Receiver) -> None:
    ch = make(case, rx.url)
    text = shown(ch.preview(N))
    run(ch.aclose())
    for secret in (SECRET, *OTHER_SECRETS):
        assert secret not in text
    assert "***" in text  # and says where one was
    assert rx.requests == []


# -- email: aiosmtpd -------------------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.got: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.got.append((str(envelope.mail_from), list(envelope.rcpt_tos), msg))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _parts(msg: EmailMessage) -> dict[str, Any]:
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    heads = ("Subject", "From", "To", "Cc", "Message-ID", "References", "X-Vigil-Key")
    return {
        **{h: str(msg[h]) for h in heads},
        "text": text.get_content(),  # type: ignore[attr-defined]
        "html": html.get_content(),  # type: ignore[attr-defined]
    }


def test_email_preview_is_the_mail_the_server_gets() -> None:
    inbox, port = Inbox(), _free_port()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        sender = "alerts-s3cr3t-from@example.com"
        ch = build(
            "email",
            smtp_host="127.0.0.1",
            smtp_port=port,
            tls="none",
            to=["ops@example.com"],
            cc=["lead@example.com"],
            **{"from": Secret(f"vigil <{sender}>")},
        )
        n = replace(N, html="<p>rendered <b>html</b></p>")
        (w,) = ch.preview(n)
        assert inbox.got == []
        run(ch.send(n))
    finally:
        ctl.stop()
    ((mail_from, rcpts, msg),) = inbox.got
    assert w.kind == "smtp" and w.target == f"smtp://127.0.0.1:{port} (none)"
    assert dict(w.headers)["MAIL FROM"] == "***" and mail_from == sender
    assert [v for k, v in w.headers if k == "RCPT TO"] == rcpts
    previewed = email.message_from_string(w.body, policy=email.policy.default)
    assert isinstance(previewed, EmailMessage)
    want = _parts(msg)
    assert want["From"] == f"vigil <{sender}>"
    want["From"] = "***"  # the secret sender, redacted in the preview only
    assert _parts(previewed) == want
    assert want["html"].strip() == "<p>rendered <b>html</b></p>"
    assert sender not in w.body


# -- exec: a real process --------------------------------------------------------------


def test_exec_preview_is_the_argv_stdin_and_environment_the_command_gets(tmp_path: Path) -> None:
    out = tmp_path / "out"
    script = (
        'printf "%s\\n" "$@" > "$OUT/argv"; cat > "$OUT/stdin"; '
        'env | grep "^VIGIL_\\|^TOKEN=" | sort > "$OUT/env"'
    )
    ch = build(
        "exec",
        argv=["/bin/sh", "-c", script, "sh", "{{ status }}", Secret("tok-s3cr3t-42")],
        env={"OUT": str(out), "TOKEN": Secret("tok-s3cr3t-42")},
    )
    (w,) = ch.preview(N)
    assert not out.exists()  # nothing ran
    out.mkdir()
    run(ch.send(N))
    assert w.kind == "exec" and w.argv[:4] == ("/bin/sh", "-c", script, "sh")
    argv = (out / "argv").read_text().splitlines()
    assert argv == ["firing", "tok-s3cr3t-42"] and w.argv[4:] == ("firing", "***")
    stdin = (out / "stdin").read_text()
    assert w.body == stdin
    env = dict(line.split("=", 1) for line in (out / "env").read_text().splitlines())
    previewed = dict(w.headers)
    assert previewed.pop("OUT") == str(out) and previewed.pop("TOKEN") == "***"
    assert env.pop("TOKEN") == "tok-s3cr3t-42"
    assert previewed.pop("VIGIL_ALERTS_JSON") == "(the stdin below)"
    assert env.pop("VIGIL_ALERTS_JSON") == stdin
    assert previewed == env
    assert "tok-s3cr3t-42" not in shown([w])


# -- ban: the nft batch, run by a real process standing in for nft -----------------------


def test_ban_preview_is_the_nft_batch_it_runs(tmp_path: Path) -> None:
    batch = tmp_path / "batch"
    command = ["/bin/sh", "-c", f'cat > "{batch}"; echo "$0 $1" > "{batch}.args"']
    ch = build("ban", "fw", nft_command=command, allowlist=["10.0.0.0/8"])
    attacker = replace(
        N.alerts[0],
        labels={"ip": "203.0.113.7"},
        fingerprint="fp-ban",
    )
    n = replace(N, alerts=(attacker,))
    (w,) = ch.preview(n)
    assert not batch.exists()  # nft did not run
    run(ch.send(n))
    assert w.kind == "nft" and w.argv == (*command, "-f", "-")
    assert (Path(f"{batch}.args")).read_text().split() == ["-f", "-"]
    assert w.body == batch.read_text()
    assert "203.0.113.7" in w.body
    run(ch.aclose())


def test_ban_preview_of_an_allowlisted_address_runs_nothing() -> None:
    ch = build("ban", "fw", nft_command=["/bin/false"], allowlist=["203.0.113.0/24"])
    attacker = replace(N.alerts[0], labels={"ip": "203.0.113.7"})
    assert ch.preview(replace(N, alerts=(attacker,))) == []


# -- file, log, memory -----------------------------------------------------------------

_TS = re.compile(r'"ts": ?"[^"]*"|ts=\S+')


def test_file_preview_is_the_line_appended(tmp_path: Path) -> None:
    path = tmp_path / "notes.jsonl"
    ch = build("file", path=str(path))
    (w,) = ch.preview(N)
    assert not path.exists()
    run(ch.send(N))
    assert w.kind == "file" and w.target == str(path)
    # the same line but for "ts", the second it was written in
    assert _TS.sub("", w.body) == _TS.sub("", path.read_text())


def test_file_preview_hides_a_secret_path(tmp_path: Path) -> None:
    ch = build("file", path=Secret(str(tmp_path / "s3cr3t-dir.jsonl")))
    (w,) = ch.preview(N)
    assert w.target == "***" and "s3cr3t" not in shown([w])


def test_log_preview_is_what_the_stream_gets(capsys: pytest.CaptureFixture[str]) -> None:
    ch = build("log", stream="stdout")
    (w,) = ch.preview(N)
    assert capsys.readouterr().out == ""
    run(ch.send(N))
    written = capsys.readouterr().out
    assert w.kind == "log" and w.target == "stdout"
    assert _TS.sub("", w.body) == _TS.sub("", written) and written.count("\n") == 2


def test_memory_preview_is_the_notification_it_keeps() -> None:
    MemoryChannel.reset()
    ch = build("memory", "mem-preview")
    (w,) = ch.preview(N)
    assert MemoryChannel.attempts("mem-preview") == []
    run(ch.send(N))
    (kept,) = MemoryChannel.sent("mem-preview")
    assert json.loads(w.body) == json.loads(json.dumps(kept.as_dict()))


def test_every_type_is_compared_with_a_real_send() -> None:
    """A new channel type needs a comparison here: the HTTP ones through CASES."""
    own = {
        "email": test_email_preview_is_the_mail_the_server_gets,
        "exec": test_exec_preview_is_the_argv_stdin_and_environment_the_command_gets,
        "ban": test_ban_preview_is_the_nft_batch_it_runs,
        "file": test_file_preview_is_the_line_appended,
        "log": test_log_preview_is_what_the_stream_gets,
        "memory": test_memory_preview_is_the_notification_it_keeps,
    }
    assert set(registry.channel_types()) == {c.type for c in CASES} | set(own)
