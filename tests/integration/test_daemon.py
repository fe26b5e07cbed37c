"""The daemon as a real process: transitions at the right times, kill -9 and
restart without a second `firing`, one daemon per data_dir, clean stop."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.daemon import VIGIL, Daemon

pytestmark = pytest.mark.slow

RULES = """
group: app
interval: 100ms
rules:
  - id: queue_deep
    expr: app.queue > fixed.limit
    for: 1s
    severity: critical
    annotations: {summary: "queue at {{ value }}"}
"""


def firing_at(events: list[dict], rule: str) -> list[float]:
    from engine.journal.format import parse_ts

    return [parse_ts(e["ts"]) for e in events if e.get("rule") == rule and e["event"] == "firing"]


def test_pending_firing_resolved_at_the_right_times(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES)
    d.set_values({"queue": 1})
    d.start()
    try:
        time.sleep(0.5)
        assert d.alert_events("queue_deep") == []
        t0 = time.time()
        d.set_values({"queue": 50})
        evs = d.wait_for(lambda e: "firing" in d.alert_events("queue_deep"), what="firing")
        pending = [e for e in evs if e.get("rule") == "queue_deep" and e["event"] == "pending"]
        assert len(pending) == 1
        fired = firing_at(evs, "queue_deep")[0]
        # `for: 1s` holds: not before a second after the value crossed, not much later
        assert 1.0 <= fired - t0 <= 3.0, fired - t0
        firing = next(e for e in evs if e.get("rule") == "queue_deep" and e["event"] == "firing")
        assert firing["value"] == 50 and firing["severity"] == "critical"
        d.set_values({"queue": 2})
        d.wait_for(lambda e: "resolved" in d.alert_events("queue_deep"), what="resolved")
        assert d.alert_events("queue_deep") == ["pending", "firing", "resolved"]
    finally:
        assert d.stop() == 0
    assert d.events()[-1]["event"] == "stopped"


def test_kill9_while_firing_then_restart_does_not_fire_again(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES)
    d.set_values({"queue": 50})
    d.start()
    d.wait_for(lambda e: "firing" in d.alert_events("queue_deep"), what="firing")
    d.kill9()
    d.start()
    time.sleep(1.5)  # several evaluations with the alert still true
    assert d.alert_events("queue_deep") == ["pending", "firing"]
    d.set_values({"queue": 0})
    d.wait_for(lambda e: "resolved" in d.alert_events("queue_deep"), what="resolved after restart")
    assert d.alert_events("queue_deep") == ["pending", "firing", "resolved"]
    assert d.stop() == 0


def test_pending_timer_continues_across_restart(tmp_path: Path) -> None:
    rules = RULES.replace("for: 1s", "for: 6s")
    d = Daemon(tmp_path, rules)
    d.set_values({"queue": 50})
    d.start()
    evs = d.wait_for(lambda e: "pending" in d.alert_events("queue_deep"), what="pending")
    pending_since = next(e for e in evs if e.get("event") == "pending")["pending_since"]
    time.sleep(1.0)
    assert d.stop() == 0
    d.start()
    evs = d.wait_for(lambda e: "firing" in d.alert_events("queue_deep"), what="firing")
    fired = next(e for e in evs if e.get("event") == "firing")
    # the 6 s count from the first start: had they started over after the restart
    # (a second later, plus start-up) it would fire at least 7 s after pending_since
    assert fired["pending_since"] == pending_since
    assert 6.0 <= fired["firing_since"] - pending_since < 7.0
    assert d.alert_events("queue_deep") == ["pending", "firing"]
    assert d.stop() == 0


def test_second_daemon_on_same_data_dir_names_the_holder(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES)
    first = d.start()
    try:
        r = subprocess.run(
            [VIGIL, "run", "-c", str(tmp_path / "vigil.yaml")],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert r.returncode == 1
        assert f"PID {first.pid}" in r.stderr
        assert "Traceback" not in r.stderr
    finally:
        d.stop()


def test_sigint_stops_cleanly(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES)
    d.start()
    assert d.stop(signal.SIGINT) == 0
    assert [e["event"] for e in d.events()][-1] == "stopped"


def test_invalid_config_refuses_to_start_with_one_line_per_problem(tmp_path: Path) -> None:
    Daemon(tmp_path, RULES.replace("for: 1s", "for: soon"))  # writes the config
    r = subprocess.run(
        [VIGIL, "run", "-c", str(tmp_path / "vigil.yaml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 1
    assert "rules/r.yaml:7:10: rules[0].for: expected a duration" in r.stderr
    assert "Traceback" not in r.stderr
