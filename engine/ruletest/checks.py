"""The assertions of a rule test: compare what the simulation holds at an `at`
with the expected alerts or notifications, and make a Failure when they differ.

Separate because it joins matching (engine/ruletest/matching.py) and the diff
(engine/ruletest/diff.py) into results; the runner only calls it."""

from __future__ import annotations

from engine.notify.base import Notification
from engine.ruletest.clock import EPS, offset
from engine.ruletest.diff import (
    actual_alert,
    actual_note,
    diff_lines,
    expected_alert,
    expected_note,
)
from engine.ruletest.matching import alert_matches, closest, note_matches, pair
from engine.ruletest.model import AlertCheck, AlertExpect, NoteCheck, NoteExpect
from engine.ruletest.results import Failure
from engine.ruletest.simulation import ActualAlert, Simulation


def _alert_score(e: AlertExpect, a: ActualAlert) -> int:
    if e.rule != a.rule:
        return 0
    score = 10
    if e.labels is None or all(a.labels.get(k) == v for k, v in e.labels.items()):
        score += 5
    score += e.state == a.state
    return score


def check_alerts(sim: Simulation, chk: AlertCheck) -> Failure | None:
    states = {"pending", "firing"} | {e.state for e in chk.expect}
    actual = [
        a
        for a in sim.actual_alerts()
        if a.state in states and (chk.rules is None or a.rule in chk.rules)
    ]
    exp = chk.expect
    matched = pair(len(exp), len(actual), lambda i, j: alert_matches(exp[i], actual[j]))
    if len(matched) == len(exp) == len(actual):
        return None
    used = set(matched.values())
    miss = [i for i in range(len(exp)) if i not in matched]
    left = [j for j in range(len(actual)) if j not in used]
    near = closest(miss, left, lambda i, j: _alert_score(exp[i], actual[j]))
    shown = {i: actual_alert(actual[j], exp[i]) for i, j in near.items()}
    extra = [actual_alert(actual[j]) for j in left if j not in near.values()]
    line = exp[miss[0]].line if miss else chk.line
    parts = []
    if miss:
        parts.append(f"{len(miss)} expected alert(s) not found")
    if left:
        parts.append(f"{len(left)} unexpected alert(s)")
    wall = sim.case.start + chk.at
    return Failure(
        file=sim.tf.path,
        line=line,
        test=sim.case.name,
        kind="alerts",
        message="alerts differ: " + ", ".join(parts) + " (- expected, + actual)",
        at=chk.at,
        wall=wall,
        diff=diff_lines([expected_alert(e) for e in exp], matched, shown, extra),
        expected=[expected_alert(e) for e in exp],
        actual=[actual_alert(a) for a in actual],
    )


def _note_score(e: NoteExpect, at: float, n: Notification) -> int:
    """How much a sent notification resembles an expected one: the same alerts
    first (a wrong channel is a routing mistake), then the same channel."""
    same_alerts = e.alerts is not None and e.alerts == sorted(a.rule for a in n.alerts)
    same_channel = e.channel == n.channel
    if not (same_alerts or same_channel):
        return 0
    return 10 * same_alerts + 5 * same_channel + (e.status is None or e.status == n.status)


def check_notes(sim: Simulation, chk: NoteCheck, since: float | None) -> Failure | None:
    sent = [
        (at, n)
        for at, n in sim.result.notifications
        if (since is None or at > since + EPS) and at <= chk.at + EPS
    ]
    exp = chk.expect
    matched = pair(len(exp), len(sent), lambda i, j: note_matches(exp[i], *sent[j]))
    if len(matched) == len(exp) == len(sent):
        return None
    used = set(matched.values())
    miss = [i for i in range(len(exp)) if i not in matched]
    left = [j for j in range(len(sent)) if j not in used]
    near = closest(miss, left, lambda i, j: _note_score(exp[i], *sent[j]))
    shown = {i: actual_note(*sent[j], exp[i]) for i, j in near.items()}
    extra = [actual_note(*sent[j]) for j in left if j not in near.values()]
    line = exp[miss[0]].line if miss else chk.line
    parts = []
    if miss:
        parts.append(f"{len(miss)} expected notification(s) not sent")
    if left:
        parts.append(f"{len(left)} unexpected notification(s)")
    window = f"after {offset(since)}" if since is not None else "from the start"
    return Failure(
        file=sim.tf.path,
        line=line,
        test=sim.case.name,
        kind="notifications",
        message=f"notifications {window} differ: " + ", ".join(parts) + " (- expected, + actual)",
        at=chk.at,
        wall=sim.case.start + chk.at,
        diff=diff_lines([expected_note(e) for e in exp], matched, shown, extra),
        expected=[expected_note(e) for e in exp],
        actual=[actual_note(*s) for s in sent],
    )
