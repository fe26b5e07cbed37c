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
from typing import Any, Literal

from engine.notify.base import Notification

__all__ = ["Entry", "news", "repeats", "told_fields"]

Entry = tuple[Literal["firing", "resolved"], bool]  # (status, acknowledged)


def news(told: Mapping[str, Entry] | None, content: Mapping[str, Entry]) -> bool:
    """Whether `content` holds anything the channel was not told."""
    if told is None:
        return bool(content)
    return any(told.get(fp) != e for fp, e in content.items())


def repeats(content: Mapping[str, Entry]) -> bool:
    """Whether the content is worth a reminder: an unacknowledged alert fires."""
    return any(st == "firing" and not ack for st, ack in content.values())


def told_fields(n: Notification) -> dict[str, Any]:
    """The fields of a `notified` event that say what each alert was told as, from
    which a restart rebuilds the group (engine/notify/delivery_log.py): the alerts told
    resolved, and those told acknowledged (only when there are some)."""
    out: dict[str, Any] = {"resolved": [a.fingerprint for a in n.alerts if a.status == "resolved"]}
    acked = [a.fingerprint for a in n.alerts if a.acknowledged is not None]
    if acked:
        out["acked"] = acked
    return out
