"""The durable alert state as plain JSON, rebuilt by folding journal events.

The journal is the single source of truth; this module says what each event
means for the state that survives a restart. The same `fold_event` serves the
daemon's replay, snapshots and `vigil log compact`, so there is one meaning.

State shape (all times are wall-clock epoch seconds; one alert is
engine/common/records.py's StoredAlert, which the fold below is typed with):

    {"alerts":   {fingerprint: {"rule", "labels", "severity", "state": "pending"|"firing",
                                "value", "pending_since", "firing_since", "starts_at",
                                "annotations", "ack": {...}|None, "escalation": int,
                                "notified": {channel: {"key", "ts", "status"}},
                                "flapping": bool, "stale": bool}},
     "silences": {id: {"matchers", "until", "starts", "reason", "created_by"}},
     "silences_expired": {id: {... as silences, "expired_at", "expired_by", "cause"}},
     "collectors_down": {name: since},
     "bans": {channel: {net: {"key", "rule", "until", "offences", "last", "forget_at",
                              "dry_run", "ended"}}}   ban channels' book (engine/channels/ban/)
     "told": ..., "resolving": ..., "held": ...}   delivery: engine/notify/delivery_log.py
     and "collector_state": {collector: {key: record}}   engine/collectors/base.py (Stateful)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.common.records import AckRecord, NotifiedRecord, StoredAlert
from engine.common.timefmt import to_epoch
from engine.notify import delivery_log

STATE_VERSION = 1

# per-alert mark events (engine/notify/marks.py) -> (the record's field, value)
MARKS = {
    "silenced": ("mark_silenced", True),
    "unsilenced": ("mark_silenced", False),
    "inhibited": ("mark_inhibited", True),
    "uninhibited": ("mark_inhibited", False),
}


def initial_state() -> dict[str, Any]:
    return {
        "v": STATE_VERSION,
        "alerts": {},
        "silences": {},
        "collectors_down": {},
        "told": {},
        "resolving": {},
        "held": {},
        "silences_expired": {},
    }


def _ts(event: dict[str, Any]) -> float:
    ts = event.get("ts")
    if isinstance(ts, int | float):
        return float(ts)
    if isinstance(ts, str):
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    return 0.0


def fold_event(state: dict[str, Any], event: dict[str, Any]) -> None:
    """Apply one journal event to `state` in place. Unknown events are ignored,
    so an older daemon can replay a newer journal's additions it does not know."""
    kind = event.get("event")
    alerts: dict[str, Any] = state["alerts"]
    fp = event.get("alert")
    if kind in ("pending", "firing") and isinstance(fp, str):
        a: StoredAlert | None = alerts.get(fp)
        ts = event["at"] if "at" in event else _ts(event)
        if kind == "firing" and (a is None or a.get("state") != "firing"):
            delivery_log.on_firing(state, fp)
            delivery_log.on_transition(state, fp, _ts(event))
        if a is None or (kind == "pending" and a.get("state") == "firing"):
            a = {
                "rule": event.get("rule"),
                "labels": event.get("labels", {}),
                "ack": None,
                "escalation": 0,
                "notified": {},
                "flapping": False,
                "state": kind,  # in the order the fold always wrote them (snapshots)
                "severity": None,
                "value": None,
            }
            alerts[fp] = a
        a["state"] = kind
        a["severity"] = event.get("severity")
        a["value"] = event.get("value")
        if "annotations" in event:
            a["annotations"] = event["annotations"]
        # the evaluator's own times when the event carries them: they feed the
        # notifications' idempotency keys, which must be the same after a restart
        if kind == "pending":
            a["pending_since"] = event.get("pending_since", ts)
        else:
            a["firing_since"] = event.get("firing_since", ts)
            a["pending_since"] = event.get("pending_since", a.get("pending_since", ts))
            a["starts_at"] = event.get("starts_at", a["firing_since"])
    elif kind in ("resolved", "inactive") and isinstance(fp, str):
        gone = alerts.pop(fp, None)
        if kind == "resolved" and gone is not None:
            delivery_log.on_resolved(state, fp, gone, _ts(event))
            delivery_log.on_transition(state, fp, _ts(event))
    elif kind == "acknowledged" and isinstance(fp, str) and fp in alerts:
        ack: AckRecord = {
            "by": event.get("by"),
            "note": event.get("note"),
            "until": to_epoch(event.get("until")),  # RFC 3339 now, a number before
            "at": _ts(event),
        }
        alerts[fp]["ack"] = ack
        delivery_log.on_acknowledged(state, fp)
    elif kind == "unacknowledged" and isinstance(fp, str) and fp in alerts:
        alerts[fp]["ack"] = None
    elif kind == "escalated" and isinstance(fp, str) and fp in alerts:
        alerts[fp]["escalation"] = int(event.get("level", 0))
    elif kind in ("flapping", "flapping_end") and isinstance(fp, str):
        if fp in alerts:
            alerts[fp]["flapping"] = kind == "flapping"
        delivery_log.on_flapping(state, event, _ts(event))
    elif kind in ("stale", "stale_end") and isinstance(fp, str) and fp in alerts:
        # a collector the rule reads is down: the alert's state is the last one known
        alerts[fp]["stale"] = kind == "stale"
    elif kind in ("notified", "notify_failed"):
        # one notification covers many alerts; each remembers its last outcome per channel
        channel = event.get("channel")
        at = _ts(event)  # once: a notification may carry a thousand alerts
        for afp in event.get("alerts", []):
            a = alerts.get(afp)
            if a is not None and isinstance(channel, str):
                told: NotifiedRecord = {
                    "key": event.get("key"),
                    "ts": at,
                    "status": event.get("status"),
                    "ok": kind == "notified",
                }
                if "level" in event:  # an escalation: a channel the routes may not reach
                    told["level"] = event["level"]
                a["notified"][channel] = told
        if kind == "notified":
            delivery_log.on_notified(state, event, at)
    elif kind == "silence_created":
        sid = event.get("id")
        if isinstance(sid, str):
            state["silences"][sid] = {k: event.get(k) for k in ("matchers", "reason", "created_by")}
            # RFC 3339 in the journal now, epoch numbers in older ones: numbers here
            state["silences"][sid]["until"] = to_epoch(event.get("until"))
            state["silences"][sid]["starts"] = to_epoch(event.get("starts"))
    elif kind == "silence_expired":
        if event.get("source") == "config":
            # a channel file's silence stays in the config: remember it was journaled
            delivery_log.on_config_silence_expired(state, event)
        gone = state["silences"].pop(event.get("id"), None)
        if gone is not None:
            delivery_log.on_silence_expired(state, str(event.get("id")), gone, event, _ts(event))
    elif kind in MARKS and isinstance(fp, str) and fp in alerts:
        alerts[fp][MARKS[kind][0]] = MARKS[kind][1]
    elif kind == "collector_down":
        state["collectors_down"][event.get("collector")] = _ts(event)
    elif kind == "collector_up":
        state["collectors_down"].pop(event.get("collector"), None)
    elif kind == "collector_state":
        name, key = event.get("collector"), event.get("key")
        if isinstance(name, str) and isinstance(key, str):
            mine = state.setdefault("collector_state", {}).setdefault(name, {})
            if isinstance(event.get("state"), dict):
                mine[key] = event["state"]
            else:
                mine.pop(key, None)
    elif kind in ("ban", "unban"):
        _fold_ban(state, kind, event)
    elif kind == "report_sent" and isinstance(event.get("due"), int | float):
        # where a scheduled report resumes after a restart (engine/report/schedule.py)
        state.setdefault("reports", {})[str(event.get("report"))] = float(event["due"])


