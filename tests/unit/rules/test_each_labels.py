"""Labels from `each` elements (collector data) never override the rule's own
labels, and never set `rule` or `severity` (issue 13.A.5): as in Prometheus,
where a rule's labels overwrite the series' labels of the same name."""

from __future__ import annotations

from engine.config.model import Rule, RuleGroup
from engine.expr.compiler import compile_expr
from engine.expr.history import History
from engine.notify.router import match_labels
from engine.rules.alert_events import journal_events
from engine.rules.evaluator import Evaluator, Snapshot


def test_rule_labels_win_over_element_labels() -> None:
    r = Rule(
        id="disk_full",
        group="g",
        expr="it.used > 90",
        compiled=compile_expr("it.used > 90", names={"app", "it"}),
        each="app.disks",
        compiled_each=compile_expr("app.disks", names={"app"}),
        severity="critical",
        labels={"team": "infra"},
    )
    hostile = {"disk": "sda", "team": "nobody", "severity": "info", "rule": "fake"}
    values = {"app": {"disks": [{"labels": hostile, "used": 95}]}}
    ev = Evaluator(History(60))
    out = ev.run_group(RuleGroup("g", 1.0, (r,)), Snapshot(values, frozenset(), 1e9, 1.0))
    (t,) = out
    assert dict(t.event.alert.labels) == {"disk": "sda", "team": "infra"}
    (record,) = journal_events(out, 1.0)
    assert record["rule"] == "disk_full" and record["severity"] == "critical"
    assert record["labels"] == {"disk": "sda", "team": "infra"}
    routed = match_labels(t.event.alert.labels, "disk_full", "critical")
    assert routed == {"disk": "sda", "team": "infra", "rule": "disk_full", "severity": "critical"}


def _each_rule(labels: dict[str, str]) -> Rule:
    return Rule(
        id="hot",
        group="g",
        expr="it.t > 1",
        compiled=compile_expr("it.t > 1", names={"app", "it"}),
        each="app.els",
        compiled_each=compile_expr("app.els", names={"app"}),
        labels=labels,
    )


def _firing(
    ev: Evaluator, rule: Rule, els: list[dict[str, object]], t: float
) -> list[dict[str, str]]:
    snap = Snapshot({"app": {"els": els}}, frozenset(), 1e9 + t, t)
    out = ev.run_group(RuleGroup("g", 1.0, (rule,)), snap)
    return [dict(x.event.alert.labels) for x in out if x.event.kind == "firing"]


def test_element_labels_follow_a_reloaded_rules_labels() -> None:
    # an element's labels are remembered between evaluations: a reloaded rule with
    # other labels must still give its own labels to the same element
    ev = Evaluator(History(60))
    el = {"labels": {"host": "a"}, "t": 5}
    assert _firing(ev, _each_rule({"team": "x"}), [el], 1.0) == [{"host": "a", "team": "x"}]
    assert _firing(ev, _each_rule({"team": "y"}), [el], 2.0) == [{"host": "a", "team": "y"}]


def test_element_labels_that_are_not_strings_keep_their_own_text() -> None:
    # 1 and True are equal as keys; as labels they are "1" and "True"
    ev = Evaluator(History(60))
    rule = _each_rule({})
    assert _firing(ev, rule, [{"labels": {"n": 1}, "t": 5}], 1.0) == [{"n": "1"}]
    got = _firing(ev, rule, [{"labels": {"n": True}, "t": 5}, {"labels": {"n": 1}, "t": 5}], 2.0)
    assert got == [{"n": "True"}]
