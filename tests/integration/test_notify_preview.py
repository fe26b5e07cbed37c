"""`vigil notify-test CHANNEL --preview --alert FP` against a real daemon (`vigil
run`, a real webhook receiver): the preview of the firing alert, fetched from the
daemon's API or read from its journal, is the request the daemon really sent for
it (same body, same Idempotency-Key), its secrets as ***, and previewing sends
nothing. POST /api/v1/channels/{name}/preview answers the same."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.daemon import VIGIL, Daemon
from tests.integration.receivers import Receiver, Recorded
from tests.integration.test_notify_e2e import RULES

pytestmark = pytest.mark.slow

HOOK_TOKEN = "hook-path-s3cr3t-81f2"  # distinctive: a grep for it cannot hit by chance
API_TOKEN = "ops-token-preview-1"

CHANNELS = """
channels:
  - name: hook
    type: webhook
    url: "{url}/hook/${{env:HOOK_TOKEN}}"
    secret: ${{env:HOOK_TOKEN}}
routes:
  - channels: [hook]
    group_by: [rule]
    group_wait: 0s
    group_interval: 200ms
    repeat_interval: 1h
"""

ENV = {"HOOK_TOKEN": HOOK_TOKEN}


def cli(d: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VIGIL, "notify-test", "hook", "-c", str(d.root / "vigil.yaml"), "--preview", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **ENV, "VIGIL_TOKEN": API_TOKEN},
        cwd=d.root,
    )


def the_request(got: dict[str, Any]) -> dict[str, Any]:
    (w,) = got["wire"]
    # the URL holds a secret: its path is hidden (engine/httpclient/redaction.py)
    assert w["kind"] == "http" and re.fullmatch(r"POST http://127\.0\.0\.1:\d+/\*\*\*", w["target"])
    return dict(w)


def same_as_sent(w: dict[str, Any], sent: Recorded) -> None:
    assert json.loads(w["body"]) == sent.json()
    assert w["body"].encode() == sent.body  # byte for byte: what the signature covers
    headers = dict(w["headers"])
    assert headers["Idempotency-Key"] == sent.headers["idempotency-key"]
    assert HOOK_TOKEN not in json.dumps(w)


def test_preview_of_a_live_alert_is_what_the_daemon_sent(tmp_path: Path) -> None:
    with Receiver() as rx:
        d = Daemon(
            tmp_path,
            RULES,
            CHANNELS.format(url=rx.url),
            tokens={"ops": (API_TOKEN, "operator")},
        )
        d.start(env=ENV)
        try:
            d.set_values({"queue": 50})
            evs = d.wait_for(lambda e: "firing" in d.alert_events("queue_deep"), what="firing")
            fp = next(e["alert"] for e in evs if e["event"] == "firing")
            (sent,) = rx.wait_for(lambda r: len(r) == 1, timeout=30)
            d.wait_for(lambda e: any(x["event"] == "notified" for x in e), what="notified")

            r = cli(d, "--alert", fp[:8], "--url", d.url, "--format", "json")
            assert r.returncode == 0, r.stderr
            from_api = the_request(json.loads(r.stdout))
            same_as_sent(from_api, sent)

            r = cli(d, "--alert", fp, "--journal", str(d.root / "data"), "--format", "json")
            assert r.returncode == 0, r.stderr
            same_as_sent(the_request(json.loads(r.stdout)), sent)

            answer = httpx.post(
                f"{d.url}/api/v1/channels/hook/preview",
                json={"alert": fp},
                headers={"Authorization": f"Bearer {API_TOKEN}"},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            same_as_sent(the_request(answer.json()), sent)

            r = cli(d, "--alert", fp, "--url", d.url)  # the text form
            assert r.returncode == 0, r.stderr
            assert (
                "preview of hook (webhook): alerts, firing, 1 alert; nothing was sent" in r.stdout
            )
            assert f"Idempotency-Key: {sent.headers['idempotency-key']}" in r.stdout
            assert HOOK_TOKEN not in r.stdout

            r = cli(d, "--alert", fp, "--url", d.url, "--resolved", "--format", "json")
            assert r.returncode == 0, r.stderr
            body = json.loads(the_request(json.loads(r.stdout))["body"])
            assert body["status"] == "resolved" and body["alerts"][0]["ends_at"] is not None

            # the alert the rule raises, synthesized: the daemon's but for its start time
            r = cli(d, "--rule", "queue_deep", "--value", "50", "--format", "json")
            assert r.returncode == 0, r.stderr
            body, real = json.loads(the_request(json.loads(r.stdout))["body"]), sent.json()
            assert body["alerts"][0].pop("starts_at") != real["alerts"][0].pop("starts_at")
            assert body == real

            r = cli(d, "--alert", "ffffffffffff", "--url", d.url)
            assert r.returncode == 1 and r.stderr.strip() == "vigil: no alert ffffffffffff"

            assert len(rx.requests) == 1  # none of the previews sent anything
        finally:
            d.stop()
        assert HOOK_TOKEN not in d.log()
