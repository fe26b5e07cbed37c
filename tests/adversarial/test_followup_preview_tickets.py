"""Hostile callers of the channel preview and of the live-event tickets (issue
14 F), against a real daemon: POST /api/v1/channels/{name}/preview with unknown
channels and alerts, hostile JSON bodies, template bombs in the alert data, the
wrong role or no token; POST /api/v1/events/ticket and GET /api/v1/events?ticket=
with tickets reused, expired, forged, guessed, asked for by the thousand, and
streams opened until the daemon refuses more.

Each attack gets a clear 4xx with a one-line message (the stream limit: 503, try
again later), never a 500 or a traceback in the daemon's log, and /health answers
within 1 s throughout (a probe asks every 0.2 s on a fresh connection).
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from engine.api.stream_routes import MAX_STREAMS_PER_TOKEN
from engine.api.tickets import MAX_PER_TOKEN, MAX_TICKETS, TICKET_SECONDS
from engine.runtime.fanout import MAX_SUBSCRIBERS
from tests.adversarial._api_live import (
    ADMIN,
    TOKENS,
    VIEWER,
    health_during,
    stop_clean,
    wait_ready,
)
from tests.integration.daemon import Daemon

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

OPERATOR = "tok-operator-adv-3a8d"
GONE = "tok-viewer-adv-removed-77f1"  # a token the last test removes by a reload
SPARE = "tok-viewer-adv-spare-0c4e"
RULES = """\
group: app
interval: 100ms
rules:
  - id: queue_deep
    expr: app.queue > 10
    severity: warning
    labels: {team: infra}
    annotations: {summary: "queue {{ value }} on {{ labels.host }}"}
"""
# nothing listens at these addresses: a preview never connects, and no route sends
CHANNELS = """
channels:
  - {name: hook, type: webhook, url: "http://127.0.0.1:9/hook", secret: "hmac-adv-key"}
  - {name: chat, type: slack, url: "http://127.0.0.1:9/services/x"}
  - {name: pager, type: pagerduty, routing_key: "rk-adv", base_url: "http://127.0.0.1:9"}
  - name: mail
    type: email
    smtp_host: 127.0.0.1
    smtp_port: 9
    tls: none
    from: vigil@example.com
    to: [ops@example.com]
  - name: archive
    type: file
    path: archive.jsonl
    templates:
      title: "{{ rule }} {{ labels.host }} {{ value }}"
      body: "{{ annotations.summary }} / {{ (labels.host ~ ' ') * 3 }}"
routes:
  - match: {team: nobody}
    channels: [hook, chat, pager, mail, archive]
