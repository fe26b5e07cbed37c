"""What the rules view shows of a rule at run time, beside its configuration: when
its group last ran and for how long, its live alerts and their value, how many
of its evaluations failed.

Rules are evaluated a group at a time (one snapshot, one pass), so the time and
duration are the group's: measuring each rule would add two clock reads to the
evaluator's hot path for every rule of every tick. The value is that of the
rule's live alert; a quiet rule's value is not computed (its condition is
false and the hot path stops there), so it is null.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.api.facade import rfc3339
from engine.config.model import RuleGroup
from engine.rules.evaluator import Evaluator
from engine.rules.state import fingerprint


def rule_runtime(evaluator: Evaluator, groups: Iterable[RuleGroup]) -> dict[str, dict[str, Any]]:
    """Rule id -> its run-time fields, for every rule of `groups` (one pass over
    the live alerts, however many rules)."""
    live: dict[str, list[int]] = {}  # rule id -> [firing, pending]
    values: dict[str, Any] = {}  # fingerprint -> value, of firing or pending alerts
    for fp, alert in evaluator.alerts.items():
        if alert.state in ("pending", "firing"):
            n = live.setdefault(alert.rule_id, [0, 0])
            n[alert.state == "pending"] += 1
            values[fp] = alert.value
    out: dict[str, dict[str, Any]] = {}
    for g in groups:
        run = evaluator.last_runs.get(g.name)
        for r in g.rules:
            firing, pending = live.get(r.id, (0, 0))
            plain = r.compiled_each is None
            out[r.id] = {
                "evaluated_at": rfc3339(run[0]) if run else None,
                "evaluation_seconds": round(run[1], 6) if run else None,
                "firing": firing,
                "pending": pending,
                "value": values.get(fingerprint(r.id, r.labels)) if plain else None,
                "failures": evaluator.health.failures.get(r.id, 0),
            }
    return out
