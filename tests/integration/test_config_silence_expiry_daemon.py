"""13.19 on a real daemon: a channel file's silence that ends by time is journaled
as `silence_expired` once (source: config), also when it ended while the daemon
was down, and never again on later restarts (it is still in the channel file)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.integration.daemon import Daemon
from tests.integration.test_notify_e2e import RULES

pytestmark = pytest.mark.slow


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expired(d: Daemon) -> list[dict[str, Any]]:
    return [e for e in d.events() if e["event"] == "silence_expired"]


def test_config_silence_expiry_is_journaled_once(tmp_path: Path) -> None:
    t0 = time.time()
    soon, later = t0 + 5, t0 + 10  # whole seconds in the file: ends within a second of these
    channels = f"""
channels:
  - {{name: console, type: log}}
routes:
  - channels: [console]
silences:
  - {{match: {{rule: queue_deep}}, until: "{_iso(soon)}", reason: deploy}}
  - {{match: {{team: infra}}, until: "{_iso(later)}", reason: maintenance}}
"""
    d = Daemon(tmp_path, RULES, channels)
    d.set_values({"queue": 50})
    d.start()
    try:
        # the first one ends while the daemon runs: journaled at its end
        d.wait_for(lambda evs: expired(d), timeout=20, what="first expiry")
        [first] = expired(d)
        assert first["cause"] == "time" and first["source"] == "config"
        assert first["until"].startswith(_iso(soon)[:19]) and first["reason"] == "deploy"
        assert first["id"].startswith("cfg-")
        assert d.stop() == 0
        # the second ends while the daemon is down: journaled once it is back
        time.sleep(max(0.0, later - time.time()) + 0.5)
        d.start()
        d.wait_for(lambda evs: len(expired(d)) == 2, timeout=20, what="second expiry")
        second = expired(d)[1]
        assert second["source"] == "config" and second["reason"] == "maintenance"
        assert second["id"] != first["id"]
        # and neither again on a later restart
        assert d.stop() == 0
        d.start()
        d.wait_for(lambda evs: sum(e["event"] == "started" for e in evs) == 3, what="restart")
        time.sleep(1.5)
        assert len(expired(d)) == 2
    finally:
        d.stop()
