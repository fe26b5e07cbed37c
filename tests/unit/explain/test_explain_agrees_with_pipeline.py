"""`vigil explain` and the notification pipeline agree (issue 15.3).

Each scenario runs the real Pipeline on a real config (YAML loaded by
ConfigLoader) as the dispatcher drives it: journal events are folded into the
durable state and ingested, due() runs at every deadline, every notification is
delivered and journaled as `notified`, and the pipeline's own events (silence
ended, acknowledgement lapsed ...) are journaled too. At some moment explain reads
that state and says "not now because X, next at T"; the pipeline must then send
nothing for the alert on that channel before T and send it at T (or, for a hold
with no time, keep holding for the stated reason).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine.config.build import ConfigLoader
from engine.config.model import Config
from engine.delivery.retry import Breaker
from engine.explain.explain import explain
from engine.explain.result import ChannelInfo, Instance, Reason
from engine.expr.history import History
from engine.journal.store import fold_event, initial_state
from engine.notify.base import Notification, iso
from engine.notify.dedup import told_fields
from engine.notify.pipeline import Pipeline
from engine.rules.evaluator import Evaluator, Snapshot
from engine.rules.state import fingerprint

pytestmark = pytest.mark.timeout(60)

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).timestamp()  # a Monday, 10:00 UTC

RULES = """\
group: g
interval: 10s
rules:
  - {id: cpu_high, expr: app.cpu > 90, labels: {team: infra}}
  - {id: mem_high, expr: app.mem > 90, labels: {team: infra}}
  - {id: office, expr: app.cpu > 90, labels: {team: office}}
  - {id: disk_full, expr: app.disk > 95, severity: critical, labels: {team: storage}}
  - {id: disk_filling, expr: app.disk > 80, labels: {team: storage}}
  - {id: esc, expr: app.cpu > 90, severity: critical, labels: {team: esc}}
  - {id: hook_a, expr: app.cpu > 90, labels: {team: hooks}}
  - {id: hook_b, expr: app.cpu > 90, labels: {team: hooks}}
  - {id: hook_c, expr: app.cpu > 90, labels: {team: hooks}}
  - {id: hook_d, expr: app.cpu > 90, labels: {team: hooks}}
"""

FLAP_RULES = """\
group: fl
interval: 10s
rules:
  - id: flappy
    expr: app.flap > 0
    labels: {team: flap}
    flapping: {max_changes: 4, window: 5m}
"""

CHANNELS = """\
channels:
  - {name: pager, type: memory}
  - {name: ops, type: memory}
  - {name: hook, type: memory, rate_limit: {max: 2, per: 1m}}
routes:
  - {match: {team: office}, channels: [ops], active_time: [business_hours], group_wait: 0s,
     group_interval: 1m}
  - match: {team: esc}
    channels: [ops]
    group_wait: 0s
    group_interval: 1m
    escalate:
      - {after: 5m, channels: [pager]}
  - match: {team: hooks}
    channels: [hook]
    group_wait: 0s
  - match: {team: flap}
    channels: [ops]
    group_wait: 0s
    group_interval: 40s
  - match: {team: infra}
    channels: [ops]
    group_by: [team]
    group_wait: 30s
    group_interval: 2m
    repeat_interval: 10m
  - match: {team: storage}
    channels: [ops]
    group_wait: 0s
    group_interval: 1m
time_intervals:
  - {name: business_hours, weekdays: [mon-fri], times: ["09:00-18:00"], timezone: UTC}
inhibit:
  - {source: {rule: disk_full}, target: {rule: disk_filling}, equal: [team]}
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    root = tmp_path_factory.mktemp("agree")
    (root / "rules").mkdir()
    (root / "channels").mkdir()
    (root / "rules" / "r.yaml").write_text(RULES)
    (root / "rules" / "f.yaml").write_text(FLAP_RULES)
    (root / "channels" / "c.yaml").write_text(CHANNELS)
    path: Path = root / "vigil.yaml"
    path.write_text(
        "rules: [rules]\nchannels: [channels]\ndata_dir: data\n"
        f"collectors:\n  - {{name: app, type: file, path: {root / 'app.json'}, format: json}}\n"
    )
    result = ConfigLoader().load(str(path))
    assert result.config is not None, [p.format() for p in result.problems]
    return result.config


