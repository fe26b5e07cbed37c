"""14.A3 residue: the evaluator's fingerprint cache holds only the elements of a
rule's latest evaluation. `each` elements come and go (pods, disks, targets); a
cache of every label set ever seen grew by one entry per element, forever."""

from __future__ import annotations

import gc
import time
import tracemalloc
from typing import Any

from engine.config.model import Rule, RuleGroup
from engine.expr.compiler import compile_expr
from engine.expr.history import History
from engine.rules.evaluator import Evaluator, Snapshot


def each_rule() -> Rule:
    return Rule(
        id="pod_down",
        group="g",
        expr="it.down",
        compiled=compile_expr("it.down", names={"fleet", "it"}),
        each="fleet.pods",
        compiled_each=compile_expr("fleet.pods", names={"fleet"}),
    )


def pods(prefix: str, n: int) -> list[dict[str, Any]]:
    # quiet elements: no alert is kept, so only caches could keep them
    return [{"labels": {"pod": f"{prefix}-{i}"}, "down": False} for i in range(n)]


def test_distinct_elements_over_time_do_not_grow_the_evaluator() -> None:
    ev = Evaluator(History(60))
    group = RuleGroup("g", 1.0, (each_rule(),))

    def tick(values: list[dict[str, Any]], t: float) -> None:
        ev.run_group(group, Snapshot({"fleet": {"pods": values}}, frozenset(), 1e9 + t, t))

    t0 = time.monotonic()
    tick([], 0)  # the rule's plan and health exist before the baseline
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        batch = pods("a", 100_000)
        tick(batch, 1)
        del batch
        gc.collect()
        after_a = tracemalloc.get_traced_memory()[0] - base
        batch = pods("b", 100_000)  # 100,000 other elements: the "a" ones are gone
        tick(batch, 2)
        del batch
        gc.collect()
        after_b = tracemalloc.get_traced_memory()[0] - base
        tick([], 3)  # and then none at all
        gc.collect()
        after_none = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert time.monotonic() - t0 < 120
    assert ev.alerts == {}
    # the second 100,000 replace the first rather than add to them ...
    assert after_b < after_a * 1.2 + 1_000_000, (after_a, after_b)
    # ... and with no elements left, what they cost is given back
    assert after_none < 2_000_000, (after_a, after_b, after_none)


def test_elements_past_an_exceeded_cap_are_not_evaluated_nor_recorded() -> None:
    # a window over `it.load` records each evaluated element's series: the
    # elements the cap refuses cost neither an evaluation nor a series
    rule = Rule(
        id="load_high",
        group="g",
        expr="avg_over(it.load, '1m') > 1",
        compiled=compile_expr("avg_over(it.load, '1m') > 1", names={"fleet", "it"}),
        each="fleet.hosts",
        compiled_each=compile_expr("fleet.hosts", names={"fleet"}),
        max_alerts=10,
    )
    history = History(60)
    ev = Evaluator(history)
    hosts = [{"labels": {"host": f"h{i}"}, "load": 5} for i in range(20_000)]
    for t in range(3):
        ev.run_group(
            RuleGroup("g", 1.0, (rule,)),
            Snapshot({"fleet": {"hosts": hosts}}, frozenset(), 1e9 + t, float(t)),
        )
    assert len(ev.alerts) == 10
    assert [c.problem for c in ev.health.take()] == ["cardinality_exceeded"]
    assert len(history) < 100, len(history)  # not 20,000 elements' series
