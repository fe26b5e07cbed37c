"""Notifications end to end: `vigil run` as a real process, a `file` collector, a
`webhook` channel and a real HTTP receiver (uvicorn, tests/integration/receivers.py).

What a receiver that deduplicates by Idempotency-Key must see:
- the firing notification, then the resolve, each exactly once;
- the same across a kill -9 between firing and resolve (the restarted daemon
  knows from the journal's `notified` record that the firing went out);
- after a crash between journaling `firing` and delivering it (the receiver
  black-holes the request, the daemon is killed before `notified` is journaled),
  the restarted daemon re-sends it with the SAME Idempotency-Key;
- a signature that verifies with the recipe in docs/webhook-signature.md, run as
  the document gives it, while the secret (from ${env:...}) appears neither in
  the journal nor on the daemon's stderr (at debug level).
And the webhook's chunked encoding of big bodies gives the bytes of encoding them
whole (what the signature covers and a re-send repeats).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.daemon import Daemon
from tests.integration.receivers import Receiver, Recorded, Reply

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SECRET = "vigil-e2e-hook-secret-5f1c9a"  # distinctive: a grep for it cannot hit by chance

RULES = """
group: app
interval: 100ms
rules:
  - id: queue_deep
    expr: app.queue > fixed.limit
    severity: critical
    labels: {team: infra}
    annotations: {summary: "queue at {{ value }}"}
"""

# group_interval is what a change in a group (the resolve) waits for: short here
CHANNELS = """
channels:
  - name: hook
    type: webhook
    url: {url}/hook{secret}
routes:
  - channels: [hook]
    group_by: [rule]
    group_wait: 0s
    group_interval: 200ms
    repeat_interval: 1h
