"""Why a rule is or is not firing, and where its notification would go.

    explain(config, rule_id, *, labels, values, state, now, channel_status=None,
            history=None, collector_errors=None, sent_at=None, live=None) -> Explanation
    parse_labels(["k=v"])      --labels / ?label= as a dict; ValueError for a bad one
    find_rule(config, id)      the rule, or UnknownRule with a did-you-mean
    result.Explanation.to_dict()  JSON-able, versioned; what GET /api/v1/explain/{rule} returns
    result.Explanation.to_text()  the same, for a terminal (render_text(to_dict()))
    text.render_text(d)        text from the dict form: the CLI's online mode prints this

Pure: no I/O, no clock reads. The caller passes

    values          collector name -> metrics (the collectors' latest samples), or
                    None when they are unknown: then only the state and the
                    routing are explained
    state           the durable state of engine/journal/store.py (journal replay / App.state)
    now             wall-clock epoch seconds the explanation is "as of"
    channel_status  Dispatcher.status(): {channel: {queued, folded, breaker, retry_in,
                    sent, failed, error}}; optional extra keys `held` (notifications held
                    by the rate limit now) and `sent_at` (recent send times, epoch
                    seconds; the offline CLI fills it from the journal)
    history         the daemon's sample history, for window functions (avg_over ...)
    collector_errors  collector name -> why its last collection failed
    filling           collector name -> when (epoch) its own windows are full after a start
    sent_at         channel -> recent send times (epoch seconds), for the rate limit
                    when channel_status cannot say (offline: `notified` journal events)
    live            the running daemon's notification pipeline (facts.LivePipeline,
                    read only): its rate limiter's sends and held notifications

The parts, each in a module of its own: which alerts and whether their
condition holds (condition.py), what the timers make of it (timer.py), where a
notification goes (delivery.py, with holds.py and channel_state.py), the result
(result.py) and its text (text.py). The inputs are read once into facts.py.
The notification part re-derives no rule of the pipeline's: it asks the
policies' own "why not now" queries (engine/notify/hold.py), on the pipeline
rebuilt from the state as a restart would rebuild it (rebuilt.py).

The condition is judged as the evaluator judges it (engine/rules/evaluator.py), and
each part of it is shown: for `and`/`or`, `not` and comparisons every operand's
source is compiled on its own with the rule's names and evaluated against the
same scope, so `system.cpu_percent > 90 → False (system.cpu_percent = 42.5)`.
The notification part follows the pipeline's order (engine/notify/pipeline.py):
route → silence → inhibit → time interval → flapping hold → acknowledgement →
rate limit / breaker. Both parts say what would happen, not what a send did:
the journal's `notified` records say what went out.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from engine.config.model import Config, Rule
from engine.explain.condition import ConditionExplainer
from engine.explain.delivery import DeliveryExplainer
from engine.explain.evidence import evidence
from engine.explain.facts import Facts, LivePipeline
from engine.explain.notes import filling_notes, instance_note, rule_notes
from engine.explain.result import AlertState, Explanation, Instance, UnknownRule
from engine.explain.timer import TimerExplainer
from engine.explain.wording import as_number, iso_time, when_text
from engine.expr.history import History
from engine.rules.state import fingerprint

__all__ = ["explain", "find_rule", "parse_labels"]


def parse_labels(items: Sequence[str]) -> dict[str, str]:
    """`["host=a", "disk=/"]` -> {"host": "a", "disk": "/"}; ValueError names a bad item."""
    out: dict[str, str] = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k.strip():
            raise ValueError(f"expected label=value, got {item!r}")
        out[k.strip()] = v
    return out


def find_rule(config: Config, rule_id: str) -> Rule:
    rules = {r.id: r for r in config.rules()}
    rule = rules.get(rule_id)
    if rule is None:
        raise UnknownRule(rule_id, difflib.get_close_matches(rule_id, list(rules), n=3, cutoff=0.6))
    return rule


def explain(
    config: Config,
    rule_id: str,
    *,
    labels: Mapping[str, str] | None,
    values: Mapping[str, Mapping[str, Any]] | None,
    state: Mapping[str, Any],
    now: float,
    channel_status: Mapping[str, Mapping[str, Any]] | None = None,
    history: History | None = None,
    collector_errors: Mapping[str, str] | None = None,
    sent_at: Mapping[str, Sequence[float]] | None = None,
    live: LivePipeline | None = None,
    filling: Mapping[str, float] | None = None,
) -> Explanation:
    """Explain rule `rule_id` as of `now`; see the module docstring.

    `labels` selects alerts whose labels include all of them (for `each` rules:
    the element); when none has them, the rule's labels plus `labels` are
    explained as a what-if. Raises UnknownRule.
    """
    rule = find_rule(config, rule_id)
    facts = Facts(
        config, rule, values, state, now, channel_status, history, collector_errors, sent_at,
        live,
    )  # fmt: skip
    parts = _Parts(facts)
    notes: list[str] = []
    if not rule.enabled:
        notes.append("the rule is disabled (enabled: false): it is never evaluated")
    if values is None:
        notes.append(
            "collector values are unknown, so the condition is not evaluated "
            "(give --values FILE); the alert state comes from the journal"
        )
    elif rule.compiled.windows and history is None:
        notes.append(
            "window functions (avg_over, rate ...) need the daemon's sample history, "
            "which this explanation does not have: ask the running daemon (--url)"
        )
    if channel_status is None:
        notes.append("channel delivery state (breaker, queue) is unknown: ask the daemon (--url)")
    notes.extend(
        rule_notes(
            rule.id, facts.reads, facts.alerts, facts.errors, facts.down,
            lambda t: when_text(as_number(t), now),
        )
    )  # fmt: skip
    notes.extend(filling_notes(facts.reads, filling or {}, now))
    wanted = dict(labels or {})
    targets = parts.condition.targets(wanted, notes)
    instances = [parts.instance(lab, it, note) for lab, it, note in targets]
    settings: dict[str, Any] = {
        "interval": facts.interval,
        "for": rule.for_,
        "consecutive": rule.consecutive,
        "keep_firing_for": rule.keep_firing_for,
        "resolve_expr": rule.resolve_expr,
        "each": rule.each,
        "no_data": rule.no_data,
        "on_error": rule.on_error,
        "channels": list(rule.channels) if rule.channels is not None else None,
        "labels": dict(rule.labels),
    }
    return Explanation(
        rule=rule.id,
        group=rule.group,
        severity=rule.severity,
        source=str(rule.source),
        expr=rule.expr,
        enabled=rule.enabled,
        settings=settings,
        at=iso_time(now),
        values_known=values is not None,
        instances=tuple(instances),
        notes=tuple(notes),
    )


class _Parts:
    """The parts of one explanation over the same facts, put together per alert."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        self.condition = ConditionExplainer(facts)
        self.timer = TimerExplainer(facts)
        self.delivery = DeliveryExplainer(facts)

    def instance(self, labels: Mapping[str, str], it: Any, note: str) -> Instance:
        rule = self.facts.rule
        fp = fingerprint(rule.id, labels)
        sa = self.facts.alerts.get(fp)
        sa = sa if isinstance(sa, Mapping) and sa.get("state") in ("pending", "firing") else None
        st: AlertState = sa["state"] if sa is not None else "inactive"
        notes: list[str] = []
        if note == "what-if":
            notes.append("what-if: no such alert exists now")
        stale = instance_note(sa)
        if stale is not None:
            notes.append(stale)
        cond = self.condition.condition(it, fp, note)
        found = evidence(self.facts, it, fp)
        if found is not None:
            cond = replace(cond, evidence=found)
        since_t = None
        if sa is not None:
            since_t = as_number(
                sa.get("firing_since") if st == "firing" else sa.get("pending_since")
            )
        timer = self.timer.timer(st, sa, cond)
        delivery = self.delivery.delivery(fp, labels, st, sa)
        summary = self.timer.summary(st, since_t, cond, sa)
        return Instance(
            labels=dict(labels),
            fingerprint=fp,
            state=st,
            since=iso_time(since_t) if since_t is not None else None,
            summary=summary,
            condition=cond,
            timer=tuple(timer),
            delivery=delivery,
            notes=tuple(notes),
        )