class Run:
    """The pipeline driven as the dispatcher drives it, with the journal folded
    into the durable state that explain reads."""

    def __init__(self, config: Config, start: float) -> None:
        self.config = config
        self.p = Pipeline(config, {c.name: c.type for c in config.channels})
        self.state = initial_state()
        self.now = start
        self.sent: list[tuple[float, Notification]] = []
        self.sent_at: dict[str, list[float]] = {}

    def journal(self, ev: Mapping[str, Any], at: float) -> None:
        fold_event(self.state, {**ev, "ts": iso(at)})

    def ingest(self, ev: Mapping[str, Any], at: float) -> None:
        self.advance(at)
        self.journal(ev, at)
        self.p.ingest(ev, at)
        self.journal_own(at)

    def journal_own(self, at: float) -> None:
        for ev in self.p.take_events():
            self.journal(ev, at)

    def step(self, at: float) -> list[Notification]:
        out = self.p.due(at)
        for n in out:
            self.sent.append((at, n))
            self.sent_at.setdefault(n.channel, []).append(at)
            ev: dict[str, Any] = {
                "event": "notified", "channel": n.channel, "key": n.key,
                "alerts": [a.fingerprint for a in n.alerts], "status": n.status,
                "group_key": n.group_key, "attempts": 1,
            }  # fmt: skip
            ev.update(told_fields(n) if n.kind == "alerts" else {"kind": n.kind})
            self.journal(ev, at)
            self.p.delivered(n, True, at)
        self.journal_own(at)
        return out

    def advance(self, until: float) -> list[tuple[float, Notification]]:
        """Run due() at every deadline up to `until`, and at `until`: what was sent."""
        first = len(self.sent)
        while (d := self.p.next_deadline()) is not None and d < until:
            self.step(max(d, self.now))
            self.now = max(d, self.now)
        self.now = max(self.now, until)
        self.step(self.now)
        return self.sent[first:]

    def explain(self, rule: str, labels: Mapping[str, str]) -> Instance:
        e = explain(
            self.config, rule, labels=labels, values=None, state=self.state,
            now=self.now, sent_at=self.sent_at,
        )  # fmt: skip
        assert len(e.instances) == 1, e.to_text()
        return e.instances[0]


def fire(rule: str, labels: Mapping[str, str], at: float, kind: str = "firing") -> dict[str, Any]:
    sev = "critical" if rule in ("disk_full", "esc") else "warning"
    return {
        "event": kind, "alert": fingerprint(rule, labels), "rule": rule, "group": "g",
        "labels": dict(labels), "severity": sev, "value": 95.0,
        "pending_since": at, "firing_since": at,
    }  # fmt: skip


def reason(inst: Instance, code: str) -> Reason:
    found = [r for r in inst.delivery.withheld if r.code == code]
    assert found, f"no {code} in {[r.code for r in inst.delivery.withheld]}"
    return found[0]


def channel(inst: Instance, name: str) -> ChannelInfo:
    return next(c for c in inst.delivery.channels if c.name == name)


def at_of(text: str | None) -> float:
    assert text is not None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def has(sent: list[tuple[float, Notification]], ch: str, fp: str) -> list[float]:
    """When `fp` went out on channel `ch`."""
    return [t for t, n in sent if n.channel == ch and any(a.fingerprint == fp for a in n.alerts)]


def sends_first_at(run: Run, ch: str, fp: str, t: float) -> Notification:
    """The pipeline sends nothing of `fp` on `ch` before `t`, and sends it at `t`."""
    assert has(run.advance(t - 1), ch, fp) == []
    sent = run.advance(t)
    assert has(sent, ch, fp) == [t], sent
    return next(n for _, n in sent if n.channel == ch)


INFRA = {"team": "infra"}
CPU = fingerprint("cpu_high", INFRA)


def test_group_wait_pending(config: Config) -> None:
    r = Run(config, T0)
    r.ingest(fire("cpu_high", INFRA, T0), T0)
    r.advance(T0 + 10)
    ops = channel(r.explain("cpu_high", INFRA), "ops")
    assert (ops.timing, ops.next_at) == ("group_wait", iso(T0 + 30).replace(".000", ""))
    assert "not told yet" in ops.lines[0]
    sends_first_at(r, "ops", CPU, at_of(ops.next_at))


