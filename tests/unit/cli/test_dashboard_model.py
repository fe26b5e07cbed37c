"""The view model of `vigil dashboard`, without a terminal: parsing the API's
alerts, filtering by label matchers, grouping, sorting, and the recent events."""

from __future__ import annotations

from typing import Any

import pytest

from engine.cli.dashboard_model import (
    NO_GROUP,
    NONE_VALUE,
    EventLog,
    age_text,
    alert_cells,
    build_groups,
    channel_rows,
    collector_rows,
    filter_text,
    history_lines,
    next_group,
    parse_alerts,
    parse_filter,
    silence_matchers,
)
from engine.common import matchers

NOW = 1_796_600_000.0  # 2026-12-07T00:53:20Z


def iso(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def api_alert(
    fp: str,
    rule: str,
    severity: str = "warning",
    state: str = "firing",
    age: float = 60.0,
    **labels: str,
) -> dict[str, Any]:
    """An alert as GET /api/v1/alerts answers it."""
    return {
        "fingerprint": fp,
        "rule": rule,
        "state": state,
        "severity": severity,
        "labels": labels,
        "annotations": {"summary": f"{rule} summary"},
        "value": 1.5,
        "starts_at": iso(NOW - age),
        "pending_since": iso(NOW - age),
        "firing_since": iso(NOW - age) if state == "firing" else None,
        "acknowledged": None,
        "silenced": False,
        "inhibited": False,
        "flapping": False,
        "stale": False,
    }


ALERTS = parse_alerts(
    [
        api_alert("a1", "disk_full", "warning", age=600, host="db-1", team="data"),
        api_alert("a2", "disk_full", "critical", age=30, host="db-2", team="data"),
        api_alert("a3", "cpu_high", "warning", "pending", age=5, host="web-1", team="web"),
        api_alert("a4", "cpu_high", "emergency", age=120, host="web-2", team="web"),
        api_alert("a5", "cert_expiry", "info", age=9000, host="web-1"),
    ]
)


def fps(groups: Any) -> list[list[str]]:
    return [[a.fp for a in g.alerts] for g in groups]


def test_groups_by_rule_worst_first_and_sorted_by_severity_within() -> None:
    groups = build_groups(ALERTS, now=NOW)
    assert [g.key for g in groups] == ["cpu_high", "disk_full", "cert_expiry"]
    assert fps(groups) == [["a4", "a3"], ["a2", "a1"], ["a5"]]
    assert [g.worst for g in groups] == ["emergency", "critical", "info"]
    assert [g.firing for g in groups] == [1, 2, 1]


def test_sort_by_state_puts_pending_last_and_by_age_newest_first() -> None:
    by_state = build_groups(ALERTS, group_by=NO_GROUP, sort="state", now=NOW)
    assert fps(by_state) == [["a4", "a2", "a1", "a5", "a3"]]
    by_age = build_groups(ALERTS, group_by=NO_GROUP, sort="age", now=NOW)
    assert fps(by_age) == [["a3", "a2", "a4", "a1", "a5"]]
    by_sev = build_groups(ALERTS, group_by=NO_GROUP, now=NOW)
    assert fps(by_sev) == [["a4", "a2", "a1", "a3", "a5"]]  # a firing warning before a pending


def test_alerts_otherwise_alike_are_in_label_order() -> None:
    same = parse_alerts([api_alert(f"f{9 - i}", "disk", disk=f"d{i:02}") for i in range(12)])
    (g,) = build_groups(same, now=NOW)
    assert [a.labels["disk"] for a in g.alerts] == [f"d{i:02}" for i in range(12)]


def test_group_by_a_label_puts_alerts_without_it_in_their_own_group() -> None:
    groups = build_groups(ALERTS, group_by="team", now=NOW)
    assert [(g.key, len(g.alerts)) for g in groups] == [("web", 2), ("data", 2), (NONE_VALUE, 1)]
    assert [g.key for g in build_groups(ALERTS, group_by="severity", now=NOW)] == [
        "emergency",
        "critical",
        "warning",
        "info",
    ]


def test_filters_are_alertmanager_matchers_over_labels_rule_severity_and_state() -> None:
    def shown(text: str) -> list[str]:
        groups = build_groups(ALERTS, filters=parse_filter(text), group_by=NO_GROUP, now=NOW)
        return sorted(a.fp for g in groups for a in g.alerts)

    assert shown("team=web") == ["a3", "a4"]
    assert shown("team!=web") == ["a1", "a2", "a5"]  # a missing label is ""
    assert shown('rule=~"disk.*", severity!=warning') == ["a2"]
    assert shown("state=pending") == ["a3"]
    assert shown('alertname=cpu_high host!~"web-2"') == ["a3"]
    assert shown("{team=data}") == ["a1", "a2"]
    assert shown("") == ["a1", "a2", "a3", "a4", "a5"]
    assert build_groups(ALERTS, filters=parse_filter("team=nobody"), now=NOW) == []


def test_a_bad_filter_says_why() -> None:
    with pytest.raises(matchers.MatcherError, match="invalid regex"):
        parse_filter('host=~"(("')
    with pytest.raises(matchers.MatcherError, match="bad matcher"):
        parse_filter("host")
    ms = parse_filter('env="a b" team=web')
    assert [m.label for m in ms] == ["env", "team"]
    assert parse_filter(filter_text(ms)) == ms  # what the header shows parses back
    assert filter_text(ms) == 'env="a b" team=web'
    for text in ('x=""', 'x="=y"', 'x=~"a,b"', 'x!~"\\\\d+ \\"q\\""', "x=a|b"):
        assert parse_filter(filter_text(parse_filter(text))) == parse_filter(text), text


def test_group_by_cycles_rule_severity_each_label_then_none() -> None:
    seen = ["rule"]
    for _ in range(5):
        seen.append(next_group(seen[-1], ALERTS))
    assert seen == ["rule", "severity", "host", "team", NO_GROUP, "rule"]


def test_cells_ages_and_the_silence_an_alert_suggests() -> None:
    a4 = next(a for a in ALERTS if a.fp == "a4")
    assert alert_cells(a4, NOW, "rule") == ("emer", "firi", "cpu_high", "host=web-2,team=web",
                                            "1.5", "2m", "")  # fmt: skip
    assert alert_cells(a4, NOW, "team")[3] == "host=web-2"  # the grouped label is in the title
    ages = [age_text(NOW - s, NOW) for s in (0, 4, 5, 59, 65, 119, 3600, 3725, 90000)]
    assert ages == ["0s", "0s", "5s", "55s", "1m", "1m", "1h", "1h2m", "1d1h"]
    ms = parse_filter(silence_matchers(a4))
    assert matchers.matches_all(ms, a4.match)
    assert not any(matchers.matches_all(ms, a.match) for a in ALERTS if a.fp != "a4")


def test_marks_and_ack() -> None:
    raw = api_alert("x", "r", host="h")
    raw.update(silenced=True, acknowledged={"by": "ops", "note": "on it", "at": iso(NOW)})
    (a,) = parse_alerts([raw])
    assert a.marks == "AS" and a.ack is not None and a.ack["note"] == "on it"


def test_events_from_the_alerts_times_then_from_changes() -> None:
    log = EventLog()
    first = [api_alert("p", "slow", state="pending", age=10), api_alert("f", "down", age=100)]
    first[1]["pending_since"] = iso(NOW - 160)  # pending a minute before firing
    log.update(parse_alerts(first), NOW)
    assert [(e.what, e.alert, NOW - e.at) for e in log.events] == [
        ("pending", "slow", 10),
        ("firing", "down", 100),
        ("pending", "down", 160),
    ]
    later = [dict(first[0], state="firing", firing_since=iso(NOW + 5))]
    later[0]["acknowledged"] = {"by": "ops", "note": "looking", "at": iso(NOW + 4)}
    later[0]["silenced"] = True
    log.update(parse_alerts(later), NOW + 6)
    assert [(e.what, e.detail) for e in log.events[:4]] == [
        ("silenced", ""),
        ("resolved", ""),  # `down` is gone
        ("firing", "slow summary"),
        ("acknowledged", "by ops: looking"),
    ]
    log.update(parse_alerts([dict(later[0], acknowledged=None)]), NOW + 7)
    assert log.events[0].what == "unacknowledged"
    log.update(parse_alerts([dict(later[0], acknowledged=None)]), NOW + 8)
    assert log.events[0].what == "unacknowledged"  # nothing changed: nothing new


def test_collectors_channels_and_history_lines() -> None:
    status = {
        "collectors": {
            "app": {"up": True, "error": None, "last": iso(NOW - 3)},
            "db": {"up": False, "error": "connection\nrefused", "last": None},
        }
    }
    assert collector_rows(status, NOW) == [
        ("app", "up", "3s ago", ""),
        ("db", "DOWN", "never", "connection refused"),
    ]
    channels = [
        {"name": "ops", "type": "slack", "status": {"breaker": "open", "queued": 4, "sent": 10,
                                                     "failed": 3, "error": "HTTP 500"}},
    ]  # fmt: skip
    assert channel_rows(channels) == [("ops", "slack", "open", "4", "10", "3", "HTTP 500")]
    lines = history_lines(
        [{"ts": iso(NOW), "event": "acknowledged", "by": "ops", "note": "on it", "crc": "x"}]
    )
    assert len(lines) == 1 and lines[0].endswith("acknowledged by=ops note=on it")


def test_no_other_command_imports_textual() -> None:
    """`vigil validate` runs on every commit: the dashboard's Textual (~120 ms) and
    app modules load only when `vigil dashboard` runs, even for `vigil --help`."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from engine.cli.main import build_parser\n"
        "build_parser('validate'); build_parser()\n"
        "build_parser('dashboard').parse_args(['dashboard', '--url', 'http://x'])\n"
        "bad = [m for m in sys.modules if m.startswith(('textual', 'engine.cli.dashboard_'))]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_without_a_terminal_one_line_and_exit_1() -> None:
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "engine.cli.main", "dashboard", "--url", "http://127.0.0.1:1"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == "vigil: vigil dashboard needs a terminal; for a script, use vigil alerts\n"
