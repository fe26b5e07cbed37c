"""What GET /api/v1/rules adds to each rule at run time (engine/daemon/rule_runtime.py):
its group's last evaluation, its live alerts' counts and value, its failed
evaluations; a quiet rule's value is null (never computed)."""

from __future__ import annotations

from engine.config.model import Rule, RuleGroup
from engine.daemon.rule_runtime import rule_runtime
from engine.expr.compiler import compile_expr
from engine.expr.history import History
from engine.rules.evaluator import Evaluator, Snapshot

NAMES = {"app"}


def rule(rid: str, expr: str, **kw: object) -> Rule:
    return Rule(id=rid, group="g", expr=expr, compiled=compile_expr(expr, names=NAMES), **kw)  # type: ignore[arg-type]


def test_rule_runtime_fields() -> None:
    group = RuleGroup(
        "g",
        1.0,
        (
            rule("deep", "app.queue > 10", compiled_value=compile_expr("app.queue", names=NAMES)),
            rule("quiet", "app.queue > 1000"),
            rule("bad", "app.queue / app.zero > 1"),
        ),
    )
    other = RuleGroup("never", 1.0, (rule("later", "app.queue > 1"),))
    ev = Evaluator(History(60))
    assert rule_runtime(ev, [group])["deep"]["evaluated_at"] is None  # not evaluated yet
    ev.run_group(
        group, Snapshot({"app": {"queue": 50, "zero": 0}}, frozenset(), 1_800_000_000.0, 100.0)
    )
    ev.last_runs["g"] = (1_800_000_000.0, 0.00042)  # what the daemon records per group run
    got = rule_runtime(ev, [group, other])
    assert got["deep"] == {
        "evaluated_at": "2027-01-15T08:00:00.000Z",
        "evaluation_seconds": 0.00042,
        "firing": 1,
        "pending": 0,
        "value": 50,
        "failures": 0,
    }
    assert got["quiet"]["value"] is None and got["quiet"]["firing"] == 0
    assert got["bad"]["failures"] == 1 and got["bad"]["value"] is None
    assert got["later"]["evaluated_at"] is None and got["later"]["evaluation_seconds"] is None
