"""Windows that are still filling after a start (a logtail collector's per-key
counts begin empty) never end an alert: a false result holds a pending or firing
alert as it is, a true one still fires, and once the windows are full the
ordinary rules apply again. Without it, every restart resolved every ongoing
brute-force alert ("resolved" notifications for attacks still going on)."""

from __future__ import annotations

from typing import Any

from engine.config.model import Rule, RuleGroup
from engine.expr.history import History
from engine.rules.evaluator import Evaluator, Snapshot
from tests.unit.rules.test_stale import rule


def run(ev: Evaluator, r: Rule, values: dict[str, Any], t: float, filling: bool) -> list[str]:
    snap = Snapshot(
        {"app": values}, frozenset(), 1_800_000_000.0 + t, t,
        frozenset({"app"}) if filling else frozenset(),
    )  # fmt: skip
    return [x.event.kind for x in ev.run_group(RuleGroup("g", 1.0, (r,)), snap)]


def test_a_firing_each_alert_is_held_while_the_windows_fill_then_resolves() -> None:
    r = rule("brute", "it.failures >= 3", each="app.keys")
    ev = Evaluator(History(60))
    hot = {"keys": [{"labels": {"ip": "a"}, "failures": 5}]}
    assert run(ev, r, hot, 0, filling=False) == ["firing"]
    # a restart: the key's window is empty (its element below the threshold, or gone)
    cold = {"keys": [{"labels": {"ip": "a"}, "failures": 0}]}
    assert run(ev, r, cold, 1, filling=True) == []
    assert run(ev, r, {"keys": []}, 2, filling=True) == []
    (alert,) = ev.alerts.values()
    assert alert.state == "firing"
    # a new attacker crosses the threshold while the windows fill: it fires
    both = {
        "keys": [{"labels": {"ip": "a"}, "failures": 0}, {"labels": {"ip": "b"}, "failures": 4}]
    }
    assert run(ev, r, both, 3, filling=True) == ["firing"]
    # windows full: what they say now is known
    assert run(ev, r, both, 4, filling=False) == ["resolved"]


def test_a_plain_rule_and_a_pending_alert_are_held_too() -> None:
    r = rule("total", "app.hits > 10", for_=5.0)
    ev = Evaluator(History(60))
    assert run(ev, r, {"hits": 20}, 0, filling=False) == ["pending"]
    assert run(ev, r, {"hits": 0}, 1, filling=True) == []
    assert next(iter(ev.alerts.values())).state == "pending"
    assert run(ev, r, {"hits": 0}, 2, filling=False) == ["inactive"]


def test_nothing_is_held_for_a_collector_that_is_not_filling() -> None:
    r = rule("total", "app.hits > 10")
    ev = Evaluator(History(60))
    assert run(ev, r, {"hits": 20}, 0, filling=False) == ["firing"]
    snap = Snapshot({"app": {"hits": 0}}, frozenset(), 1_800_000_001.0, 1.0, frozenset({"other"}))
    assert [x.event.kind for x in ev.run_group(RuleGroup("g", 1.0, (r,)), snap)] == ["resolved"]
