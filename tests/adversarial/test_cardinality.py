"""100,000 `each` elements do not make 100,000 alerts (issue 14.A.3): a per-rule
and a global cap on alert instances; over a cap the rule keeps the instances it
has and raises one `cardinality_exceeded` alert, which ends when it is under."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from engine.config.model import Rule, RuleGroup
from engine.expr.compiler import compile_expr
from engine.expr.history import History
from engine.rules.evaluator import Evaluator, Snapshot
from tests.adversarial._api_live import HealthProbe, wait_ready
from tests.integration.daemon import Daemon


def each_rule(rid: str = "host_down", max_alerts: int | None = None) -> Rule:
    return Rule(
        id=rid,
        group="g",
        expr="it.down",
        compiled=compile_expr("it.down", names={"fleet", "it"}),
        each="fleet.hosts",
        compiled_each=compile_expr("fleet.hosts", names={"fleet"}),
        max_alerts=max_alerts,
    )


def hosts(n: int, down: bool = True) -> list[dict[str, Any]]:
    return [{"labels": {"host": f"h{i}"}, "down": down} for i in range(n)]


def run(ev: Evaluator, rules: tuple[Rule, ...], values: dict[str, Any], t: float) -> list[Any]:
    return ev.run_group(RuleGroup("g", 1.0, rules), Snapshot(values, frozenset(), 1e9 + t, t))


def test_100k_elements_stop_at_the_default_cap() -> None:
    ev = Evaluator(History(60))
    r = each_rule()
    t0 = time.monotonic()
    out = run(ev, (r,), {"fleet": {"hosts": hosts(100_000)}}, 0)
    assert time.monotonic() - t0 < 60
    assert len(ev.alerts) == ev.max_alerts_per_rule == 10_000
    assert len(out) == 10_000
    (change,) = ev.health.take()
    assert (change.problem, change.rule) == ("cardinality_exceeded", "host_down")
    assert change.message and "max_alerts" in change.message


def test_the_rule_keeps_its_instances_and_the_problem_ends_under_the_cap() -> None:
    ev = Evaluator(History(60))
    r = each_rule(max_alerts=5)
    run(ev, (r,), {"fleet": {"hosts": hosts(8)}}, 0)
    kept = set(ev.alerts)
    assert len(kept) == 5
    assert [c.problem for c in ev.health.take()] == ["cardinality_exceeded"]
    run(ev, (r,), {"fleet": {"hosts": hosts(8)}}, 1)
    assert set(ev.alerts) == kept and ev.health.take() == []  # the same, no news
    # quiet elements over the cap are no problem: only new alerts are refused
    run(ev, (r,), {"fleet": {"hosts": hosts(5) + hosts(100, down=False)[5:]}}, 2)
    assert [(c.problem, c.message) for c in ev.health.take()] == [("cardinality_exceeded", None)]


def test_the_global_cap_holds_across_rules() -> None:
    ev = Evaluator(History(60))
    ev.max_alerts_total = 30
    rules = (each_rule("a"), each_rule("b"))
    run(ev, rules, {"fleet": {"hosts": hosts(20)}}, 0)
    assert len(ev.alerts) == 30
    assert [(c.problem, c.rule) for c in ev.health.take()] == [("cardinality_exceeded", "b")]


RULES = """
group: fleet
interval: 1s
rules:
  - id: host_down
    each: app.hosts
    expr: it.down
    max_alerts: 100
"""


@pytest.mark.slow
def test_a_daemon_fed_100k_elements_fires_100_and_says_so(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES, extra_config="max_alerts_total: 1000\n")
    d.set_values({"hosts": hosts(100_000)})
    d.start()
    try:
        wait_ready(d, timeout=60)  # the 100,000 elements are read again every second
        with HealthProbe(d) as health:  # /health within 1 s throughout the attack
            evs = d.wait_for(
                lambda evs: any(
                    e["event"] == "firing" and e.get("rule") == "cardinality_exceeded" for e in evs
                ),
                timeout=60,
                what="cardinality_exceeded",
            )
            time.sleep(2.5)  # two more evaluations: nothing new
            evs = d.events()
        health.check()
    finally:
        assert d.stop() == 0
    firing = [e for e in evs if e["event"] == "firing"]
    assert sum(1 for e in firing if e["rule"] == "host_down") == 100
    (problem,) = [e for e in firing if e["rule"] == "cardinality_exceeded"]
    assert problem["labels"] == {"rule_id": "host_down"}
