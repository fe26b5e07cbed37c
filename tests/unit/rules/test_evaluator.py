"""The evaluator: a rule whose expression blows up at run time is an error for
that rule only, fast, and every other rule of the group keeps evaluating."""

from __future__ import annotations

import time

from engine.config.model import Rule, RuleGroup
from engine.expr.compiler import compile_expr
from engine.expr.history import History
from engine.rules.evaluator import Evaluator, Snapshot

NAMES = {"system"}


def rule(rid: str, expr: str) -> Rule:
    return Rule(id=rid, group="g", expr=expr, compiled=compile_expr(expr, names=NAMES))


# each passes the compile-time checks and fails only with these run-time values
RUNTIME_BOMBS = [
    "'-' * system.n + '1' == 'x'",  # string growth past the cap
    "system.big ** system.big > 1",  # power bound
    "1 << system.n > 1",  # shift bound
    "str(system.huge) == '1'",  # int-to-str of a huge int
    "system.n / system.zero > 1",  # ZeroDivisionError
    "system.cpu > 'x'",  # TypeError
]


def test_runtime_failures_are_per_rule_errors_and_fast() -> None:
    rules = [rule(f"bomb{i}", e) for i, e in enumerate(RUNTIME_BOMBS)]
    rules.append(rule("cpu_high", "system.cpu > 90"))
    group = RuleGroup("g", 15.0, tuple(rules))
    values = {"system": {"n": 100000, "big": 1999999, "huge": 10**4000, "zero": 0, "cpu": 95.0}}
    ev = Evaluator(History(60))
    t0 = time.perf_counter()
    out = ev.run_group(group, Snapshot(values, frozenset(), 1_800_000_000.0, 100.0))
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.1, elapsed
    kinds = {(t.event.alert.rule_id, t.event.kind) for t in out}
    assert ("cpu_high", "firing") in kinds  # the healthy rule kept evaluating
    for i in range(len(RUNTIME_BOMBS)):
        assert (f"bomb{i}", "error") in kinds
        alert = next(a for a in ev.alerts.values() if a.rule_id == f"bomb{i}")
        assert alert.state == "inactive" and alert.error


def test_flapping_event_carries_the_counted_changes_in_wall_time() -> None:
    """13.A8: the journal's `flapping` event lists the firing/resolved changes it
    counted (wall-clock), so `vigil explain` can say until when the hold lasts."""
    from engine.config.model import Flapping

    r = Rule(
        id="flappy",
        group="g",
        expr="system.cpu > 90",
        compiled=compile_expr("system.cpu > 90", names=NAMES),
        flapping=Flapping(max_changes=4, window=600.0),
    )
    group = RuleGroup("g", 10.0, (r,))
    ev = Evaluator(History(60))
    wall0, mono0 = 1_800_000_000.0, 100.0
    flap = []
    for i in range(6):
        snap = Snapshot(
            {"system": {"cpu": 95.0 if i % 2 == 0 else 10.0}},
            frozenset(),
            wall0 + 10 * i,
            mono0 + 10 * i,
        )
        for t in ev.run_group(group, snap):
            if t.event.kind == "flapping":
                flap.append(t.as_journal(snap.mono))
    [j] = flap
    assert j["changes"] == [wall0 + 0, wall0 + 10, wall0 + 20, wall0 + 30]


def test_a_vanished_each_element_held_by_keep_firing_for_resolves_when_it_runs_out() -> None:
    """An `each` element that disappears while keep_firing_for holds its alert is
    evaluated again on every run, so the alert resolves once keep_firing_for has
    run out (Prometheus: a series gone is a false evaluation)."""
    r = Rule(
        id="disk_full",
        group="g",
        expr="it.used > 90",
        compiled=compile_expr("it.used > 90", names={"app", "it"}),
        each="app.disks",
        compiled_each=compile_expr("app.disks", names={"app"}),
        keep_firing_for=30.0,
    )
    group = RuleGroup("g", 10.0, (r,))
    ev = Evaluator(History(60))
    disk = {"labels": {"disk": "sda"}, "used": 95}
    kinds: list[tuple[int, str]] = []
    for i in range(10):  # the disk is there at 0s and 10s, gone from 20s on
        values = {"app": {"disks": [disk] if i < 2 else []}}
        snap = Snapshot(values, frozenset(), 1_800_000_000.0 + 10 * i, 100.0 + 10 * i)
        kinds += [(10 * i, t.event.kind) for t in ev.run_group(group, snap)]
    assert kinds == [(0, "firing"), (50, "resolved")]  # gone at 20s, held 30s
    assert [a.state for a in ev.alerts.values()] in ([], ["inactive"])