"""
ALL_CHANNELS = ("hook", "chat", "pager", "mail", "archive")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(
        tmp_path_factory.mktemp("preview-tickets"),
        RULES,
        CHANNELS,
        tokens={
            **TOKENS,
            "ops": (OPERATOR, "operator"),
            "gone": (GONE, "viewer"),
            "spare": (SPARE, "viewer"),
        },
    )
    d.set_values({"queue": 50})
    d.start()
    wait_ready(d)
    d.wait_for(lambda e: "firing" in d.alert_events("queue_deep"), what="queue_deep firing")
    try:
        yield d
    finally:
        stop_clean(d)
        assert not (d.root / "archive.jsonl").exists()  # no preview sent anything
        kinds = {e["event"] for e in d.events()}
        assert not kinds & {"notified", "notify_failed"}, kinds


@pytest.fixture(autouse=True)
def health_throughout(live: Daemon) -> Iterator[None]:
    with health_during(live):
        yield


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def preview(
    d: Daemon,
    channel: str,
    body: Any = None,
    *,
    content: bytes | None = None,
    token: str = OPERATOR,
) -> httpx.Response:
    headers = {"Content-Type": "application/json", **(bearer(token) if token else {})}
    raw = content if content is not None else json.dumps(body or {}).encode()
    return httpx.post(
        f"{d.url}/api/v1/channels/{channel}/preview",
        content=raw,
        headers=headers,
        timeout=30,
        trust_env=False,
    )


def refused(r: httpx.Response, status: int | tuple[int, ...], *words: str) -> str:
    """A clear refusal: the status, and one line of at most 300 characters."""
    want = (status,) if isinstance(status, int) else status
    assert r.status_code in want, (r.status_code, r.text[:500])
    message: str = r.json()["error"]
    assert "\n" not in message and 0 < len(message) <= 300, message
    for w in words:
        assert w in message, message
    return message


def firing_fp(d: Daemon) -> str:
    r = httpx.get(d.url + "/api/v1/alerts", headers=bearer(VIEWER), timeout=10, trust_env=False)
    (alert,) = r.json()["alerts"]
    return str(alert["fingerprint"])


# -- the preview: who may ask, and about what ---------------------------------------------


def test_preview_roles(live: Daemon) -> None:
    fp = firing_fp(live)
    refused(preview(live, "hook", {"alert": fp}, token=""), 401)
    refused(preview(live, "hook", {"alert": fp}, token="not-a-token"), 401)
    refused(preview(live, "hook", {"alert": fp}, token=VIEWER), 403)
    for token in (OPERATOR, ADMIN):
        r = preview(live, "hook", {"alert": fp}, token=token)
        assert r.status_code == 200, r.text
        assert "hmac-adv-key" not in r.text


def test_unknown_channels_and_alerts(live: Daemon) -> None:
    refused(preview(live, "nope", {}), 404, "no channel nope")
    refused(preview(live, "x" * 3000, {}), (404, 414, 431))
    refused(preview(live, "%2e%2e%2fhook", {}), 404)
    refused(preview(live, "hook", {"alert": "ffffffffffffffff"}), 404)
    refused(preview(live, "hook", {"alert": "f" * 201}), 422, "alert:")
    refused(preview(live, "hook", {"rule": "no_such_rule"}), 422, "unknown rule")
    # a lone surrogate in a fingerprint is made valid at the boundary, then not found
    refused(preview(live, "hook", content=b'{"alert": "\\ud800"}'), 404)


BAD_BODIES: dict[str, tuple[bytes, int]] = {
    "an array": (b"[1, 2]", 422),
    "a string": (b'"alert"', 422),
    "an unknown field": (b'{"channel": "hook"}', 422),
    "alert a number": (b'{"alert": 5}', 422),
    "alert and rule": (b'{"alert": "ab", "rule": "queue_deep"}', 422),
    "labels without rule": (b'{"labels": {"a": "b"}}', 422),
    "labels a list": (b'{"rule": "queue_deep", "labels": ["a"]}', 422),
    "label value a number": (b'{"rule": "queue_deep", "labels": {"a": 1}}', 422),
    "label value too long": (
        b'{"rule": "queue_deep", "labels": {"a": "%s"}}' % (b"x" * 201),
        422,
    ),
    "65 labels": (
        json.dumps({"rule": "queue_deep", "labels": {f"l{i}": "v" for i in range(65)}}).encode(),
        422,
    ),
    "value an object": (b'{"rule": "queue_deep", "value": {"a": 1}}', 422),
    "value a list": (b'{"rule": "queue_deep", "value": [1]}', 422),
    "resolved a string": (b'{"resolved": "yes"}', 422),
    "4301-digit integer": (b'{"rule": "queue_deep", "value": %s}' % (b"9" * 4301), 400),
    "truncated": (b'{"alert": ', 400),
    "not UTF-8": (b'{"alert": "\xff\xfe"}', 400),
    "nested 100,000 deep": (b"[" * 100_000, 400),
    "deep but valid": (
        b'{"rule": "queue_deep", "labels": {"a": %s}}' % (b"[" * 5000 + b"]" * 5000),
        422,
    ),
    "2 MB": (b'{"rule": "queue_deep", "value": "%s"}' % (b"x" * 2_000_000), 413),
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_hostile_bodies_are_clear_4xx(live: Daemon, name: str) -> None:
    content, status = BAD_BODIES[name]
    before = len(live.log())
    refused(preview(live, "hook", content=content), status)
    added = live.log()[before:]
    assert "Traceback" not in added, added


def test_a_4300_digit_value_and_templates_in_the_data(live: Daemon) -> None:
    """The data of the alert is data: `{{ }}` in labels and value is shown as it
    is, never rendered; the largest integer JSON may carry renders in every
    channel type; a value of most of a megabyte is bounded by the renderer."""
    big = int("9" * 4300)
    bomb = "{{ lipsum(300000) }}{% for i in range(999999999) %}x{% endfor %}"
    labels = {"host": "{{ 7 * 7 }}", "ip": "{{ ''.__class__.__mro__ }}"}
    for channel in ALL_CHANNELS:
        for value in (big, bomb, "y" * 900_000):
            t0 = time.monotonic()
            r = preview(live, channel, {"rule": "queue_deep", "labels": labels, "value": value})
            took = time.monotonic() - t0
            assert r.status_code == 200, (channel, r.text[:300])
            assert took < 10, (channel, took)  # bounded, whatever the load
            text = r.text
            got = r.json()
            shown = json.dumps(got["notification"]["alerts"])
            assert "{{ 7 * 7 }}" in shown and "__mro__" in shown
            assert "<class" not in text  # nothing was evaluated
            assert len(text) < 8_000_000, (channel, len(text))
    r = preview(live, "archive", {"rule": "queue_deep", "labels": labels, "value": 5})
    title = r.json()["notification"]["title"]
    assert title == "queue_deep {{ 7 * 7 }} 5", title


def test_many_large_previews_at_once(live: Daemon) -> None:
    """Previews of near-limit bodies from 8 clients at once, for every channel:
    the loop keeps answering /health (the autouse probe) and each gets its answer."""
    body = {"rule": "queue_deep", "labels": {"host": "h" * 200}, "value": "z" * 900_000}

    def one(i: int) -> int:
        return preview(live, ALL_CHANNELS[i % len(ALL_CHANNELS)], body).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(one, range(24)))
    assert codes == [200] * 24


def test_reserved_labels_cannot_be_overridden(live: Daemon) -> None:
    r = preview(live, "hook", {"rule": "queue_deep", "labels": {"rule": "x", "severity": "info"}})
    assert r.status_code == 200, r.text
    (alert,) = r.json()["notification"]["alerts"]
    assert alert["rule"] == "queue_deep" and alert["severity"] == "warning"


# -- tickets --------------------------------------------------------------------------------


def ticket(d: Daemon, token: str = VIEWER) -> str:
    r = httpx.post(d.url + "/api/v1/events/ticket", headers=bearer(token), timeout=10)
    assert r.status_code == 201, r.text
    return str(r.json()["ticket"])


def open_stream(d: Daemon, query: str, source: str = "127.0.0.1") -> tuple[socket.socket, bytes]:
    """GET /api/v1/events?<query> on a raw socket from `source` (another loopback
    address is another client for the connection limits): the socket, still
    open, and the status line and headers."""
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10, source_address=(source, 0))
    s.sendall(f"GET /api/v1/events?{query} HTTP/1.1\r\nHost: vigil\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    return s, head


def stream_status(d: Daemon, query: str) -> tuple[int, str]:
    s, head = open_stream(d, query)
    with s:
        status = int(head.split(b" ", 2)[1])
        if status == 200:
            return status, ""
        body = head.partition(b"\r\n\r\n")[2]
        while len(body) < 10 and (chunk := s.recv(4096)):
            body += chunk
    return status, json.loads(body.decode())["error"]


def test_ticket_needs_a_token_and_an_empty_body(live: Daemon) -> None:
    r = httpx.post(live.url + "/api/v1/events/ticket", timeout=10)
    refused(r, 401)
    r = httpx.post(
        live.url + "/api/v1/events/ticket",
        headers=bearer(VIEWER),
        content=b'{"role": "admin"}',
        timeout=10,
    )
    refused(r, 422)
    r = httpx.post(
        live.url + "/api/v1/events/ticket",
        headers=bearer(VIEWER),
        content=b"[" * 100_000,
        timeout=10,
    )
    refused(r, 400, "malformed JSON")


def test_tickets_reused_forged_guessed(live: Daemon) -> None:
    t = ticket(live)
    assert stream_status(live, f"ticket={t}")[0] == 200
    status, message = stream_status(live, f"ticket={t}")  # used once already
    assert status == 401 and "ticket unknown, used or expired" in message
    for forged in (
        secrets.token_urlsafe(24),  # a guess of the right shape
        t[:-1] + ("A" if t[-1] != "A" else "B"),  # one character off
        "",
        "x" * 20_000,
        "%00",
        "..%2f..%2fhealth",
    ):
        status, message = stream_status(live, f"ticket={forged}")
        assert status == 401, (forged[:40], status, message)
    status, message = stream_status(live, "ticket=a&nonce=b")
    assert status == 422 and "nonce: unknown query parameter" in message
    status, message = stream_status(live, "")
    assert status == 401


def test_a_ticket_expires(live: Daemon) -> None:
    t = ticket(live)
    time.sleep(TICKET_SECONDS + 1)
    status, message = stream_status(live, f"ticket={t}")
    assert status == 401 and "expired" in message


def test_one_token_asking_for_many_tickets_does_not_void_another_tokens(live: Daemon) -> None:
    """The tickets outstanding are bounded; one token asking for thousands only
    ever pushes out its own oldest ones, never another token's."""
    admins = ticket(live, ADMIN)
    t0 = time.monotonic()
    with httpx.Client(base_url=live.url, headers=bearer(VIEWER), timeout=10) as c:
        # more than all tickets together may be: the old bound pushed out the admin's
        mine = [c.post("/api/v1/events/ticket").json()["ticket"] for _ in range(MAX_TICKETS + 44)]
    took = time.monotonic() - t0
    assert took < TICKET_SECONDS - 2, f"asking took {took:.1f} s: the admin's ticket expired"
    assert len(set(mine)) == MAX_TICKETS + 44
    assert stream_status(live, f"ticket={admins}")[0] == 200
    # the viewer's newest are good, its oldest were pushed out
    assert stream_status(live, f"ticket={mine[-1]}")[0] == 200
    assert stream_status(live, f"ticket={mine[0]}")[0] == 401
    assert stream_status(live, f"ticket={mine[-MAX_PER_TOKEN]}")[0] == 200


