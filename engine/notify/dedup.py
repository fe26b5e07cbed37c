"""The dedup stage, as Alertmanager's (notify.DedupStage.needsUpdate).

A group's content is what its channel should now see: fingerprint ->
(status, acknowledged). `told` is the content of the last notification that
channel got from the group. A notification is due only when the content holds
something the channel was not told (a firing alert it has not heard of, an
acknowledgement it has not heard of, a resolve), or when `repeat_interval`
passed with unacknowledged alerts firing. An alert that merely left the content
(resolved and reported, silenced, inhibited) is nothing new: the channel is not
told the same firing set again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from engine.common.records import NotifiedEvent, ToldFields
from engine.notify.base import Notification

__all__ = ["Entry", "news", "notified_event", "repeats", "told_fields"]

Entry = tuple[Literal["firing", "resolved"], bool]  # (status, acknowledged)


def news(told: Mapping[str, Entry] | None, content: Mapping[str, Entry]) -> bool:
    """Whether `content` holds anything the channel was not told."""
    if told is None:
        return bool(content)
    return any(told.get(fp) != e for fp, e in content.items())


def repeats(content: Mapping[str, Entry]) -> bool:
    """Whether the content is worth a reminder: an unacknowledged alert fires."""
    return any(st == "firing" and not ack for st, ack in content.values())


def told_fields(n: Notification) -> ToldFields:
    """The fields of a `notified` event that say what each alert was told as, from
    which a restart rebuilds the group (engine/notify/delivery_log.py): the alerts told
    resolved, and those told acknowledged (only when there are some)."""
    out: ToldFields = {"resolved": [a.fingerprint for a in n.alerts if a.status == "resolved"]}
    acked = [a.fingerprint for a in n.alerts if a.acknowledged is not None]
    if acked:
        out["acked"] = acked
    return out


def notified_event(
    channel: str, n: Notification, *, ok: bool, attempts: int, error: str | None = None
) -> NotifiedEvent:
    """The journal record of a delivery's outcome (the dispatcher's, and `vigil test`'s
    simulated one): `notified`, or `notify_failed` with its error."""
    ev: NotifiedEvent = {
        "event": "notified" if ok else "notify_failed",
        "channel": channel,
        "key": n.key,
        "alerts": [a.fingerprint for a in n.alerts] if n.kind != "test" else [],
        "status": n.status,
        "group_key": n.group_key,
        "attempts": attempts,
    }
    if n.kind != "alerts":
        ev["kind"] = n.kind
    else:
        # a restart rebuilds the group from these
        told = told_fields(n)
        ev["resolved"] = told["resolved"]
        if "acked" in told:
            ev["acked"] = told["acked"]
    if n.escalation_level:
        ev["level"] = n.escalation_level
    if not ok:
        ev["error"] = error or "failed"
    return ev
