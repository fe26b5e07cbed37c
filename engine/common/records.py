"""The records vigil writes: journal events and the stored alert, as TypedDicts.

Every event the daemon appends to the journal has a type here, and the code that
builds one annotates it (or calls a constructor typed with it), so mypy checks its
fields. The journal adds the envelope (`v`, `seq`, `ts`, then `crc` at the end of
the line); an event carries `event`, its kind, and the fields below, in the order
its builder writes them (the journal format is a contract: builders keep order).

    kind                                            type
    pending firing resolved inactive flapping       AlertEvent   (engine/rules/evaluator.py,
      flapping_end no_data error stale stale_end                 daemon synthetic alerts)
    silenced unsilenced inhibited uninhibited       MarkEvent    (engine/notify/marks.py)
    acknowledged / unacknowledged                   AckEvent / UnackEvent
    silence_created / silence_expired               SilenceCreatedEvent / SilenceExpiredEvent
    escalated                                       EscalatedEvent
    notified notify_failed                          NotifiedEvent (engine/delivery/dispatch.py)
    template_failed                                 TemplateFailedEvent
    collector_up / collector_down                   CollectorUpEvent / CollectorDownEvent
    config_loaded / config_rejected                 ConfigLoadedEvent / ConfigRejectedEvent
    started / stopped                               StartedEvent / StoppedEvent
    audit                                           AuditEvent (open: the API's details)
    ban / unban                                     BanEvent / UnbanEvent (engine/channels/ban/)
    report_sent                                     ReportSentEvent (engine/report/deliver.py)

These describe what is written. Readers (engine/journal/store.py, replay, the API's
history) stay tolerant of older journals and keep reading plain mappings.

The stored alert (`StoredAlert`) is one entry of the durable state's "alerts"
(engine/journal/store.py's fold, snapshots); `ApiAlert` is what the API returns.
"""

# no `from __future__ import annotations`: Python 3.11's TypedDict tells NotRequired
# keys (__optional_keys__, which the tests read) only from evaluated annotations
import functools
from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict, Union, cast, get_args, get_type_hints

__all__ = [
    "AckEvent",
    "AckRecord",
    "AlertEvent",
    "AlertEventKind",
    "AlertFields",
    "ApiAck",
    "ApiAlert",
    "AuditEvent",
    "BanEvent",
    "BanEvidence",
    "CollectorDownEvent",
    "CollectorUpEvent",
    "ConfigLoadedEvent",
    "ConfigRejectedEvent",
    "EscalatedEvent",
    "JournalEvent",
    "MarkEvent",
    "MarkKind",
    "NotifiedEvent",
    "NotifiedRecord",
    "ReportSentEvent",
    "SilenceCreatedEvent",
    "SilenceExpiredEvent",
    "StartedEvent",
    "StoppedEvent",
    "StoredAlert",
    "TemplateFailedEvent",
    "ToldFields",
    "UnackEvent",
    "UnbanEvent",
    "audit_event",
    "event_types",
]

# the state machine's events (engine/rules/state.py)
AlertEventKind = Literal[
    "pending",
    "firing",
    "resolved",
    "inactive",
    "flapping",
    "flapping_end",
    "no_data",
    "error",
    "stale",
    "stale_end",
]


class AlertFields(TypedDict):
    """What every per-alert event says of its alert (SPEC §3)."""

    alert: str  # fingerprint
    rule: str
    labels: dict[str, str]
    severity: str
    value: Any  # a JSON scalar: the expression's value, or a text for what JSON lacks


class AlertEvent(AlertFields):
    """A transition of an alert instance (Transition.as_journal), or a synthetic
    alert of the daemon (collector_down, rule_error, config_invalid, ...)."""

    event: AlertEventKind
    group: NotRequired[str]  # absent when ending an alert whose rule is gone
    annotations: NotRequired[dict[str, str]]  # pending, firing, resolved
    # wall-clock starts of the episode, so a restart continues the timers
    pending_since: NotRequired[float]
    firing_since: NotRequired[float]
    error: NotRequired[str]
    changes: NotRequired[list[float]]  # flapping: the counted changes, wall-clock


MarkKind = Literal["silenced", "unsilenced", "inhibited", "uninhibited"]