def test_group_interval_not_yet_due(config: Config) -> None:
    r = Run(config, T0)
    r.ingest(fire("cpu_high", INFRA, T0), T0)
    assert has(r.advance(T0 + 30), "ops", CPU) == [T0 + 30]
    r.ingest(fire("mem_high", INFRA, T0 + 40), T0 + 40)  # joins the told group
    r.advance(T0 + 50)
    ops = channel(r.explain("mem_high", INFRA), "ops")
    assert ops.timing == "group_interval" and at_of(ops.next_at) == T0 + 150
    sends_first_at(r, "ops", fingerprint("mem_high", INFRA), T0 + 150)


def test_repeat_interval_not_yet_due(config: Config) -> None:
    r = Run(config, T0)
    r.ingest(fire("cpu_high", INFRA, T0), T0)
    r.advance(T0 + 100)
    ops = channel(r.explain("cpu_high", INFRA), "ops")
    # the first tick at least 10m after the send at T0+30, on its 2m grid
    assert ops.timing == "repeat_interval" and at_of(ops.next_at) == T0 + 630
    assert "repeats every 10m while unacknowledged" in ops.lines[1]
    sends_first_at(r, "ops", CPU, T0 + 630)


def silence(sid: str, until: float, **match: str) -> dict[str, Any]:
    return {
        "event": "silence_created", "id": sid, "starts": None, "until": until,
        "matchers": [{"label": k, "value": v} for k, v in match.items()],
        "reason": "maintenance", "created_by": "bob",
    }  # fmt: skip


def test_silenced_until_it_ends(config: Config) -> None:
    r = Run(config, T0 - 1)
    r.ingest(silence("s1", T0 + 270, rule="cpu_high"), T0 - 1)
    r.ingest(fire("cpu_high", INFRA, T0), T0)
    r.advance(T0 + 60)
    inst = r.explain("cpu_high", INFRA)
    assert inst.delivery.status == "withheld"
    assert at_of(reason(inst, "silenced").next_at) == T0 + 270
    # the silence ends on one of the group's ticks (T0+30 + 2 * 2m): it goes out then
    sends_first_at(r, "ops", CPU, T0 + 270)


def test_inhibited_while_its_source_fires(config: Config) -> None:
    storage = {"team": "storage"}
    target = fingerprint("disk_filling", storage)
    r = Run(config, T0)
    r.ingest(fire("disk_full", storage, T0), T0)
    r.ingest(fire("disk_filling", storage, T0), T0)
    r.advance(T0 + 5)
    inst = r.explain("disk_filling", storage)
    inh = reason(inst, "inhibited")
    assert inh.data["by"]["rule"] == "disk_full" and inh.next_at is None  # no time: an event
    assert inst.delivery.status == "withheld"
    # the pipeline holds it for that reason, for as long as the source fires
    assert has(r.advance(T0 + 3600), "ops", target) == []
    assert r.p.alerts[target].muted and not r.p.alerts[target].silenced
    r.ingest(fire("disk_full", storage, T0 + 3600, "resolved"), T0 + 3600)
    inst = r.explain("disk_filling", storage)
    assert "inhibited" not in [x.code for x in inst.delivery.withheld]
    ops = channel(inst, "ops")
    assert ops.sends and ops.next_at is not None and at_of(ops.next_at) <= r.now
    assert has(r.advance(r.now), "ops", target) == [T0 + 3600]  # due now: it goes now


def acknowledge(fp: str, until: float) -> dict[str, Any]:
    return {"event": "acknowledged", "alert": fp, "by": "bob", "note": "on it", "until": until}


def test_acknowledged_until_it_expires_then_repeats(config: Config) -> None:
    r = Run(config, T0)
    r.ingest(fire("cpu_high", INFRA, T0), T0)
    r.advance(T0 + 30)
    r.ingest(acknowledge(CPU, T0 + 390), T0 + 60)
    r.advance(T0 + 100)
    inst = r.explain("cpu_high", INFRA)
    ack = reason(inst, "acknowledged")
    assert ack.data["by"] == "bob" and at_of(ack.next_at) == T0 + 390
    assert inst.delivery.status == "withheld"
    # it expires on a group tick (T0+30 + 3 * 2m): the channel hears of it again then
    sends_first_at(r, "ops", CPU, T0 + 390)
    # ack expired: explain says so, and repeats resume on the pipeline's timing
    r.advance(T0 + 400)
    inst = r.explain("cpu_high", INFRA)
    assert "acknowledged" not in [x.code for x in inst.delivery.withheld]
    assert r.state["alerts"][CPU]["ack"] is None  # the pipeline journaled its lapse
    ops = channel(inst, "ops")
    assert ops.timing == "repeat_interval" and at_of(ops.next_at) == T0 + 990
    sends_first_at(r, "ops", CPU, T0 + 990)


