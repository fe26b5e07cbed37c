"""13.18 and 13.19 on a real daemon, driven by the real `vigil` CLI: per-alert
`silenced`/`unsilenced` events, an API silence ending by time is journaled and
listed only by `vigil silences --all`, an acknowledgement (`vigil ack --by`)
lapses: journaled, and no longer shown as acknowledged."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.daemon import VIGIL, Daemon
from tests.integration.test_notify_e2e import RULES

pytestmark = pytest.mark.slow

TOKEN = "marks-operator-token-91c2"


def vigil(d: Daemon, *argv: str) -> str:
    env = {**os.environ, "VIGIL_URL": d.url, "VIGIL_TOKEN": TOKEN, "COLUMNS": "250"}
    out = subprocess.run(
        [VIGIL, *argv], env=env, capture_output=True, text=True, timeout=30, cwd=d.root
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def events(d: Daemon, kind: str) -> list[dict[str, Any]]:
    return [e for e in d.events() if e["event"] == kind]


def test_silence_and_ack_lapse_are_journaled_and_shown(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES, tokens={"ops": (TOKEN, "operator")})
    d.set_values({"queue": 50})
    d.start()
    try:
        d.wait_for(lambda evs: "firing" in d.alert_events("queue_deep"), what="firing")
        fp = events(d, "firing")[0]["alert"]
        vigil(d, "silence", "--match", "rule=queue_deep", "--for", "3s", "--reason", "deploy")
        [sil] = json.loads(vigil(d, "silences", "--format", "json"))
        d.wait_for(lambda evs: events(d, "silenced"), what="silenced")
        [ev] = events(d, "silenced")
        assert ev["alert"] == fp and ev["silence"] == sil["id"] and ev["rule"] == "queue_deep"
        [created] = events(d, "silence_created")  # 13.18: RFC 3339, as every journal time
        assert isinstance(created["until"], str) and created["until"].endswith("Z")
        assert created["until"][:19] == sil["until"][:19]
        # ended by time: journaled, the alert is unsilenced, only --all lists it
        d.wait_for(lambda evs: events(d, "silence_expired"), timeout=20, what="expiry")
        [exp] = events(d, "silence_expired")
        assert exp["id"] == sil["id"] and exp["cause"] == "time"
        d.wait_for(lambda evs: events(d, "unsilenced"), what="unsilenced")
        assert json.loads(vigil(d, "silences", "--format", "json")) == []
        [gone] = json.loads(vigil(d, "silences", "--all", "--format", "json"))
        assert gone["id"] == sil["id"] and gone["state"] == "expired"
        assert sil["id"] in vigil(d, "silences", "--all")

        vigil(d, "ack", fp, "--note", "on it", "--by", "alice", "--for", "3s")
        [ack] = events(d, "acknowledged")
        assert ack["by"] == "alice"
        assert isinstance(ack["until"], str) and ack["until"].endswith("Z")
        [a] = json.loads(vigil(d, "alerts", "--format", "json"))
        assert a["acknowledged"]["by"] == "alice" and a["acknowledged"]["until"].endswith("Z")
        d.wait_for(lambda evs: events(d, "unacknowledged"), timeout=20, what="lapse")
        [lapse] = events(d, "unacknowledged")
        assert lapse["alert"] == fp and lapse["cause"] == "expired" and lapse["by"] == "alice"
        [a] = json.loads(vigil(d, "alerts", "--format", "json"))
        assert a["acknowledged"] is None
        # a restart journals none of it again
        assert d.stop() == 0
        d.start()
        d.wait_for(lambda evs: sum(e["event"] == "started" for e in evs) == 2, what="restart")
        time.sleep(1.5)
        for kind in ("silenced", "unsilenced", "silence_expired", "unacknowledged"):
            assert len(events(d, kind)) == 1, kind
    finally:
        d.stop()
