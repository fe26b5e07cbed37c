"""One contract for every HTTP channel type, against a real local HTTP receiver.

Each type is described once in CASES (its settings, the receiver's success
answer, and what its requests must look like, as the real service documents
them); every test in the contract section runs against every case. Type-specific
behaviour (signatures, event actions, priorities ...) follows below the contract.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from engine import __version__
from engine.channels import telegram
from engine.common.secret import Secret
from engine.config.model import Channel as ChannelConfig
from engine.config.model import frozen_map
from engine.errors import DeliveryError
from engine.httpclient.client import NetworkPolicy, parse_retry_after
from engine.httpclient.redaction import redact_url
from engine.notify.base import AlertView, Notification, iso
from engine.plugins import registry

try:
    from tests.integration.receivers import Receiver, Recorded, Reply
except ImportError:  # pragma: no cover - tests/integration run without its __init__.py
    from receivers import Receiver, Recorded, Reply  # type: ignore[no-redef,import-not-found]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhook-signature.md"
SECRET = "s3cr3t-T0KEN-4f9a2c"  # in every case's secret-bearing setting
T0 = 1_795_000_000.0

# --- notifications -------------------------------------------------------------------


def view(**kw: Any) -> AlertView:
    base: dict[str, Any] = {
        "fingerprint": "fp-cpu-web1",
        "rule": "host_cpu_high",
        "status": "firing",
        "severity": "critical",
        "labels": {"rule": "host_cpu_high", "host": "web-1", "team": "infra"},
        "annotations": {"summary": "CPU at 93.2% on web-1", "runbook": "https://wiki/cpu"},
        "value": 93.2,
        "starts_at": T0,
    }
    base.update(kw)
    return AlertView(**base)


FIRING = view()
RESOLVED = view(
    fingerprint="fp-disk-web2",
    rule="disk_full",
    status="resolved",
    severity="warning",
    labels={"host": "web-2", "mount": "/var"},
    annotations={"summary": "Disk /var on web-2 at 91%"},
    value=91,
    starts_at=T0 - 600,
    ends_at=T0 - 5,
)


def notification(*alerts: AlertView, **kw: Any) -> Notification:
    alerts = alerts or (FIRING, RESOLVED)
    base: dict[str, Any] = {
        "channel": "test",
        "group_key": '{}:{rule="host_cpu_high"}',
        "status": "firing" if any(a.status == "firing" for a in alerts) else "resolved",
        "alerts": tuple(alerts),
        "key": "idem-7f3e9b",
        "title": "[CRITICAL] CPU high on web-1",
        "body": "CPU at 93.2% on web-1\nDisk /var on web-2 recovered",
    }
    base.update(kw)
    return Notification(**base)


N = notification()

# --- the cases -----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    type: str
    settings: Callable[[str], dict[str, Any]]  # base URL -> settings
    ok: Reply  # what the service answers on success
    per_send: int  # requests one send of N makes
    check: Callable[[list[Recorded]], None]  # the requests of one send of N
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.type


def check_webhook(reqs: list[Recorded]) -> None:
    (r,) = reqs
    assert r.method == "POST" and r.path == f"/hooks/{SECRET}"
    assert r.json() == N.as_dict()
    assert r.headers["content-type"] == "application/json"
    assert r.headers["idempotency-key"] == N.key
    assert r.headers["x-custom"] == "yes"
    assert r.headers["x-vigil-signature"].startswith("sha256=")


def check_slack(reqs: list[Recorded]) -> None:
    (r,) = reqs
    body = r.json()
    assert body["text"] == N.title
    (att,) = body["attachments"]
    assert att["color"] == "#E01E5A"  # critical firing
    blocks = att["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": N.title}}
    sections = [b for b in blocks if b["type"] == "section" and "fields" in b]
    assert len(sections) == 2
    assert "*Severity*\ncritical" in [f["text"] for f in sections[0]["fields"]]
    assert body["channel"] == "#ops" and body["username"] == "vigil"
    assert body["icon_emoji"] == ":rotating_light:"


def check_discord(reqs: list[Recorded]) -> None:
    (r,) = reqs
    body = r.json()
    assert body["content"].startswith(f"**{N.title}**")
    assert len(body["content"]) <= 2000
    assert [e["color"] for e in body["embeds"]] == [0xE01E5A, 0x2EB67D]
    assert body["embeds"][0]["title"] == "CPU at 93.2% on web-1"
    assert body["allowed_mentions"] == {"parse": []}
    assert body["username"] == "vigil"


def check_teams(reqs: list[Recorded]) -> None:
    (r,) = reqs
    body = r.json()
    assert body["type"] == "message"
    (att,) = body["attachments"]
    assert att["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = att["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["body"][0]["style"] == "attention"
    assert card["body"][0]["items"][0]["text"] == N.title
    factsets = [i for c in card["body"] for i in c.get("items", []) if i["type"] == "FactSet"]
    assert len(factsets) == 2


def check_telegram(reqs: list[Recorded]) -> None:
    (r,) = reqs
    assert r.path == f"/bot{SECRET}/sendMessage"
    body = r.json()
    assert body["chat_id"] == -1001234567890
    assert body["parse_mode"] == "HTML"
    assert body["disable_web_page_preview"] is True
    assert body["text"].startswith(f"<b>{N.title}</b>\n")


def check_mattermost(reqs: list[Recorded]) -> None:
    (r,) = reqs
    body = r.json()
    assert body["text"].startswith(f"**{N.title}**")
    assert [a["color"] for a in body["attachments"]] == ["#E01E5A", "#2EB67D"]
    assert {"short": True, "title": "Severity", "value": "critical"} in body["attachments"][0][
        "fields"
    ]
    assert body["channel"] == "town-square"


def check_pagerduty(reqs: list[Recorded]) -> None:
    trigger, resolve = (r.json() for r in reqs)
    assert all(r.path == "/v2/enqueue" for r in reqs)
    assert trigger["routing_key"] == SECRET
    assert trigger["event_action"] == "trigger" and trigger["dedup_key"] == FIRING.fingerprint
    p = trigger["payload"]
    assert p["summary"] == "CPU at 93.2% on web-1" and p["severity"] == "critical"
    assert p["source"] == "web-1"
    assert p["custom_details"]["labels"]["host"] == "web-1"
    assert p["custom_details"]["value"] == 93.2
    assert trigger["links"] == [{"href": "https://wiki/cpu", "text": "runbook"}]
    assert resolve == {
        "routing_key": SECRET,
        "event_action": "resolve",
        "dedup_key": RESOLVED.fingerprint,
    }


def check_opsgenie(reqs: list[Recorded]) -> None:
    create, close = reqs
    assert all(r.headers["authorization"] == f"GenieKey {SECRET}" for r in reqs)
    assert create.path == "/v2/alerts"
    body = create.json()
    assert body["alias"] == FIRING.fingerprint
    assert body["message"] == "CPU at 93.2% on web-1" and body["priority"] == "P2"
    assert body["responders"] == [
        {"type": "team", "name": "ops"},
        {"type": "user", "username": "ann"},
    ]
    assert "infra" in body["tags"] and body["details"]["host"] == "web-1"
    assert close.path == f"/v2/alerts/{RESOLVED.fingerprint}/close"
    assert close.query == "identifierType=alias"


def check_twilio(reqs: list[Recorded]) -> None:
    assert [r.form()["To"] for r in reqs] == ["+15557654321", "+15550000002"]
    for r in reqs:
        assert r.path == f"/2010-04-01/Accounts/AC{SECRET}/Messages.json"
        assert r.headers["content-type"] == "application/x-www-form-urlencoded"
        assert r.headers["authorization"].startswith("Basic ")
        form = r.form()
        assert form["From"] == "+15551234567"
        assert form["Body"].startswith(N.title) and len(form["Body"]) <= 1600


def check_pushover(reqs: list[Recorded]) -> None:
    (r,) = reqs
    assert r.path == "/1/messages.json"
    form = r.form()
    assert form["token"] == SECRET and form["user"] == "u-key-1"
    assert form["title"] == N.title and form["priority"] == "1"
    assert "retry" not in form


def check_alertmanager(reqs: list[Recorded]) -> None:
    (r,) = reqs
    assert r.path == "/api/v2/alerts"
    firing, resolved = r.json()
    assert firing["labels"] == {
        "alertname": "host_cpu_high",
        "severity": "critical",
        "rule": "host_cpu_high",
        "host": "web-1",
        "team": "infra",
    }
    assert firing["startsAt"] == iso(T0)
    assert epoch(firing["endsAt"]) > time.time() + 290  # now + resolve_timeout (5m)
    assert resolved["startsAt"] == iso(T0 - 600)
    assert resolved["endsAt"] == iso(T0 - 5)  # the resolve time
    assert r.headers["authorization"].startswith("Basic ")


CASES = [
    Case(
        "webhook",
        lambda b: {
            "url": Secret(f"{b}/hooks/{SECRET}"),
            "secret": Secret("hmac-key-1"),
            "headers": {"X-Custom": "yes"},
        },
        Reply(200),
        1,
        check_webhook,
    ),
    Case(
        "slack",
        lambda b: {
            "url": Secret(f"{b}/services/T0/B0/{SECRET}"),
            "channel": "#ops",
            "username": "vigil",
            "icon_emoji": ":rotating_light:",
        },
        Reply(200, "ok"),
        1,
        check_slack,
    ),
    Case(
        "discord",
        lambda b: {"url": f"{b}/api/webhooks/123/{SECRET}", "username": "vigil"},
        Reply(204),
        1,
        check_discord,
    ),
    Case("teams", lambda b: {"url": Secret(f"{b}/workflows/{SECRET}")}, Reply(202), 1, check_teams),
    Case(
        "telegram",
        lambda b: {"bot_token": Secret(SECRET), "chat_id": -1001234567890, "base_url": b},
        Reply(200, {"ok": True, "result": {"message_id": 1}}),
        1,
        check_telegram,
    ),
    Case(
        "mattermost",
        lambda b: {"url": Secret(f"{b}/hooks/{SECRET}"), "channel": "town-square"},
        Reply(200, "ok"),
        1,
        check_mattermost,
    ),
    Case(
        "pagerduty",
        lambda b: {"routing_key": Secret(SECRET), "base_url": b},
        Reply(202, {"status": "success", "message": "Event processed", "dedup_key": "x"}),
        2,
        check_pagerduty,
    ),
    Case(
        "opsgenie",
        lambda b: {
            "api_key": SECRET,  # a plain string is kept out of messages as well
            "base_url": b,
            "responders": ({"type": "team", "name": "ops"}, {"type": "user", "name": "ann"}),
            "tags": ("vigil", "infra"),
        },
        Reply(202, {"result": "Request will be processed", "took": 0.01, "requestId": "r"}),
        2,
        check_opsgenie,
    ),
    Case(
        "twilio",
        lambda b: {
            "account_sid": Secret(f"AC{SECRET}"),
            "auth_token": Secret("twilio-auth-token-9"),
            "from": "+15551234567",
            "to": ("+15557654321", "+15550000002"),
            "base_url": b,
        },
        Reply(201, {"sid": "SM1", "status": "queued"}),
        2,
        check_twilio,
    ),
    Case(
        "pushover",
        lambda b: {"token": Secret(SECRET), "user": Secret("u-key-1"), "base_url": b},
        Reply(200, {"status": 1, "request": "req-1"}),
        1,
        check_pushover,
    ),
    Case(
        "alertmanager",
        lambda b: {"url": Secret(b.replace("http://", f"http://vigil:{SECRET}@"))},
        Reply(200),
        1,
        check_alertmanager,
    ),
]
HTTP_TYPES = [c.type for c in CASES]

# --- helpers -------------------------------------------------------------------------


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def make(case: Case, base: str, *, drop: tuple[str, ...] = (), **extra: Any) -> Any:
    """The case's channel, built through its entry point as the daemon does."""
    cls = registry.load("vigil.channels", case.type)
    settings = {k: v for k, v in case.settings(base).items() if k not in drop} | extra
    return cls.from_config(ChannelConfig(f"test-{case.type}", case.type, frozen_map(settings)))


