"""The journal events of the evaluator's transitions, with rendered annotations.

One function shared by the daemon (App) and `vigil test` (engine/ruletest/ruletest.py), so
that what a rule test predicts is what the daemon journals and notifies: each
transition's record (`Transition.as_journal`), its annotations rendered from the
rule's templates with the alert's labels and value at that moment (and an `each`
rule's element as `it`), and one
`template_failed` event before it per annotation that failed to render.
"""

from __future__ import annotations

from engine.common.records import AlertEvent, TemplateFailedEvent
from engine.rules.evaluator import Transition
from engine.templates.renderer import render_annotations

__all__ = ["ALERT_EVENTS", "journal_events"]

# the events that carry an alert's annotations and go to the notification pipeline
ALERT_EVENTS = frozenset({"pending", "firing", "resolved"})


def journal_events(
    transitions: list[Transition], mono: float
) -> list[AlertEvent | TemplateFailedEvent]:
    """The events to journal for `transitions`, in order; `mono` is the monotonic
    time of the evaluation (it turns the alert's timers into wall-clock times)."""
    events: list[AlertEvent | TemplateFailedEvent] = []
    for t in transitions:
        ev = t.as_journal(mono)
        if ev["event"] in ALERT_EVENTS:
            errors: list[str] = []
            ev["annotations"] = render_annotations(
                t.rule.annotations, ev["labels"], ev["value"],
                rule=t.rule.id, severity=t.rule.severity, errors=errors, it=t.element,
            )  # fmt: skip
            for e in errors:
                events.append({"event": "template_failed", "rule": t.rule.id, "error": e})
        events.append(ev)
    return events
