"""`vigil explain` says when a rule's alerts are stale (a collector it reads is
down, so their state is frozen) and which of the rule's own problems are firing
(rule_error, rule_no_data, cardinality_exceeded): a real daemon, then the CLI
online (--url) and offline (the journal the daemon wrote)."""

from __future__ import annotations

import os
import subprocess
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
  - id: queue_weird
    expr: app.queue > "a"
  - id: queue_typo
    expr: app.queu > 5
"""
TOKEN = "viewer-7f1e"


def _explain(d: Daemon, *args: str) -> str:
    out = subprocess.run(
        [VIGIL, "explain", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=d.root,
        env={**os.environ, "VIGIL_TOKEN": TOKEN},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    return out.stdout


def test_explain_names_stale_alerts_and_the_rules_own_problems(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES, tokens={"v": (TOKEN, "viewer")})
    d.set_values({"queue": 50})
    d.start()
    try:
        d.wait_for(
            lambda evs: (
                "firing" in d.alert_events("queue_deep")
                and any(e.get("rule") == "rule_error" for e in evs)
                and any(e.get("rule") == "rule_no_data" for e in evs)
            ),
            30,
            "queue_deep, rule_error and rule_no_data firing",
        )
        weird = _explain(d, "queue_weird", "--url", d.url)
        assert "rule_error is firing since" in weird, weird
        assert "cannot be evaluated" in weird, weird
        typo = _explain(d, "queue_typo", "--url", d.url)
        assert "rule_no_data is firing since" in typo, typo

        d.metrics.unlink()  # the app collector goes down: queue_deep's alert is stale
        d.wait_for(lambda evs: "stale" in d.alert_events("queue_deep"), 30, "stale")
        online = _explain(d, "queue_deep", "--url", d.url)
        assert "collector app is down" in online and "stale" in online, online
        assert "frozen" in online, online
        # the state machine does not resolve a stale alert: nor does explain say it would
        assert "it stays firing" in online and "resolves at the next" not in online, online
    finally:
        code = d.stop()
    assert code == 0, d.log()[-3000:]
    # offline: the same from the journal the daemon wrote
    offline = _explain(d, "queue_deep", "-c", str(tmp_path / "vigil.yaml"), "--no-collect")
    assert "collector app is down" in offline and "stale" in offline, offline
    offline = _explain(d, "queue_weird", "-c", str(tmp_path / "vigil.yaml"), "--no-collect")
    assert "rule_error is firing since" in offline, offline