def test_ack_expired_between_ticks_is_news_on_the_next_one(config: Config) -> None:
    r = Run(config, T0)
    r.ingest(fire("cpu_high", INFRA, T0), T0)
    r.advance(T0 + 30)
    r.ingest(acknowledge(CPU, T0 + 400), T0 + 60)
    r.advance(T0 + 420)  # it lapsed at T0+400, between two ticks (T0+390, T0+510)
    inst = r.explain("cpu_high", INFRA)
    assert "acknowledged" not in [x.code for x in inst.delivery.withheld]
    ops = channel(inst, "ops")
    assert ops.timing == "group_interval" and at_of(ops.next_at) == T0 + 510
    sends_first_at(r, "ops", CPU, T0 + 510)


def test_news_waits_for_the_next_tick_not_group_interval_from_the_last_send(
    config: Config,
) -> None:
    r = Run(config, T0)
    r.ingest(fire("cpu_high", INFRA, T0), T0)
    r.advance(T0 + 30)
    r.ingest(fire("mem_high", INFRA, T0 + 200), T0 + 200)  # after the 2nd tick (T0+150)
    r.advance(T0 + 210)
    ops = channel(r.explain("mem_high", INFRA), "ops")
    assert ops.timing == "group_interval" and at_of(ops.next_at) == T0 + 270
    sends_first_at(r, "ops", fingerprint("mem_high", INFRA), T0 + 270)


def test_rate_limited_into_a_digest(config: Config) -> None:
    hooks = {"team": "hooks"}
    r = Run(config, T0)
    for rule in ("hook_a", "hook_b", "hook_c", "hook_d"):
        r.ingest(fire(rule, hooks, T0), T0)
    r.advance(T0)
    first = list(r.sent)
    assert len(first) == 2  # 2 per minute: the other two are held
    told = {a.fingerprint for _, n in first for a in n.alerts}
    held = [
        x for x in ("hook_a", "hook_b", "hook_c", "hook_d") if fingerprint(x, hooks) not in told
    ]
    r.advance(T0 + 10)
    inst = r.explain(held[0], hooks)
    rl = reason(inst, "rate_limited")
    assert rl.channel == "hook" and at_of(rl.next_at) == T0 + 60
    assert not channel(inst, "hook").sends
    n = sends_first_at(r, "hook", fingerprint(held[0], hooks), T0 + 60)
    assert n.kind == "digest"
    assert {a.fingerprint for a in n.alerts} == {fingerprint(x, hooks) for x in held}


def test_rate_limited_as_the_live_limiter_holds_it(config: Config) -> None:
    """Online, explain reads the running pipeline's own rate limiter (no send times
    from the journal): it names the limit, the held notifications, and when the
    digest goes, which is when the pipeline sends it."""
    hooks = {"team": "hooks"}
    r = Run(config, T0)
    for rule in ("hook_a", "hook_b", "hook_c", "hook_d"):
        r.ingest(fire(rule, hooks, T0), T0)
    r.advance(T0 + 10)
    told = {a.fingerprint for _, n in r.sent for a in n.alerts}
    held = [
        x for x in ("hook_a", "hook_b", "hook_c", "hook_d") if fingerprint(x, hooks) not in told
    ]
    e = explain(config, held[0], labels=hooks, values=None, state=r.state, now=r.now, live=r.p)
    rl = reason(e.instances[0], "rate_limited")
    assert rl.data == {"max": 2, "per": 60.0, "held": 2, "recent": 2}
    assert at_of(rl.next_at) == T0 + 60
    assert sends_first_at(r, "hook", fingerprint(held[0], hooks), T0 + 60).kind == "digest"