class MarkEvent(AlertFields):
    event: MarkKind
    silence: NotRequired[str]  # silenced: the silence's id


class AckEvent(TypedDict):
    event: Literal["acknowledged"]
    alert: str
    by: str
    note: str
    until: str | None  # RFC 3339


class UnackEvent(TypedDict):
    """By a person (alert, by), or an acknowledgement's `until` passed (cause
    "expired", with the alert's fields)."""

    event: Literal["unacknowledged"]
    alert: str
    rule: NotRequired[str]
    labels: NotRequired[dict[str, str]]
    severity: NotRequired[str]
    value: NotRequired[Any]
    cause: NotRequired[str]
    by: Any  # the acknowledger's name; None when an old record had none
    until: NotRequired[Any]  # RFC 3339 (or as the old record had it)


class SilenceCreatedEvent(TypedDict):
    event: Literal["silence_created"]
    id: str
    matchers: list[dict[str, Any]]  # {"label", "value"} | {"label", "regex"}
    starts: str | None  # RFC 3339
    until: str
    reason: str
    created_by: str


class SilenceExpiredEvent(TypedDict):
    """Expired by a person (id, by), or its `until` passed (cause "time"); a
    channel file's silence also says `source` "config" and its reason."""

    event: Literal["silence_expired"]
    id: str
    by: NotRequired[str]
    cause: NotRequired[str]
    until: NotRequired[str | None]
    source: NotRequired[str]
    reason: NotRequired[str]


class EscalatedEvent(TypedDict):
    event: Literal["escalated"]
    alert: str
    rule: str
    level: int
    channels: list[str]


class ToldFields(TypedDict):
    """What a `notified` event says each alert was told as (engine/notify/dedup.py)."""

    resolved: list[str]
    acked: NotRequired[list[str]]


class NotifiedEvent(TypedDict):
    event: Literal["notified", "notify_failed"]
    channel: str
    key: str
    alerts: list[str]  # fingerprints
    status: str
    group_key: str
    attempts: int
    kind: NotRequired[str]  # not "alerts": escalation, digest, test, ...
    resolved: NotRequired[list[str]]
    acked: NotRequired[list[str]]
    level: NotRequired[int]  # an escalation's level
    error: NotRequired[str]  # notify_failed


class TemplateFailedEvent(TypedDict):
    """A rule's annotation (rule) or a channel's template (channel, group_key)
    failed to render; the notification went out with a fallback text."""

    event: Literal["template_failed"]
    rule: NotRequired[str]
    channel: NotRequired[str]
    group_key: NotRequired[str]
    error: str


class CollectorUpEvent(TypedDict):
    event: Literal["collector_up"]
    collector: str


class CollectorDownEvent(TypedDict):
    event: Literal["collector_down"]
    collector: str
    error: str


class CollectorStateEvent(TypedDict):
    """A collector's durable state under one key (logtail: a followed file's offset
    and counters), folded into state["collector_state"][collector][key]."""

    event: Literal["collector_state"]
    collector: str
    key: str
    state: dict[str, Any] | None  # None: the key is forgotten (a path no longer followed)


class ConfigLoadedEvent(TypedDict):
    event: Literal["config_loaded"]
    hash: str
    by: NotRequired[str]  # a reload: who asked (absent at start)
    rules: int
    channels: int


class ConfigRejectedEvent(TypedDict):
    event: Literal["config_rejected"]
    by: str
    errors: list[str]


class StartedEvent(TypedDict):
    event: Literal["started"]
    version: str
    pid: int


class StoppedEvent(TypedDict):
    event: Literal["stopped"]
    pid: int


class AuditEvent(TypedDict):
    """An API write or refusal; the API's details (method, path, result, error,
    ids, ...) follow these keys, so the type is open: build it with audit_event."""

    event: Literal["audit"]
    action: str
    by: str


def audit_event(action: str, by: str, details: Mapping[str, Any]) -> AuditEvent:
    # TypedDicts cannot say "and any other keys" on Python 3.11: the fixed part is
    # checked here, the details are the API's own (engine/api/request.py)
    head: AuditEvent = {"event": "audit", "action": action, "by": by}
    return cast(AuditEvent, {**head, **details})


class BanEvidence(TypedDict):
    """What made the alert fire: its annotations and value, and the matching log
    lines when the alert carries them (an `evidence` annotation), redacted."""

    annotations: dict[str, str]
    value: Any
    lines: NotRequired[list[str]]


