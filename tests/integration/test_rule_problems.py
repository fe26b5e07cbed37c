"""A rule that cannot be evaluated, or whose metric never appears, has a voice
(issue 13.B.11 and 13.B.12, run-time part).

A real `vigil run` with a `file` collector (metric names known only at run
time): `app.queue > "a"` raises at every evaluation and `app.queu > 5` (a typo)
never gets data. Each raises exactly one alert (`rule_error`, `rule_no_data`)
with the rule's id in the `rule_id` label, shown by `vigil alerts` and `vigil
status`, counted in /metrics; both resolve once the data lets the rules work.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.daemon import VIGIL, Daemon

pytestmark = pytest.mark.slow

RULES = """
group: app
interval: 100ms
rules:
  - id: queue_weird
    expr: app.queue > "a"
    severity: critical
  - id: queue_typo
    expr: app.queu > 5
  - id: queue_fine
    expr: app.queue == 1000
"""

TOKEN = "viewer-51d0"


def _cli(d: Daemon, *args: str) -> str:
    out = subprocess.run(
        [VIGIL, *args, "--url", d.url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "300", "VIGIL_TOKEN": TOKEN},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def _problem(evs: list[dict[str, object]], kind: str, rule: str, event: str) -> list[object]:
    return [
        e
        for e in evs
        if e.get("rule") == kind
        and e["event"] == event
        and (e.get("labels") or {}).get("rule_id") == rule  # type: ignore[union-attr]
    ]


def test_failing_and_dataless_rules_raise_one_alert_each(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES, tokens={"dash": (TOKEN, "viewer")})
    d.set_values({"queue": 5})
    d.start()
    try:
        d.wait_for(
            lambda evs: (
                _problem(evs, "rule_error", "queue_weird", "firing")
                and _problem(evs, "rule_no_data", "queue_typo", "firing")
            ),
            timeout=30,
            what="rule_error and rule_no_data firing",
        )
        time.sleep(1.0)  # ten more evaluations: still one alert each
        evs = d.events()
        assert len(_problem(evs, "rule_error", "queue_weird", "firing")) == 1
        assert len(_problem(evs, "rule_no_data", "queue_typo", "firing")) == 1
        assert not _problem(evs, "rule_no_data", "queue_fine", "firing")
        assert not _problem(evs, "rule_no_data", "queue_weird", "firing")
        (err,) = _problem(evs, "rule_error", "queue_weird", "firing")
        assert err["severity"] == "critical"  # type: ignore[index]  # the rule's own
        assert "str" in str(err["value"])  # type: ignore[index]  # the TypeError's message

        alerts = _cli(d, "alerts")
        assert re.search(r"rule_error.*rule_id=queue_weird", alerts), alerts
        assert re.search(r"rule_no_data.*rule_id=queue_typo", alerts), alerts
        status = _cli(d, "status")
        assert "rule_error queue_weird:" in status, status
        assert "rule_no_data queue_typo:" in status, status
        metrics = httpx.get(
            f"{d.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        ).text
        m = re.search(r'vigil_rule_evaluation_failures_total\{rule="queue_weird"\} (\S+)', metrics)
        assert m is not None and float(m.group(1)) >= 5, metrics

        # a restart neither ends nor announces them again
        assert d.stop() == 0
        d.start()
        time.sleep(1.0)
        evs = d.events()
        for kind, rule in (("rule_error", "queue_weird"), ("rule_no_data", "queue_typo")):
            assert len(_problem(evs, kind, rule, "firing")) == 1
            assert not _problem(evs, kind, rule, "resolved")

        d.set_values({"queue": "b", "queu": 1})  # both rules work now
        d.wait_for(
            lambda evs: (
                _problem(evs, "rule_error", "queue_weird", "resolved")
                and _problem(evs, "rule_no_data", "queue_typo", "resolved")
            ),
            timeout=30,
            what="both problems resolved",
        )
        assert "rule problems" not in _cli(d, "status")
    finally:
        assert d.stop() == 0