def open_streams(d: Daemon, tokens: list[str]) -> list[socket.socket]:
    """A stream for each of `tokens` (by ticket), from 32 clients a loopback
    address: each stays under the per-client connection limit (guard.PER_CLIENT)."""
    out: list[socket.socket] = []
    try:
        for i, token in enumerate(tokens):
            s, head = open_stream(d, f"ticket={ticket(d, token)}", f"127.0.0.{2 + i // 32}")
            out.append(s)
            assert head.startswith(b"HTTP/1.1 200"), head[:200]
    except BaseException:
        for s in out:
            s.close()
        raise
    return out


def served_again(d: Daemon, token: str) -> None:
    """Once its streams are closed, `token` opens one again (the daemon sees them
    closed at once or at its next write to them)."""
    deadline = time.monotonic() + 20
    status = 0
    while time.monotonic() < deadline:
        status, _ = stream_status(d, f"ticket={ticket(d, token)}")
        if status == 200:
            return
        time.sleep(0.2)
    raise AssertionError(f"no stream for the token again: {status}")


def test_one_token_cannot_take_every_stream(live: Daemon) -> None:
    opened = open_streams(live, [VIEWER] * MAX_STREAMS_PER_TOKEN)
    kept = ticket(live)
    try:
        status, message = stream_status(live, f"ticket={kept}")
        assert status == 429 and "live event streams open" in message, (status, message)
        assert stream_status(live, f"ticket={ticket(live, SPARE)}")[0] == 200  # others still can
    finally:
        for s in opened:
            s.close()
    served_again(live, VIEWER)
    # the refused ticket was not used up: it opens a stream now, once
    assert stream_status(live, f"ticket={kept}")[0] == 200
    assert stream_status(live, f"ticket={kept}")[0] == 401


