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
