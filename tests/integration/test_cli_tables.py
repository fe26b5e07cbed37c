"""CLI tables piped or redirected are one line per row, never wrapped (issue 13 C.17):
`vigil alerts | grep team=svc` finds the alert however long its row. A real daemon
and the real `vigil alerts`, its stdout a pipe; the table code with a non-terminal
and a terminal stream."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

from engine.cli.tables import Rows
from tests.integration.daemon import VIGIL, Daemon

TOKEN = "tok-viewer-c17a"
RULES = """\
group: app
interval: 100ms
rules:
  - id: queue_backlog_growing_beyond_the_configured_limit_for_this_service
    expr: app.queue > fixed.limit
    labels:
      team: svc
      service: payments-settlement-reconciliation-worker
      region: europe-west-3
      cluster: production-blue
"""


def test_piped_vigil_alerts_prints_each_alert_on_one_line(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES, tokens={"dash": (TOKEN, "viewer")})
    d.set_values({"queue": 50})
    d.start()
    try:
        d.wait_for(lambda evs: any(e["event"] == "firing" for e in evs), what="firing")
        out = subprocess.run(
            [VIGIL, "alerts", "--url", d.url],
            env={**os.environ, "VIGIL_TOKEN": TOKEN, "COLUMNS": "80"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        d.stop()
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == [
        "fingerprint", "severity", "state", "rule", "labels", "value", "since", "marks"
    ]  # fmt: skip
    assert lines[-1] == "1 active alert(s)"
    (row,) = [line for line in lines if "team=svc" in line]  # what grep finds
    assert len(row) > 150  # longer than any terminal it would have been wrapped to
    assert "queue_backlog_growing_beyond_the_configured_limit_for_this_service" in row
    assert "cluster=production-blue,region=europe-west-3," in row
    assert " firing " in row and " 50 " in row
    assert len(lines) == 3, out.stdout


def test_rows_to_a_non_terminal_are_aligned_lines_with_line_breaks_escaped() -> None:
    t = Rows("id", "reason")
    t.add_row("a1", "x" * 200)
    t.add_row("b2222", "two\nlines\tand a tab")
    out = io.StringIO()
    t.show("2 silence(s)", stream=out)
    assert out.getvalue().splitlines() == [
        "id     reason",
        "a1     " + "x" * 200,
        "b2222  two\\nlines\\tand a tab",
        "2 silence(s)",
    ]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_still_gets_the_rich_table() -> None:
    t = Rows("id", "reason")
    t.add_row("a1", "y" * 200)
    out = _Terminal()
    t.show("1 silence(s)", stream=out)
    # rich folds the long cell to the terminal's width: more lines than rows
    assert len(out.getvalue().splitlines()) > 3
