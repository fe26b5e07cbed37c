"""A check script's exit status is a metric (issue 13.20): a real daemon runs a
`command` collector whose program exits 2, `check.exit_code != 0` fires, and the
collector is not down; exit 0 again resolves it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.integration.daemon import Daemon

pytestmark = pytest.mark.slow

RULES = """
group: checks
interval: 100ms
rules:
  - id: check_failed
    expr: check.exit_code != 0
    severity: critical
    annotations: {summary: "{{ value }}"}
"""


def test_nonzero_exit_fires_a_rule_without_collector_down(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("2")
    script = tmp_path / "check.py"
    script.write_text(
        "import sys\n"
        f"code = int(open({str(status)!r}).read())\n"
        "sys.stderr.write('disk check failed\\n' if code else '')\n"
        "sys.exit(code)\n"
    )
    extra = (
        f"  - {{name: check, type: command, argv: [{sys.executable}, {script}], "
        "parse: lines, interval: 100ms, timeout: 10s}\n"
    )
    d = Daemon(tmp_path, RULES)
    # the collector list is the last key Daemon writes before `api:`: add ours to it
    cfg = (tmp_path / "vigil.yaml").read_text().replace("api:", extra + "api:", 1)
    (tmp_path / "vigil.yaml").write_text(cfg)
    d.start()
    try:
        d.wait_for(
            lambda evs: any(
                e["event"] == "firing" and e.get("rule") == "check_failed" for e in evs
            ),
            timeout=30,
            what="check_failed firing",
        )
        status.write_text("0")
        d.wait_for(
            lambda evs: any(
                e["event"] == "resolved" and e.get("rule") == "check_failed" for e in evs
            ),
            timeout=30,
            what="check_failed resolved",
        )
    finally:
        assert d.stop() == 0
    events = d.events()
    assert not [e for e in events if e["event"] == "collector_down"]
    firing = next(e for e in events if e["event"] == "firing" and e.get("rule") == "check_failed")
    assert firing["value"] == 2  # the value shown is the exit status
