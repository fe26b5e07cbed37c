"""Notifications: the same alerts through Debian's Alertmanager and `vigil run`.

One Alertmanager (clustering off, every receiver a webhook to a local recorder)
and one vigil daemon per syntax group (am_scenarios.py: a file collector, `each`
rules evaluated every 200 ms, webhook channels to the same recorder) run every
scenario of am_cases.py side by side on one timeline. An alert fires in
Alertmanager when the test POSTs it to /api/v2/alerts, and in vigil when the test
writes its element (v: 1) into the daemon's file; it resolves with endsAt = now,
and v: 0. Silences go through each program's API at the same instant.

Compared, per scenario and receiver: the notifications, each as the set of
(alert, status) it carries, paired off one to one with a notification of the
other program that carries the same set within TOL seconds (vigil sees a change
at its next evaluation, up to ~0.3 s after Alertmanager's POST).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.differential.am_cases import CASES, ESCALATION, SILENCED_RESOLVE
from tests.differential.am_scenarios import (
    AmScenario,
    Ev,
    Silence,
    alertmanager_config,
    am_labels,
    parse_matcher,
    vigil_channels,
    vigil_element,
    vigil_rules,
)
from tests.differential.harness import (
    Recorder,
    binary,
    dump_yaml,
    free_port,
    run_binary,
    run_timeline,
)
from tests.integration.daemon import Daemon

pytestmark = pytest.mark.slow

TOL = 0.9
EVAL = "200ms"
TOKEN = "differential-operator-token"
ALL = (*CASES, SILENCED_RESOLVE, ESCALATION)
SYNTAXES = ("flat", "matchers", "inhibit_matchers", "nested")

Note = tuple[float, frozenset[tuple[str, str]]]  # (arrival - t0, {(alert, status)})


@dataclass
class AmRuns:
    t0: float
    am: dict[str, list[Note]] = field(default_factory=dict)  # receiver -> notifications
    vigil: dict[str, list[Note]] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)  # syntax -> why its daemon did not start


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class VigilSide:
    """One daemon (one syntax group) and the elements its file collector serves."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.elements: dict[tuple[str, str], tuple[str, dict[str, str], int]] = {}

    def apply(self, events: list[tuple[str, Ev]]) -> None:
        """All changes of one instant in one write: the collector never sees half of them."""
        for sid, e in events:
            if e.labels is not None:
                self.elements[(sid, e.a)] = (e.severity, vigil_element(sid, e), 1)
            else:
                sev, labels, _ = self.elements[(sid, e.a)]
                self.elements[(sid, e.a)] = (sev, labels, 0)
        values: dict[str, list[dict[str, Any]]] = {
            "am_critical": [],
            "am_warning": [],
            "am_info": [],
        }
        for sev, labels, v in self.elements.values():
            values[f"am_{sev}"].append({"labels": labels, "v": v})
        self.daemon.set_values(values)

    def ack(self, sid: str, a: str) -> None:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        url = f"{self.daemon.url}/api/v1/alerts"
        found = httpx.get(
            url, params={"label": [f"scenario={sid}", f"a={a}"]}, headers=auth, timeout=5
        )
        (alert,) = found.json()["alerts"]
        r = httpx.post(
            f"{url}/{alert['fingerprint']}/ack",
            json={"note": "differential"},
            headers=auth,
            timeout=5,
        )
        assert r.status_code == 200, r.text

    def silence(self, sid: str, s: Silence, until: float) -> None:
        matchers: list[dict[str, str]] = [{"label": "scenario", "value": sid}]
        for label, op, value in map(parse_matcher, s.matchers):
            assert op in ("=", "=~"), op
            matchers.append({"label": label, ("value" if op == "=" else "regex"): value})
        r = httpx.post(
            f"{self.daemon.url}/api/v1/silences",
            json={"matchers": matchers, "until": _iso(until), "reason": "differential"},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
        assert r.status_code == 201, r.text


class AlertmanagerSide:
    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.Client(timeout=5)
        self.started: dict[tuple[str, str], tuple[dict[str, str], str]] = {}

    def apply(self, events: list[tuple[str, Ev]]) -> None:
        """All changes of one instant in one POST."""
        now = _iso(time.time())
        alerts = []
        for sid, e in events:
            if e.labels is not None:
                labels = am_labels(sid, e)
                self.started[(sid, e.a)] = (labels, now)
                alerts.append({"labels": labels, "startsAt": now})
            else:
                labels, starts = self.started[(sid, e.a)]
                alerts.append({"labels": labels, "startsAt": starts, "endsAt": now})
        r = self.client.post(f"{self.url}/api/v2/alerts", json=alerts)
        assert r.status_code == 200, r.text

    def silence(self, sid: str, s: Silence, until: float) -> None:
        matchers = [{"name": "scenario", "value": sid, "isRegex": False, "isEqual": True}]
        for label, op, value in map(parse_matcher, s.matchers):
            matchers.append(
                {"name": label, "value": value, "isRegex": "~" in op, "isEqual": "!" not in op}
            )
        body = {
            "matchers": matchers,
            "startsAt": _iso(time.time()),
            "endsAt": _iso(until),
            "createdBy": "differential",
            "comment": "differential",
        }
        r = self.client.post(f"{self.url}/api/v2/silences", json=body)
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AmRuns]:
    am_bin = binary("prometheus-alertmanager", "alertmanager")
    tmp = tmp_path_factory.mktemp("diff-alertmanager")
    with Recorder() as rec:
        (tmp / "alertmanager.yml").write_text(dump_yaml(alertmanager_config(ALL, rec.url)))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        argv = [
            am_bin,
            f"--config.file={tmp / 'alertmanager.yml'}",
            f"--storage.path={tmp / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # a single instance, no gossip
            "--log.level=warn",
        ]
        sides: dict[str, VigilSide] = {}
        broken: dict[str, str] = {}
        with run_binary(argv, tmp / "alertmanager.log", f"{url}/-/ready"):
            am = AlertmanagerSide(url)
            try:
                for syntax in SYNTAXES:
                    scs = tuple(sc for sc in ALL if sc.syntax == syntax)
                    daemon = Daemon(
                        tmp / f"vigil-{syntax}",
                        vigil_rules(EVAL),
                        dump_yaml(vigil_channels(scs, rec.url)),
                        tokens={"diff": (TOKEN, "operator")},
                    )
                    try:
                        daemon.start()
                    except AssertionError as e:
                        broken[syntax] = str(e)[-1500:]
                        continue
                    sides[syntax] = VigilSide(daemon)
                t0 = time.time() + 1.5
                steps = []
                at: dict[float, list[tuple[AmScenario, Ev]]] = {}
                for sc in ALL:
                    for s in sc.silences:
                        until = t0 + s.end

                        def make_silence(
                            sc: AmScenario = sc, s: Silence = s, until: float = until
                        ) -> None:
                            am.silence(sc.id, s, until)
                            if sides.get(sc.syntax):
                                sides[sc.syntax].silence(sc.id, s, until)

                        if s.start == 0:
                            make_silence()
                        else:
                            steps.append((s.start, make_silence))
                    for e in sc.events:
                        at.setdefault(e.t, []).append((sc, e))
                    for t, name in sc.acks:
                        if sc.syntax in sides:
                            steps.append(
                                (
                                    t,
                                    lambda side=sides[sc.syntax], sid=sc.id, name=name: side.ack(
                                        sid, name
                                    ),
                                )
                            )
                for t, batch in at.items():

                    def act(batch: list[tuple[AmScenario, Ev]] = batch) -> None:
                        am.apply([(sc.id, e) for sc, e in batch])
                        for syntax, side in sides.items():
                            mine = [(sc.id, e) for sc, e in batch if sc.syntax == syntax]
                            if mine:
                                side.apply(mine)

                    steps.append((t, act))
                end = max(sc.end + sc.group_interval for sc in ALL) + TOL + 0.5
                run_timeline(t0, steps, end)
                yield _collect(t0, rec, broken)
            finally:
                for side in sides.values():
                    side.daemon.stop()


