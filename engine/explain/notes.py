"""What `vigil explain` says about a rule beyond its condition: that its alerts
are stale (a collector it reads is down, so their state is frozen) and which of
the rule's own problems are firing (rule_error, rule_no_data,
cardinality_exceeded: engine/rules/rule_health.py). From the durable state and the
collectors' errors only; engine/explain/explain.py adds these to its notes."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from engine.explain.wording import iso_time

PROBLEMS = {
    "rule_error": "cannot be evaluated",
    "rule_no_data": "gets no data",
    "cardinality_exceeded": "has more alert instances than its cap (new ones are not tracked)",
}

FROZEN = "frozen as it was (no new firing, no resolve, timers paused) until the collector is back"
STALE_POLICY = f"stale — a collector the rule reads is down: the alert's state is {FROZEN}"


def rule_notes(
    rule_id: str,
    reads: Collection[str],
    alerts: Mapping[str, Any],
    errors: Mapping[str, str],
    down: Mapping[str, Any],
    when: Callable[[Any], str],
) -> list[str]:
    """Notes for the whole rule: collectors down that it reads, problems firing.
    `when(t)` shows a time from the state (epoch seconds or None)."""
    notes: list[str] = []
    for name in sorted(reads):
        if name not in errors and name not in down:
            continue
        since = f" since {when(down[name])}" if name in down else ""
        why = f" ({errors[name][:200]})" if name in errors else ""
        notes.append(
            f"collector {name} is down{since}{why}: the rule's alerts are stale: their state is {FROZEN}"
        )
    for a in alerts.values():
        if not isinstance(a, Mapping) or a.get("state") != "firing":
            continue
        problem = a.get("rule")
        labels = a.get("labels")
        if problem not in PROBLEMS or not isinstance(labels, Mapping):
            continue
        if labels.get("rule_id") != rule_id:
            continue
        detail = a.get("value")
        shown = f": {str(detail)[:200]}" if detail not in (None, "") else ""
        notes.append(
            f"{problem} is firing since {when(a.get('firing_since'))}: "
            f"the rule {PROBLEMS[str(problem)]}{shown}"
        )
    return notes


def filling_notes(reads: Collection[str], filling: Mapping[str, float], now: float) -> list[str]:
    """The collectors the rule reads whose windows are still filling after a start
    (engine/collectors/base.py, fills_for): false results do not end alerts yet."""
    return [
        f"collector {name}'s windows are filling since the start until {iso_time(until)}: "
        "they may undercount, so until then a false result does not resolve the rule's "
        "pending or firing alerts (a true one still fires)"
        for name in sorted(reads)
        if (until := filling.get(name)) is not None and until > now
    ]


def instance_note(alert: Mapping[str, Any] | None) -> str | None:
    """A note for one alert of the rule that is stale, else None."""
    if alert is None or not alert.get("stale"):
        return None
    return f"stale: a collector the rule reads is down, so this alert's state is {FROZEN}"