async def send_once(ch: Any, n: Notification = N) -> DeliveryError | None:
    try:
        await ch.send(n)
    except DeliveryError as e:
        return e
    finally:
        await ch.aclose()
    return None


def fail(case: Case, base: str, n: Notification = N, **extra: Any) -> DeliveryError:
    err = run(send_once(make(case, base, **extra), n))
    assert isinstance(err, DeliveryError), "expected a DeliveryError"
    assert SECRET not in str(err)
    return err


@pytest.fixture(scope="module")
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture(params=CASES, ids=str)
def case(request: pytest.FixtureRequest, rx: Receiver) -> Case:
    c: Case = request.param
    rx.reset(c.ok)
    return c


# socket.connect audit events, to show that a refused address is never dialled
_connects: list[Any] = []
_recording = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _recording and event == "socket.connect":
        _connects.append(args[1])


sys.addaudithook(_audit)

# --- the contract --------------------------------------------------------------------


def test_every_http_type_is_covered() -> None:
    http_types = {
        t
        for t in registry.channel_types()
        if t not in ("log", "file", "memory", "email", "exec", "ban")
    }
    assert http_types <= set(HTTP_TYPES)
    for t in HTTP_TYPES:
        assert registry.load("vigil.channels", t).type_name == t


def test_payload_as_the_service_documents_it(case: Case, rx: Receiver) -> None:
    assert run(send_once(make(case, rx.url))) is None
    reqs = rx.requests
    assert len(reqs) == case.per_send
    assert all(r.headers["user-agent"] == f"vigil/{__version__}" for r in reqs)
    case.check(reqs)