def _collect(t0: float, rec: Recorder, broken: dict[str, str]) -> AmRuns:
    out = AmRuns(t0, broken=broken)
    with rec.lock:
        posts = list(rec.posts)
    for at, path, body in posts:
        _, who, receiver = path.split("/", 2)
        alerts = frozenset(
            (a["labels"].get("a", "?"), a["status"]) for a in (body or {}).get("alerts", [])
        )
        (out.am if who == "am" else out.vigil).setdefault(receiver, []).append(
            (round(at - t0, 2), alerts)
        )
    return out


def _show(notes: list[Note]) -> str:
    return (
        ", ".join(
            f"@{t:.2f} {{{' '.join(f'{a}:{s}' for a, s in sorted(alerts))}}}" for t, alerts in notes
        )
        or "-"
    )


def pair_off(am: list[Note], vigil: list[Note]) -> tuple[list[Note], list[Note]]:
    """The notifications of each side without a partner on the other (same set, within TOL)."""
    left = list(vigil)
    unmatched = []
    for t, alerts in sorted(am, key=lambda n: n[0]):
        best = min(
            (n for n in left if n[1] == alerts and abs(n[0] - t) <= TOL),
            key=lambda n: abs(n[0] - t),
            default=None,
        )
        if best is None:
            unmatched.append((t, alerts))
        else:
            left.remove(best)
    return unmatched, left