def test_streams_beyond_the_limit_are_refused_and_then_served_again(live: Daemon) -> None:
    each = [VIEWER, ADMIN, OPERATOR, GONE][: MAX_SUBSCRIBERS // MAX_STREAMS_PER_TOKEN]
    tokens = each * MAX_STREAMS_PER_TOKEN
    assert len(tokens) == MAX_SUBSCRIBERS
    opened = open_streams(live, tokens)
    try:
        status, message = stream_status(live, f"ticket={ticket(live, SPARE)}")
        assert status == 503 and "too many live event streams" in message
    finally:
        for s in opened:
            s.close()
    served_again(live, SPARE)


def test_a_ticket_of_a_token_removed_by_a_reload_is_refused(live: Daemon) -> None:
    t = ticket(live, GONE)
    config = live.root / "vigil.yaml"
    text = config.read_text()
    entry = re.search(r", \{name: gone, [^}]*\}", text)
    assert entry is not None, text
    config.write_text(text.replace(entry.group(0), ""))
    r = httpx.post(live.url + "/api/v1/reload", headers=bearer(ADMIN), timeout=30)
    assert r.status_code == 200 and r.json()["ok"], r.text
    status, message = stream_status(live, f"ticket={t}")
    assert status == 401 and "ticket unknown, used or expired" in message
    refused(httpx.post(live.url + "/api/v1/events/ticket", headers=bearer(GONE), timeout=10), 401)