def test_400_is_not_retryable(case: Case, rx: Receiver) -> None:
    # the body echoes the request path, as services do, with any token in it
    rx.reset(Reply(400, "invalid request to {path}"))
    err = fail(case, rx.url)
    assert err.retryable is False
    assert "400" in str(err)
    assert len(rx.requests) == 1  # the first failure stops a multi-request send


def test_500_is_retryable(case: Case, rx: Receiver) -> None:
    rx.reset(Reply(500, "upstream broke at {path}"))
    err = fail(case, rx.url)
    assert err.retryable is True and err.retry_after is None
    assert f"POST http://127.0.0.1:{rx.port}/…: HTTP 500 Internal Server Error" in str(err)


def test_429_gives_retry_after(case: Case, rx: Receiver) -> None:
    rx.reset(Reply(429, "slow down", headers={"Retry-After": "7"}))
    err = fail(case, rx.url)
    assert err.retryable is True
    assert err.retry_after == 7.0


def test_a_hanging_receiver_is_cut_off_by_the_timeout(case: Case, rx: Receiver) -> None:
    rx.reset(Reply(hang=True))
    start = time.monotonic()
    err = fail(case, rx.url, timeout="500ms")
    elapsed = time.monotonic() - start
    assert err.retryable is True
    assert "timed out after 0.5s" in str(err)
    assert 0.4 < elapsed < 1.5


