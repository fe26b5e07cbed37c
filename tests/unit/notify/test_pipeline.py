"""The pure notification pipeline on a fake clock: routing, muting, grouping,
dedup/repeat, flapping hold, rate limit, escalation, resume."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Literal

from engine.common.matchers import compile_regex
from engine.config.model import (
    Channel,
    Config,
    Escalation,
    Inhibit,
    Matcher,
    RateLimit,
    Route,
    Rule,
    RuleGroup,
    Silence,
    TimeInterval,
    TimeRange,
)
from engine.journal.store import fold_event, initial_state
from engine.notify.base import AlertView, Notification, iso
from engine.notify.digest import make_digest
from engine.notify.keys import idempotency_key
from engine.notify.pipeline import Pipeline

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).timestamp()  # a Monday


def M(label: str, *values: str) -> Matcher:
    return Matcher(label, frozenset(values))


def fire(
    fp: str, at: float = T0, *, rule: str = "r1", severity: str = "warning", **labels: str
) -> dict[str, Any]:
    return {
        "event": "firing",
        "alert": fp,
        "rule": rule,
        "group": "g",
        "labels": dict(labels),
        "severity": severity,
        "value": 1.5,
        "annotations": {"summary": f"{rule} on {labels.get('host', '-')}"},
        "pending_since": at,
        "firing_since": at,
        "ts": iso(at),
        "seq": 1,
    }


def resolve(
    fp: str, at: float, *, rule: str = "r1", severity: str = "warning", **labels: str
) -> dict[str, Any]:
    return {
        **fire(fp, at, rule=rule, severity=severity, **labels),
        "event": "resolved",
        "ts": iso(at),
    }


def mark(kind: str, fp: str, at: float, **kw: Any) -> dict[str, Any]:
    return {"event": kind, "alert": fp, "ts": iso(at), **kw}


def pipe(*routes: Route, channels: tuple[Channel, ...] | None = None, **kw: Any) -> Pipeline:
    chs = channels or tuple(
        Channel(n, "pagerduty" if n.startswith("pd") else "webhook")
        for n in sorted(
            {c for r in routes for c in r.channels}
            | {c for r in routes for e in r.escalate for c in e.channels}
        )
    )
    config = Config(routes=routes, channels=chs, **kw)
    return Pipeline(config, {c.name: c.type for c in chs})


def route(*channels: str, **kw: Any) -> Route:
    kw.setdefault("group_wait", 0.0)
    return Route(kw.pop("matchers", ()), channels, **kw)


def step(p: Pipeline, now: float, *, ok: bool = True) -> list[Notification]:
    """due() and report every notification delivered (or failed)."""
    out = p.due(now)
    for n in out:
        p.delivered(n, ok, now)
    return out


def fps(n: Notification) -> list[tuple[str, str]]:
    return [(a.fingerprint, a.status) for a in n.alerts]


# -- grouping timers -----------------------------------------------------------------------


def test_group_wait_then_group_interval_then_repeat() -> None:
    p = pipe(route("ops", group_wait=10, group_interval=300, repeat_interval=3600))
    p.ingest(fire("a", host="h1"), T0)
    assert p.due(T0 + 5) == []
    assert p.next_deadline() == T0 + 10
    [n] = step(p, T0 + 10)
    assert fps(n) == [("a", "firing")] and n.status == "firing" and n.channel == "ops"
    assert n.group_key == 'ops|0|{"rule":"r1"}'
    p.ingest(fire("b", T0 + 20, host="h2"), T0 + 20)
    assert step(p, T0 + 20) == []  # a change waits for group_interval
    assert p.next_deadline() == T0 + 310
    [n] = step(p, T0 + 310)
    assert fps(n) == [("a", "firing"), ("b", "firing")]
    # unchanged: nothing until repeat_interval after the last send
    assert step(p, T0 + 1000) == []
    assert p.next_deadline() == T0 + 310 + 3600
    [n] = step(p, T0 + 3910)
    assert fps(n) == [("a", "firing"), ("b", "firing")]


def test_resolved_travels_with_firing_and_group_ends() -> None:
    p = pipe(route("ops", group_interval=60))
    p.ingest(fire("a"), T0)
    p.ingest(fire("b"), T0)
    [n] = step(p, T0)
    assert len(n.alerts) == 2
    p.ingest(resolve("a", T0 + 30), T0 + 30)
    [n] = step(p, T0 + 60)
    assert fps(n) == [("b", "firing"), ("a", "resolved")] and n.status == "firing"
    assert n.alerts[1].ends_at == T0 + 30
    p.ingest(resolve("b", T0 + 70), T0 + 70)
    [n] = step(p, T0 + 120)
    assert fps(n) == [("b", "resolved")] and n.status == "resolved"
    assert p.groups == {} and p.alerts == {}
    assert p.next_deadline() is None


def test_fired_and_resolved_within_group_wait_is_never_sent() -> None:
    p = pipe(route("ops", group_wait=30))
    p.ingest(fire("a"), T0)
    p.ingest(resolve("a", T0 + 10), T0 + 10)
    assert step(p, T0 + 30) == []
    assert p.groups == {}


def test_failed_delivery_is_retried_at_group_interval_and_dedup_counts_delivered_only() -> None:
    p = pipe(route("ops", group_interval=120))
    p.ingest(fire("a"), T0)
    [_n] = step(p, T0, ok=False)
    assert p.next_deadline() == T0 + 120
    p.ingest(fire("b"), T0 + 5)  # a change does not bring the retry forward
    assert step(p, T0 + 5) == []
    [n2] = step(p, T0 + 120)
    assert fps(n2) == [("a", "firing"), ("b", "firing")]
    assert step(p, T0 + 500) == []  # now delivered: deduplicated


def test_group_by_all_labels_and_separate_groups() -> None:
    p = pipe(route("ops", group_by=("...",)))
    p.ingest(fire("a", host="h1"), T0)
    p.ingest(fire("b", host="h2"), T0)
    out = step(p, T0)
    assert sorted(n.group_key for n in out) == [
        'ops|0|{"host":"h1","rule":"r1","severity":"warning"}',
        'ops|0|{"host":"h2","rule":"r1","severity":"warning"}',
    ]


# -- routing -------------------------------------------------------------------------------


def test_first_match_and_continue() -> None:
    p = pipe(
        route("pd", matchers=(M("severity", "critical"),)),
        route("db", matchers=(M("team", "db"),), continue_=True),
        route("default"),
    )
    p.ingest(fire("a", severity="critical", team="db"), T0)
    p.ingest(fire("b", team="db"), T0)
    p.ingest(fire("c"), T0)
    got = sorted((n.channel, a.fingerprint) for n in step(p, T0) for a in n.alerts)
    assert got == [("db", "b"), ("default", "b"), ("default", "c"), ("pd", "a")]


def test_rule_channels_bypass_routes() -> None:
    compiled: Any = None
    rule = Rule(id="special", group="g", expr="True", compiled=compiled, channels=("ops",))
    config = Config(
        groups=(RuleGroup("g", 15.0, (rule,)),),
        routes=(route("default"),),
        channels=(Channel("ops", "webhook"), Channel("default", "webhook")),
    )
    p = Pipeline(config, {"ops": "webhook", "default": "webhook"})
    p.ingest(fire("a", rule="special"), T0)
    p.ingest(fire("b", rule="other"), T0)
    got = sorted((n.channel, n.group_key) for n in step(p, T0))
    assert got == [("default", 'default|0|{"rule":"other"}'), ("ops", 'ops|-1|{"rule":"special"}')]


def test_missing_annotations_are_rendered_from_the_rule() -> None:
    compiled: Any = None
    rule = Rule(
        id="r1",
        group="g",
        expr="True",
        compiled=compiled,
        annotations={"summary": "{{ labels.host }} at {{ value }}"},
    )
    config = Config(
        groups=(RuleGroup("g", 15.0, (rule,)),),
        routes=(route("ops"),),
        channels=(Channel("ops", "webhook"),),
    )
    p = Pipeline(config, {"ops": "webhook"})
    ev = fire("a", host="h1")
    del ev["annotations"]
    p.ingest(ev, T0)
    [n] = step(p, T0)
    assert n.alerts[0].annotations == {"summary": "h1 at 1.5"}


# -- silences, inhibition, time ------------------------------------------------------------


def test_config_silence_and_its_expiry() -> None:
    s = Silence("s1", (M("host", "h1"),), until=T0 + 600, reason="maint")
    p = pipe(route("ops"), silences=(s,))
    p.ingest(fire("a", host="h1"), T0)
    p.ingest(fire("b", host="h2"), T0)
    [n] = step(p, T0)
    assert fps(n) == [("b", "firing")]
    assert p.next_deadline() == T0 + 600  # the silence ends
    [n] = step(p, T0 + 600)
    assert fps(n) == [("a", "firing"), ("b", "firing")]
    assert n.alerts[0].silenced is False


def test_api_silence_from_state_and_from_events() -> None:
    p = pipe(route("ops"))
    state = initial_state()
    state["silences"]["x"] = {
        "matchers": [{"label": "host", "values": ["h1"]}],
        "until": T0 + 100,
        "starts": None,
        "reason": "r",
        "created_by": "bob",
    }
    p.load_state(state, T0)
    p.ingest(fire("a", host="h1"), T0)
    assert step(p, T0) == []
    p.ingest(
        {
            "event": "silence_created",
            "id": "y",
            "matchers": [{"label": "host", "regex": "h[0-9]"}],
            "until": T0 + 1000,
        },
        T0,
    )
    p.ingest(fire("b", host="h2"), T0)
    assert step(p, T0 + 200) == []
    p.ingest({"event": "silence_expired", "id": "y"}, T0 + 300)
    [n] = step(p, T0 + 300)
    assert fps(n) == [("a", "firing"), ("b", "firing")]


def test_inhibition_with_equal_labels() -> None:
    inhibit = Inhibit((M("severity", "critical"),), (M("severity", "warning"),), ("host",))
    p = pipe(route("ops", group_by=("...",), group_interval=60), inhibits=(inhibit,))
    p.ingest(fire("crit", rule="down", severity="critical", host="h1"), T0)
    p.ingest(fire("w1", rule="slow", host="h1"), T0)
    p.ingest(fire("w2", rule="slow", host="h2"), T0)
    got = sorted(a.fingerprint for n in step(p, T0) for a in n.alerts)
    assert got == ["crit", "w2"]
    p.ingest(resolve("crit", T0 + 10, rule="down", severity="critical", host="h1"), T0 + 10)
    # w1's group ticked at T0 with nothing to send (Alertmanager's too): both
    # groups tell their change on their next tick
    assert step(p, T0 + 10) == []
    got = sorted(fps(n)[0] for n in step(p, T0 + 60))
    assert got == [("crit", "resolved"), ("w1", "firing")]


def test_an_alert_does_not_inhibit_itself() -> None:
    inhibit = Inhibit((M("rule", "r1"),), (M("rule", "r1"),), ())
    p = pipe(route("ops"), inhibits=(inhibit,))
    p.ingest(fire("a"), T0)
    [n] = step(p, T0)
    assert fps(n) == [("a", "firing")]


def test_active_time_holds_until_the_window_opens() -> None:
    # Monday 10:00 UTC = 11:00 Berlin; the window opens at 12:00 Berlin
    noon = TimeInterval("noon", times=(TimeRange(12 * 60, 13 * 60),), timezone="Europe/Berlin")
    p = pipe(route("ops", active_time=("noon",)), time_intervals=(noon,))
    p.ingest(fire("a"), T0)
    assert step(p, T0) == []
    assert p.next_deadline() == T0 + 300  # looked at again on the group's next tick
    t = T0
    while (d := p.next_deadline()) is not None and d < T0 + 3600:
        t = d
        assert step(p, t) == []
    [n] = step(p, T0 + 3600)
    assert fps(n) == [("a", "firing")]


def test_mute_time() -> None:
    always = TimeInterval("always")
    p = pipe(route("ops", mute_time=("always",)), time_intervals=(always,))
    p.ingest(fire("a"), T0)
    assert step(p, T0) == [] and step(p, T0 + 3600) == []


# -- incident-closing channels ---------------------------------------------------------------


def test_resolved_of_silenced_alert_goes_to_closing_channels_only() -> None:
    s = Silence("s1", (M("host", "h1"),), until=T0 + 10_000, reason="maint")
    p = pipe(route("pd", "slack"), silences=(s,))
    p.ingest(fire("a", host="h1"), T0)
    assert step(p, T0) == []
    p.ingest(resolve("a", T0 + 50, host="h1"), T0 + 50)
    assert step(p, T0 + 50) == []  # the group ticked at T0: the next tick is T0+300
    [n] = step(p, T0 + 300)
    assert n.channel == "pd" and fps(n) == [("a", "resolved")] and n.alerts[0].silenced
    assert p.groups == {}


def test_acknowledged_alerts_acknowledge_on_closing_channels_and_stop_repeats() -> None:
    p = pipe(route("pd", "slack", group_interval=60, repeat_interval=600))
    p.ingest(fire("a"), T0)
    assert sorted(n.channel for n in step(p, T0)) == ["pd", "slack"]
    p.ingest(mark("acknowledged", "a", T0 + 10, by="alice", note="on it", until=None), T0 + 10)
    [n] = step(p, T0 + 60)
    assert n.channel == "pd" and n.alerts[0].acknowledged == {
        "by": "alice",
        "note": "on it",
        "until": None,
    }
    assert step(p, T0 + 5000) == []  # no repeats while acknowledged
    p.ingest(resolve("a", T0 + 6000), T0 + 6000)
    assert sorted(n.channel for n in step(p, T0 + 6000)) == ["pd", "slack"]  # both saw it fire


def test_acknowledgement_expiry_or_removal_notifies_again() -> None:
    p = pipe(route("slack", group_interval=60, repeat_interval=10_000))
    p.ingest(fire("a"), T0)
    step(p, T0)
    p.ingest(mark("acknowledged", "a", T0 + 10, by="bob", until=T0 + 100), T0 + 10)
    assert step(p, T0 + 60) == []
    assert p.next_deadline() == T0 + 100
    assert step(p, T0 + 100) == []  # nobody holds it any more: news for the next tick
    assert p.next_deadline() == T0 + 120
    [n] = step(p, T0 + 120)
    assert fps(n) == [("a", "firing")] and n.alerts[0].acknowledged is None
    p.ingest(mark("acknowledged", "a", T0 + 130, by="bob", until=None), T0 + 130)
    assert step(p, T0 + 5000) == []
    p.ingest(mark("unacknowledged", "a", T0 + 6000), T0 + 6000)
    [n] = step(p, T0 + 6000)
    assert fps(n) == [("a", "firing")]


# -- flapping ------------------------------------------------------------------------------------


def test_flapping_holds_back_until_it_stops() -> None:
    p = pipe(route("ops", group_interval=10))
    p.ingest(fire("a"), T0)
    [n] = step(p, T0)
    p.ingest(mark("flapping", "a", T0 + 1), T0 + 1)
    p.ingest(resolve("a", T0 + 2), T0 + 2)
    p.ingest(fire("a", T0 + 3), T0 + 3)
    p.ingest(resolve("a", T0 + 4), T0 + 4)
    assert step(p, T0 + 100) == []
    p.ingest(mark("flapping_end", "a", T0 + 200), T0 + 200)
    [n] = step(p, T0 + 200)
    assert fps(n) == [("a", "resolved")]


def test_alert_flapping_from_the_start_is_sent_when_it_settles_firing() -> None:
    p = pipe(route("ops"))
    p.ingest(fire("a"), T0)
    p.ingest(mark("flapping", "a", T0), T0)
    assert step(p, T0) == []
    p.ingest(mark("flapping_end", "a", T0 + 500), T0 + 500)
    assert step(p, T0 + 500) == []  # on the group's next tick (every 300s from T0)
    [n] = step(p, T0 + 600)
    assert fps(n) == [("a", "firing")]


# -- rate limit ------------------------------------------------------------------------------------


def test_rate_limit_holds_and_sends_one_digest() -> None:
    ch = (Channel("ops", "webhook", rate_limit=RateLimit(2, 60.0)),)
    p = pipe(route("ops", group_by=("host",)), channels=ch)
    for i in range(5):
        p.ingest(fire(f"a{i}", host=f"h{i}"), T0)
    out = step(p, T0)
    assert len(out) == 2 and all(n.kind == "alerts" for n in out)
    assert p.next_deadline() == T0 + 60
    [d] = p.due(T0 + 60)
    assert d.kind == "digest" and d.extra["held"] == 3
    assert sorted(a.fingerprint for a in d.alerts) == ["a2", "a3", "a4"]
    assert "3 notifications held" in d.title and "r1" in d.body and "host=h3" in d.body
    p.delivered(d, True, T0 + 60)
    assert step(p, T0 + 3000) == []  # the held groups count as sent


def test_a_digest_of_digests_lists_each_alert_once_in_order() -> None:
    def view(
        fp: str, rule: str, status: Literal["firing", "resolved"] = "firing", **labels: str
    ) -> AlertView:
        return AlertView(fp, rule, status, "warning", labels, {}, 1.0, T0)

    def note(*views: AlertView) -> Notification:
        return Notification("ops", "g", "firing", views, f"k-{views[0].fingerprint}", "t", "b")

    a_old, a_new = view("a", "r2", host="h2"), view("a", "r2", "resolved", host="h2")
    first = make_digest("ops", [note(a_old), note(view("b", "r1", zone="z", host="h9"))], "x")
    second = make_digest("ops", [first, note(view("c", "r1", host="h1")), note(a_new)], "x")
    assert second.extra["held"] == 4
    # firing first, then by rule and labels; `a` once, with its latest status
    assert [(v.fingerprint, v.status) for v in second.alerts] == [
        ("c", "firing"),
        ("b", "firing"),
        ("a", "resolved"),
    ]
    assert "- FIRING r1 [warning] host=h9, zone=z" in second.body


def test_rate_limited_single_notification_is_sent_as_itself() -> None:
    ch = (Channel("ops", "webhook", rate_limit=RateLimit(1, 60.0)),)
    p = pipe(route("ops", group_by=("host",)), channels=ch)
    p.ingest(fire("a", host="1"), T0)
    p.ingest(fire("b", host="2"), T0)
    assert len(step(p, T0)) == 1
    [n] = step(p, T0 + 60)
    assert n.kind == "alerts" and fps(n) == [("b", "firing")]


# -- escalation ------------------------------------------------------------------------------------


def esc_pipe() -> Pipeline:
    return pipe(
        route(
            "ops",
            repeat_interval=100_000,
            escalate=(Escalation(900, ("mgr",)), Escalation(1800, ("pd-boss",))),
        )
    )


def test_escalation_after_the_deadline() -> None:
    p = esc_pipe()
    p.ingest(fire("a"), T0)
    step(p, T0)
    assert p.next_deadline() == T0 + 900
    [n] = step(p, T0 + 900)
    assert n.channel == "mgr" and n.kind == "escalation" and n.escalation_level == 1
    assert p.take_events() == [
        {"event": "escalated", "alert": "a", "rule": "r1", "level": 1, "channels": ["mgr"]}
    ]
    [n2] = step(p, T0 + 1800)
    assert n2.channel == "pd-boss" and n2.escalation_level == 2 and n2.key != n.key
    assert step(p, T0 + 99_000) == []
    p.ingest(resolve("a", T0 + 99_500), T0 + 99_500)
    got = sorted((n.channel, n.status) for n in step(p, T0 + 99_500))
    assert got == [("mgr", "resolved"), ("pd-boss", "resolved")]
    [n] = step(p, T0 + 99_600)  # the route's group, on its next tick
    assert (n.channel, n.status) == ("ops", "resolved")


def test_no_escalation_when_acknowledged() -> None:
    p = esc_pipe()
    p.ingest(fire("a"), T0)
    step(p, T0)
    p.ingest(mark("acknowledged", "a", T0 + 100, by="x", until=None), T0 + 100)
    assert step(p, T0 + 5000) == [] and p.take_events() == []
    p.ingest(mark("unacknowledged", "a", T0 + 6000), T0 + 6000)
    out = step(p, T0 + 6000)  # both levels are overdue: each level's people hear
    got = sorted((n.channel, n.escalation_level) for n in out)
    assert got == [("mgr", 1), ("ops", 0), ("pd-boss", 2)]  # ops: unacknowledged again


def test_escalation_resumes_from_the_journaled_level() -> None:
    p = esc_pipe()
    state = initial_state()
    fold_event(state, fire("a", T0))
    fold_event(state, {"event": "escalated", "alert": "a", "level": 1, "ts": iso(T0 + 900)})
    fold_event(
        state,
        {
            "event": "notified",
            "channel": "ops",
            "key": "k",
            "alerts": ["a"],
            "status": "firing",
            "ts": iso(T0),
        },
    )
    p.load_state(state, T0 + 1000)
    assert step(p, T0 + 1000) == []
    [n] = step(p, T0 + 1800)
    assert n.channel == "pd-boss"


# -- templates -------------------------------------------------------------------------------------


def test_template_failure_sends_fallback_and_reports() -> None:
    ch = (Channel("ops", "webhook", templates={"title": "{{ ''.__class__.__mro__ }}"}),)
    p = pipe(route("ops"), channels=ch)
    p.ingest(fire("a", host="h1"), T0)
    [n] = step(p, T0)
    assert n.title == "[FIRING:1] r1" and "host=h1" in n.body
    [ev] = p.take_events()
    assert (
        ev["event"] == "template_failed"
        and ev["channel"] == "ops"
        and "SecurityError" in ev["error"]
    )


def test_views_and_keys_follow_every_change() -> None:
    """Views are built once per alert and reused, and muting is computed once per
    silence span: a change of value, acknowledgement or status, and a silence
    that starts later, must still show in the next notification and its key."""
    later = Silence("s1", (M("host", "h2"),), until=T0 + 9000, reason="r", starts=T0 + 500)
    p = pipe(route("pd", "ops", group_interval=60, repeat_interval=1000), silences=(later,))
    p.ingest(fire("a", host="h1"), T0)
    p.ingest(fire("b", host="h2"), T0)
    first = {n.channel: n for n in step(p, T0)}
    for n in first.values():
        assert n.key == idempotency_key(n.channel, n.group_key, n.alerts)
    p.ingest({**fire("a", host="h1"), "value": 99.0}, T0 + 10)  # the same episode, news
    p.ingest(mark("acknowledged", "a", T0 + 20, by="bob", until=None), T0 + 20)
    both = {n.channel: n for n in step(p, T0 + 60)}
    # ops no longer shows the acknowledged alert: b alone is nothing new to it
    assert set(both) == {"pd"}
    n = both["pd"]  # pd shows it acknowledged
    assert n.key != first["pd"].key
    assert n.key == idempotency_key("pd", n.group_key, n.alerts, first["pd"].key)
    a = {v.fingerprint: v for v in n.alerts}["a"]
    assert a.value == 99.0 and a.acknowledged == {"by": "bob", "note": None, "until": None}
    # b is silenced from T0 + 500 on: no channel shows it firing any more
    p.ingest(resolve("a", T0 + 600, host="h1"), T0 + 600)
    out = {n.channel: n for n in step(p, T0 + 600)}
    assert fps(out["pd"]) == fps(out["ops"]) == [("a", "resolved")]
    assert out["pd"].key == idempotency_key("pd", out["pd"].group_key, out["pd"].alerts, n.key)
    # its end goes to both (both were told it fired), marked silenced
    p.ingest(resolve("b", T0 + 700, host="h2"), T0 + 700)
    for n in step(p, T0 + 700):
        assert [(v.fingerprint, v.status, v.silenced) for v in n.alerts] == [
            ("b", "resolved", True)
        ]


def test_due_stops_at_an_alert_budget() -> None:
    p = pipe(route("ops", group_by=("host",)))
    for i in range(5):
        p.ingest(fire(f"a{i}", host="big"), T0)
    for i in range(4):
        p.ingest(fire(f"s{i}", host=f"h{i}"), T0)
    # the 5-alert group first (it became due first), then one-alert groups
    assert [len(n.alerts) for n in p.due(T0, max_alerts=3)] == [5]  # one may exceed it
    assert [len(n.alerts) for n in p.due(T0, max_alerts=3)] == [1, 1, 1]
    assert [len(n.alerts) for n in p.due(T0, max_alerts=3)] == [1]
    assert p.due(T0, max_alerts=3) == []


# -- keys and resume ----------------------------------------------------------------------------


def test_idempotency_key_is_deterministic() -> None:
    p = pipe(route("ops"))
    p.ingest(fire("a"), T0)
    p.ingest(fire("b"), T0)
    [n] = p.due(T0)
    assert n.key == idempotency_key("ops", n.group_key, reversed(n.alerts))
    assert len(n.key) == 64
    q = pipe(route("ops"))
    q.ingest(fire("b"), T0)
    q.ingest(fire("a"), T0)
    assert q.due(T0)[0].key == n.key


def test_idempotency_key_format_is_stable() -> None:
    """A notification re-sent after an upgrade must carry the key it had: the
    documented format, checked against json.dumps itself."""
    # pd closes incidents: it is told of acknowledged alerts too
    p = pipe(route("pd", group_by=("team",)))
    p.ingest(fire("b", team="équipe"), T0)  # a group key with non-ASCII: escaped
    p.ingest(fire("a", team="équipe"), T0)
    p.ingest(mark("acknowledged", "a", T0, by="bob"), T0)
    [n] = p.due(T0)
    items = [["a", "firing", iso(T0), "ack"], ["b", "firing", iso(T0)]]
    raw = json.dumps(["pd", n.group_key, items], ensure_ascii=True, separators=(",", ":"))
    assert n.key == hashlib.sha256(raw.encode()).hexdigest()


def crashed_run() -> tuple[dict[str, Any], str]:
    """Journal a firing event, produce its notification, crash before delivery."""
    state = initial_state()
    ev = fire("a", host="h1")
    fold_event(state, ev)
    p = pipe(route("ops", "pd"))
    p.ingest(ev, T0)
    keys = {n.channel: n.key for n in p.due(T0)}
    return state, keys["ops"]


def test_restart_resends_unnotified_alert_once_with_the_same_key() -> None:
    state, key = crashed_run()
    fold_event(
        state,
        {
            "event": "notified",
            "channel": "pd",
            "key": "x",
            "alerts": ["a"],
            "status": "firing",
            "ts": iso(T0 + 1),
        },
    )
    p = pipe(route("ops", "pd"))
    p.load_state(state, T0 + 30)
    [n] = step(p, T0 + 30)
    assert n.channel == "ops" and n.key == key
    assert step(p, T0 + 60) == []


def test_restart_sends_nothing_for_notified_alerts() -> None:
    state, _ = crashed_run()
    for ch in ("ops", "pd"):
        fold_event(
            state,
            {
                "event": "notified",
                "channel": ch,
                "key": "k",
                "alerts": ["a"],
                "status": "firing",
                "ts": iso(T0 + 1),
            },
        )
    p = pipe(route("ops", "pd", repeat_interval=3600))
    p.load_state(state, T0 + 30)
    assert step(p, T0 + 30) == []
    assert p.next_deadline() == T0 + 1 + 3600  # the repeat continues the old schedule
    p.ingest(resolve("a", T0 + 100, host="h1"), T0 + 100)
    assert step(p, T0 + 100) == []  # group_interval from the last send before the crash
    assert sorted(n.channel for n in step(p, T0 + 301)) == ["ops", "pd"]


def test_restart_with_failed_record_resends() -> None:
    state, key = crashed_run()
    fold_event(
        state,
        {
            "event": "notify_failed",
            "channel": "ops",
            "key": key,
            "alerts": ["a"],
            "status": "firing",
            "ts": iso(T0 + 1),
        },
    )
    p = pipe(route("ops"))
    p.load_state(state, T0 + 30)
    [n] = step(p, T0 + 30)
    assert n.key == key


# -- reload --------------------------------------------------------------------------------------


def test_reconfigure_keeps_groups_of_unchanged_routes() -> None:
    r_ops = route(
        "ops", matchers=(Matcher("rule", regex=compile_regex("r.*")),), repeat_interval=3600
    )
    p = pipe(r_ops)
    p.ingest(fire("a"), T0)
    [_n] = step(p, T0)
    new_config = Config(
        routes=(route("new", matchers=(M("team", "x"),)), r_ops),
        channels=(Channel("ops", "webhook"), Channel("new", "webhook")),
    )
    p.reconfigure(new_config, {"ops": "webhook", "new": "webhook"}, T0 + 10)
    assert step(p, T0 + 10) == []
    assert p.next_deadline() == T0 + 3600  # the repeat schedule carried over
    [n2] = step(p, T0 + 3600)
    assert n2.group_key == 'ops|1|{"rule":"r1"}'


def test_reconfigure_outcome_of_inflight_notification_is_not_lost() -> None:
    r_ops = route("ops", repeat_interval=3600)
    p = pipe(r_ops)
    p.ingest(fire("a"), T0)
    [n] = p.due(T0)
    new_config = Config(
        routes=(route("new", matchers=(M("team", "x"),)), r_ops),
        channels=(Channel("ops", "webhook"), Channel("new", "webhook")),
    )
    p.reconfigure(new_config, {"ops": "webhook", "new": "webhook"}, T0 + 1)
    p.delivered(n, True, T0 + 2)
    assert step(p, T0 + 100) == []
    assert p.next_deadline() == T0 + 3900  # the first tick (T0 + 300k) from T0 + 2 + 3600


def test_acknowledgement_until_may_be_an_iso_string() -> None:
    p = pipe(route("slack", group_interval=60, repeat_interval=10_000))
    p.ingest(fire("a"), T0)
    step(p, T0)
    p.ingest(mark("acknowledged", "a", T0 + 10, by="bob", until=iso(T0 + 100)), T0 + 10)
    assert step(p, T0 + 60) == []
    assert step(p, T0 + 100) == []
    [n] = step(p, T0 + 120)
    assert fps(n) == [("a", "firing")]


def test_next_size_tells_how_big_the_next_due_notification_is() -> None:
    p = pipe(route("ops", group_by=("team",), group_wait=10))
    for i in range(5):
        p.ingest(fire(f"a{i}", host=f"h{i}", team="x"), T0)
    p.ingest(fire("b", host="hb", team="y"), T0 + 1)
    assert p.settle()
    assert p.next_size(T0 + 5) == 0  # nothing due yet
    assert p.next_size(T0 + 10) == 5  # team x's group, due first
    [n] = p.due(T0 + 10, max_alerts=1)
    assert len(n.alerts) == 5
    assert p.next_size(T0 + 11) == 1  # team y's


def test_settle_counts_a_big_group_as_several() -> None:
    p = pipe(route("ops", group_by=("team",)))
    for i in range(200):
        p.ingest(fire(f"a{i}", host=f"h{i}", team="x"), T0)
    for t in ("y", "z"):
        p.ingest(fire(f"b{t}", host="h", team=t), T0)
    # team x's group (200 members) weighs 1 + 200 // 64 = 4: a limit of 4 ends there
    assert not p.settle(4)
    assert p.settle(2)
