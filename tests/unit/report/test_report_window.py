"""Alerts whose episodes reach beyond the events a report reads (the period and
the one before it): they fired before, and the report still sees them firing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.config.model import LogConfig
from engine.journal.journal import Journal
from engine.report.build import make_report
from engine.report.metrics import Options

pytestmark = pytest.mark.timeout(60)

T = 1_796_083_200.0
DAY = 86400.0


def alert(kind: str, fp: str, **extra: Any) -> dict[str, Any]:
    return {
        "event": kind,
        "alert": fp,
        "rule": fp,
        "labels": {"team": "web"},
        "severity": "critical",
        "value": 1,
        **extra,
    }


def test_outages_that_began_before_everything_read(tmp_path: Path) -> None:
    now = [0.0]
    j = Journal(tmp_path, LogConfig(fsync="never"), clock=lambda: now[0])
    j.open()
    for t, ev in (
        (T - 10 * DAY, alert("firing", "ends_inside")),
        (T - 10 * DAY, alert("firing", "ends_after")),
        (T - 10 * DAY, alert("firing", "never_ends")),
        (T - 10 * DAY, alert("firing", "ended_before")),
        (T - 9 * DAY, alert("resolved", "ended_before", firing_since=T - 10 * DAY)),
        # resolved events say when their alert began firing
        (T + DAY / 2, alert("resolved", "ends_inside", firing_since=T - 10 * DAY)),
        (T + 3 * DAY, alert("resolved", "ends_after", firing_since=T - 10 * DAY)),
    ):
        now[0] = t
        j.append_sync([ev])
    # the newest snapshot: never_ends is still firing
    state = {
        "v": 1,
        "alerts": {
            "never_ends": {
                "rule": "never_ends",
                "labels": {"team": "web"},
                "state": "firing",
                "firing_since": T - 10 * DAY,
                "severity": "critical",
                "value": 1,
            }
        },
    }
    j.write_snapshot_sync(state, j.last_seq)
    j.close_sync()

    report = make_report(
        str(tmp_path),
        Options(
            since=T, until=T + DAY, availability_rules=("ends_inside", "ends_after", "never_ends")
        ),
    )
    rows = {r["name"]: r for r in report["rules"]}
    assert rows["ends_inside"]["time_firing_pct"] == 50.0
    assert rows["ends_after"]["time_firing_pct"] == 100.0
    assert rows["never_ends"]["time_firing_pct"] == 100.0
    assert "ended_before" not in rows
    # fired before the period: incidents of neither period
    assert report["totals"]["incidents"] == 0 and report["noisiest"] == []
    assert report["teams"][0]["time_firing_pct"] == 100.0
    avail = {t["rule"]: t["availability_pct"] for t in report["availability"]["targets"]}
    assert avail == {"ends_inside": 50.0, "ends_after": 0.0, "never_ends": 0.0}