def test_redirects_are_not_followed(case: Case, rx: Receiver) -> None:
    rx.reset(Reply(302, headers={"Location": f"https://elsewhere.example/{SECRET}"}))
    err = fail(case, rx.url)
    assert err.retryable is False
    assert "not followed" in str(err) and "https://elsewhere.example/…" in str(err)
    assert len(rx.requests) == 1


def test_secrets_never_reach_logs_or_errors(
    case: Case, rx: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    messages = []
    for reply in (
        Reply(400, "bad: {path}"),
        Reply(500, "{path}"),
        Reply(429, headers={"Retry-After": "1"}),
        Reply(302, headers={"Location": f"{rx.url}/{SECRET}"}),
    ):
        rx.reset(reply)
        messages.append(str(fail(case, rx.url)))
    rx.reset(Reply(hang=True))
    messages.append(str(fail(case, rx.url, timeout="200ms")))
    rx.reset(case.ok)
    assert run(send_once(make(case, rx.url))) is None
    messages.append(str(fail(case, "http://127.0.0.1:1")))  # connection refused
    # the receiver's own (server side) logs are not ours
    ours = [r for r in caplog.records if not r.name.startswith("uvicorn")]
    assert any(
        r.name == "engine.httpclient.client" and "-> HTTP" in r.getMessage() for r in ours
    ), "the client's request log was not captured"
    logged = "\n".join(r.getMessage() for r in ours)
    for secret in (SECRET, "hmac-key-1", "twilio-auth-token-9"):
        assert secret not in logged
        assert all(secret not in m for m in messages)
    assert "/…" in logged


def test_metadata_address_is_refused_without_connecting(case: Case, rx: Receiver) -> None:
    global _recording
    _connects.clear()
    _recording = True
    try:
        # written literally, it is refused at load (`vigil validate`), never sent to
        with pytest.raises(ValueError, match="metadata address, never contacted"):
            make(case, "http://169.254.169.254")
    finally:
        _recording = False
    assert not [a for a in _connects if isinstance(a, tuple) and a[0] == "169.254.169.254"]
    # the audit hook does see connections: the same channel at the receiver
    _recording = True
    try:
        assert run(send_once(make(case, rx.url))) is None
    finally:
        _recording = False
    assert any(isinstance(a, tuple) and a[:2] == ("127.0.0.1", rx.port) for a in _connects)


def test_deny_networks_refuses_the_receiver(case: Case, rx: Receiver) -> None:
    err = fail(case, rx.url, deny_networks=("127.0.0.0/8",))
    assert err.retryable is False and "deny_networks" in str(err)
    err = fail(case, rx.url, allow_networks=("10.0.0.0/8",))
    assert err.retryable is False and "allow_networks" in str(err)
    assert rx.requests == []
    assert run(send_once(make(case, rx.url, allow_networks=("127.0.0.1/32",)))) is None


def test_500_three_times_then_200_delivers_once(case: Case, rx: Receiver) -> None:
    rx.push(Reply(500), Reply(500), Reply(500))

    async def until_delivered() -> int:
        ch = make(case, rx.url)
        try:
            for attempt in range(1, 10):  # the retry stage's loop, without its backoff
                try:
                    await ch.send(N)
                    return attempt
                except DeliveryError as e:
                    assert e.retryable
            raise AssertionError("never delivered")
        finally:
            await ch.aclose()

    assert run(until_delivered()) == 4
    reqs = rx.requests
    assert [r.status for r in reqs if not r.ok] == [500, 500, 500]
    assert len([r for r in reqs if r.ok]) == case.per_send  # one delivery, nothing twice
    case.check([r for r in reqs if r.ok])


def test_bad_settings_are_value_errors(case: Case, rx: Receiver) -> None:
    cls = registry.load("vigil.channels", case.type)
    good = case.settings(rx.url)
    with pytest.raises(ValueError, match="unknown setting 'colour'"):
        cls.from_config(ChannelConfig("x", case.type, frozen_map({**good, "colour": "red"})))
    with pytest.raises(ValueError, match="timeout"):
        cls.from_config(ChannelConfig("x", case.type, frozen_map({**good, "timeout": "soon"})))
    with pytest.raises(ValueError, match="deny_networks"):
        cls.from_config(
            ChannelConfig("x", case.type, frozen_map({**good, "deny_networks": ("10.0.0/x",)}))
        )
    url_key = "url" if "url" in good else "base_url"
    with pytest.raises(ValueError) as info:
        cls.from_config(
            ChannelConfig("x", case.type, frozen_map({**good, url_key: f"ftp://h/{SECRET}"}))
        )
    assert SECRET not in str(info.value)


# --- the shared client ---------------------------------------------------------------


def test_redact_url() -> None:
    assert redact_url("https://hooks.slack.com/services/T/B/X") == "https://hooks.slack.com/…"
    assert redact_url("https://u:p@h.example:8443/a?token=x") == "https://h.example:8443/…"
    assert redact_url("http://h.example/?k=v") == "http://h.example/…"
    assert redact_url("http://h.example/") == "http://h.example"
    assert redact_url("http://[::1]:9093/api") == "http://[::1]:9093/…"
    assert redact_url(Secret("https://api.telegram.org/bot123:abc/sendMessage")) == (
        "https://api.telegram.org/…"
    )
    assert redact_url("not a url") == "<invalid url>"


def test_retry_after_forms() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_retry_after_as_http_date(rx: Receiver) -> None:
    from email.utils import formatdate

    rx.reset(Reply(503, headers={"Retry-After": formatdate(time.time() + 30, usegmt=True)}))
    err = fail(CASES[0], rx.url)
    assert err.retryable and err.retry_after is not None and 27 <= err.retry_after <= 30


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",
        "fe80::1",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "100.100.100.200",
        "0.0.0.0",
    ],
)
def test_never_contacted_whatever_the_policy(address: str) -> None:
    import ipaddress

    policy = NetworkPolicy(allow=(ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")))
    reason = policy.refusal(ipaddress.ip_address(address))
    assert reason is not None and "metadata" in reason


def test_metadata_name_forms_are_refused() -> None:
    # the resolver turns these spellings into 169.254.169.254 as well
    for url in ("http://2852039166/", "http://0xa9fea9fe/", "http://[::ffff:a9fe:a9fe]/"):
        with pytest.raises(ValueError, match=r"169\.254\.169\.254\)? is a link-local"):
            make(CASES[0], "http://unused", url=url)


def test_unresolvable_host_is_retryable() -> None:
    err = fail(CASES[0], "http://unused", url="http://no-such-host.invalid/hook", timeout="3s")
    # without a reachable DNS server the lookup may time out instead
    assert err.retryable is True
    assert "cannot resolve no-such-host.invalid" in str(err) or "timed out" in str(err)


def test_large_error_bodies_are_capped(rx: Receiver) -> None:
    rx.reset(Reply(500, b"x" * (4 * 1024 * 1024)))
    err = fail(CASES[0], rx.url)
    assert err.retryable and len(str(err)) < 400


# --- webhook -------------------------------------------------------------------------


def docs_verify() -> Callable[..., bool]:
    """The `verify` of docs/webhook-signature.md's Python recipe, run as written."""
    text = DOCS.read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(code.group(1), namespace)
    verify: Callable[..., bool] = namespace["verify"]
    return verify


def test_webhook_signature_verifies_with_the_documented_recipe(rx: Receiver) -> None:
    rx.reset()
    assert run(send_once(make(CASES[0], rx.url))) is None
    (r,) = rx.requests
    verify = docs_verify()
    assert verify("hmac-key-1", r.headers, r.body)
    assert not verify("another-key", r.headers, r.body)
    assert not verify("hmac-key-1", r.headers, r.body + b" ")
    ts = int(r.headers["x-vigil-timestamp"])
    assert abs(ts - time.time()) < 5
    assert not verify("hmac-key-1", r.headers, r.body, now=ts + 301)  # a replay
    assert r.headers["idempotency-key"] == N.key
    expected = hmac.new(b"hmac-key-1", f"{ts}.".encode() + r.body, hashlib.sha256).hexdigest()
    assert r.headers["x-vigil-signature"] == f"sha256={expected}"


def test_webhook_signature_verifies_with_the_documented_openssl_line(
    rx: Receiver, tmp_path: Path
) -> None:
    rx.reset()
    assert run(send_once(make(CASES[0], rx.url))) is None
    (r,) = rx.requests
    line = re.search(r"```sh\n(.*?)```", DOCS.read_text(), re.S)
    assert line is not None
    (tmp_path / "body.json").write_bytes(r.body)
    env = {
        "PATH": "/usr/bin:/bin",
        "TS": r.headers["x-vigil-timestamp"],
        "SIG": r.headers["x-vigil-signature"],
        "HOOK_SECRET": "hmac-key-1",
    }
    out = subprocess.run(
        ["sh", "-c", line.group(1)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.stdout.strip() == "valid", out.stderr


def test_webhook_put_without_secret(rx: Receiver) -> None:
    rx.reset()
    assert run(send_once(make(CASES[0], rx.url, drop=("secret",), method="PUT"))) is None
    (r,) = rx.requests
    assert r.method == "PUT"
    assert "x-vigil-signature" not in r.headers and "x-vigil-timestamp" not in r.headers


def test_webhook_refuses_configured_protocol_headers(rx: Receiver) -> None:
    with pytest.raises(ValueError, match="set by vigil"):
        make(CASES[0], rx.url, headers={"X-Vigil-Signature": "forged"})


# --- slack, telegram, teams ------------------------------------------------------------


def test_slack_escapes_and_colours_resolved(rx: Receiver) -> None:
    rx.reset(Reply(200, "ok"))
    a = replace(RESOLVED, annotations={"summary": "<!channel> & <b>"})
    assert run(send_once(make(CASES[1], rx.url), notification(a, title="ok"))) is None
    body = rx.requests[0].json()
    assert body["attachments"][0]["color"] == "#2EB67D"
    texts = [b["text"]["text"] for b in body["attachments"][0]["blocks"] if b["type"] == "section"]
    assert "*&lt;!channel&gt; &amp; &lt;b&gt;*" in texts


def test_telegram_ok_false_is_an_error(rx: Receiver) -> None:
    case = CASES[4]
    rx.reset(
        Reply(200, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"})
    )
    err = fail(case, rx.url)
    assert err.retryable is False and "chat not found" in str(err)
    rx.reset(
        Reply(
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 5",
                "parameters": {"retry_after": 5},
            },
        )
    )
    err = fail(case, rx.url)
    assert err.retryable is True and err.retry_after == 5.0


def test_telegram_escapes_html(rx: Receiver) -> None:
    rx.reset(CASES[4].ok)
    n = notification(title="<script> & co", body="a < b > c")
    assert run(send_once(make(CASES[4], rx.url), n)) is None
    text = rx.requests[0].json()["text"]
    assert text == "<b>&lt;script&gt; &amp; co</b>\na &lt; b &gt; c"
    assert telegram.message(n, "MarkdownV2") == "*<script\\> & co*\na < b \\> c"
    assert telegram.escape("v1.2 (x_y) *z* [l](u) #1!", "MarkdownV2") == (
        "v1\\.2 \\(x\\_y\\) \\*z\\* \\[l\\]\\(u\\) \\#1\\!"
    )


def test_telegram_cuts_long_text(rx: Receiver) -> None:
    rx.reset(CASES[4].ok)
    assert run(send_once(make(CASES[4], rx.url), notification(body="é" * 10000))) is None
    text = rx.requests[0].json()["text"]
    assert len(re.sub(r"</?b>", "", text)) <= 4096


def test_teams_legacy_delivery_failure_in_a_200(rx: Receiver) -> None:
    rx.reset(
        Reply(
            200,
            "Webhook message delivery failed with error: Microsoft Teams endpoint "
            "returned HTTP error 429 with ContextId x",
        )
    )
    err = fail(CASES[3], rx.url)
    assert err.retryable is True


# --- pagerduty, opsgenie -----------------------------------------------------------------


def test_pagerduty_event_actions_and_severities(rx: Receiver) -> None:
    case = CASES[6]
    rx.reset(case.ok)
    acked = view(fingerprint="fp-acked", acknowledged={"by": "ann", "note": "on it"})
    emergency = view(fingerprint="fp-em", severity="emergency", annotations={"summary": "x" * 2000})
    info = view(fingerprint="fp-info", severity="info", labels={})
    assert (
        run(send_once(make(case, rx.url, source="vigil-1"), notification(acked, emergency, info)))
        is None
    )
    events = [r.json() for r in rx.requests]
    assert [e["event_action"] for e in events] == ["acknowledge", "trigger", "trigger"]
    assert [e["dedup_key"] for e in events] == ["fp-acked", "fp-em", "fp-info"]
    assert events[1]["payload"]["severity"] == "critical"
    assert len(events[1]["payload"]["summary"]) == 1024
    assert events[2]["payload"]["severity"] == "info"
    assert events[2]["payload"]["source"] == "vigil-1"
    assert registry.load("vigil.channels", "pagerduty").closes_incidents is True


def test_opsgenie_acknowledge_and_priorities(rx: Receiver) -> None:
    case = CASES[7]
    rx.reset(case.ok)
    acked = view(fingerprint="fp/acked", acknowledged={"by": "ann", "note": "looking"})
    info = view(fingerprint="fp-info", severity="info", annotations={"summary": "y" * 300})
    assert run(send_once(make(case, rx.url), notification(acked, info))) is None
    ack, create = rx.requests
    assert (
        ack.path == "/v2/alerts/fp%2Facked/acknowledge"
        or ack.path == "/v2/alerts/fp/acked/acknowledge"
    )
    assert ack.query == "identifierType=alias"
    assert ack.json() == {"source": "vigil", "user": "ann", "note": "looking"}
    body = create.json()
    assert body["priority"] == "P5" and len(body["message"]) == 130
    assert registry.load("vigil.channels", "opsgenie").closes_incidents is True


# --- twilio, pushover ----------------------------------------------------------------


def test_twilio_retry_skips_recipients_already_texted(rx: Receiver) -> None:
    case = CASES[8]
    rx.reset(case.ok)
    rx.push(case.ok, Reply(500))  # the first recipient gets it, the second fails

    async def twice() -> None:
        ch = make(case, rx.url)
        try:
            with pytest.raises(DeliveryError):
                await ch.send(N)
            await ch.send(N)  # the retry
            await ch.send(N)  # a later repeat of the same alerts texts everybody again
        finally:
            await ch.aclose()

    run(twice())
    to = [(r.form()["To"], r.status) for r in rx.requests]
    assert to == [
        ("+15557654321", 201),
        ("+15550000002", 500),
        ("+15550000002", 201),
        ("+15557654321", 201),
        ("+15550000002", 201),
    ]


def test_twilio_messaging_service_and_long_bodies(rx: Receiver) -> None:
    case = CASES[8]
    rx.reset(case.ok)
    sid = "MG" + "0" * 32
    sender: dict[str, Any] = {"from": sid}  # `from` is a keyword in Python
    assert run(send_once(make(case, rx.url, **sender), notification(body="z" * 5000))) is None
    form = rx.requests[0].form()
    assert form["MessagingServiceSid"] == sid and "From" not in form
    assert len(form["Body"]) == 1600


def test_pushover_priorities(rx: Receiver) -> None:
    case = CASES[9]
    rx.reset(case.ok)
    emergency = notification(view(severity="emergency"))
    resolved = notification(RESOLVED)

    async def go() -> None:
        ch = make(case, rx.url, priorities={"warning": 1})
        try:
            await ch.send(emergency)
            await ch.send(resolved)
            await ch.send(notification(view(severity="warning")))
        finally:
            await ch.aclose()

    run(go())
    forms = [r.form() for r in rx.requests]
    assert (
        forms[0]["priority"] == "2" and forms[0]["retry"] == "60" and forms[0]["expire"] == "3600"
    )
    assert forms[1]["priority"] == "-1" and "retry" not in forms[1]
    assert forms[2]["priority"] == "1"
    rx.reset(Reply(200, {"status": 0, "errors": ["user identifier is invalid"]}))
    err = fail(case, rx.url)
    assert not err.retryable and "user identifier is invalid" in str(err)
    with pytest.raises(ValueError, match="priorities"):
        make(case, rx.url, priorities={"warning": 3})


# --- alertmanager --------------------------------------------------------------------


def test_alertmanager_cluster_succeeds_when_one_member_does(rx: Receiver) -> None:
    case = CASES[10]
    rx.reset(case.ok)
    dead = "http://127.0.0.1:1"
    ch = make(case, rx.url)
    cls = type(ch)
    cluster = ChannelConfig("am", "alertmanager", frozen_map({"urls": (dead, rx.url)}))
    assert run(send_once(cls.from_config(cluster))) is None
    assert len(rx.requests) == 1
    both_dead = ChannelConfig(
        "am", "alertmanager", frozen_map({"urls": (dead, "http://127.0.0.1:2")})
    )
    err = run(send_once(cls.from_config(both_dead)))
    assert isinstance(err, DeliveryError) and err.retryable
    assert "every Alertmanager failed" in str(err)
    with pytest.raises(ValueError, match="exactly one"):
        cls.from_config(
            ChannelConfig("am", "alertmanager", frozen_map({"url": dead, "urls": (dead,)}))
        )
    assert cls.closes_incidents is True


def test_alertmanager_label_names_and_resolve_timeout(rx: Receiver) -> None:
    case = CASES[10]
    rx.reset(case.ok)
    a = view(labels={"host": "web-1", "k8s.pod": "p-1", "empty": ""})
    before = time.time()
    assert run(send_once(make(case, rx.url, resolve_timeout="1m"), notification(a))) is None
    (alert,) = rx.requests[0].json()
    assert alert["labels"]["k8s_pod"] == "p-1" and "empty" not in alert["labels"]
    ends = epoch(alert["endsAt"])
    assert before + 59 <= ends <= time.time() + 61
    assert alert["annotations"]["value"] == "93.2"
