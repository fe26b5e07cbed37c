"""`vigil explain`: why a rule is or is not firing, and where its notification goes.

The configuration is real YAML loaded by ConfigLoader; the durable state is built
by folding journal events with engine.journal.store.fold_event, as a replay would.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main as cli
from engine.config.build import ConfigLoader
from engine.config.model import Config, LogConfig
from engine.explain.explain import explain, parse_labels
from engine.explain.result import Explanation, Instance, UnknownRule
from engine.explain.text import render_text
from engine.expr.history import History
from engine.journal.journal import Journal
from engine.journal.store import fold_event, initial_state
from engine.rules.state import fingerprint

# Monday 2026-11-23 12:00 UTC = 13:00 in Berlin: business hours, and inside "lunch"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()
NIGHT = datetime(2026, 11, 23, 22, 0, tzinfo=UTC).timestamp()  # 23:00 in Berlin

RULES = """\
group: g
interval: 15s
rules:
  - id: cpu_high
    expr: app.cpu > 90
    for: 2m
    labels: {team: infra}
  - id: streak
    expr: app.cpu > 90
    consecutive: 3
    labels: {team: infra}
  - id: swap_heavy
    expr: app.swap > 50 and app.mem > 80
    labels: {team: infra}
  - id: either
    expr: app.a > 1 or not app.b
    labels: {team: infra}
  - id: hyst
    expr: app.cpu > 90
    resolve_expr: app.cpu < 80
    keep_firing_for: 1m
    labels: {team: infra}
  - id: bad_type
    expr: app.name > 5
    on_error: keep
    labels: {team: infra}
  - id: disk_full
    each: app.disks
    expr: it.percent > 90
    severity: critical
  - id: disk_filling
    each: app.disks
    expr: it.percent > 80
    labels: {team: infra}
  - id: office
    expr: app.cpu > 90
    labels: {team: office}
  - id: night
    expr: app.cpu > 90
    labels: {team: night}
  - id: quiet
    expr: app.cpu > 90
    labels: {team: infra, host: build-7}
  - id: orphan
    expr: app.cpu > 90
    severity: info
    labels: {team: nobody}
  - id: own_channels
    expr: app.cpu > 90
    channels: [hook]
  - id: sustained
    expr: avg_over(app.cpu, "5m") > 90
    labels: {team: infra}
"""

CHANNELS = """\
channels:
  - {name: ops, type: memory}
  - {name: hook, type: memory, rate_limit: {max: 2, per: 1m}}
  - {name: pager, type: memory}
routes:
  - match: {team: office}
    channels: [ops]
    active_time: [business_hours]
  - match: {team: night}
    channels: [ops]
    mute_time: [lunch]
  - match: {severity: critical}
    channels: [hook, ops]
    group_wait: 10s
    repeat_interval: 4h
    escalate:
      - {after: 15m, channels: [pager]}
  - match: {team: infra}
    channels: [ops]
    repeat_interval: 2h
time_intervals:
  - {name: business_hours, weekdays: [mon-fri], times: ["09:00-18:00"], timezone: Europe/Berlin}
  - {name: lunch, times: ["12:30-14:00"], timezone: Europe/Berlin}
inhibit:
  - {source: {rule: disk_full}, target: {rule: disk_filling}, equal: [mountpoint]}
silences:
  - match: {rule: quiet, host: build-7}
    until: "2026-12-01T00:00:00Z"
    reason: load test
