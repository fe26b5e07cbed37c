"""The one path of the daemon's events: journal (durable), fold, then notify.

Every event the daemon writes takes it: a tick's transitions, the daemon's own
alerts (collector_down, config_invalid, a rule's own problems), the commands the
API journals. Nothing is handed to the dispatcher before it is durable.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from typing import Any

from engine.common.records import AlertEvent, AlertEventKind, JournalEvent
from engine.config.model import Rule, Severity, Source
from engine.daemon.clock import Clock
from engine.daemon.durable import DurableState
from engine.delivery.dispatch import Dispatcher
from engine.expr.compiler import compile_expr
from engine.rules.alert_events import ALERT_EVENTS, journal_events
from engine.rules.evaluator import Transition
from engine.rules.state import fingerprint
from engine.runtime.budget import Budget

log = logging.getLogger("vigil")


def synthetic_rule(
    rule_id: str, labels: Mapping[str, str], summary: str, severity: Severity = "critical"
) -> Rule:
    """The rule behind the daemon's own alerts (collector_down, config_invalid,
    and a rule's own problems: rule_error, rule_no_data, cardinality_exceeded)."""
    return Rule(
        id=rule_id,
        group="vigil",
        expr="True",
        compiled=compile_expr("True", names=()),
        severity=severity,
        labels=dict(labels),
        annotations={"summary": summary},
        source=Source("<builtin>", 0, 0),
    )


class EventPath:
    """Owns nothing but the order of things: writes through the `DurableState`,
    then hands what is durable to the `Dispatcher`. Everyone who writes an event
    (evaluation, collecting, reload, the API's commands) calls it."""

    def __init__(
        self, durable: DurableState, dispatcher: Dispatcher, clock: Clock, budget: Budget
    ) -> None:
        self.durable = durable
        self.dispatcher = dispatcher
        self.clock = clock
        self.budget = budget

    def stored(self, fp: str) -> Mapping[str, Any] | None:
        """The durable record of the alert `fp`, if it has one."""
        alert: Mapping[str, Any] | None = self.durable.state["alerts"].get(fp)
        return alert

    def firing(self, rule: Rule) -> bool:
        """Whether the daemon's own alert of `rule` (from synthetic_rule) is firing."""
        alert = self.stored(fingerprint(rule.id, rule.labels))
        return alert is not None and alert.get("state") == "firing"

    def synthetic(self, kind: AlertEventKind, rule: Rule, value: Any) -> AlertEvent:
        """The event of one of the daemon's own alerts (`rule` from synthetic_rule)."""
        now = self.clock.wall()
        return {
            "event": kind,
            "alert": fingerprint(rule.id, rule.labels),
            "rule": rule.id,
            "group": rule.group,
            "labels": dict(rule.labels),
            "severity": rule.severity,
            "value": value,
            "annotations": dict(rule.annotations),
            "pending_since": now,
            "firing_since": now,
        }

    async def emit(
        self, events: Sequence[JournalEvent], *, durable: bool = True, quiet: bool = False
    ) -> list[dict[str, Any]]:
        """Journal first (durable before anything is notified), then fold and notify."""
        stamped = await self.durable.record(events, durable)
        if not quiet:
            log_transitions(stamped)
        await self.dispatcher.submit(stamped)
        return stamped

    async def record(self, events: Sequence[JournalEvent]) -> None:
        """Journal and fold, without notifying: a collector's durable state (logtail's
        offsets), written only while the journal is open (not with --once)."""
        journal = self.durable.journal
        if journal is not None and journal.is_open:
            await self.durable.record(events, True)

    async def transitions(self, transitions: list[Transition], now: float) -> None:
        """Journal and notify a tick's transitions (the records `vigil test` predicts,
        engine/rules/alert_events.py). A burst goes in steps within the loop's time
        budget (engine/runtime/budget.py): each is rendered and
        queued for the journal (in order) while earlier ones are being written;
        each is folded and notified as soon as it is durable. So a thousand
        alerts firing at once never hold the loop for long, and the first of
        them are on their way before the last are rendered."""
        store, budget = self.durable, self.budget
        written: deque[tuple[list[dict[str, Any]], asyncio.Future[None] | None]] = deque()
        events: list[JournalEvent] = []
        done = 0
        self.dispatcher.hold()
        try:
            with store.writing():
                while done < len(transitions) or written:
                    # what is durable first (folded and on its way to the channels),
                    # then the next slice rendered and stamped, in what is left of
                    # the time slice
                    while written and (written[0][1] is None or written[0][1].done()):
                        stamped, fut = written.popleft()
                        if fut is not None:
                            fut.result()  # raises what the journal raised
                        store.fold(stamped)
                        await self.dispatcher.submit(stamped)
                        if budget.spent():
                            break
                    batch: list[JournalEvent] = []
                    while done < len(transitions) and not budget.spent():
                        batch += journal_events(transitions[done : done + 8], now)
                        done += 8
                    if batch:
                        events += batch
                        written.append(store.submit(batch, durable=True))
                    if done < len(transitions) or (written and written[0][1] is None):
                        await budget.pause()
                    elif written:
                        fut = written[0][1]
                        assert fut is not None
                        await asyncio.wait([fut])
        finally:
            self.dispatcher.release()
        log_transitions(events)


def log_transitions(events: Sequence[Mapping[str, Any]]) -> None:
    alert_events = [ev for ev in events if ev["event"] in ALERT_EVENTS]
    if len(alert_events) <= 20:
        for ev in alert_events:
            labels = ",".join(f"{k}={v}" for k, v in sorted(ev.get("labels", {}).items()))
            log.info("%s %s {%s} value=%s", ev["event"], ev.get("rule"), labels, ev.get("value"))
    else:  # a burst: one line, not a thousand (the journal has every event)
        kinds = Counter(ev["event"] for ev in alert_events)
        rules = Counter(str(ev.get("rule")) for ev in alert_events).most_common(3)
        log.info(
            "%d transitions (%s), most from %s", len(alert_events),
            ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())),
            ", ".join(f"{r} ({n})" for r, n in rules),
        )  # fmt: skip
