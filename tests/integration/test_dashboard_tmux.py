"""`vigil dashboard` in a real 80x24 terminal (tmux) over a real daemon: it shows
the firing alerts grouped, an alert is selected and acknowledged with a note
from the keyboard, and the acknowledgement is in the daemon's journal and API
and on the screen. Also: a filter typed in, and a bad one refused on the dialog; the collectors' last reads and the recent events."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.daemon import VIGIL, Daemon
from tests.integration.terminal import Terminal, have_tmux

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not have_tmux(), reason="tmux is not installed (deploy/setup.sh installs it)"
    ),
]

RULES = """
group: app
interval: 100ms
rules:
  - id: cpu_high
    expr: app.cpu > fixed.limit
    severity: critical
    labels: {team: web}
    annotations: {summary: "cpu at {{ value }}"}
  - id: disk_full
    each: app.disks
    expr: it.used > 90
    severity: warning
    labels: {team: storage}
"""

TOKEN = "op-5a1d"


def api(d: Daemon, path: str) -> Any:
    req = urllib.request.Request(d.url + path, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def row(screen: str, *words: str) -> str:
    """The screen's first line holding every word."""
    return next((line for line in screen.splitlines() if all(w in line for w in words)), "")


def test_dashboard_shows_alerts_and_acks_one_with_a_note(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES, tokens={"oncall": (TOKEN, "operator")})
    # a label value that console markup would choke on is shown as it is
    disks = [{"labels": {"disk": f"sd{c}", "mount": "[/b]"}, "used": 95} for c in "abc"]
    d.set_values({"cpu": 97, "disks": disks})
    d.start()
    try:
        d.wait_for(
            lambda evs: sum(e["event"] == "firing" for e in evs) >= 4, what="4 alerts firing"
        )
        token = tmp_path / "token"
        token.write_text(TOKEN + "\n")
        argv = [VIGIL, "dashboard", "--url", d.url, "--token-file", str(token)]
        with Terminal(argv, width=80, height=24, cwd=str(tmp_path)) as term:
            screen = term.wait_for(
                lambda s: "4 alerts" in s and s.count("disk_full") >= 4, what="the alerts"
            )
            # grouped by rule, the worst group first: its header, then its alert
            lines = screen.splitlines()
            top = next(i for i, line in enumerate(lines) if "rule=cpu_high" in line)
            assert "1 alert(s), 1 firing" in lines[top]
            assert "crit" in lines[top + 1] and "team=web" in lines[top + 1]
            assert "3 alert(s), 3 firing" in row(screen, "rule=disk_full")
            assert all(row(screen, "disk_full", f"disk=sd{c},mount=[/b]") for c in "abc")
            assert max(len(line) for line in lines) <= 80 and len(lines) <= 24

            # select the cpu_high alert (below its group's header) and acknowledge it
            term.keys("Home", "Down")
            term.wait_for(lambda s: "cpu_high {team=web}" in s, what="cpu_high selected")
            term.keys("a")
            term.wait_for(lambda s: "acknowledge cpu_high" in s, what="the ack dialog")
            term.type("disk swap in progress")
            term.keys("Enter")  # to the duration, left empty: until it resolves
            term.keys("Enter")
            screen = term.wait_for(
                lambda s: (
                    "acked by oncall: disk swap in progress" in s
                    and row(s, "cpu_high", "team=web").rstrip().endswith("A")
                ),
                what="the ack on the screen",
            )

        acks = [e for e in d.events() if e["event"] == "acknowledged"]
        assert len(acks) == 1
        assert (acks[0]["by"], acks[0]["note"], acks[0]["until"]) == (
            "oncall",
            "disk swap in progress",
            None,
        )
        (cpu,) = [a for a in api(d, "/api/v1/alerts")["alerts"] if a["rule"] == "cpu_high"]
        assert acks[0]["alert"] == cpu["fingerprint"]
        assert cpu["acknowledged"]["note"] == "disk swap in progress"
    finally:
        d.stop()


def test_dashboard_filters_and_refuses_a_bad_filter(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES, tokens={"viewer": (TOKEN, "viewer")})
    d.set_values({"cpu": 97, "disks": [{"labels": {"disk": "sda"}, "used": 95}]})
    d.start()
    try:
        d.wait_for(lambda evs: sum(e["event"] == "firing" for e in evs) >= 2, what="2 alerts")
        argv = [VIGIL, "dashboard", "--url", d.url, "--group-by", ""]
        with Terminal(argv, env={"VIGIL_TOKEN": TOKEN}, cwd=str(tmp_path)) as term:
            term.wait_for(lambda s: "2 alerts" in s, what="the alerts")
            term.keys("/")
            term.wait_for(lambda s: "filter:" in s, what="the filter dialog")
            term.type('host=~"(("')
            term.keys("Enter")
            term.wait_for(lambda s: "invalid regex" in s, what="the regex refused")
            term.keys("C-u")  # clear the line
            term.type("team=storage")
            term.keys("Enter")
            screen = term.wait_for(lambda s: "1 alerts" in s and "of 2" in s, what="filtered")
            assert "disk_full" in screen and "cpu_high" not in screen
            assert "team=storage" in screen.splitlines()[0]
            # the collectors and channels view: each collector's last good read
            term.keys("2")
            screen = term.wait_for(lambda s: "last read" in s, what="the collectors view")
            assert re.search(r"app\s+up\s+\d+s ago", screen), screen
            assert re.search(r"fixed\s+up\s+\d+[smh]\S* ago", screen), screen
            term.keys("3")
            screen = term.wait_for(lambda s: "firing" in s, what="the events view")
            assert row(screen, "firing", "cpu_high") and row(screen, "firing", "disk_full")
            term.keys("q")
            term.wait_for(lambda s: "EXITED 0" in s, what="q quits with 0")
    finally:
        d.stop()


def test_terminal_escapes_in_the_data_reach_the_screen_as_text(tmp_path: Path) -> None:
    """A label from monitored data (a log line's address field, a disk name) holding
    an OSC title sequence and a clear-screen: the dashboard shows it escaped, the
    terminal's title stays, the screen is not cleared (issue 14 F)."""
    d = Daemon(tmp_path, RULES, tokens={"oncall": (TOKEN, "operator")})
    hostile = "\x1b]2;pwned\x07\x1b[2Jsdx"
    d.set_values({"cpu": 1, "disks": [{"labels": {"disk": hostile}, "used": 95}]})
    d.start()
    try:
        d.wait_for(lambda evs: any(e["event"] == "firing" for e in evs), what="the alert")
        token = tmp_path / "token"
        token.write_text(TOKEN + "\n")
        argv = [VIGIL, "dashboard", "--url", d.url, "--token-file", str(token)]
        with Terminal(argv, width=80, height=24, cwd=str(tmp_path)) as term:
            title = term._tmux("display-message", "-p", "#{pane_title}")
            screen = term.wait_for(lambda s: "1 alert" in s and "disk_full" in s, what="it")
            assert r"\x1b]2;pwned\x07\x1b[2Jsdx" in screen, screen
            assert "pwned" not in term._tmux("display-message", "-p", "#{pane_title}")
            assert term._tmux("display-message", "-p", "#{pane_title}") == title
    finally:
        d.stop()