class BanEvent(TypedDict):
    """A ban channel put `net` (an IPv4 address, an IPv6 /64 by default) in its
    nftables set until `until` (epoch seconds); `dry_run`: it only said it would."""

    event: Literal["ban"]
    channel: str
    rule: str
    fingerprint: str  # the alert's
    key: str  # the address the alert named
    net: str
    duration: float  # seconds
    until: float
    offences: int  # this one included, since the count last decayed
    forget_at: float  # the offence count decays to nothing after this
    evidence: BanEvidence
    dry_run: NotRequired[bool]


class UnbanEvent(TypedDict):
    """`net` left the ban channel's set: `expired` (the set's timeout; `at` is when)
    or `operator` (`vigil unban`, by `by`)."""

    event: Literal["unban"]
    channel: str
    net: str
    reason: Literal["expired", "operator"]
    at: float
    by: NotRequired[str]


class ReportSentEvent(TypedDict):
    """A scheduled report (`reports:`) went out: its period is [since, due); `sent`
    and `failed` name the channels. The last one per report is where a restart
    resumes (engine/report/schedule.py's catch-up)."""

    event: Literal["report_sent"]
    report: str
    due: float
    since: float
    sent: list[str]
    failed: list[str]


JournalEvent = Union[  # noqa: UP007 - a runtime value: event_types() reads its members
    AlertEvent,
    MarkEvent,
    AckEvent,
    UnackEvent,
    SilenceCreatedEvent,
    SilenceExpiredEvent,
    EscalatedEvent,
    NotifiedEvent,
    TemplateFailedEvent,
    CollectorUpEvent,
    CollectorDownEvent,
    CollectorStateEvent,
    ConfigLoadedEvent,
    ConfigRejectedEvent,
    StartedEvent,
    StoppedEvent,
    AuditEvent,
    BanEvent,
    UnbanEvent,
    ReportSentEvent,
]


@functools.cache
def event_types() -> Mapping[str, type]:
    """Each event kind -> its TypedDict (read from the `event` Literals)."""
    out: dict[str, type] = {}
    for td in get_args(JournalEvent):
        for kind in get_args(get_type_hints(td)["event"]):
            assert kind not in out, f"{kind} has two types"
            out[kind] = td
    return out


# -- the stored alert ---------------------------------------------------------------------


class AckRecord(TypedDict):
    by: Any
    note: Any
    until: float | None  # epoch seconds
    at: float


class NotifiedRecord(TypedDict):
    """An alert's last notification outcome on one channel."""

    key: Any
    ts: float
    status: Any
    ok: bool
    level: NotRequired[int]


class StoredAlert(TypedDict):
    """One live alert of the durable state (engine/journal/store.py), times as epoch
    seconds. Fields in the order the fold first writes them (snapshots keep it)."""

    rule: Any
    labels: dict[str, str]
    ack: AckRecord | None
    escalation: int
    notified: dict[str, NotifiedRecord]  # channel -> last outcome
    flapping: bool
    state: Literal["pending", "firing"]
    severity: Any
    value: Any
    annotations: NotRequired[dict[str, str]]
    pending_since: NotRequired[float]
    firing_since: NotRequired[float]
    starts_at: NotRequired[float]
    stale: NotRequired[bool]
    mark_silenced: NotRequired[bool]
    mark_inhibited: NotRequired[bool]


class ApiAck(TypedDict):
    by: Any
    note: Any
    at: str | None  # RFC 3339
    until: str | None


class ApiAlert(TypedDict):
    """An alert as the API returns it (engine/api/facade.py's alert_view)."""

    fingerprint: str
    rule: Any
    state: Any
    severity: Any
    labels: dict[str, str]
    annotations: dict[str, str]
    value: Any
    starts_at: Any  # RFC 3339
    pending_since: Any
    firing_since: str | None
    acknowledged: ApiAck | None
    silenced: bool
    silenced_by: list[str]
    inhibited: bool
    escalation: int
    flapping: bool
    stale: bool
    history: NotRequired[list[dict[str, Any]]]  # get_alert only: journal events, oldest first
    history_source: NotRequired[str]  # get_alert only: index | journal_tail | unavailable
