"""A collector outage is not news about the alerts that read it (issue 13.A.3).

A real `vigil run`: its `file` collector's file is moved away while a plain
alert, an `each` instance and a `resolve_expr` alert fire. Only the one
`collector_down` alert speaks: no dependent alert is resolved or notified as
resolved, each is still firing in the API and in `vigil alerts`, marked stale;
when the file is back nothing fires again and nothing is notified again.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.daemon import VIGIL, Daemon

pytestmark = pytest.mark.slow

RULES = """
group: app
interval: 100ms
rules:
  - id: queue_deep
    expr: app.queue > fixed.limit
    severity: critical
  - id: disk_full
    each: app.disks
    expr: it.used > 90
    severity: critical
  - id: latency_high
    expr: app.latency > 100
    resolve_expr: app.latency < 50
    severity: critical
"""

CHANNELS = """
channels:
  - {name: archive, type: file, path: notifications.jsonl}
routes:
  - match: {severity: critical}
    channels: [archive]
    group_by: [rule]
    group_wait: 0s
    group_interval: 200ms
    repeat_interval: 1h
"""

DEPENDENT = ("queue_deep", "disk_full", "latency_high")
TOKEN = "viewer-7c1e"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _sent(root: Path) -> list[dict[str, Any]]:
    path = root / "channels" / "notifications.jsonl"  # relative to the channel file
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _told(root: Path, rule: str, status: str) -> int:
    """How many notifications carried `rule`'s alert with `status`."""
    return sum(
        1 for n in _sent(root) for a in n["alerts"] if a["rule"] == rule and a["status"] == status
    )


def test_moved_file_resolves_nothing_and_marks_alerts_stale(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES, CHANNELS, tokens={"dash": (TOKEN, "viewer")})
    values = {"queue": 50, "disks": [{"labels": {"disk": "sda"}, "used": 95}], "latency": 200}
    d.set_values(values)
    d.start()
    try:
        d.wait_for(
            lambda evs: all(_told(tmp_path, r, "firing") for r in DEPENDENT),
            timeout=30,
            what="the three alerts fired and notified",
        )
        os.rename(d.metrics, d.metrics.with_suffix(".away"))
        d.wait_for(
            lambda evs: {e.get("rule") for e in evs if e["event"] == "stale"} >= set(DEPENDENT),
            timeout=30,
            what="the dependent alerts marked stale",
        )
        assert any(e["event"] == "collector_down" for e in d.events())
        time.sleep(1.5)  # fifteen evaluations with the collector down

        alerts = httpx.get(f"{d.url}/api/v1/alerts", headers=AUTH, timeout=10).json()["alerts"]
        by_rule = {a["rule"]: a for a in alerts}
        for r in DEPENDENT:
            assert by_rule[r]["state"] == "firing", by_rule[r]
            assert by_rule[r]["stale"] is True
        assert by_rule["collector_down"]["stale"] is False
        shown = subprocess.run(
            [VIGIL, "alerts", "--url", d.url],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "300", "VIGIL_TOKEN": TOKEN},
        )
        assert shown.returncode == 0, shown.stderr
        for r in DEPENDENT:
            line = next(ln for ln in shown.stdout.splitlines() if r in ln)
            assert "stale" in line, shown.stdout

        os.rename(d.metrics.with_suffix(".away"), d.metrics)
        d.wait_for(
            lambda evs: {e.get("rule") for e in evs if e["event"] == "stale_end"} >= set(DEPENDENT),
            timeout=30,
            what="the outage over",
        )
        time.sleep(1.0)
        alerts = httpx.get(f"{d.url}/api/v1/alerts", headers=AUTH, timeout=10).json()["alerts"]
        assert {a["rule"]: a["stale"] for a in alerts if a["rule"] in DEPENDENT} == dict.fromkeys(
            DEPENDENT, False
        )
    finally:
        assert d.stop() == 0

    events = d.events()
    for r in DEPENDENT:
        kinds = [e["event"] for e in events if e.get("rule") == r and "alert" in e]
        # one episode, never resolved, never fired again
        assert kinds == ["firing", "stale", "stale_end"], (r, kinds)
        assert _told(tmp_path, r, "resolved") == 0
        assert _told(tmp_path, r, "firing") == 1
    # the outage itself was told, once, and its end
    assert _told(tmp_path, "collector_down", "firing") == 1
    assert _told(tmp_path, "collector_down", "resolved") == 1