"""

QUIET = 1.2  # seconds of evaluations (100 ms) and group intervals (200 ms) with nothing new


def channels(rx: Receiver, *, secret: bool = False) -> str:
    return CHANNELS.format(url=rx.url, secret="\n    secret: ${env:HOOK_SECRET}" if secret else "")


def alert_requests(rx: Receiver) -> list[Recorded]:
    return [r for r in rx.requests if r.path == "/hook"]


def statuses(reqs: list[Recorded]) -> list[str]:
    return [r.json()["status"] for r in reqs]


def delivered(reqs: list[Recorded]) -> list[Recorded]:
    """What a receiver that deduplicates by Idempotency-Key processes: the first
    answered (2xx) request of each key."""
    seen: set[str] = set()
    out = []
    for r in reqs:
        key = r.headers["idempotency-key"]
        if r.ok and key not in seen:
            seen.add(key)
            out.append(r)
    return out


def notified(evs: list[dict[str, Any]], status: str) -> list[dict[str, Any]]:
    return [e for e in evs if e["event"] == "notified" and e.get("status") == status]


def assert_once_each(reqs: list[Recorded]) -> tuple[Recorded, Recorded]:
    """Exactly one firing and one resolved request, each with its own key, each once."""
    keys = Counter(r.headers["idempotency-key"] for r in reqs)
    assert statuses(reqs) == ["firing", "resolved"], statuses(reqs)
    assert all(n == 1 for n in keys.values()) and len(keys) == 2, keys
    firing, resolved = reqs
    assert [a["status"] for a in firing.json()["alerts"]] == ["firing"]
    assert [a["status"] for a in resolved.json()["alerts"]] == ["resolved"]
    fa, ra = firing.json()["alerts"][0], resolved.json()["alerts"][0]
    assert fa["fingerprint"] == ra["fingerprint"] and fa["starts_at"] == ra["starts_at"]
    assert fa["ends_at"] is None and ra["ends_at"] is not None
    return firing, resolved


def documented_verify() -> Callable[..., bool]:
    """The Python recipe of docs/webhook-signature.md, executed as written."""
    text = (ROOT / "docs" / "webhook-signature.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 1, "docs/webhook-signature.md: expected one Python block"
    namespace: dict[str, Any] = {}
    exec(compile(blocks[0], "docs/webhook-signature.md", "exec"), namespace)
    verify: Callable[..., bool] = namespace["verify"]
    return verify


def openssl_check(tmp: Path, r: Recorded) -> bool:
    """The documented shell (openssl) recipe, run as written with bash."""
    text = (ROOT / "docs" / "webhook-signature.md").read_text()
    (script,) = re.findall(r"```sh\n(.*?)```", text, re.S)
    (tmp / "body.json").write_bytes(r.body)
    env = {
        **os.environ,
        "TS": r.headers["x-vigil-timestamp"],
        "SIG": r.headers["x-vigil-signature"],
        "HOOK_SECRET": SECRET,
    }
    out = subprocess.run(
        ["bash", "-c", script], cwd=tmp, env=env, capture_output=True, text=True, timeout=10
    )
    return out.stdout.strip() == "valid"


def test_firing_then_resolve_each_once_signed_secret_never_logged(tmp_path: Path) -> None:
    verify = documented_verify()
    with Receiver() as rx:
        d = Daemon(tmp_path, RULES, channels(rx, secret=True))
        d.set_values({"queue": 1})
        # debug: the most talkative level, and still no secret
        d.start("--log-level", "debug", env={"HOOK_SECRET": SECRET})
        try:
            time.sleep(0.3)
            assert alert_requests(rx) == []
            d.set_values({"queue": 50})
            rx.wait_for(lambda rs: len(rs) >= 1, 10)
            d.wait_for(lambda evs: notified(evs, "firing"), what="notified firing")
            time.sleep(QUIET)  # still firing: nothing more (repeat_interval is 1h)
            assert statuses(alert_requests(rx)) == ["firing"]
            d.set_values({"queue": 2})
            rx.wait_for(lambda rs: len(rs) >= 2, 10)
            d.wait_for(lambda evs: notified(evs, "resolved"), what="notified resolved")
            time.sleep(QUIET)
        finally:
            assert d.stop() == 0
        reqs = alert_requests(rx)

    firing, resolved = assert_once_each(reqs)
    assert all(r.ok for r in reqs)
    for r in reqs:
        assert verify(SECRET, r.headers, r.body), r.headers
        # a changed body, another secret or a replay 6 minutes later fail
        assert not verify(SECRET, r.headers, r.body + b" ")
        assert not verify(SECRET + "x", r.headers, r.body)
        ts = int(r.headers["x-vigil-timestamp"])
        assert abs(ts - time.time()) < 60
        assert not verify(SECRET, r.headers, r.body, now=ts + 360)
    assert openssl_check(tmp_path, firing)

    # the journal agrees: one notified per status, with the keys the receiver saw
    evs = d.events()
    assert [e["key"] for e in notified(evs, "firing")] == [firing.headers["idempotency-key"]]
    assert [e["key"] for e in notified(evs, "resolved")] == [resolved.headers["idempotency-key"]]
    assert not [e for e in evs if e["event"] == "notify_failed"]

    # every file the daemon wrote under data_dir: the journal, snapshots, the
    # history index (SQLite, so bytes)
    written = {
        str(p.relative_to(tmp_path)): p.read_bytes()
        for p in (tmp_path / "data").rglob("*")
        if p.is_file()
    }
    assert any(name.startswith("data/history/") for name in written), sorted(written)
    stderr = d.log()
    assert "firing queue_deep" in stderr and " DEBUG " in stderr  # the log, and talkative
    for name, data in written.items():
        assert SECRET.encode() not in data, f"the webhook secret is in {name}"
    assert SECRET not in stderr, "the webhook secret is in stderr"


def test_kill9_between_firing_and_resolve_sends_neither_twice(tmp_path: Path) -> None:
    with Receiver() as rx:
        d = Daemon(tmp_path, RULES, channels(rx))
        d.set_values({"queue": 50})
        d.start()
        try:
            rx.wait_for(lambda rs: len(rs) >= 1, 10)
            # `notified` is journaled after delivery (not fsynced: kill -9 keeps the
            # page cache); only once it is in the log does the daemon know it went out
            d.wait_for(lambda evs: notified(evs, "firing"), what="notified firing")
            d.kill9()
            d.start()
            time.sleep(QUIET)  # evaluations with the alert still true, group intervals
            assert statuses(alert_requests(rx)) == ["firing"], "firing re-sent after restart"
            d.set_values({"queue": 0})
            rx.wait_for(lambda rs: len(rs) >= 2, 10)
            d.wait_for(lambda evs: notified(evs, "resolved"), what="notified resolved")
            time.sleep(QUIET)
        finally:
            assert d.stop() == 0
        reqs = alert_requests(rx)

    assert_once_each(reqs)
    assert all(r.ok for r in reqs)
    assert d.alert_events("queue_deep") == ["firing", "resolved"]


def test_crash_before_notified_resends_with_the_same_key(tmp_path: Path) -> None:
    with Receiver() as rx:
        rx.push(Reply(hang=True))  # black-hole the first request: it never completes
        d = Daemon(tmp_path, RULES, channels(rx))
        d.set_values({"queue": 50})
        d.start()
        try:
            rx.wait_for(lambda rs: len(rs) >= 1, 10)
            evs = d.events()
            assert [e["event"] for e in evs if e.get("rule") == "queue_deep"] == ["firing"]
            assert not notified(evs, "firing"), "delivered although the receiver hangs"
            d.kill9()  # firing journaled (durable), delivery in flight, no `notified`
            assert not [e for e in d.events() if e["event"].startswith("notif")]

            d.start()  # the receiver answers 200 from now on
            rx.wait_for(lambda rs: len(rs) >= 2, 10)
            d.wait_for(lambda evs: notified(evs, "firing"), what="notified firing")
            time.sleep(QUIET)
            # re-sent once, not once more per evaluation or group interval
            assert statuses(alert_requests(rx)) == ["firing", "firing"]
            d.set_values({"queue": 0})
            rx.wait_for(lambda rs: len(rs) >= 3, 10)
            d.wait_for(lambda evs: notified(evs, "resolved"), what="notified resolved")
            time.sleep(QUIET)
        finally:
            assert d.stop(signal.SIGTERM) == 0
        reqs = alert_requests(rx)

    lost, resent, resolved = reqs
    assert lost.status == 0 and resent.ok and resolved.ok  # 0: the black-holed request
    assert resent.headers["idempotency-key"] == lost.headers["idempotency-key"]
    assert resent.body == lost.body  # the same notification, byte for byte
    # a receiver deduplicating by key processes one firing and one resolve: one incident
    assert_once_each(delivered(reqs))
    evs = d.events()
    assert [e["key"] for e in notified(evs, "firing")] == [lost.headers["idempotency-key"]]
    assert d.alert_events("queue_deep") == ["firing", "resolved"]  # not fired again
