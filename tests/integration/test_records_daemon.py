"""Records have types (issue 15.4) on a real daemon: every event a `vigil run`
journals while it fires, notifies, is acknowledged and silenced through the
real CLI, loses and regains a collector, rejects and loads an edited
configuration (its file watcher) and stops matches its TypedDict in
engine/common/records.py; so does an alert the API returns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.common.records import ApiAlert
from tests.integration.daemon import Daemon
from tests.integration.test_marks_daemon import TOKEN, vigil
from tests.integration.test_notify_e2e import RULES
from tests.unit.common.test_records import event_errors, record_errors

pytestmark = pytest.mark.slow

CHANNELS = """
channels:
  - {name: pager, type: log}
routes:
  - channels: [pager]
    group_wait: 0s
"""


def kinds(d: Daemon) -> set[str]:
    return {e["event"] for e in d.events()}


@pytest.mark.timeout(240)
def test_every_event_of_a_daemon_run_matches_its_type(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES, CHANNELS, tokens={"ops": (TOKEN, "operator")})
    d.set_values({"queue": 50})
    d.start()
    try:
        d.wait_for(lambda evs: "notified" in kinds(d), timeout=30, what="notified")
        fp = next(e["alert"] for e in d.events() if e["event"] == "firing")
        vigil(d, "ack", fp, "--note", "on it", "--by", "alice")
        vigil(d, "unack", fp)
        vigil(d, "silence", "--match", "rule=queue_deep", "--for", "1h", "--reason", "deploy")
        [sil] = json.loads(vigil(d, "silences", "--format", "json"))
        d.wait_for(lambda evs: "silenced" in kinds(d), timeout=30, what="silenced")
        vigil(d, "expire", sil["id"])
        [alert] = json.loads(vigil(d, "alerts", "--format", "json"))
        assert not record_errors(alert, ApiAlert, "alert"), alert
        # a collector lost and back
        d.metrics.write_text("{not json")
        d.wait_for(lambda evs: "collector_down" in kinds(d), timeout=30, what="down")
        d.set_values({"queue": 50})
        d.wait_for(lambda evs: "collector_up" in kinds(d), timeout=30, what="up")
        # a configuration rejected, then loaded
        rules = d.root / "rules" / "r.yaml"
        good = rules.read_text()
        rules.write_text("rules: [{id: broken}]\n")  # the daemon's file watcher reloads
        d.wait_for(lambda evs: "config_rejected" in kinds(d), timeout=30, what="rejected")
        rules.write_text(good)
        d.wait_for(
            lambda evs: sum(e["event"] == "config_loaded" for e in evs) >= 2,
            timeout=30,
            what="reloaded",
        )
    finally:
        assert d.stop() == 0
    events = d.events()
    seen = {e["event"] for e in events}
    assert {
        "started", "config_loaded", "config_rejected", "firing", "notified", "acknowledged",
        "unacknowledged", "silence_created", "silence_expired", "silenced", "unsilenced",
        "collector_down", "collector_up", "audit", "stopped",
    } <= seen, seen  # fmt: skip
    errors = [e for ev in events for e in event_errors(ev)]
    assert not errors, "\n".join(errors[:30])