PRUNE_AT = 1024  # a channel's book is swept of forgotten offenders past this size, then 2x


def _fold_ban(state: dict[str, Any], kind: str, event: dict[str, Any]) -> None:
    """A ban channel's offenders: active bans (restored at start) and the offence
    counts that escalate the next ban, until they are forgotten."""
    channel, net = event.get("channel"), event.get("net")
    if not isinstance(channel, str) or not isinstance(net, str):
        return
    book: dict[str, Any] = state.setdefault("bans", {}).setdefault(channel, {})
    if kind == "unban":
        entry = book.get(net)
        if event.get("reason") == "operator":
            book.pop(net, None)  # a pardon: the next ban starts from the first offence
        elif entry is not None:
            entry["until"] = min(entry["until"], float(event.get("at") or _ts(event)))
            entry["ended"] = True  # journaled: not again after a restart
        return
    book[net] = {
        "key": event.get("key"),
        "rule": event.get("rule"),
        "until": float(event.get("until") or 0.0),
        "offences": int(event.get("offences") or 1),
        "last": _ts(event),
        "forget_at": float(event.get("forget_at") or 0.0),
        "dry_run": bool(event.get("dry_run", False)),
    }
    mark = state.setdefault("bans_prune", {}).get(channel, PRUNE_AT)
    if len(book) > mark:  # amortized: a sweep per doubling, never one per event
        now = _ts(event)
        for gone in [k for k, v in book.items() if v["forget_at"] <= now and v["until"] <= now]:
            del book[gone]
        state["bans_prune"][channel] = max(PRUNE_AT, 2 * len(book))