def test_flapping_hold_until_it_calms(config: Config) -> None:
    """The state machine (the real Evaluator) flaps the alert; explain says until
    when the hold lasts at least; the pipeline sends its latest state then."""
    group = next(g for g in config.groups if g.name == "fl")
    ev = Evaluator(History(600))
    flap = {"team": "flap"}
    fp = fingerprint("flappy", flap)
    r = Run(config, T0)

    def evaluate(t: float, value: int) -> None:
        snap = Snapshot({"app": {"flap": value}}, frozenset(), T0 + t, t)
        for tr in ev.run_group(group, snap):
            r.ingest(tr.as_journal(t), T0 + t)

    for t, v in ((0, 1), (10, 0), (20, 1), (30, 0)):  # the 4th change flaps
        evaluate(t, v)
    assert fp in r.p.flapping
    t = 40
    while t <= 100:
        evaluate(t, 0)
        t += 10
    inst = r.explain("flappy", flap)
    fl = reason(inst, "flapping")
    # fewer than 2 changes in 5m once the change at +20s is 5m old
    assert at_of(fl.next_at) == T0 + 320
    while t < 320:
        evaluate(t, 0)
        t += 10
    assert has(r.advance(T0 + 319), "ops", fp) == []
    assert fp in r.p.flapping
    evaluate(320, 0)  # flapping_end, on the group's 40s grid: its resolve goes out
    assert fp not in r.p.flapping
    assert [n.status for _, n in r.advance(T0 + 320) if n.channel == "ops"] == ["resolved"]


def test_outside_active_time_until_it_begins(config: Config) -> None:
    evening = datetime(2026, 11, 23, 18, 30, tzinfo=UTC).timestamp()  # Monday, after hours
    office = {"team": "office"}
    r = Run(config, evening)
    r.ingest(fire("office", office, evening), evening)
    r.advance(evening + 60)
    inst = r.explain("office", office)
    out = reason(inst, "outside_active_time")
    tuesday_nine = datetime(2026, 11, 24, 9, 0, tzinfo=UTC).timestamp()
    assert at_of(out.next_at) == tuesday_nine
    assert inst.delivery.status == "withheld"
    sends_first_at(r, "ops", fingerprint("office", office), tuesday_nine)


def test_escalation_step_due_later(config: Config) -> None:
    esc = {"team": "esc"}
    fp = fingerprint("esc", esc)
    r = Run(config, T0)
    r.ingest(fire("esc", esc, T0), T0)
    r.advance(T0 + 60)
    inst = r.explain("esc", esc)
    assert at_of(inst.delivery.escalation_next_at) == T0 + 300
    assert "due 2026-11-23T10:05:00Z" in inst.delivery.escalation[0]
    n = sends_first_at(r, "pager", fp, T0 + 300)
    assert n.kind == "escalation" and n.escalation_level == 1
    inst = r.explain("esc", esc)
    assert inst.delivery.escalation_next_at is None and "done" in inst.delivery.escalation[0]


def test_acknowledged_alert_does_not_escalate(config: Config) -> None:
    esc = {"team": "esc"}
    fp = fingerprint("esc", esc)
    r = Run(config, T0)
    r.ingest(fire("esc", esc, T0), T0)
    r.ingest(acknowledge(fp, T0 + 600), T0 + 60)
    inst = r.explain("esc", esc)
    assert inst.delivery.escalation_next_at is None and "waits" in inst.delivery.escalation[0]
    assert has(r.advance(T0 + 599), "pager", fp) == []
    # the acknowledgement expires past the level's time: it escalates at once
    assert has(r.advance(T0 + 600), "pager", fp) == [T0 + 600]


def test_breaker_open_holds_until_its_probe(config: Config) -> None:
    """The breaker is the sender's (engine/delivery/retry.py), not the pipeline's:
    explain reads its state from the dispatcher's status. While explain says
    breaker_open the breaker lets nothing out; once it says so no more, a probe goes."""
    clock = [0.0]
    b = Breaker(threshold=2, cooldown=30.0, clock=lambda: clock[0])
    b.failure()
    b.failure()
    r = Run(config, T0)
    r.ingest(fire("cpu_high", INFRA, T0), T0)

    def status() -> dict[str, dict[str, Any]]:
        return {"ops": {"queued": 1, "folded": 0, "breaker": b.state, "sent": 0, "failed": 2,
                        "error": None, "retry_in": b.retry_in()}}  # fmt: skip

    e = explain(config, "cpu_high", labels=INFRA, values=None, state=r.state, now=T0,
                channel_status=status())  # fmt: skip
    br = reason(e.instances[0], "breaker_open")
    assert br.data["retry_in"] == 30.0 and at_of(br.next_at) == T0 + 30  # when the probe goes
    assert not b.allow()
    clock[0] = 30.0
    e = explain(config, "cpu_high", labels=INFRA, values=None, state=r.state, now=T0 + 30,
                channel_status=status())  # fmt: skip
    assert "breaker_open" not in [x.code for x in e.instances[0].delivery.withheld]
    assert b.allow()  # the half-open probe