def compare(sc: AmScenario, runs: AmRuns) -> None:
    assert sc.syntax not in runs.broken, (
        f"vigil did not start on this configuration:\n{runs.broken[sc.syntax]}"
    )
    problems = []
    report = []
    for receiver in sc.receivers():
        am, vg = runs.am.get(receiver, []), runs.vigil.get(receiver, [])
        report.append(
            f"  {receiver}:\n    alertmanager: {_show(am)}\n    vigil:        {_show(vg)}"
        )
        only_am, only_vigil = pair_off(am, vg)
        if only_am or only_vigil:
            problems.append(receiver)
    assert not problems, f"{sc.id}: receivers differ: {problems}\n" + "\n".join(report)


@pytest.mark.parametrize("sc", CASES, ids=lambda sc: sc.id)
def test_notification_scenario(sc: AmScenario, runs: AmRuns) -> None:
    """Each scenario's docstring is its `doc` in am_cases.py."""
    compare(sc, runs)


def test_at_least_twenty_five_scenarios() -> None:
    assert len(CASES) >= 25


def test_silenced_resolve_differs_on_purpose(runs: AmRuns) -> None:
    """Intentional difference (SPEC 1: resolved notifications are sent also for alerts
    that were silenced): an alert notified as firing, then silenced, then resolved.
    Alertmanager drops the silenced resolve, so the receiver's incident stays open;
    vigil sends the resolve at the group's next tick."""
    sc = SILENCED_RESOLVE
    receiver = f"{sc.id}-default"
    am, vg = runs.am.get(receiver, []), runs.vigil.get(receiver, [])
    where = f"alertmanager: {_show(am)}; vigil: {_show(vg)}"
    assert [n[1] for n in am] == [frozenset({("x", "firing")})], where
    assert [n[1] for n in vg] == [frozenset({("x", "firing")}), frozenset({("x", "resolved")})], (
        where
    )
    assert abs(vg[0][0] - am[0][0]) <= TOL and 5 <= vg[1][0] <= 7 + TOL, where


def test_escalation_and_ack_differ_on_purpose(runs: AmRuns) -> None:
    """Intentional difference: vigil escalates an unacknowledged alert (`escalate:` on
    a route) and an acknowledgement stops that; Alertmanager has neither. The
    ordinary notifications of both programs still agree."""
    sc = ESCALATION
    default, manager = f"{sc.id}-default", f"{sc.id}-manager"
    only_am, only_vigil = pair_off(runs.am.get(default, []), runs.vigil.get(default, []))
    assert not only_am and not only_vigil, (only_am, only_vigil)
    assert runs.am.get(manager, []) == []
    escalated = runs.vigil.get(manager, [])
    where = f"vigil {manager}: {_show(escalated)}"
    assert escalated, where
    assert all({a for a, _ in alerts} == {"x"} for _, alerts in escalated), where
    assert abs(escalated[0][0] - (1 + sc.escalate_after)) <= TOL, where


def test_continue_routes_agree_both_ways(runs: AmRuns) -> None:
    """a38/a42 are not agreement on nothing: a continue route's match keeps the
    parent's (default) receiver out (a38, nested), and a sibling after it matches
    too (a42, vigil's flat list), in both programs."""
    for side, got in (("alertmanager", runs.am), ("vigil", runs.vigil)):
        x = {frozenset({("x", "firing")}), frozenset({("x", "resolved")})}
        y = {frozenset({("y", "firing")}), frozenset({("y", "resolved")})}
        a38 = {r: {n[1] for n in got.get(f"a38_continue_then_default-{r}", [])} for r in
               ("audit", "default")}  # fmt: skip
        assert a38 == {"audit": x, "default": set()}, (side, a38)
        a42 = {r: {n[1] for n in got.get(f"a42_continue_then_sibling-{r}", [])} for r in
               ("audit", "all", "default")}  # fmt: skip
        assert a42 == {"audit": x, "all": x | y, "default": set()}, (side, a42)