"""


def write_config(root: Path) -> Path:
    (root / "rules").mkdir(parents=True, exist_ok=True)
    (root / "channels").mkdir(exist_ok=True)
    (root / "rules" / "r.yaml").write_text(RULES)
    (root / "channels" / "c.yaml").write_text(CHANNELS)
    (root / "vigil.yaml").write_text(
        "rules: [rules]\nchannels: [channels]\ndata_dir: data\n"
        "collectors:\n"
        "  - {name: system, type: system, enabled: false}\n"
        f"  - {{name: app, type: file, path: {root / 'app.json'}, format: json}}\n"
    )
    return root / "vigil.yaml"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    path = write_config(tmp_path_factory.mktemp("explain"))
    result = ConfigLoader().load(str(path))
    assert result.config is not None, [p.format() for p in result.problems]
    return result.config


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert_event(
    kind: str,
    rule: str,
    labels: Mapping[str, str],
    *,
    at: float,
    severity: str = "warning",
    value: Any = 95.0,
) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "event": kind,
        "ts": iso(at),
        "alert": fingerprint(rule, labels),
        "rule": rule,
        "labels": dict(labels),
        "severity": severity,
        "value": value,
        "pending_since": at,
    }
    if kind == "firing":
        ev["firing_since"] = at
    return ev


def state_of(*events: Mapping[str, Any]) -> dict[str, Any]:
    st = initial_state()
    for ev in events:
        fold_event(st, dict(ev))
    return st


INFRA = {"team": "infra"}


def run(
    config: Config,
    rule: str,
    *,
    values: Mapping[str, Mapping[str, Any]] | None = None,
    state: Mapping[str, Any] | None = None,
    now: float = NOW,
    labels: Mapping[str, str] | None = None,
    **kw: Any,
) -> Explanation:
    e = explain(
        config,
        rule,
        labels=labels,
        values=values,
        state=state if state is not None else initial_state(),
        now=now,
        **kw,
    )
    # every explanation is JSON and renders as text
    d = json.loads(json.dumps(e.to_dict()))
    assert d["rule"] == rule and d["version"] == 1
    assert render_text(d) == e.to_text()
    return e


def only(e: Explanation) -> Instance:
    assert len(e.instances) == 1, e.to_text()
    return e.instances[0]


def codes(inst: Instance) -> list[str]:
    return [r.code for r in inst.delivery.withheld]


def reason(inst: Instance, code: str) -> Any:
    found = [r for r in inst.delivery.withheld if r.code == code]
    assert found, f"no {code} in {codes(inst)}:\n{inst.delivery}"
    return found[0]


# -- why it is (not) firing ------------------------------------------------------------


def test_not_firing_names_the_deciding_comparison(config: Config) -> None:
    e = run(config, "cpu_high", values={"app": {"cpu": 42.5}})
    inst = only(e)
    assert inst.state == "inactive"
    assert inst.condition.outcome == "false"
    assert "app.cpu > 90 → False (app.cpu = 42.5)" in inst.summary
    assert inst.summary.startswith("NOT FIRING")
    assert "app.cpu > 90 → False (app.cpu = 42.5)" in e.to_text()


def test_and_says_which_operand_decided(config: Config) -> None:
    inst = only(run(config, "swap_heavy", values={"app": {"swap": 12, "mem": 85}}))
    check = inst.condition.check
    assert check is not None and check.op == "and" and check.outcome == "false"
    first, second = check.children
    assert first.decisive and first.text == "app.swap > 50 → False (app.swap = 12)"
    assert not second.decisive and not second.reached  # `and` stopped at the first
    assert second.text == "app.mem > 80 → True (app.mem = 85)"
    assert "app.swap > 50 → False" in inst.summary
    e = run(config, "swap_heavy", values={"app": {"swap": 12, "mem": 85}})
    assert "decided by app.swap > 50" in e.to_text()
    assert "(not reached)" in e.to_text()


def test_or_and_not_are_walked(config: Config) -> None:
    inst = only(run(config, "either", values={"app": {"a": 0, "b": False}}))
    check = inst.condition.check
    assert check is not None and check.op == "or" and check.outcome == "true"
    a, notb = check.children
    assert not a.decisive and a.outcome == "false"
    assert notb.decisive and notb.op == "not" and notb.outcome == "true"
    assert notb.children[0].text == "app.b → False"
    assert inst.condition.outcome == "true"
    # all operands false: all of them decided it
    inst = only(run(config, "either", values={"app": {"a": 0, "b": True}}))
    check = inst.condition.check
    assert check is not None and all(k.decisive for k in check.children)
    assert (
        "none of its 2 operands holds"
        in run(config, "either", values={"app": {"a": 0, "b": True}}).to_text()
    )


def test_no_data_names_the_missing_metric_and_the_policy(config: Config) -> None:
    e = run(config, "cpu_high", values={"other": {}})
    inst = only(e)
    assert inst.condition.outcome == "no_data"
    assert inst.condition.message == "no data: app.cpu is missing (collector down?)"
    assert inst.condition.policy.startswith("no_data: ok")
    assert "no data: app.cpu is missing (collector down?)" in e.to_text()
    assert "no_data: ok" in e.to_text()


def test_no_data_uses_the_collector_error_and_the_missing_key(config: Config) -> None:
    inst = only(run(config, "cpu_high", values={}, collector_errors={"app": "file is gone"}))
    assert "collector app is down: file is gone" in inst.condition.message
    inst = only(run(config, "cpu_high", values={"app": {"mem": 1}}))
    assert inst.condition.message == "no data: app.cpu is missing"


def test_error_and_on_error_policy(config: Config) -> None:
    inst = only(run(config, "bad_type", values={"app": {"name": "web"}}))
    assert inst.condition.outcome == "error"
    assert "'>' not supported" in inst.condition.message
    assert inst.condition.policy.startswith("on_error: keep")
    assert any("frozen" in t for t in inst.timer)


def test_pending_with_timer(config: Config) -> None:
    st = state_of(alert_event("pending", "cpu_high", INFRA, at=NOW - 30))
    inst = only(run(config, "cpu_high", values={"app": {"cpu": 95.0}}, state=st))
    assert inst.state == "pending"
    assert inst.since == "2026-11-23T11:59:30Z"
    fires = "2026-11-23T12:01:30Z (in 1m30s)"
    assert f"fires {fires}" in inst.summary
    assert any(f"for 2m: fires at {fires}" in t for t in inst.timer)
    assert inst.delivery.status == "not_firing"
    assert "pending: nothing is sent until it fires" in inst.delivery.summary


def test_pending_that_no_longer_holds(config: Config) -> None:
    st = state_of(alert_event("pending", "cpu_high", INFRA, at=NOW - 30))
    inst = only(run(config, "cpu_high", values={"app": {"cpu": 10.0}}, state=st))
    assert any("back to inactive at the next evaluation" in t for t in inst.timer)


def test_consecutive_timer(config: Config) -> None:
    st = state_of(alert_event("pending", "streak", INFRA, at=NOW - 15))
    inst = only(run(config, "streak", values={"app": {"cpu": 95.0}}, state=st))
    assert any("consecutive 3: fires after 3 true evaluations" in t for t in inst.timer)


def test_firing_since_and_where_it_goes(config: Config) -> None:
    st = state_of(alert_event("firing", "cpu_high", INFRA, at=NOW - 1200))
    e = run(config, "cpu_high", values={"app": {"cpu": 95.0}}, state=st)
    inst = only(e)
    assert inst.state == "firing"
    assert inst.summary.startswith("FIRING since 2026-11-23T11:40:00Z (20m ago)")
    assert inst.delivery.status == "sending"
    assert [r.index for r in inst.delivery.routes] == [3]
    assert inst.delivery.routes[0].channels == ("ops",)
    assert [c.name for c in inst.delivery.channels if c.sends] == ["ops"]
    text = e.to_text()
    assert "route #3 team=infra → ops" in text
    assert "notification: notifications go to ops" in text


def test_firing_remembers_what_was_told(config: Config) -> None:
    st = state_of(
        alert_event("firing", "cpu_high", INFRA, at=NOW - 1200),
        {
            "event": "notified",
            "ts": iso(NOW - 1190),
            "channel": "ops",
            "alerts": [fingerprint("cpu_high", INFRA)],
            "key": "k",
            "status": "firing",
        },
    )
    inst = only(run(config, "cpu_high", values={"app": {"cpu": 95.0}}, state=st))
    (ops,) = inst.delivery.channels
    assert ops.lines[0].startswith("told at 2026-11-23T11:40:10Z")
    assert "repeats every 2h while unacknowledged" in ops.lines[1]


def test_next_reminder_is_on_the_groups_tick(config: Config) -> None:
    # repeat 2h10s with ticks every 5m from the last notification: the reminder
    # goes out on the first tick after 2h10s, 2h5m later (Alertmanager's timing)
    routes = tuple(
        dataclasses.replace(r, repeat_interval=7210.0) if r.repeat_interval == 7200 else r
        for r in config.routes
    )
    cfg = dataclasses.replace(config, routes=routes)
    st = state_of(
        alert_event("firing", "cpu_high", INFRA, at=NOW - 1200),
        {
            "event": "notified",
            "ts": iso(NOW - 1190),
            "channel": "ops",
            "alerts": [fingerprint("cpu_high", INFRA)],
            "key": "k",
            "status": "firing",
        },
    )
    inst = only(run(cfg, "cpu_high", values={"app": {"cpu": 95.0}}, state=st))
    (ops,) = inst.delivery.channels
    assert "repeats every 2h10s while unacknowledged" in ops.lines[1]
    assert f"next about {iso(NOW - 1190 + 7500).replace('.000Z', 'Z')}" in ops.lines[1]


def test_firing_with_hysteresis_and_keep_firing_for(config: Config) -> None:
    st = state_of(alert_event("firing", "hyst", INFRA, at=NOW - 600))
    inst = only(run(config, "hyst", values={"app": {"cpu": 85.0}}, state=st))
    assert inst.condition.outcome == "false"
    assert inst.condition.resolve is not None
    assert inst.condition.resolve.text == "app.cpu < 80 → False (app.cpu = 85)"
    timer = "\n".join(inst.timer)
    assert "keep_firing_for 1m" in timer
    assert "resolve_expr does not hold: app.cpu < 80 → False (app.cpu = 85)" in timer
    assert "hysteresis" in timer


def test_each_has_one_instance_per_element(config: Config) -> None:
    values = {
        "app": {
            "disks": [
                {"labels": {"mountpoint": "/"}, "percent": 95.0},
                {"labels": {"mountpoint": "/var"}, "percent": 20.0},
            ]
        }
    }
    e = run(config, "disk_full", values=values)
    assert [dict(i.labels) for i in e.instances] == [{"mountpoint": "/"}, {"mountpoint": "/var"}]
    assert [i.condition.outcome for i in e.instances] == ["true", "false"]
    assert e.instances[0].condition.message == "it.percent > 90 → True (it.percent = 95)"
    assert e.instances[1].condition.message == "it.percent > 90 → False (it.percent = 20)"
    # --labels picks one element
    e = run(config, "disk_full", values=values, labels={"mountpoint": "/var"})
    assert [dict(i.labels) for i in e.instances] == [{"mountpoint": "/var"}]


def test_each_element_that_vanished_resolves(config: Config) -> None:
    gone = {"mountpoint": "/mnt"}
    st = state_of(alert_event("firing", "disk_full", gone, at=NOW - 60, severity="critical"))
    e = run(config, "disk_full", values={"app": {"disks": []}}, state=st)
    inst = only(e)
    assert inst.state == "firing" and inst.condition.outcome == "gone"
    assert "resolves at the next evaluation" in inst.condition.message


def test_each_without_its_collector_resolves_its_alerts(config: Config) -> None:
    root = {"mountpoint": "/"}
    st = state_of(alert_event("firing", "disk_full", root, at=NOW - 60, severity="critical"))
    e = run(config, "disk_full", values={}, state=st)
    assert only(e).condition.outcome == "gone"
    assert any("yields no elements now" in n for n in e.notes)


def test_window_functions_use_the_history_when_given(config: Config) -> None:
    e = run(config, "sustained", values={"app": {"cpu": 99}})
    inst = only(e)
    assert inst.condition.outcome == "no_data"
    assert "sample history" in inst.condition.message
    assert any("window functions" in n for n in e.notes)
    history = History(300)
    for i in range(5):
        history.record_tree("app", NOW - 60 * i, {"cpu": 95.0})
    inst = only(run(config, "sustained", values={"app": {"cpu": 99}}, history=history))
    assert inst.condition.outcome == "true"
    assert inst.condition.message == (
        'avg_over(app.cpu, "5m") > 90 → True (avg_over(app.cpu, "5m") = 95)'
    )


def test_unknown_values_still_explain_state_and_routing(config: Config) -> None:
    st = state_of(alert_event("firing", "cpu_high", INFRA, at=NOW - 60, value=97.0))
    e = run(config, "cpu_high", values=None, state=st)
    inst = only(e)
    assert not e.values_known
    assert inst.condition.outcome == "unknown"
    assert "last recorded value 97" in inst.summary
    assert inst.delivery.status == "sending"
    assert any("values are unknown" in n for n in e.notes)


def test_unknown_rule_suggests_close_ids(config: Config) -> None:
    with pytest.raises(UnknownRule) as ei:
        run(config, "cpu_hgih")
    assert "did you mean cpu_high" in str(ei.value)


def test_parse_labels() -> None:
    assert parse_labels(["a=b", "c=d=e"]) == {"a": "b", "c": "d=e"}
    with pytest.raises(ValueError, match="expected label=value"):
        parse_labels(["nope"])


# -- why a notification is withheld ---------------------------------------------------


def test_silenced_by_a_config_silence(config: Config) -> None:
    labels = {"team": "infra", "host": "build-7"}
    st = state_of(alert_event("firing", "quiet", labels, at=NOW - 60))
    inst = only(run(config, "quiet", values={"app": {"cpu": 95}}, state=st))
    r = reason(inst, "silenced")
    assert r.data["origin"] == "config"
    assert r.data["reason"] == "load test"
    assert r.data["until"] == "2026-12-01T00:00:00Z"
    assert r.data["id"] in r.text and "expires 2026-12-01T00:00:00Z (in 7d12h)" in r.text
    assert inst.delivery.status == "withheld"
    assert not any(c.sends for c in inst.delivery.channels)


def test_silenced_by_an_api_silence(config: Config) -> None:
    st = state_of(
        alert_event("firing", "cpu_high", INFRA, at=NOW - 60),
        {
            "event": "silence_created",
            "ts": iso(NOW - 30),
            "id": "s-123",
            "matchers": [{"label": "rule", "value": "cpu_high"}],
            "until": NOW + 3600,
            "starts": None,
            "reason": "deploying",
            "created_by": "alice",
        },
    )
    inst = only(run(config, "cpu_high", values={"app": {"cpu": 95}}, state=st))
    r = reason(inst, "silenced")
    assert r.data["origin"] == "api" and r.data["id"] == "s-123"
    assert "by alice: 'deploying'; expires 2026-11-23T13:00:00Z (in 1h)" in r.text
    # expired: no longer a reason
    inst = only(run(config, "cpu_high", values={"app": {"cpu": 95}}, state=st, now=NOW + 7200))
    assert "silenced" not in codes(inst)


def test_inhibited_by_a_firing_alert(config: Config) -> None:
    root = {"mountpoint": "/"}
    st = state_of(
        alert_event("firing", "disk_full", root, at=NOW - 300, severity="critical"),
        alert_event("firing", "disk_filling", {**INFRA, **root}, at=NOW - 600),
    )
    values = {"app": {"disks": [{"labels": root, "percent": 95.0}]}}
    inst = only(run(config, "disk_filling", values=values, state=st))
    r = reason(inst, "inhibited")
    assert r.data["by"]["rule"] == "disk_full"
    assert r.data["equal"] == ["mountpoint"]
    assert "equal on mountpoint='/'" in r.text
    assert inst.delivery.status == "withheld"
    # another mount point is not inhibited
    other = {"mountpoint": "/var"}
    values = {"app": {"disks": [{"labels": other, "percent": 95.0}]}}
    inst = only(run(config, "disk_filling", values=values, state=st, labels=other))
    assert "inhibited" not in codes(inst)


def test_outside_active_time(config: Config) -> None:
    st = state_of(alert_event("firing", "office", {"team": "office"}, at=NIGHT - 60))
    inst = only(run(config, "office", values={"app": {"cpu": 95}}, state=st, now=NIGHT))
    r = reason(inst, "outside_active_time")
    assert r.route == 0
    assert "business_hours, Europe/Berlin" in r.text
    assert r.data["next"] == "2026-11-24T08:00:00Z"  # 09:00 in Berlin
    assert inst.delivery.status == "withheld"
    (ops,) = inst.delivery.channels
    assert not ops.sends and "outside active_time" in ops.lines[-1]
    # in business hours it goes out
    inst = only(run(config, "office", values={"app": {"cpu": 95}}, state=st, now=NOW))
    assert "outside_active_time" not in codes(inst) and inst.delivery.status == "sending"


def test_inside_mute_time(config: Config) -> None:
    st = state_of(alert_event("firing", "night", {"team": "night"}, at=NOW - 60))
    inst = only(run(config, "night", values={"app": {"cpu": 95}}, state=st))
    r = reason(inst, "inside_mute_time")
    assert r.data["intervals"] == ["lunch"]
    assert "lunch, Europe/Berlin" in r.text
    assert r.data["until"] == "2026-11-23T13:00:00Z"  # 14:00 in Berlin
    assert inst.delivery.status == "withheld"


def test_flapping_holds_notifications(config: Config) -> None:
    st = state_of(
        alert_event("firing", "cpu_high", INFRA, at=NOW - 60),
        {"event": "flapping", "ts": iso(NOW - 10), "alert": fingerprint("cpu_high", INFRA)},
    )
    inst = only(run(config, "cpu_high", values={"app": {"cpu": 95}}, state=st))
    r = reason(inst, "flapping")
    assert "held back" in r.text
    assert inst.delivery.status == "withheld"


def test_flapping_says_since_and_until_when_also_for_a_held_resolve(config: Config) -> None:
    """13.A8: explain says that a notification is held for flapping, since when and
    until when at the earliest; also once the alert resolved (its resolve is held)."""
    fp = fingerprint("cpu_high", INFRA)
    changes = [NOW - 500, NOW - 400, NOW - 300, NOW - 200, NOW - 100, NOW - 50]
    st = state_of(
        alert_event("firing", "cpu_high", INFRA, at=NOW - 100),
        {"event": "flapping", "ts": iso(NOW - 50), "alert": fp, "changes": changes[:5]},
        {**alert_event("resolved", "cpu_high", INFRA, at=NOW - 50)},
    )
    inst = only(run(config, "cpu_high", values={"app": {"cpu": 10}}, state=st))
    r = reason(inst, "flapping")
    # default: 6 changes in 10m flap; the hold ends below 3 in the window, i.e.
    # once the 3rd newest change (NOW - 200, the resolve is the 6th) is 10m old
    assert r.data == {"since": "2026-11-23T11:59:10Z", "until": "2026-11-23T12:06:40Z"}
    assert "held for flapping since 2026-11-23T11:59:10Z" in r.text
    assert "until 2026-11-23T12:06:40Z (in 6m40s) at the earliest" in r.text
    st = state_of(
        alert_event("firing", "cpu_high", INFRA, at=NOW - 100),
        {"event": "flapping", "ts": iso(NOW - 50), "alert": fp, "changes": changes[:5]},
        {"event": "flapping_end", "ts": iso(NOW - 1), "alert": fp},
    )
    inst = only(run(config, "cpu_high", values={"app": {"cpu": 95}}, state=st))
    assert "flapping" not in codes(inst)


def test_acknowledged_stops_repeats_and_escalation(config: Config) -> None:
    root = {"mountpoint": "/"}
    fp = fingerprint("disk_full", root)
    st = state_of(
        alert_event("firing", "disk_full", root, at=NOW - 600, severity="critical"),
        {
            "event": "acknowledged",
            "ts": iso(NOW - 60),
            "alert": fp,
            "by": "bob",
            "note": "on it",
            "until": NOW + 1800,
        },
    )
    values = {"app": {"disks": [{"labels": root, "percent": 95.0}]}}
    inst = only(run(config, "disk_full", values=values, state=st))
    r = reason(inst, "acknowledged")
    assert r.data["by"] == "bob" and r.data["note"] == "on it"
    assert r.data["until"] == "2026-11-23T12:30:00Z"
    assert "no repeats and no escalation" in r.text
    assert inst.delivery.escalation and "waits" in inst.delivery.escalation[0]
    assert inst.delivery.status == "withheld"
    # once the acknowledgement expires it escalates as planned
    inst = only(run(config, "disk_full", values=values, state=st, now=NOW + 1900))
    assert "acknowledged" not in codes(inst)
    assert "overdue since 2026-11-23T12:05:00Z" in inst.delivery.escalation[0]
    assert any("expired" in n for n in inst.delivery.notes)


def test_rate_limited_from_channel_status(config: Config) -> None:
    root = {"mountpoint": "/"}
    st = state_of(alert_event("firing", "disk_full", root, at=NOW - 60, severity="critical"))
    values = {"app": {"disks": [{"labels": root, "percent": 95.0}]}}
    status = {
        "hook": {"queued": 0, "folded": 0, "breaker": "closed", "sent": 9, "failed": 0,
                 "error": None, "held": 3},
        "ops": {"queued": 1, "folded": 0, "breaker": "closed", "sent": 9, "failed": 0,
                "error": None},
    }  # fmt: skip
    inst = only(run(config, "disk_full", values=values, state=st, channel_status=status))
    r = reason(inst, "rate_limited")
    assert r.channel == "hook" and "2 per 1m" in r.text and "3 notification(s) held" in r.text
    sends = {c.name: c.sends for c in inst.delivery.channels}
    assert sends == {"hook": False, "ops": True}
    assert inst.delivery.status == "sending"
    assert "held back from hook" in inst.delivery.summary
    ops = next(c for c in inst.delivery.channels if c.name == "ops")
    assert "1 notification(s) queued for delivery" in ops.lines


def test_rate_limited_from_recent_sends(config: Config) -> None:
    root = {"mountpoint": "/"}
    st = state_of(alert_event("firing", "disk_full", root, at=NOW - 60, severity="critical"))
    values = {"app": {"disks": [{"labels": root, "percent": 95.0}]}}
    inst = only(
        run(config, "disk_full", values=values, state=st, sent_at={"hook": [NOW - 5, NOW - 1]})
    )
    assert "2 sent in the last 1m" in reason(inst, "rate_limited").text
    # sends older than the window do not count
    inst = only(
        run(config, "disk_full", values=values, state=st, sent_at={"hook": [NOW - 90, NOW - 70]})
    )
    assert "rate_limited" not in codes(inst)


def test_breaker_open_from_channel_status(config: Config) -> None:
    st = state_of(alert_event("firing", "cpu_high", INFRA, at=NOW - 60))
    status = {"ops": {"queued": 4, "folded": 2, "breaker": "open", "sent": 1, "failed": 7,
                      "error": None}}  # fmt: skip
    inst = only(
        run(config, "cpu_high", values={"app": {"cpu": 95}}, state=st, channel_status=status)
    )
    r = reason(inst, "breaker_open")
    assert r.channel == "ops" and "failed 7" in r.text
    assert inst.delivery.status == "withheld"
    (ops,) = inst.delivery.channels
    assert "2 notification(s) folded into a digest (its queue was full)" in ops.lines


def test_channel_that_cannot_be_built(config: Config) -> None:
    st = state_of(alert_event("firing", "cpu_high", INFRA, at=NOW - 60))
    status = {"ops": {"queued": 0, "folded": 0, "breaker": "closed", "sent": 0, "failed": 0,
                      "error": "channel ops cannot be built: bad url"}}  # fmt: skip
    inst = only(
        run(config, "cpu_high", values={"app": {"cpu": 95}}, state=st, channel_status=status)
    )
    assert "bad url" in reason(inst, "channel_unavailable").text


def test_no_matching_route(config: Config) -> None:
    e = run(config, "orphan", values={"app": {"cpu": 95}})
    inst = only(e)
    r = reason(inst, "no_route")
    assert "no route matches {rule=orphan, severity=info, team=nobody}" in r.text
    assert inst.delivery.status == "nowhere"
    assert inst.delivery.routes == ()
    assert "goes nowhere" in e.to_text()


def test_rule_channels_bypass_routes(config: Config) -> None:
    st = state_of(alert_event("firing", "own_channels", {}, at=NOW - 60))
    inst = only(run(config, "own_channels", values={"app": {"cpu": 95}}, state=st))
    assert [r.index for r in inst.delivery.routes] == [-1]
    assert inst.delivery.routes[0].text.startswith("rule channels → hook (routes bypassed")
    assert any("routes are bypassed" in n for n in inst.delivery.notes)


def test_not_firing_says_where_it_would_go(config: Config) -> None:
    inst = only(run(config, "cpu_high", values={"app": {"cpu": 10}}))
    assert inst.delivery.status == "not_firing"
    assert (
        inst.delivery.summary == "not firing: nothing is sent; if it fired now it would go to ops"
    )


def test_labels_on_a_plain_rule_are_a_what_if(config: Config) -> None:
    e = run(config, "cpu_high", values={"app": {"cpu": 10}}, labels={"team": "office"})
    inst = only(e)
    assert dict(inst.labels) == {"team": "office"}
    assert any("what-if" in n for n in e.notes)
    assert [r.index for r in inst.delivery.routes] == [0]


# -- the command, offline --------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = write_config(tmp_path)
    (tmp_path / "app.json").write_text(json.dumps({"cpu": 97.5}))
    return path


def journal(root: Path, events: list[tuple[float, dict[str, Any]]]) -> None:
    clock = [0.0]
    j = Journal(root / "data", LogConfig(), clock=lambda: clock[0])
    j.open()
    for at, ev in events:
        clock[0] = at
        j.append_sync([ev])
    j.close_sync()


def test_cli_offline_collects_and_replays(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal(site.parent, [(NOW - 100, alert_event("firing", "cpu_high", INFRA, at=NOW - 100))])
    code = cli.main(["explain", "cpu_high", "-c", str(site)])
    out = capsys.readouterr().out
    assert code == 0
    assert "FIRING since" in out
    assert "app.cpu > 90 → True (app.cpu = 97.5)" in out  # collected from the file
    assert "route #3 team=infra → ops" in out


def test_cli_at_replays_only_events_up_to_then(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t0 = NOW - 3600
    journal(
        site.parent,
        [
            (t0, alert_event("pending", "cpu_high", INFRA, at=t0)),
            (t0 + 120, alert_event("firing", "cpu_high", INFRA, at=t0)),
            (t0 + 900, alert_event("resolved", "cpu_high", INFRA, at=t0)),
        ],
    )

    def at(t: float) -> dict[str, Any]:
        assert (
            cli.main(["explain", "cpu_high", "-c", str(site), "--at", iso(t), "--format", "json"])
            == 0
        )
        d: dict[str, Any] = json.loads(capsys.readouterr().out)
        return d

    assert at(t0 + 60)["instances"][0]["state"] == "pending"
    d = at(t0 + 300)
    assert d["instances"][0]["state"] == "firing"
    assert d["values_known"] is False and d["at"] == iso(t0 + 300)[:19] + "Z"
    assert at(t0 + 1000)["instances"][0]["state"] == "inactive"
    assert cli.main(["explain", "cpu_high", "-c", str(site), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["instances"][0]["state"] == "inactive"


def test_cli_at_over_a_compacted_journal(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # real times in the past: snapshot files carry the real time they were written
    t0 = time.time() - 7200
    clock = [t0]
    j = Journal(site.parent / "data", LogConfig(segment_bytes=1), clock=lambda: clock[0])
    j.open()
    st = initial_state()

    def add(at: float, ev: dict[str, Any]) -> int:
        clock[0] = at
        (stamped,) = j.append_sync([ev])
        fold_event(st, stamped)
        seq: int = stamped["seq"]
        return seq

    fp = fingerprint("cpu_high", INFRA)
    add(t0, alert_event("pending", "cpu_high", INFRA, at=t0))
    add(t0 + 120, alert_event("firing", "cpu_high", INFRA, at=t0))
    j.write_snapshot_sync(copy.deepcopy(st), add(t0 + 200, {"event": "started"}))
    ack = {"event": "acknowledged", "alert": fp, "by": "bob", "note": "mine"}
    j.write_snapshot_sync(copy.deepcopy(st), add(t0 + 300, ack))
    add(t0 + 900, alert_event("resolved", "cpu_high", INFRA, at=t0))
    assert j.compact(0)  # the segments before the older snapshot are gone
    j.close_sync()

    def at(t: float) -> tuple[int, dict[str, Any], str]:
        argv = ["explain", "cpu_high", "-c", str(site), "--at", str(t), "--format", "json"]
        code = cli.main(argv)
        out, err = capsys.readouterr()
        return code, json.loads(out) if code == 0 else {}, err

    code, d, _ = at(t0 + 320)
    inst = d["instances"][0]
    assert code == 0 and inst["state"] == "firing"
    assert [r["code"] for r in inst["delivery"]["withheld"]] == ["acknowledged"]
    code, d, _ = at(t0 + 1000)
    assert code == 0 and d["instances"][0]["state"] == "inactive"
    code, _, err = at(t0 + 60)
    assert code == 1
    assert err.startswith("vigil: ") and "--at cannot go back that far" in err
    assert err.count("\n") == 1


def test_cli_values_file_and_labels(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vals = tmp_path / "values.yaml"
    vals.write_text("app:\n  disks:\n    - {labels: {mountpoint: /}, percent: 99}\n"
                    "    - {labels: {mountpoint: /var}, percent: 5}\n")  # fmt: skip
    code = cli.main(["explain", "disk_full", "-c", str(site), "--values", str(vals),
                     "--labels", "mountpoint=/var"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "alert {mountpoint=/var}" in out and "mountpoint=/}" not in out
    assert "it.percent > 90 → False (it.percent = 5)" in out


def test_cli_errors_are_one_line(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["explain", "cpu_hihg", "-c", str(site)]) == 1
    err = capsys.readouterr().err
    assert err == "vigil: unknown rule 'cpu_hihg'; did you mean cpu_high?\n"
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert cli.main(["explain", "cpu_high", "-c", str(site), "--values", str(bad)]) == 1
    assert "bad.json:1:1: top level is a list; expected a mapping" in capsys.readouterr().err
    assert (
        cli.main(["explain", "cpu_high", "-c", str(site), "--journal", str(tmp_path / "no")]) == 1
    )
    assert "no such directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as ei:
        cli.main(["explain", "cpu_high", "--at", "yesterday-ish"])
    assert ei.value.code == 2
    assert "is not a time" in capsys.readouterr().err
    assert cli.main(["explain", "cpu_high", "--url", "http://x", "--at", "1h ago"]) == 2
    assert "offline only" in capsys.readouterr().err


def test_cli_invalid_config_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path)
    (tmp_path / "rules" / "r.yaml").write_text("group: g\nrules:\n  - id: x\n    expr: nope >\n")
    assert cli.main(["explain", "x", "-c", str(path)]) == 1
    err = capsys.readouterr().err
    assert "r.yaml:4" in err and "configuration invalid" in err
    assert "Traceback" not in err
