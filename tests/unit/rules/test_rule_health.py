"""A rule's own problems (engine/rules/rule_health.py) as the evaluator reports them."""

from __future__ import annotations

from typing import Any

from engine.config.model import Rule, RuleGroup
from engine.expr.compiler import compile_expr
from engine.expr.history import History
from engine.rules.evaluator import Evaluator, Snapshot
from engine.rules.rule_health import NO_DATA_AFTER


def each_rule(expr: str) -> Rule:
    return Rule(
        id="disk",
        group="g",
        expr=expr,
        compiled=compile_expr(expr, names={"app", "it"}),
        each="app.disks",
        compiled_each=compile_expr("app.disks", names={"app"}),
    )


def run(ev: Evaluator, r: Rule, values: dict[str, Any], t: float) -> None:
    ev.run_group(RuleGroup("g", 1.0, (r,)), Snapshot({"app": values}, frozenset(), 1e9 + t, t))


def test_an_each_rule_with_failing_elements_is_one_problem() -> None:
    ev = Evaluator(History(60))
    r = each_rule("it.used > 90")
    disks = [{"labels": {"d": str(i)}, "used": "full"} for i in range(50)]
    for t in range(5):
        run(ev, r, {"disks": disks}, t)
    changes = ev.health.take()
    assert [(c.problem, c.rule, c.message is not None) for c in changes] == [
        ("rule_error", "disk", True)
    ]
    assert ev.health.take_failed() == ["disk"] * 5  # one failure per evaluation
    run(ev, r, {"disks": []}, 6)  # an empty list is a fine answer
    assert [(c.problem, c.message) for c in ev.health.take()] == [("rule_error", None)]


def test_no_data_only_for_collectors_named_at_run_time() -> None:
    r = each_rule("it.used > 90")
    for runtime, expected in ((frozenset(), []), (frozenset({"app"}), ["rule_no_data"])):
        ev = Evaluator(History(60))
        ev.runtime_named = runtime
        for t in range(NO_DATA_AFTER + 2):
            run(ev, r, {"other": 1}, t)  # no `disks` at all
        assert [c.problem for c in ev.health.take()] == expected


def test_a_removed_or_disabled_rule_ends_its_problem() -> None:
    import dataclasses

    for new in ((), (dataclasses.replace(each_rule("it.used > 90"), enabled=False),)):
        ev = Evaluator(History(60))
        r = each_rule("it.used > 90")
        run(ev, r, {"disks": [{"used": "full"}]}, 0)
        assert [c.problem for c in ev.health.take()] == ["rule_error"]
        ev.adopt(list(new), Snapshot({}, frozenset(), 1e9, 1))
        assert [(c.problem, c.message) for c in ev.health.take()] == [("rule_error", None)]
